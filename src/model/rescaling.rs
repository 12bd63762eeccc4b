//! Keras's `Rescaling` layer: `x * scale + offset`, each a number or one value per channel.

use crate::error::Result;
use crate::model::channels::Factor;
use crate::model::dialect::{Format, Res, check_keys, malformed};
use crate::model::layer::{Common, KerasLayer, Layer, Step, named_layer, yes};
use crate::model::shape::Shape;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `Rescaling(scale, offset=0.0)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RescalingSpec {
    pub name: String,
    pub scale: Factor,
    pub offset: Factor,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl Layer for RescalingSpec {
    named_layer!("Rescaling");

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        self.scale.check("scale", input)?;
        self.offset.check("offset", input)?;
        Ok(input.clone())
    }

    /// Keras casts the scale and the offset to the layer's dtype and computes `x * scale + offset`.
    fn forward(&self, x: &Tensor, _: Step) -> Result<Tensor> {
        let scale = self.scale.tensor(x, false)?;
        let offset = self.offset.tensor(x, false)?;
        Ok(x.broadcast_mul(&scale)?.broadcast_add(&offset)?)
    }

    fn config(&self, _: Format) -> Value {
        json!({"scale": self.scale.json(), "offset": self.offset.json()})
    }
}

impl KerasLayer for RescalingSpec {
    const CLASSES: &'static [&'static str] = &["Rescaling"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        check_keys(c.class, cfg, &["scale", "offset"])?;
        let Some(scale) = Factor::parse(c.class, cfg, "scale", None)? else {
            return malformed(format!("{} '{}' has no 'scale'", c.class, c.name));
        };
        let offset =
            Factor::parse(c.class, cfg, "offset", Some(0.0))?.unwrap_or(Factor::Scalar(0.0));
        Ok(RescalingSpec {
            name: c.name.clone(),
            scale,
            offset,
            trainable: c.trainable,
        })
    }
}
