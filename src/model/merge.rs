//! Keras's merge layers (`Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`,
//! `Concatenate`): no weights, several inputs, one output. They only appear in a graph (`graph`),
//! which hands them all their inputs at once (`MergeSpec::merge`). Keras 3's operations on two
//! tensors (`inputs + x` in ConvNeXt's blocks, recorded as `keras.src.ops.numpy.Add`) are merges
//! too, flagged `op` so that they are written back as the operations they were
//! (`keras::layer_config::operation_entry`).

use crate::error::{Error, Result};
use crate::model::dialect::{ConfigError, Format, OPS_MODULE, Res, check_keys};
use crate::model::layer::{Common, KerasLayer, Layer, Step, named_layer, yes};
use crate::model::shape::Shape;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Which merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MergeKind {
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    Minimum,
    Concatenate,
}

impl MergeKind {
    /// Every merge, with Keras's class name.
    pub const ALL: [(MergeKind, &'static str); 7] = [
        (MergeKind::Add, "Add"),
        (MergeKind::Subtract, "Subtract"),
        (MergeKind::Multiply, "Multiply"),
        (MergeKind::Average, "Average"),
        (MergeKind::Maximum, "Maximum"),
        (MergeKind::Minimum, "Minimum"),
        (MergeKind::Concatenate, "Concatenate"),
    ];

    /// The Keras 3 operations on two tensors read as merges (`op`): `x + y`, `x - y`, `x * y`.
    pub const ON_TWO_TENSORS: [MergeKind; 3] =
        [MergeKind::Add, MergeKind::Subtract, MergeKind::Multiply];

    /// Keras's class name.
    pub fn class_name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("", |(_, n)| n)
    }

    /// The merge of Keras's class name.
    pub fn from_class(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(k, _)| *k)
    }
}

/// A merge layer: its kind, and for `Concatenate` the axis (Keras's, counting the batch as 0;
/// negative counts from the end).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeSpec {
    pub name: String,
    pub kind: MergeKind,
    #[serde(default = "last_axis")]
    pub axis: i64,
    #[serde(default = "yes")]
    pub trainable: bool,
    /// A Keras 3 operation on two tensors (`x + y`, module `keras.src.ops.numpy`), not a layer.
    #[serde(default)]
    pub op: bool,
}

fn last_axis() -> i64 {
    -1
}

