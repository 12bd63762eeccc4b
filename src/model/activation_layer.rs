//! Keras's weightless activation layers: `Activation(name)` and `LeakyReLU(negative_slope)`.

use crate::error::Result;
use crate::model::Activation;
use crate::model::activation::leaky_relu;
use crate::model::layer::{Forward, Layer, named_layer, yes};
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

/// `Activation(activation)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationLayerSpec {
    pub name: String,
    pub activation: Activation,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl Layer for ActivationLayerSpec {
    named_layer!("Activation");

    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }

    fn forward(
        &self,
        x: &Tensor,
        _w: &[Tensor],
        _vars: &[Var],
        _f: &mut Forward,
        logits: bool,
    ) -> Result<Tensor> {
        if logits {
            Ok(x.clone())
        } else {
            self.activation.apply(x)
        }
    }
}

/// `LeakyReLU(negative_slope)`: `x` for `x >= 0`, `negative_slope * x` below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakyReluSpec {
    pub name: String,
    pub negative_slope: f64,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl Layer for LeakyReluSpec {
    named_layer!("LeakyReLU");

    fn forward(
        &self,
        x: &Tensor,
        _w: &[Tensor],
        _vars: &[Var],
        _f: &mut Forward,
        _logits: bool,
    ) -> Result<Tensor> {
        leaky_relu(x, self.negative_slope)
    }
}
