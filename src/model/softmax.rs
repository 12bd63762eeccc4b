//! Keras's `Softmax` layer over one axis of its input (the last one by default).

use crate::error::{Error, Result};
use crate::model::Activation;
use crate::model::channels::Axis;
use crate::model::dialect::{Format, Res, check_keys, unsupported};
use crate::model::layer::{Common, KerasLayer, Layer, Step, named_layer, yes};
use crate::model::shape::Shape;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `Softmax(axis=-1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftmaxSpec {
    pub name: String,
    #[serde(default)]
    pub axis: Axis,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl SoftmaxSpec {
    /// The axis as Keras numbers it (the batch axis 0, negative from the end), when it is one.
    fn single(&self) -> Option<i64> {
        match &self.axis {
            Axis::One(a) => Some(*a),
            Axis::List(a) if a.len() == 1 => Some(a[0]),
            Axis::List(_) => None,
        }
    }

    /// The dimension of `x [R, N, ...]` the softmax runs over, for Keras's axis `a` on input of
    /// `rank` per-sample dimensions; `None` for the batch axis or one outside the input.
    fn dim(a: i64, rank: usize) -> Option<usize> {
        let k = if a < 0 { rank as i64 + 1 + a } else { a };
        (1..=rank as i64).contains(&k).then_some(k as usize + 1)
    }
}

impl Layer for SoftmaxSpec {
    named_layer!("Softmax");

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        match self.single() {
            Some(a) if Self::dim(a, input.rank()).is_some() => Ok(input.clone()),
            _ => Err(Error::invalid(
                "shape",
                format!(
                    "axis {} is not one axis of input {input} (the batch axis 0 is not supported)",
                    self.axis.json()
                ),
            )),
        }
    }

    /// Ends the model as a softmax when it is over the last axis.
    fn activation(&self) -> Option<Activation> {
        (self.single() == Some(-1)).then_some(Activation::Softmax)
    }

    fn forward(&self, x: &Tensor, s: Step) -> Result<Tensor> {
        let rank = x.rank() - 2;
        let dim = self
            .single()
            .and_then(|a| Self::dim(a, rank))
            .ok_or_else(|| Error::invalid("Softmax axis", self.axis.json().to_string()))?;
        if dim == x.rank() - 1 && s.logits && self.activation().is_some() {
            return Ok(x.clone());
        }
        // candle's softmax_last_dim has no backward pass; this one (exp(x - max) / sum) does.
        Ok(candle_nn::ops::softmax(x, dim)?)
    }

    fn config(&self, _: Format) -> Value {
        serde_json::json!({"axis": self.axis.json()})
    }
}

impl KerasLayer for SoftmaxSpec {
    const CLASSES: &'static [&'static str] = &["Softmax"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        check_keys(c.class, cfg, &["axis"])?;
        let spec = SoftmaxSpec {
            name: c.name.clone(),
            axis: Axis::parse(c.class, cfg)?,
            trainable: c.trainable,
        };
        match spec.single() {
            Some(a) if a != 0 => Ok(spec),
            _ => unsupported(format!(
                "{} '{}' axis {} (one axis other than the batch axis)",
                c.class,
                c.name,
                spec.axis.json()
            )),
        }
    }
}
