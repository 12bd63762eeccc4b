//! Keras's `Dropout` layer: the identity in inference; in training, each value is kept with
//! probability `1 - rate` and scaled by `1 / (1 - rate)` (inverted dropout), the masks drawn from the
//! fit's seeded streams, one per stacked member. With a `noise_shape`, one draw per mask position
//! (1 along the axes it sets to 1), broadcast over the rest. Keras's own random stream is not
//! reproduced (as for plain Dropout).

use crate::error::{Error, Result};
use crate::model::dialect::{ConfigError, Format, Res, check_keys, number, unsupported};
use crate::model::layer::{Common, KerasLayer, Layer, Mode, Step, named_layer, yes};
use crate::model::shape::Shape;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `Dropout(rate)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropoutSpec {
    pub name: String,
    /// The fraction of values dropped in training, in `[0, 1)`.
    pub rate: f64,
    /// Keras's `noise_shape` (batch axis first; `None` for an axis of the input's size): a mask
    /// dimension of 1 drops whole slices along that axis (EfficientNet's `(None, 1, 1, 1)`).
    #[serde(default)]
    pub noise_shape: Option<Vec<Option<usize>>>,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl DropoutSpec {
    /// `noise_shape` as a config writes it (null when the layer has none).
    fn noise_json(&self) -> Value {
        json!(self.noise_shape)
    }

    /// The shape of the mask for `x [R, N, ...]`: one value per stacked member, sample and position,
    /// 1 along the axes `noise_shape` sets to 1 (the batch axis included).
    fn mask_shape(&self, x: &Tensor) -> Result<Vec<usize>> {
        let mut dims = x.dims().to_vec();
        if let Some(ns) = &self.noise_shape {
            for (d, n) in dims[1..].iter_mut().zip(ns) {
                if *n == Some(1) {
                    *d = 1;
                }
            }
        }
        Ok(dims)
    }
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
        let mask_shape = self.mask_shape(x)?;
        let per_member = mask_shape.iter().skip(1).product::<usize>();
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
        let mask = crate::model::values_tensor(mask, mask_shape, x.dtype(), x.device())?;
        Ok(x.broadcast_mul(&mask)?)
    }

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        if let Some(ns) = &self.noise_shape {
            let fits = ns.len() == input.rank() + 1
                && ns[1..]
                    .iter()
                    .zip(input.dims())
                    .all(|(n, &d)| n.is_none_or(|n| n == 1 || n == d));
            if !fits {
                return Err(Error::invalid(
                    "shape",
                    format!(
                        "noise_shape {} does not broadcast over input {input}",
                        self.noise_json()
                    ),
                ));
            }
        }
        Ok(input.clone())
    }

    fn config(&self, _: Format) -> Value {
        json!({"rate": self.rate, "noise_shape": self.noise_json(), "seed": null})
    }
}

impl KerasLayer for DropoutSpec {
    const CLASSES: &'static [&'static str] = &["Dropout"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        check_keys(c.class, cfg, &["rate", "seed", "noise_shape"])?;
        let noise_shape = match cfg.get("noise_shape") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|v| match v {
                        Value::Null => Some(None),
                        v => v.as_u64().filter(|&d| d >= 1).map(|d| Some(d as usize)),
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        ConfigError::Malformed(format!(
                            "Dropout '{}' noise_shape {a:?} is not a list of sizes or nulls",
                            c.name
                        ))
                    })?,
            ),
            Some(v) => {
                return unsupported(format!("Dropout '{}' noise_shape {v}", c.name));
            }
        };
        let rate = number(c.class, cfg, "rate", 0.0)?;
        if !(0.0..1.0).contains(&rate) {
            return unsupported(format!("Dropout rate {rate} (expected 0 <= rate < 1)"));
        }
        Ok(DropoutSpec {
            name: c.name.clone(),
            rate,
            noise_shape,
            trainable: c.trainable,
        })
    }
}
