//! Keras's `Dropout` layer: the identity in inference; in training, each value is kept with
//! probability `1 - rate` and scaled by `1 / (1 - rate)` (inverted dropout), the masks drawn from the
//! fit's seeded streams, one per stacked member.

use crate::error::{Error, Result};
use crate::model::dialect::{Format, Res, check_keys, number, unsupported};
use crate::model::layer::{Common, KerasLayer, Layer, Mode, Step, named_layer, yes};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `Dropout(rate)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropoutSpec {
    pub name: String,
    /// The fraction of values dropped in training, in `[0, 1)`.
    pub rate: f64,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl Layer for DropoutSpec {
    named_layer!("Dropout");

    fn forward(&self, x: &Tensor, s: Step) -> Result<Tensor> {
        if s.f.mode == Mode::Inference || self.rate == 0.0 {
            return Ok(x.clone());
        }
        let rngs =
            s.f.rngs.as_deref_mut().ok_or_else(|| {
                Error::Internal("dropout in training without random streams".into())
            })?;
        let r = x.dim(0)?;
        let per_member = x.elem_count() / r.max(1);
        if rngs.len() != r {
            return Err(Error::Internal(format!(
                "{} dropout streams for {r} members",
                rngs.len()
            )));
        }
        // The scale in the model's dtype: float32 `1 / (1 - rate)` or the float64 one.
        let scale = if x.dtype() == candle_core::DType::F64 {
            1.0 / (1.0 - self.rate)
        } else {
            f64::from(1.0 / ((1.0 - self.rate) as f32))
        };
        let mut mask = Vec::with_capacity(r * per_member);
        for rng in rngs.iter_mut() {
            for _ in 0..per_member {
                mask.push(if rng.random_sample() < self.rate {
                    0.0
                } else {
                    scale
                });
            }
        }
        let mask = crate::model::values_tensor(mask, x.shape(), x.dtype(), x.device())?;
        Ok((x * mask)?)
    }

    fn config(&self, _: Format) -> Value {
        json!({"rate": self.rate, "noise_shape": null, "seed": null})
    }
}

impl KerasLayer for DropoutSpec {
    const CLASSES: &'static [&'static str] = &["Dropout"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        check_keys(c.class, cfg, &["rate", "seed"])?;
        let rate = number(c.class, cfg, "rate", 0.0)?;
        if !(0.0..1.0).contains(&rate) {
            return unsupported(format!("Dropout rate {rate} (expected 0 <= rate < 1)"));
        }
        Ok(DropoutSpec {
            name: c.name.clone(),
            rate,
            trainable: c.trainable,
        })
    }
}
