//! Keras's `Dropout` layer: the identity in inference; in training, each value is kept with
//! probability `1 - rate` and scaled by `1 / (1 - rate)` (inverted dropout), the masks drawn from the
//! fit's seeded streams, one per stacked member.

use crate::error::{Error, Result};
use crate::model::layer::{Forward, Layer, Mode, named_layer, yes};
use candle_core::{Tensor, Var};
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

    fn forward(
        &self,
        x: &Tensor,
        _w: &[Tensor],
        _vars: &[Var],
        f: &mut Forward,
        _logits: bool,
    ) -> Result<Tensor> {
        if f.mode == Mode::Inference || self.rate == 0.0 {
            return Ok(x.clone());
        }
        let rngs = f
            .rngs
            .as_deref_mut()
            .ok_or_else(|| Error::Internal("dropout in training without random streams".into()))?;
        let (r, n, c) = x.dims3()?;
        if rngs.len() != r {
            return Err(Error::Internal(format!(
                "{} dropout streams for {r} members",
                rngs.len()
            )));
        }
        let keep = (1.0 - self.rate) as f32;
        let scale = 1.0 / keep;
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
        let mask = Tensor::from_vec(mask, (r, n, c), x.device())?;
        Ok((x * mask)?)
    }
}
