//! `GraphSpec`: how the layers of a Functional model are wired when they are not a single chain:
//! the model's inputs (each a flat tensor of its own width, in the order of Keras's `model.inputs`)
//! and, per layer, the tensors it is called on. The layers themselves stay in `ModelSpec::layers`,
//! in an order where every layer comes after what it reads, with the model's one output last.
//!
//! A model's data is one row of features per sample: input k takes the next `width` columns after
//! those of inputs 0..k, so a CSV (or any dataset) feeds a model of several inputs unchanged.

use crate::error::{Error, Result};
use crate::model::shape::Shape;
use serde::{Deserialize, Serialize};

/// Where a layer's input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// The model's input k.
    Input(usize),
    /// The output of layer i (an index into `ModelSpec::layers`).
    Layer(usize),
}

/// One input of the model: its Keras name and per-sample shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphInput {
    pub name: String,
    pub shape: Shape,
}

/// The wiring of a graph model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphSpec {
    /// The model's inputs, in the order of `model.inputs`.
    pub inputs: Vec<GraphInput>,
    /// Per layer, the tensors it is called on (one, or a merge's several).
    pub inbound: Vec<Vec<Source>>,
    /// Per layer, whether the file records its call with `training=False` (Keras 3 records a
    /// Dropout's default so). Kept to be written back; it does not change the computation: Keras
    /// 3.15's Functional call passes the model's own `training` to every layer over it, so `fit`
    /// trains such a layer as any other (measured; docs/architecture-graph.md). Empty means none.
    #[serde(default)]
    pub inference: Vec<bool>,
}

impl GraphSpec {
    /// The first column of input k in a row of features (the widths of the inputs before it).
    pub fn input_offset(&self, k: usize) -> usize {
        self.inputs[..k].iter().map(|i| i.shape.size()).sum()
    }

    /// Whether layer `i` is called with `training=False`.
    pub fn in_inference(&self, i: usize) -> bool {
        self.inference.get(i).copied().unwrap_or(false)
    }

    /// Which feature columns feed which input, 1-based: `a: columns 1-3, b: columns 4-5`.
    pub fn describe_inputs(&self) -> String {
        self.inputs
            .iter()
            .enumerate()
            .map(|(k, i)| {
                let (from, w) = (self.input_offset(k) + 1, i.shape.size());
                match w {
                    1 => format!("{}: column {from}", i.name),
                    _ => format!("{}: columns {from}-{}", i.name, from + w - 1),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Total features of a row: every input's width, in order.
    pub fn input_width(&self) -> usize {
        self.inputs.iter().map(|i| i.shape.size()).sum()
    }

    /// Checks the wiring of `n` layers: every layer reads something, only inputs and layers before
    /// it, and everything is read by a later layer except the last (the model's one output).
    pub fn check(&self, names: &[&str]) -> Result<()> {
        let n = names.len();
        if self.inbound.len() != n {
            return Err(Error::invalid(
                "model",
                format!(
                    "the graph wires {} layers, the model has {n}",
                    self.inbound.len()
                ),
            ));
        }
        if self.inputs.is_empty() {
            return Err(Error::invalid("model", "the graph has no input"));
        }
        let mut read = vec![false; n];
        let mut input_read = vec![false; self.inputs.len()];
        for (i, srcs) in self.inbound.iter().enumerate() {
            if srcs.is_empty() {
                return Err(Error::invalid(
                    "model",
                    format!("layer '{}' reads no tensor", names[i]),
                ));
            }
            for s in srcs {
                match *s {
                    Source::Input(k) if k < self.inputs.len() => input_read[k] = true,
                    Source::Layer(j) if j < i => read[j] = true,
                    _ => {
                        return Err(Error::invalid(
                            "model",
                            format!("layer '{}' reads a tensor not computed before it", names[i]),
                        ));
                    }
                }
            }
        }
        if let Some(j) = (0..n.saturating_sub(1)).find(|&j| !read[j]) {
            return Err(Error::invalid(
                "model",
                format!(
                    "layer '{}' leads nowhere: only models with one output are supported",
                    names[j]
                ),
            ));
        }
        if let Some(k) = input_read.iter().position(|r| !r) {
            return Err(Error::invalid(
                "model",
                format!("input '{}' is not used", self.inputs[k].name),
            ));
        }
        Ok(())
    }
}
