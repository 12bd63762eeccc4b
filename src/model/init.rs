//! Keras's weight initialisers, drawn from the project's own seeded generator (candle's CPU one
//! cannot be seeded).

use crate::model::FloatDtype;
use crate::rng::NumpyRandomState;
use serde::{Deserialize, Serialize};

/// A Keras initializer, by name and arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "class_name", content = "config")]
pub enum Initializer {
    /// U(-l, l), l = sqrt(6 / fan_in).
    HeUniform,
    /// U(-l, l), l = sqrt(6 / (fan_in + fan_out)).
    GlorotUniform,
    /// Truncated normal, stddev sqrt(2 / fan_in).
    HeNormal,
    /// Truncated normal, stddev sqrt(2 / (fan_in + fan_out)).
    GlorotNormal,
    /// U(minval, maxval).
    RandomUniform {
        minval: f64,
        maxval: f64,
    },
    /// N(mean, stddev).
    RandomNormal {
        mean: f64,
        stddev: f64,
    },
    Zeros,
    Ones,
    Constant {
        value: f64,
    },
    /// An initializer as Keras wrote it (`{"class_name": ..., "config": ...}`, or a bare name)
    /// that the tool does not hold in its own terms (VarianceScaling, Orthogonal, a seeded one,
    /// ...): kept as read so that a model written back carries it unchanged. `drawn_as` is what a
    /// fresh draw uses: the known class when only its `seed` was set (the tool draws from its own
    /// generator in any case), none when the tool cannot draw it as Keras does: drawing is then
    /// refused (`Initializer::check_drawable`).
    Keras {
        json: serde_json::Value,
        drawn_as: Option<Box<Initializer>>,
    },
}

impl Initializer {
    /// Keras's class name (`HeUniform`, `Zeros`, ...).
    pub fn keras_class(&self) -> &str {
        match self {
            Initializer::HeUniform => "HeUniform",
            Initializer::GlorotUniform => "GlorotUniform",
            Initializer::HeNormal => "HeNormal",
            Initializer::GlorotNormal => "GlorotNormal",
            Initializer::RandomUniform { .. } => "RandomUniform",
            Initializer::RandomNormal { .. } => "RandomNormal",
            Initializer::Zeros => "Zeros",
            Initializer::Ones => "Ones",
            Initializer::Constant { .. } => "Constant",
            Initializer::Keras { json, .. } => json
                .as_str()
                .or_else(|| json.get("class_name").and_then(serde_json::Value::as_str))
                .unwrap_or("Initializer"),
        }
    }

    /// Whether the tool can draw from this initializer exactly as Keras does; if not, an error
    /// naming the layer and the initializer (a model read with a VarianceScaling, Orthogonal or
    /// seeded initializer keeps it when written back, but a fresh draw from it is refused).
    pub fn check_drawable(&self, layer: &str) -> crate::error::Result<()> {
        match self {
            Initializer::Keras {
                json: v,
                drawn_as: None,
            } => Err(crate::error::Error::invalid(
                "initializer",
                format!(
                    "layer '{layer}' has the initializer {v}, which keras-transfer cannot draw from exactly as Keras does; keep the layer's stored weights instead of drawing fresh ones"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Draws `count` values for a weight of a layer with the given fans (a kernel is drawn
    /// row-major in Keras's `(fan_in, fan_out)` orientation, so `count = fan_in * fan_out`), each
    /// rounded to `dtype` (float32 values for a float32 model, the doubles for a float64 one).
    pub fn draw(
        &self,
        rng: &mut NumpyRandomState,
        fan_in: usize,
        fan_out: usize,
        count: usize,
        dtype: FloatDtype,
    ) -> Vec<f64> {
        let uniform = |rng: &mut NumpyRandomState, lo: f64, hi: f64| {
            (0..count)
                .map(|_| dtype.round(rng.uniform(lo, hi)))
                .collect()
        };
        let truncated = |rng: &mut NumpyRandomState, std: f64| {
            (0..count)
                .map(|_| {
                    loop {
                        let g = rng.gauss();
                        if g.abs() <= 2.0 {
                            break dtype.round(g * std);
                        }
                    }
                })
                .collect()
        };
        // Keras divides the normal variants' stddev by this constant so the truncated draw has the
        // intended variance.
        const TRUNC: f64 = 0.879_625_661_034_239_8;
        match *self {
            Initializer::HeUniform => {
                let l = (6.0 / fan_in as f64).sqrt();
                uniform(rng, -l, l)
            }
            Initializer::GlorotUniform => {
                let l = (6.0 / (fan_in + fan_out) as f64).sqrt();
                uniform(rng, -l, l)
            }
            Initializer::HeNormal => truncated(rng, (2.0 / fan_in as f64).sqrt() / TRUNC),
            Initializer::GlorotNormal => {
                truncated(rng, (2.0 / (fan_in + fan_out) as f64).sqrt() / TRUNC)
            }
            Initializer::RandomUniform { minval, maxval } => uniform(rng, minval, maxval),
            Initializer::RandomNormal { mean, stddev } => (0..count)
                .map(|_| dtype.round(rng.normal(mean, stddev)))
                .collect(),
            Initializer::Zeros => vec![0.0; count],
            Initializer::Ones => vec![1.0; count],
            Initializer::Constant { value } => vec![dtype.round(value); count],
            Initializer::Keras {
                drawn_as: Some(ref known),
                ..
            } => known.draw(rng, fan_in, fan_out, count, dtype),
            // Refused before any draw (`check_drawable`); zeros rather than a panic.
            Initializer::Keras { drawn_as: None, .. } => vec![0.0; count],
        }
    }
}
