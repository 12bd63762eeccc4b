//! `MlpSpec`: a Sequential model of Dense layers described the way Keras describes it.

use crate::error::{Error, Result};
use crate::model::Initializer;
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

    /// True for the activations the fused Dense op computes itself (with TensorFlow's gradient);
    /// the others are applied with candle's own differentiable ops after a linear Dense.
    pub fn fused(self) -> bool {
        matches!(
            self,
            Activation::Relu | Activation::Tanh | Activation::Sigmoid | Activation::Linear
        )
    }

    /// Parses a Keras activation name.
    pub fn from_keras(name: &str) -> Option<Self> {
        Some(match name {
            "relu" => Activation::Relu,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "softmax" => Activation::Softmax,
            "linear" => Activation::Linear,
            "elu" => Activation::Elu,
            "selu" => Activation::Selu,
            "softplus" => Activation::Softplus,
            "softsign" => Activation::Softsign,
            "swish" | "silu" => Activation::Swish,
            "gelu" => Activation::Gelu,
            "exponential" => Activation::Exponential,
            _ => return None,
        })
    }
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Activation::from_keras(s).ok_or_else(|| {
            format!("unknown activation '{s}' (relu, tanh, sigmoid, softmax, linear, elu, selu, softplus, softsign, swish, gelu, exponential)")
        })
    }
}

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
    /// Keras's `trainable` flag as saved in the config (false for a layer that was frozen).
    #[serde(default = "yes")]
    pub trainable: bool,
}

fn yes() -> bool {
    true
}

/// A Sequential model: an input width and a stack of Dense layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpSpec {
    pub input_dim: usize,
    pub layers: Vec<DenseSpec>,
}

/// The largest width of a layer this tool accepts (guards allocations against absurd configs).
pub const MAX_UNITS: usize = 1 << 20;
/// The most parameters a model may have (64 Mi float32 values, 256 MiB).
pub const MAX_PARAMS: usize = 1 << 26;

/// The Keras auto-name of the `i`-th Dense layer: `dense`, `dense_1`, `dense_2`, ...
pub fn dense_name(i: usize) -> String {
    if i == 0 {
        "dense".to_string()
    } else {
        format!("dense_{i}")
    }
}

impl MlpSpec {
    /// A classifier: `input_dim -> hidden[i] (activations[i], he_uniform) -> n_classes (softmax,
    /// glorot_uniform)`, as the tutorial builds it. `activations` has one entry, applied to every hidden
    /// layer, or one per hidden layer.
    pub fn classifier(
        input_dim: usize,
        hidden: &[usize],
        activations: &[Activation],
        n_classes: usize,
    ) -> Result<Self> {
        if !hidden.is_empty() && activations.len() != 1 && activations.len() != hidden.len() {
            return Err(Error::invalid(
                "--activation",
                format!(
                    "give one activation or one per hidden layer ({}), got {}",
                    hidden.len(),
                    activations.len()
                ),
            ));
        }
        let mut layers = Vec::with_capacity(hidden.len() + 1);
        for (i, &units) in hidden.iter().enumerate() {
            let activation = activations
                .get(i)
                .or(activations.first())
                .copied()
                .unwrap_or(Activation::Relu);
            layers.push(DenseSpec {
                name: dense_name(i),
                units,
                activation,
                use_bias: true,
                kernel_initializer: Initializer::HeUniform,
                bias_initializer: Initializer::Zeros,
                trainable: true,
            });
        }
        layers.push(DenseSpec {
            name: dense_name(hidden.len()),
            units: n_classes,
            activation: Activation::Softmax,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            trainable: true,
        });
        let spec = MlpSpec { input_dim, layers };
        spec.validate()?;
        Ok(spec)
    }

    /// The tutorial's model: 2 -> Dense(5, relu) -> Dense(5, relu) -> Dense(3, softmax).
    pub fn tutorial() -> Self {
        Self::classifier(2, &[5, 5], &[Activation::Relu], 3).expect("the tutorial model is valid")
    }

    /// Checks widths and names: at least one layer, every width in 1..=MAX_UNITS, unique layer names.
    pub fn validate(&self) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::invalid("model", "has no Dense layers"));
        }
        if self.input_dim == 0 || self.input_dim > MAX_UNITS {
            return Err(Error::invalid(
                "model",
                format!("input width {} is outside 1..={MAX_UNITS}", self.input_dim),
            ));
        }
        for (i, l) in self.layers.iter().enumerate() {
            if l.units == 0 || l.units > MAX_UNITS {
                return Err(Error::invalid(
                    "model",
                    format!(
                        "layer '{}' has {} units, outside 1..={MAX_UNITS}",
                        l.name, l.units
                    ),
                ));
            }
            if l.name.is_empty()
                || l.name.contains('/')
                || self.layers[..i].iter().any(|o| o.name == l.name)
            {
                return Err(Error::invalid(
                    "model",
                    format!(
                        "layer name '{}' is empty, holds '/', or is repeated",
                        l.name
                    ),
                ));
            }
        }
        let total: usize = (0..self.layers.len()).map(|i| self.param_count(i)).sum();
        if total > MAX_PARAMS {
            return Err(Error::invalid(
                "model",
                format!("{total} parameters is more than this tool's limit of {MAX_PARAMS}"),
            ));
        }
        Ok(())
    }

    /// The input width of layer `i`.
    pub fn fan_in(&self, i: usize) -> usize {
        if i == 0 {
            self.input_dim
        } else {
            self.layers[i - 1].units
        }
    }

    /// The width of the model's output.
    pub fn output_dim(&self) -> usize {
        self.layers.last().map(|l| l.units).unwrap_or(0)
    }

    /// Parameter count of layer `i` (kernel plus bias).
    pub fn param_count(&self, i: usize) -> usize {
        let l = &self.layers[i];
        self.fan_in(i) * l.units + if l.use_bias { l.units } else { 0 }
    }

    /// A fresh layer name that no layer uses yet (`dense_N` for the smallest free N).
    pub fn fresh_name(&self) -> String {
        (0..)
            .map(dense_name)
            .find(|n| self.layers.iter().all(|l| &l.name != n))
            .unwrap_or_default()
    }
}
