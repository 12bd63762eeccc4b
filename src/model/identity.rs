//! Keras's `Identity` layer: its input, unchanged.

use crate::error::Result;
use crate::model::dialect::{Format, Res, check_keys};
use crate::model::layer::{Common, KerasLayer, Layer, Step, named_layer, yes};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `Identity()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentitySpec {
    pub name: String,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl Layer for IdentitySpec {
    named_layer!("Identity");

    fn forward(&self, x: &Tensor, _: Step) -> Result<Tensor> {
        Ok(x.clone())
    }

    fn config(&self, _: Format) -> Value {
        json!({})
    }
}

impl KerasLayer for IdentitySpec {
    const CLASSES: &'static [&'static str] = &["Identity"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        check_keys(c.class, cfg, &[])?;
        Ok(IdentitySpec {
            name: c.name.clone(),
            trainable: c.trainable,
        })
    }
}
