//! Keras's `Normalization` preprocessing layer over the channel axis: `(x - mean) / max(sqrt(var),
//! 1e-7)` (or, with `invert`, `mean + x * max(sqrt(var), 1e-7)`), its mean and variance either the
//! non-trainable weights `adapt` leaves (`mean`, `variance` and the int64 `count`) or constants
//! given in the config.

use crate::error::Result;
use crate::model::Initializer;
use crate::model::channels::{Axis, Factor, per_channel};
use crate::model::dialect::{Format, Res, check_keys, flag, malformed};
use crate::model::layer::{Common, KerasLayer, Layer, Step, WeightSpec, named_layer, yes};
use crate::model::shape::Shape;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Keras's `backend.epsilon()`: the floor of the standard deviation.
const EPSILON: f64 = 1e-7;

/// `Normalization(axis=-1, mean=None, variance=None, invert=False)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalizationSpec {
    pub name: String,
    #[serde(default)]
    pub axis: Axis,
    pub invert: bool,
    /// The mean and variance given in the config; `None`: the layer's weights hold them.
    pub given: Option<(Factor, Factor)>,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl Layer for NormalizationSpec {
    named_layer!("Normalization");

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        self.axis.check(input)?;
        if let Some((m, v)) = &self.given {
            m.check("mean", input)?;
            v.check("variance", input)?;
        }
        Ok(input.clone())
    }

    /// Without a mean and variance in the config: the non-trainable `mean`, `variance` (one per
    /// channel) and `count` (a scalar).
    fn weights(&self, width: usize) -> Vec<WeightSpec> {
        if self.given.is_some() {
            return Vec::new();
        }
        let mut count = WeightSpec::vector("count", 1, false, &Initializer::Zeros);
        count.shape = Vec::new();
        vec![
            WeightSpec::vector("mean", width, false, &Initializer::Zeros),
            WeightSpec::vector("variance", width, false, &Initializer::Ones),
            count,
        ]
    }

    fn integer_weight(&self, weight: &str) -> bool {
        weight == "count"
    }

    fn forward(&self, x: &Tensor, s: Step) -> Result<Tensor> {
        let (mean, var) = match &self.given {
            Some((m, v)) => (m.tensor(x, true)?, v.tensor(x, true)?),
            None => (per_channel(&s.w[0], x)?, per_channel(&s.w[1], x)?),
        };
        let eps = Tensor::new(EPSILON, x.device())?
            .to_dtype(x.dtype())?
            .broadcast_as(var.shape())?;
        let std = var.sqrt()?.maximum(&eps)?;
        Ok(if self.invert {
            mean.broadcast_add(&x.broadcast_mul(&std)?)?
        } else {
            x.broadcast_sub(&mean)?.broadcast_div(&std)?
        })
    }

    fn config(&self, _: Format) -> Value {
        let (mean, variance) = match &self.given {
            Some((m, v)) => (m.json(), v.json()),
            None => (Value::Null, Value::Null),
        };
        json!({"axis": self.axis.json(), "invert": self.invert, "mean": mean, "variance": variance})
    }
}

impl KerasLayer for NormalizationSpec {
    const CLASSES: &'static [&'static str] = &["Normalization"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        let class = c.class;
        check_keys(class, cfg, &["axis", "invert", "mean", "variance"])?;
        let axis = Axis::channel(class, cfg)?;
        let mean = Factor::parse(class, cfg, "mean", None)?;
        let variance = Factor::parse(class, cfg, "variance", None)?;
        let given = match (mean, variance) {
            (None, None) => None,
            (Some(m), Some(v)) => {
                let len = |f: &Factor| match f {
                    Factor::Scalar(_) => 0,
                    Factor::Channels(c) => c.len(),
                };
                if len(&m) != len(&v) {
                    return malformed(format!(
                        "{class} '{}': 'mean' and 'variance' differ in shape",
                        c.name
                    ));
                }
                Some((m, v))
            }
            _ => {
                return malformed(format!(
                    "{class} '{}' gives only one of 'mean' and 'variance'",
                    c.name
                ));
            }
        };
        Ok(NormalizationSpec {
            name: c.name.clone(),
            axis,
            invert: flag(cfg, "invert", false),
            given,
            trainable: c.trainable,
        })
    }
}
