//! Keras's `Dense` layer: its configuration, its weights (kernel `(in, out)`, optional bias) and its
//! forward pass through the fused candle op.

use crate::error::Result;
use crate::model::layer::{Forward, Layer, WeightSpec, named_layer, yes};
use crate::model::ops;
use crate::model::{Activation, Initializer};
use candle_core::{Tensor, Var};
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
    fn forward(
        &self,
        x: &Tensor,
        w: &[Tensor],
        _vars: &[Var],
        _f: &mut Forward,
        logits: bool,
    ) -> Result<Tensor> {
        let act = if logits {
            Activation::Linear
        } else {
            self.activation
        };
        let (kernel, bias) = (&w[0], &w[1]);
        Ok(match act.fused() {
            Some(f) => ops::dense(x, kernel, bias, f)?,
            None => act.apply(&ops::dense(x, kernel, bias, ops::Fused::Linear)?)?,
        })
    }
}
