//! ConvNeXt's `LayerScale` (`keras.applications.convnext.LayerScale`): each channel multiplied by
//! its trainable `gamma`, initialised to `init_values`.

use crate::error::{Error, Result};
use crate::model::Initializer;
use crate::model::channels::per_channel;
use crate::model::dialect::{Format, Res, check_keys, malformed, number};
use crate::model::layer::{Common, KerasLayer, Layer, Step, WeightSpec, named_layer, yes};
use crate::model::shape::{MAX_UNITS, Shape};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `LayerScale(init_values, projection_dim)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerScaleSpec {
    pub name: String,
    pub init_values: f64,
    pub projection_dim: usize,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl Layer for LayerScaleSpec {
    named_layer!("LayerScale");

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        if input.last() != self.projection_dim {
            return Err(Error::invalid(
                "shape",
                format!(
                    "projection_dim {} is not the channels of input {input}",
                    self.projection_dim
                ),
            ));
        }
        Ok(input.clone())
    }

    /// `gamma`, one per channel.
    fn weights(&self, _: usize) -> Vec<WeightSpec> {
        let init = Initializer::Constant {
            value: self.init_values,
        };
        vec![WeightSpec::vector(
            "gamma",
            self.projection_dim,
            true,
            &init,
        )]
    }

    fn forward(&self, x: &Tensor, s: Step) -> Result<Tensor> {
        Ok(x.broadcast_mul(&per_channel(&s.w[0], x)?)?)
    }

    fn config(&self, _: Format) -> Value {
        json!({"init_values": self.init_values, "projection_dim": self.projection_dim})
    }

    fn keras3_module(&self) -> Option<&'static str> {
        Some("keras.src.applications.convnext")
    }
}

impl KerasLayer for LayerScaleSpec {
    const CLASSES: &'static [&'static str] = &["LayerScale"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        let class = c.class;
        check_keys(class, cfg, &["init_values", "projection_dim"])?;
        let dim = cfg
            .get("projection_dim")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        if !(1..=MAX_UNITS).contains(&dim) {
            return malformed(format!(
                "{class} '{}' projection_dim is not an integer in 1..={MAX_UNITS}",
                c.name
            ));
        }
        Ok(LayerScaleSpec {
            name: c.name.clone(),
            init_values: number(class, cfg, "init_values", 0.0)?,
            projection_dim: dim,
            trainable: c.trainable,
        })
    }
}
