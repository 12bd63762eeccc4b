//! `Activation`: Keras's activation functions by name, applied with candle's differentiable ops, and
//! the subset the fused Dense op computes itself.

use crate::error::Result;
use crate::model::ops::Fused;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// A Dense layer's activation, by its Keras name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
}

/// Every activation, for messages and tests.
pub const ALL: [Activation; 12] = [
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
];

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
        if name == "silu" {
            return Some(Activation::Swish);
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
