//! `Mlp`: the network itself, its variables in a candle `VarMap` under Keras-like names
//! (`dense/kernel` in Keras's `(in, out)` orientation, `dense/bias`), and its forward pass.

use crate::error::{Error, Result};
use crate::model::ops;
use crate::model::{Activation, MlpSpec};
use crate::rng::NumpyRandomState;
use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;

/// The weights of one Dense layer as plain float32 values.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights {
    /// Row-major `(in, out)`, Keras's orientation.
    pub kernel: Vec<f32>,
    /// `out` values, when the layer uses a bias.
    pub bias: Option<Vec<f32>>,
}

/// A Sequential Dense network whose parameters live in a candle `VarMap`.
pub struct Mlp {
    spec: MlpSpec,
    varmap: VarMap,
    /// Per layer: the kernel and the bias as the forward pass uses them (the `VarMap`'s own `Var`s,
    /// or a constant zero bias for a layer without one), so no lookup happens per step.
    params: Vec<(Var, Tensor)>,
    device: Device,
}

/// The `VarMap` name of a layer's kernel.
pub fn kernel_name(layer: &str) -> String {
    format!("{layer}/kernel")
}

/// The `VarMap` name of a layer's bias.
pub fn bias_name(layer: &str) -> String {
    format!("{layer}/bias")
}

impl Mlp {
    /// A freshly initialised network: layer by layer, kernel then bias, each drawn from one
    /// `NumpyRandomState(seed)` with the layer's Keras initializer.
    pub fn new(spec: MlpSpec, seed: u32) -> Result<Self> {
        spec.validate()?;
        let mut rng = NumpyRandomState::new(seed);
        let weights = (0..spec.layers.len())
            .map(|i| Self::draw_layer(&spec, i, &mut rng))
            .collect();
        Self::from_weights(spec, weights)
    }

    /// Draws fresh weights for layer `i` of `spec` with its initializers.
    pub fn draw_layer(spec: &MlpSpec, i: usize, rng: &mut NumpyRandomState) -> LayerWeights {
        let l = &spec.layers[i];
        let fan_in = spec.fan_in(i);
        let kernel = l
            .kernel_initializer
            .draw(rng, fan_in, l.units, fan_in * l.units);
        let bias = l
            .use_bias
            .then(|| l.bias_initializer.draw(rng, fan_in, l.units, l.units));
        LayerWeights { kernel, bias }
    }

    /// A network with the given weights, checked against the spec's shapes.
    pub fn from_weights(spec: MlpSpec, weights: Vec<LayerWeights>) -> Result<Self> {
        spec.validate()?;
        if weights.len() != spec.layers.len() {
            return Err(Error::Mismatch(format!(
                "{} weight sets for {} layers",
                weights.len(),
                spec.layers.len()
            )));
        }
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let mut params = Vec::with_capacity(weights.len());
        {
            let mut data = varmap
                .data()
                .lock()
                .map_err(|_| Error::Mismatch("variable map poisoned".into()))?;
            for (i, w) in weights.into_iter().enumerate() {
                let l = &spec.layers[i];
                let fan_in = spec.fan_in(i);
                check_len(&l.name, "kernel", w.kernel.len(), fan_in * l.units)?;
                let k = Var::from_tensor(&Tensor::from_vec(w.kernel, (fan_in, l.units), &device)?)?;
                data.insert(kernel_name(&l.name), k.clone());
                let bias = match (l.use_bias, w.bias) {
                    (true, Some(b)) => {
                        check_len(&l.name, "bias", b.len(), l.units)?;
                        let b = Var::from_tensor(&Tensor::from_vec(b, l.units, &device)?)?;
                        data.insert(bias_name(&l.name), b.clone());
                        b.as_tensor().clone()
                    }
                    (false, None) => Tensor::zeros(l.units, candle_core::DType::F32, &device)?,
                    (true, None) => {
                        return Err(Error::Mismatch(format!(
                            "layer '{}' uses a bias but none was given",
                            l.name
                        )));
                    }
                    (false, Some(_)) => {
                        return Err(Error::Mismatch(format!(
                            "layer '{}' has no bias but one was given",
                            l.name
                        )));
                    }
                };
                params.push((k, bias));
            }
        }
        Ok(Mlp {
            spec,
            varmap,
            params,
            device,
        })
    }

    /// The architecture.
    pub fn spec(&self) -> &MlpSpec {
        &self.spec
    }

    /// The variables, by name.
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// The device the variables live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The variable called `name`.
    pub fn var(&self, name: &str) -> Result<Var> {
        let data = self
            .varmap
            .data()
            .lock()
            .map_err(|_| Error::Mismatch("variable map poisoned".into()))?;
        data.get(name)
            .cloned()
            .ok_or_else(|| Error::Mismatch(format!("no variable '{name}'")))
    }

