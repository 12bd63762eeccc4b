//! Keras's `Dropout` layer: the identity in inference; in training, each value is kept with
//! probability `1 - rate` and scaled by `1 / (1 - rate)` (inverted dropout), the masks drawn from the
//! fit's seeded streams, one per stacked member.

use crate::error::{Error, Result};
use crate::model::layer::{Layer, Mode, Step, named_layer, yes};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

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
        let (r, n, c) = x.dims3()?;
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
        let mut mask = Vec::with_capacity(r * n * c);
        for rng in rngs.iter_mut() {
            for _ in 0..n * c {
                mask.push(if rng.random_sample() < self.rate {
                    0.0
                } else {
                    scale
                });
            }
        }
        let mask = crate::model::values_tensor(mask, (r, n, c), x.dtype(), x.device())?;
        Ok((x * mask)?)
    }
}
