//! Keras's `Flatten` layer: each sample's values in row-major (channels-last) order, as one row.

use crate::error::Result;
use crate::model::dialect::{Format, Res, check_keys};
use crate::model::layer::{Common, KerasLayer, Layer, Step, named_layer, yes};
use crate::model::shape::Shape;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `Flatten()` (channels last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlattenSpec {
    pub name: String,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl Layer for FlattenSpec {
    named_layer!("Flatten");

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        Ok(Shape::flat(input.size()))
    }

    fn forward(&self, x: &Tensor, _: Step) -> Result<Tensor> {
        if x.rank() == 3 {
            return Ok(x.clone());
        }
        let (r, n) = (x.dim(0)?, x.dim(1)?);
        Ok(x.reshape((r, n, ()))?)
    }

    fn config(&self, _: Format) -> Value {
        json!({"data_format": "channels_last"})
    }
}

impl KerasLayer for FlattenSpec {
    const CLASSES: &'static [&'static str] = &["Flatten"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        check_keys(c.class, cfg, &["data_format"])?;
        if let Some(f) = cfg.get("data_format").and_then(Value::as_str)
            && f != "channels_last"
        {
            return crate::model::dialect::unsupported(format!(
                "Flatten data_format '{f}' (only channels_last)"
            ));
        }
        Ok(FlattenSpec {
            name: c.name.clone(),
            trainable: c.trainable,
        })
    }
}
