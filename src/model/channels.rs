//! The channel axis of the per-channel layers (normalisations, Rescaling): an `axis` setting as a
//! Keras file gives it (`-1`, `3`, `[3]`), kept as given and checked against the input's rank, and
//! `Factor`, a scalar or per-channel constant of a config (Rescaling's scale, Normalization's mean)
//! as a tensor that broadcasts over a layer's input.

use crate::error::{Error, Result};
use crate::model::dialect::{Res, malformed, unsupported};
use crate::model::shape::Shape;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// An `axis` setting as the file wrote it: one integer, or a list of integers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Axis {
    One(i64),
    List(Vec<i64>),
}

impl Default for Axis {
    fn default() -> Self {
        Axis::One(-1)
    }
}

impl Axis {
    /// The `axis` of `cfg` (absent: -1). Anything but an integer or a list of integers is refused.
    pub(crate) fn parse(class: &str, cfg: &Value) -> Res<Axis> {
        match cfg.get("axis") {
            None => Ok(Axis::default()),
            Some(Value::Null) => unsupported(format!(
                "{class} axis null (one statistic over every axis; only the channel axis, -1)"
            )),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_i64())
                .collect::<Option<Vec<_>>>()
                .map(Axis::List)
                .map_or_else(
                    || malformed(format!("{class} axis {a:?} is not a list of integers")),
                    Ok,
                ),
            Some(v) => v.as_i64().map(Axis::One).map_or_else(
                || malformed(format!("{class} axis {v} is not an integer")),
                Ok,
            ),
        }
    }

    /// The `axis` of `cfg`, refused when it cannot be the channel axis of any input.
    pub(crate) fn channel(class: &str, cfg: &Value) -> Res<Axis> {
        let axis = Axis::parse(class, cfg)?;
        axis.check_config(class)?;
        Ok(axis)
    }

    /// The setting as the file wrote it.
    pub fn json(&self) -> Value {
        match self {
            Axis::One(a) => json!(a),
            Axis::List(a) => json!(a),
        }
    }

    /// Whether the setting is one axis that is the last of an input of `rank` per-sample
    /// dimensions (-1, or `rank` counting the batch axis as 0), checkable before the rank is known.
    fn single(&self) -> Option<i64> {
        match self {
            Axis::One(a) => Some(*a),
            Axis::List(a) if a.len() == 1 => Some(a[0]),
            Axis::List(_) => None,
        }
    }

    /// Refuses, when it is read, a setting that cannot be the channel axis of any input.
    fn check_config(&self, class: &str) -> Res<()> {
        match self.single() {
            Some(a) if a == -1 || a >= 1 => Ok(()),
            _ => unsupported(format!(
                "{class} axis {} (only the channel axis: -1, or the last axis of the input)",
                self.json()
            )),
        }
    }

    /// Checks that the setting names the last axis of `input` (an error naming the axis).
    pub(crate) fn check(&self, input: &Shape) -> Result<()> {
        let rank = input.rank() as i64;
        match self.single() {
            Some(a) if a == -1 || a == rank => Ok(()),
            _ => Err(Error::invalid(
                "shape",
                format!(
                    "axis {} is not the channel (last) axis of input {input}: only the last axis (-1 or {rank}) is supported",
                    self.json()
                ),
            )),
        }
    }
}

/// A constant of a layer's config: one number for every value, or one per channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Factor {
    Scalar(f64),
    Channels(Vec<f64>),
}

impl Factor {
    /// `cfg[key]`: a number or a list of numbers (`default` when absent or null; `None` for a
    /// required one that is absent).
    pub(crate) fn parse(
        class: &str,
        cfg: &Value,
        key: &str,
        default: Option<f64>,
    ) -> Res<Option<Factor>> {
        let bad = || {
            malformed(format!(
                "{class} '{key}' is not a number or a list of numbers"
            ))
        };
        match cfg.get(key) {
            None | Some(Value::Null) => Ok(default.map(Factor::Scalar)),
            Some(Value::Array(a)) => {
                let v: Option<Vec<f64>> = a.iter().map(Value::as_f64).collect();
                match v {
                    Some(v) if !v.is_empty() && v.iter().all(|x| x.is_finite()) => {
                        Ok(Some(Factor::Channels(v)))
                    }
                    _ => bad(),
                }
            }
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() => Ok(Some(Factor::Scalar(x))),
                _ => bad(),
            },
        }
    }

    /// The constant as a config writes it.
    pub fn json(&self) -> Value {
        match self {
            Factor::Scalar(v) => json!(v),
            Factor::Channels(v) => json!(v),
        }
    }

    /// Checks that a per-channel constant has one value per channel of `input` (or one value).
    pub(crate) fn check(&self, key: &str, input: &Shape) -> Result<()> {
        match self {
            Factor::Channels(v) if v.len() != 1 && v.len() != input.last() => Err(Error::invalid(
                "shape",
                format!(
                    "'{key}' has {} values, the input {input} has {} channels",
                    v.len(),
                    input.last()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The values, rounded to float32 first when `via_f32` (Keras converts a config's Python
    /// numbers to a float32 tensor before casting them to the layer's dtype).
    fn values(&self, via_f32: bool) -> Vec<f64> {
        let v = match self {
            Factor::Scalar(v) => vec![*v],
            Factor::Channels(v) => v.clone(),
        };
        if via_f32 {
            v.into_iter().map(|x| f64::from(x as f32)).collect()
        } else {
            v
        }
    }

    /// The constant as a tensor of `x`'s dtype that broadcasts against `x [R, N, ..., C]`.
    pub(crate) fn tensor(&self, x: &Tensor, via_f32: bool) -> Result<Tensor> {
        let v = self.values(via_f32);
        let mut shape = vec![1; x.rank()];
        shape[x.rank() - 1] = v.len();
        Ok(Tensor::new(v, x.device())?
            .to_dtype(x.dtype())?
            .reshape(shape)?)
    }
}

/// A stacked per-channel weight `w [R, C]` shaped `[R, 1, ..., 1, C]` to broadcast against
/// `x [R, N, ..., C]`.
pub(crate) fn per_channel(w: &Tensor, x: &Tensor) -> Result<Tensor> {
    let mut shape = vec![1; x.rank()];
    shape[0] = w.dim(0)?;
    shape[x.rank() - 1] = w.dim(w.rank() - 1)?;
    Ok(w.reshape(shape)?)
}