    /// The variables of layers `from..`, selected by name (a `VarMap`'s own order is arbitrary): the
    /// ones handed to the optimizer when the first `from` layers are frozen.
    pub fn trainable_vars(&self, frozen: usize) -> Result<Vec<Var>> {
        let mut vars = Vec::new();
        for l in self.spec.layers.iter().skip(frozen) {
            vars.push(self.var(&kernel_name(&l.name))?);
            if l.use_bias {
                vars.push(self.var(&bias_name(&l.name))?);
            }
        }
        Ok(vars)
    }

    /// The weights as plain values, layer by layer.
    pub fn weights(&self) -> Result<Vec<LayerWeights>> {
        self.spec
            .layers
            .iter()
            .map(|l| {
                let kernel = self
                    .var(&kernel_name(&l.name))?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                let bias = if l.use_bias {
                    Some(self.var(&bias_name(&l.name))?.to_vec1::<f32>()?)
                } else {
                    None
                };
                Ok(LayerWeights { kernel, bias })
            })
            .collect()
    }

    /// The last layer's pre-activation output (the logits), for a float32 batch `[n, input_dim]`.
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        forward_logits(&self.spec, &self.params, x, 0)
    }

    /// `logits` for training with the first `frozen` layers frozen: their parameters enter the
    /// graph detached, so backprop computes no gradient for them at all (SGD would not use one).
    pub fn logits_frozen(&self, x: &Tensor, frozen: usize) -> Result<Tensor> {
        forward_logits(&self.spec, &self.params, x, frozen)
    }

    /// The model's output (after the last activation) for a float32 batch `[n, input_dim]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let last = self
            .spec
            .layers
            .last()
            .map(|l| l.activation)
            .unwrap_or(Activation::Linear);
        activate(&self.logits(x)?, last)
    }

    /// `model.predict`: the outputs for row-major inputs (f64 values are cast to float32 as Keras does).
    pub fn predict(&self, x: &[f64]) -> Result<Vec<f32>> {
        let d = self.spec.input_dim;
        if !x.len().is_multiple_of(d) {
            return Err(Error::Mismatch(format!(
                "{} input values are not rows of {d}",
                x.len()
            )));
        }
        let xs: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let t = Tensor::from_vec(xs, (x.len() / d, d), &self.device)?;
        Ok(self.forward(&t)?.flatten_all()?.to_vec1::<f32>()?)
    }
}

fn check_len(layer: &str, weight: &str, found: usize, expected: usize) -> Result<()> {
    if found != expected {
        return Err(Error::Mismatch(format!(
            "layer '{layer}' {weight}: {found} values, expected {expected}"
        )));
    }
    Ok(())
}

/// Applies an activation to a whole tensor with candle's differentiable ops (for the outputs, and
/// for the activations the fused Dense op leaves to candle).
pub fn activate(h: &Tensor, a: Activation) -> Result<Tensor> {
    const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
    const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
    Ok(match a {
        Activation::Relu => h.relu()?,
        Activation::Tanh => h.tanh()?,
        Activation::Sigmoid => candle_nn::ops::sigmoid(h)?,
        Activation::Softmax => candle_nn::ops::softmax_last_dim(h)?,
        Activation::Linear => h.clone(),
        Activation::Elu => h.elu(1.0)?,
        Activation::Selu => (h.elu(SELU_ALPHA)? * SELU_SCALE)?,
        // log(1 + exp(x)) computed without overflow: max(x, 0) + log(1 + exp(-|x|)).
        Activation::Softplus => (h.relu()? + ((h.abs()?.neg()?.exp()? + 1.0)?.log()?))?,
        Activation::Softsign => h.broadcast_div(&(h.abs()? + 1.0)?)?,
        Activation::Swish => h.silu()?,
        Activation::Gelu => h.gelu_erf()?,
        Activation::Exponential => h.exp()?,
    })
}

/// The forward pass to the logits through the fused Dense op: every layer but the last applies its
/// activation; the last stays linear (the loss and `forward` take it from there). Works for one
/// model (`x [N, in]`) and for an ensemble (`x [R, N, in]`, parameters stacked).
///
/// The first `frozen` layers' parameters enter the graph detached (no gradient is computed for
/// them); the values, and so every result, are the same.
pub fn forward_logits(
    spec: &MlpSpec,
    params: &[(Var, Tensor)],
    x: &Tensor,
    frozen: usize,
) -> Result<Tensor> {
    let last = params.len().saturating_sub(1);
    let mut h = x.clone();
    for (i, ((k, b), l)) in params.iter().zip(&spec.layers).enumerate() {
        let act = if i == last {
            Activation::Linear
        } else {
            l.activation
        };
        let fused = if act.fused() { act } else { Activation::Linear };
        h = if i < frozen {
            ops::dense(&h, &k.as_tensor().detach(), &b.detach(), fused)?
        } else {
            ops::dense(&h, k.as_tensor(), b, fused)?
        };
        if !act.fused() {
            h = activate(&h, act)?;
        }
    }
    Ok(h)
}