impl MergeSpec {
    /// The output shape for inputs of `shapes`, or why they do not fit (naming the layer): the
    /// element-wise merges need shapes of one rank, equal or 1 in each dimension (broadcast as Keras
    /// broadcasts them), `Subtract` exactly two, `Concatenate` equal shapes but along its axis.
    pub fn merged_shape(&self, shapes: &[Shape]) -> Result<Shape> {
        let bad = |why: String| {
            Err(Error::invalid(
                "model",
                format!("{} layer '{}': {why}", self.kind.class_name(), self.name),
            ))
        };
        let list = || {
            shapes
                .iter()
                .map(Shape::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if shapes.len() < 2 && self.kind != MergeKind::Concatenate || shapes.is_empty() {
            return bad(format!(
                "merges {} inputs; at least 2 are needed",
                shapes.len()
            ));
        }
        if self.kind == MergeKind::Subtract && shapes.len() != 2 {
            return bad(format!(
                "subtracts {} inputs; exactly 2 are needed",
                shapes.len()
            ));
        }
        let first = &shapes[0];
        if self.kind != MergeKind::Concatenate {
            // Keras's element-wise merges broadcast inputs of one rank along dimensions of 1
            // (`_compute_elemwise_op_output_shape`): EfficientNet's (None, H, W, C) * (None, 1, 1, C).
            let mut out = first.dims().to_vec();
            for s in &shapes[1..] {
                if s.rank() != first.rank() {
                    return bad(format!("inputs of shapes {} have different ranks", list()));
                }
                for (o, &d) in out.iter_mut().zip(s.dims()) {
                    match (*o, d) {
                        (a, b) if a == b => {}
                        (1, b) => *o = b,
                        (_, 1) => {}
                        _ => return bad(format!("inputs of shapes {} do not match", list())),
                    }
                }
            }
            return Ok(Shape(out));
        }
        let axis = self.trailing_axis(first.rank())?;
        let mut out = first.dims().to_vec();
        out[axis] = 0;
        for s in shapes {
            let fits = s.rank() == first.rank()
                && s.dims()
                    .iter()
                    .zip(first.dims())
                    .enumerate()
                    .all(|(i, (a, b))| i == axis || a == b);
            if !fits {
                return bad(format!(
                    "inputs of shapes {} do not fit together along axis {}",
                    list(),
                    self.axis
                ));
            }
            out[axis] += s.dims()[axis];
        }
        Ok(Shape(out))
    }

    /// The concatenation axis among the per-sample dimensions (0-based, batch left out).
    fn trailing_axis(&self, rank: usize) -> Result<usize> {
        let a = if self.axis < 0 {
            rank as i64 + 1 + self.axis
        } else {
            self.axis
        };
        if a < 1 || a > rank as i64 {
            return Err(Error::invalid(
                "model",
                format!(
                    "Concatenate layer '{}': axis {} is outside the inputs' {} dimensions (the batch axis 0 cannot be joined)",
                    self.name,
                    self.axis,
                    rank + 1
                ),
            ));
        }
        Ok(a as usize - 1)
    }

    /// The merge of `xs` (`[R, N, ...]` each), as Keras computes it: sums, products, maxima and
    /// minima left to right, the average as that sum divided by the count.
    pub fn merge(&self, xs: &[Tensor]) -> Result<Tensor> {
        let (first, rest) = xs
            .split_first()
            .ok_or_else(|| Error::Internal(format!("merge '{}' got no inputs", self.name)))?;
        let fold = |f: &dyn Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>| -> Result<Tensor> {
            let mut acc = first.clone();
            for x in rest {
                acc = f(&acc, x)?;
            }
            Ok(acc)
        };
        Ok(match self.kind {
            MergeKind::Add => fold(&|a, b| a.broadcast_add(b))?,
            MergeKind::Subtract => fold(&|a, b| a.broadcast_sub(b))?,
            MergeKind::Multiply => fold(&|a, b| a.broadcast_mul(b))?,
            MergeKind::Maximum => fold(&|a, b| a.broadcast_maximum(b))?,
            MergeKind::Minimum => fold(&|a, b| a.broadcast_minimum(b))?,
            MergeKind::Average => {
                let sum = fold(&|a, b| a.broadcast_add(b))?;
                let n = Tensor::new(xs.len() as f64, sum.device())?.to_dtype(sum.dtype())?;
                sum.broadcast_div(&n)?
            }
            MergeKind::Concatenate => {
                // Stacked tensors carry the members first: per-sample axis k is tensor axis k + 2.
                let axis = self.trailing_axis(first.rank() - 2)? + 2;
                Tensor::cat(xs, axis)?
            }
        })
    }
}

/// The Keras class of a merge layer.
fn merge_class(m: &MergeSpec) -> &'static str {
    m.kind.class_name()
}

impl Layer for MergeSpec {
    named_layer!(by merge_class);

    /// A merge of one input (only a graph calls a merge, with all its inputs: `merge`).
    fn forward(&self, x: &Tensor, _: Step) -> Result<Tensor> {
        self.merge(std::slice::from_ref(x))
    }

    fn config(&self, _: Format) -> Value {
        match self.kind {
            MergeKind::Concatenate => json!({"axis": self.axis}),
            _ => json!({}),
        }
    }

    fn keras3_module(&self) -> Option<&'static str> {
        self.op.then_some(OPS_MODULE)
    }
}

impl KerasLayer for MergeSpec {
    const CLASSES: &'static [&'static str] = &[
        "Add",
        "Subtract",
        "Multiply",
        "Average",
        "Maximum",
        "Minimum",
        "Concatenate",
        "keras.src.ops.numpy.Add(tensors)",
        "keras.src.ops.numpy.Subtract(tensors)",
        "keras.src.ops.numpy.Multiply(tensors)",
    ];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        // `op_layer::ops_as_layers` names an operation on two tensors `<module>.<class>(tensors)`.
        let op_class = c
            .class
            .strip_prefix(OPS_MODULE)
            .and_then(|r| r.strip_prefix('.'))
            .and_then(|r| r.strip_suffix("(tensors)"));
        let kind = MergeKind::from_class(op_class.unwrap_or(c.class))
            .filter(|k| op_class.is_none() || MergeKind::ON_TWO_TENSORS.contains(k))
            .ok_or_else(|| ConfigError::Unsupported(format!("layer {}", c.class)))?;
        let axis = if kind == MergeKind::Concatenate {
            check_keys(c.class, cfg, &["axis"])?;
            match cfg.get("axis") {
                None | Some(Value::Null) => -1,
                Some(a) => a.as_i64().ok_or_else(|| {
                    ConfigError::Unsupported(format!("Concatenate axis {a} (an integer)"))
                })?,
            }
        } else {
            check_keys(c.class, cfg, &[])?;
            -1
        };
        Ok(MergeSpec {
            name: c.name.clone(),
            kind,
            axis,
            trainable: c.trainable,
            op: op_class.is_some(),
        })
    }
}
