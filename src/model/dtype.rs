//! `FloatDtype`: the float type a model computes in (Keras's `float32` or `float64`).

use serde::{Deserialize, Serialize};

/// The float type a model's weights are kept and computed in: Keras's `float32` (the default) or
/// `float64` (every layer's dtype, or `keras.config.set_floatx("float64")`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FloatDtype {
    #[default]
    Float32,
    Float64,
}

impl FloatDtype {
    /// Keras's name: `float32` or `float64`.
    pub fn keras_name(self) -> &'static str {
        match self {
            FloatDtype::Float32 => "float32",
            FloatDtype::Float64 => "float64",
        }
    }

    /// The dtype of Keras's name, when this tool computes in it.
    pub fn from_keras(name: &str) -> Option<Self> {
        match name {
            "float32" => Some(FloatDtype::Float32),
            "float64" => Some(FloatDtype::Float64),
            _ => None,
        }
    }

    /// The candle dtype of the model's tensors.
    pub fn candle(self) -> candle_core::DType {
        match self {
            FloatDtype::Float32 => candle_core::DType::F32,
            FloatDtype::Float64 => candle_core::DType::F64,
        }
    }

    /// `v` as this dtype holds it (float32 rounds to nearest, float64 keeps it).
    pub fn round(self, v: f64) -> f64 {
        match self {
            FloatDtype::Float32 => f64::from(v as f32),
            FloatDtype::Float64 => v,
        }
    }
}
