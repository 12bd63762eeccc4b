//! `Activation`: Keras's activation functions by name, applied with candle's differentiable ops, and
//! the subset the fused Dense op computes itself.

use crate::error::Result;
use crate::model::ops::Fused;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// An activation function, by its Keras 3 name (`keras.activations`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Tanh,
    Sigmoid,
    Softmax,
    Linear,
    Elu,
    Selu,
    Softplus,
    Softsign,
    /// `x * sigmoid(x)`; Keras 3 also calls it `silu`.
    Swish,
    /// The exact (erf) GELU, Keras's default.
    Gelu,
    Exponential,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `x` for `x >= 0`, `0.2 x` below: Keras 3's `leaky_relu` default slope.
    LeakyRelu,
    /// `x * tanh(softplus(x))`.
    Mish,
    /// Keras 3's `relu6(x + 3) / 6` (not tf.keras 2's `clip(0.2 x + 0.5, 0, 1)`).
    HardSigmoid,
    /// `x * hard_sigmoid(x)`; Keras also calls it `hard_swish`.
    HardSilu,
    /// `x - logsumexp(x)` over the row.
    LogSoftmax,
}

/// Every activation, for messages and tests.
pub const ALL: [Activation; 18] = [
    Activation::Relu,
    Activation::Tanh,
    Activation::Sigmoid,
    Activation::Softmax,
    Activation::Linear,
    Activation::Elu,
    Activation::Selu,
    Activation::Softplus,
    Activation::Softsign,
    Activation::Swish,
    Activation::Gelu,
    Activation::Exponential,
    Activation::Relu6,
    Activation::LeakyRelu,
    Activation::Mish,
    Activation::HardSigmoid,
    Activation::HardSilu,
    Activation::LogSoftmax,
];

/// The slope of Keras 3's `leaky_relu` activation below zero.
pub const LEAKY_RELU_SLOPE: f64 = 0.2;

impl Activation {
    /// Keras's name for the activation.
    pub fn keras_name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Softmax => "softmax",
            Activation::Linear => "linear",
            Activation::Elu => "elu",
            Activation::Selu => "selu",
            Activation::Softplus => "softplus",
            Activation::Softsign => "softsign",
            Activation::Swish => "swish",
            Activation::Gelu => "gelu",
            Activation::Exponential => "exponential",
            Activation::Relu6 => "relu6",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Mish => "mish",
            Activation::HardSigmoid => "hard_sigmoid",
            Activation::HardSilu => "hard_silu",
            Activation::LogSoftmax => "log_softmax",
        }
    }

    /// The fused Dense op's own version of this activation (with TensorFlow's gradient), when it has
    /// one; the others run as a linear fused Dense followed by `apply`.
    pub fn fused(self) -> Option<Fused> {
        Some(match self {
            Activation::Relu => Fused::Relu,
            Activation::Tanh => Fused::Tanh,
            Activation::Sigmoid => Fused::Sigmoid,
            Activation::Linear => Fused::Linear,
            _ => return None,
        })
    }

    /// Parses a Keras activation name.
    pub fn from_keras(name: &str) -> Option<Self> {
        match name {
            "silu" => return Some(Activation::Swish),
            "hard_swish" => return Some(Activation::HardSilu),
            _ => {}
        }
        ALL.into_iter().find(|a| a.keras_name() == name)
    }

    /// Applies the activation to a whole tensor (rows on the last dimension) with candle's
    /// differentiable ops.
    pub fn apply(self, h: &Tensor) -> Result<Tensor> {
        const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
        const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
        Ok(match self {
            Activation::Relu => h.relu()?,
            Activation::Tanh => h.tanh()?,
            Activation::Sigmoid => candle_nn::ops::sigmoid(h)?,
            // candle's fused softmax_last_dim has no backward pass: a tensor that training
            // differentiates (a softmax inside the model) takes the composed, differentiable one.
            Activation::Softmax if h.track_op() => {
                candle_nn::ops::softmax(h, candle_core::D::Minus1)?
            }
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
            Activation::Relu6 => crate::model::kernels::relu6::relu6(h)?,
            Activation::LeakyRelu => leaky_relu(h, LEAKY_RELU_SLOPE)?,
            Activation::Mish => (h * Activation::Softplus.apply(h)?.tanh()?)?,
            Activation::HardSigmoid => hard_sigmoid(h)?,
            Activation::HardSilu => (h * hard_sigmoid(h)?)?,
            Activation::LogSoftmax => candle_nn::ops::log_softmax(h, candle_core::D::Minus1)?,
        })
    }
}

