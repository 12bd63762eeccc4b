//! Keras's `Dense` layer: its configuration, its weights (kernel `(in, out)`, optional bias) and its
//! forward pass through the fused candle op.

use crate::error::Result;
use crate::model::layer::{Layer, Step, WeightSpec, named_layer, yes};
use crate::model::ops;
use crate::model::{Activation, Initializer};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// One Dense layer: Keras's `Dense(units, activation, use_bias, kernel_initializer, bias_initializer)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseSpec {
    /// The layer's name (`dense`, `dense_1`, ...); its variables are `<name>/kernel` and `<name>/bias`.
    pub name: String,
    pub units: usize,
    pub activation: Activation,
    pub use_bias: bool,
    pub kernel_initializer: Initializer,
    pub bias_initializer: Initializer,
    /// Keras's `trainable` flag: false for a frozen layer.
    #[serde(default = "yes")]
    pub trainable: bool,
    /// `kernel_regularizer`: its penalty on the kernel is added to the loss while the layer trains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_regularizer: Option<Regularizer>,
    /// `bias_regularizer`, likewise on the bias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_regularizer: Option<Regularizer>,
    /// `activity_regularizer`: its penalty on the layer's output, divided by the batch size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_regularizer: Option<Regularizer>,
}

/// Keras's `L1`, `L2` and `L1L2` regularisers: `l1 * sum(|x|) + l2 * sum(x^2)` in float32.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Regularizer {
    pub l1: f64,
    pub l2: f64,
}

impl Regularizer {
    /// Keras's class name: `L1`, `L2` or `L1L2`.
    pub fn keras_class(&self) -> &'static str {
        match (self.l1 != 0.0, self.l2 != 0.0) {
            (true, false) => "L1",
            (false, true) => "L2",
            _ => "L1L2",
        }
    }

    /// The penalty of each member of `x [R, ...]`, `[R]`, in `x`'s dtype (the factors as Keras casts
    /// them: to float32 in a float32 model, kept in a float64 one).
    pub fn penalty(&self, x: &Tensor) -> Result<Tensor> {
        let r = x.dim(0)?;
        let flat = x.reshape((r, ()))?;
        let f64_model = x.dtype() == candle_core::DType::F64;
        let factor = |v: f64| if f64_model { v } else { f64::from(v as f32) };
        let mut total = Tensor::zeros(r, x.dtype(), x.device())?;
        if self.l1 != 0.0 {
            total = (total + (flat.abs()?.sum(1)? * factor(self.l1))?)?;
        }
        if self.l2 != 0.0 {
            total = (total + (flat.sqr()?.sum(1)? * factor(self.l2))?)?;
        }
        Ok(total)
    }
}

impl DenseSpec {
    /// A trainable layer with a bias and Keras's default zero bias initializer.
    pub fn new(
        name: impl Into<String>,
        units: usize,
        activation: Activation,
        kernel_initializer: Initializer,
    ) -> Self {
        DenseSpec {
            name: name.into(),
            units,
            activation,
            use_bias: true,
            kernel_initializer,
            bias_initializer: Initializer::Zeros,
            trainable: true,
            kernel_regularizer: None,
            bias_regularizer: None,
            activity_regularizer: None,
        }
    }
}

impl Layer for DenseSpec {
    named_layer!("Dense");

    fn output_dim(&self, _input: usize) -> usize {
        self.units
    }

    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }

    /// Kernel `(in, out)`, then the bias when the layer has one.
    fn weights(&self, fan_in: usize) -> Vec<WeightSpec> {
        let fans = (fan_in, self.units);
        let mut w = vec![WeightSpec {
            name: "kernel",
            shape: vec![fan_in, self.units],
            trainable: true,
            initializer: self.kernel_initializer.clone(),
            fans,
        }];
        if self.use_bias {
            w.push(WeightSpec {
                name: "bias",
                shape: vec![self.units],
                trainable: true,
                initializer: self.bias_initializer.clone(),
                fans,
            });
        }
        w
    }

    /// `act(x · kernel + bias)` for stacked weights `[R, in, out]`, `[R, out]` (a layer without a bias
    /// gets a constant zero one after its kernel).
    fn forward(&self, x: &Tensor, s: Step) -> Result<Tensor> {
        let act = if s.logits {
            Activation::Linear
        } else {
            self.activation
        };
        let (kernel, bias) = (&s.w[0], &s.w[1]);
        Ok(match act.fused() {
            Some(f) => ops::dense(x, kernel, bias, f)?,
            None => act.apply(&ops::dense(x, kernel, bias, ops::Fused::Linear)?)?,
        })
    }
}
