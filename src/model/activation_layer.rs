//! Keras's weightless activation layers: `Activation(name)` and `LeakyReLU(negative_slope)`.

use crate::error::Result;
use crate::model::Activation;
use crate::model::activation::leaky_relu;
use crate::model::dialect::{Format, Res, check_keys, number, parse_activation};
use crate::model::layer::{Common, KerasLayer, Layer, Step, named_layer, yes};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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

    fn forward(&self, x: &Tensor, s: Step) -> Result<Tensor> {
        if s.logits {
            Ok(x.clone())
        } else {
            self.activation.apply(x)
        }
    }

    fn config(&self, _: Format) -> Value {
        json!({"activation": self.activation.keras_name()})
    }
}

impl KerasLayer for ActivationLayerSpec {
    const CLASSES: &'static [&'static str] = &["Activation"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        check_keys(c.class, cfg, &["activation"])?;
        Ok(ActivationLayerSpec {
            name: c.name.clone(),
            activation: parse_activation(cfg.get("activation"), c.keras2)?,
            trainable: c.trainable,
        })
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

    fn forward(&self, x: &Tensor, _: Step) -> Result<Tensor> {
        leaky_relu(x, self.negative_slope)
    }

    fn config(&self, format: Format) -> Value {
        match format {
            Format::Keras3 => json!({"negative_slope": self.negative_slope}),
            Format::Universal => json!({"alpha": self.negative_slope}),
        }
    }
}

impl KerasLayer for LeakyReluSpec {
    const CLASSES: &'static [&'static str] = &["LeakyReLU"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        check_keys(c.class, cfg, &["negative_slope", "alpha"])?;
        let slope = match cfg.get("negative_slope") {
            Some(v) if !v.is_null() => number(c.class, cfg, "negative_slope", 0.3)?,
            _ => number(c.class, cfg, "alpha", 0.3)?,
        };
        Ok(LeakyReluSpec {
            name: c.name.clone(),
            negative_slope: slope,
            trainable: c.trainable,
        })
    }
}