/// Keras 3's `hard_sigmoid`: `relu6(x + 3) / 6`.
fn hard_sigmoid(h: &Tensor) -> Result<Tensor> {
    Ok((crate::model::kernels::relu6::relu6(&(h + 3.0)?)? / 6.0)?)
}

/// `x` where `x >= 0`, `slope * x` elsewhere (Keras's `leaky_relu` and `LeakyReLU` layer).
pub fn leaky_relu(h: &Tensor, slope: f64) -> Result<Tensor> {
    let neg = (h.minimum(0f32)? * slope)?;
    Ok((h.relu()? + neg)?)
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Activation::from_keras(s).ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|a| a.keras_name()).collect();
            format!("unknown activation '{s}' ({})", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Each activation at a few points against its textbook formula in f64.
    #[test]
    fn activations_match_their_formulas() {
        let xs = [-7.0f64, -3.5, -1.0, -0.25, 0.0, 0.3, 1.0, 2.9, 6.5];
        let t = Tensor::new(&xs.map(|v| v as f32), &Device::Cpu).unwrap();
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let softplus = |x: f64| (1.0 + x.exp()).ln();
        let hs = |x: f64| ((x + 3.0).clamp(0.0, 6.0)) / 6.0;
        type Formula = Box<dyn Fn(f64) -> f64>;
        let cases: Vec<(Activation, Formula)> = vec![
            (Activation::Relu6, Box::new(|x: f64| x.clamp(0.0, 6.0))),
            (
                Activation::LeakyRelu,
                Box::new(|x: f64| if x >= 0.0 { x } else { 0.2 * x }),
            ),
            (
                Activation::Mish,
                Box::new(move |x: f64| x * softplus(x).tanh()),
            ),
            (Activation::HardSigmoid, Box::new(hs)),
            (Activation::HardSilu, Box::new(move |x: f64| x * hs(x))),
            (Activation::Swish, Box::new(move |x: f64| x * sig(x))),
            (Activation::Softsign, Box::new(|x: f64| x / (1.0 + x.abs()))),
            (Activation::Softplus, Box::new(softplus)),
        ];
        for (a, f) in cases {
            let got = a.apply(&t).unwrap().to_vec1::<f32>().unwrap();
            for (x, g) in xs.iter().zip(got) {
                assert!(
                    (f64::from(g) - f(*x)).abs() < 1e-5,
                    "{a:?}({x}) = {g}, want {}",
                    f(*x)
                );
            }
        }
        let ls = Activation::LogSoftmax
            .apply(&Tensor::new(&[[1f32, 2.0, 3.0]], &Device::Cpu).unwrap())
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let lse = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        assert!((f64::from(ls[0][0]) - (1.0 - lse)).abs() < 1e-6);
    }

    #[test]
    fn every_name_parses_back() {
        for a in ALL {
            assert_eq!(Activation::from_keras(a.keras_name()), Some(a));
        }
        assert_eq!(Activation::from_keras("silu"), Some(Activation::Swish));
        assert_eq!(
            Activation::from_keras("hard_swish"),
            Some(Activation::HardSilu)
        );
        assert_eq!(Activation::from_keras("nope"), None);
    }
}
