//! `NestedSpec`: a Keras model used as a layer of another (`base(x, training=False)`, the transfer
//! learning guide's base), kept flattened: its layers sit in the outer `ModelSpec::layers` as one
//! contiguous run, wired in the outer graph (its first layers read what the nested model is called
//! on, the layers after it read its last layer). This record says which run belongs to which nested
//! model, so that `summary()` shows it as one row, freezing it freezes its layers, and files get
//! the nested structure (config and weight paths) Keras writes.

use crate::error::{Error, Result};
use crate::model::graph::Source;
use serde::{Deserialize, Serialize};

/// One nested model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NestedSpec {
    /// The nested model's name (its row in `summary()`, its entry in the outer config).
    pub name: String,
    /// `Sequential` or `Functional`: the class the file gives it.
    pub class: String,
    /// The name of its own InputLayer.
    pub input_name: String,
    /// Its layers: `ModelSpec::layers[start..end]`, the last one its output.
    pub start: usize,
    pub end: usize,
    /// Keras's `trainable` flag of the nested model; false freezes every layer in it.
    pub trainable: bool,
    /// Whether the outer model calls it with `training=False` (kept to be written back; Keras 3.15
    /// passes the outer model's own `training` through it all the same, as for a plain layer).
    #[serde(default)]
    pub inference: bool,
}

impl NestedSpec {
    /// Whether layer `i` of the flattened model belongs to this nested model.
    pub fn holds(&self, i: usize) -> bool {
        (self.start..self.end).contains(&i)
    }

    /// Whether the file calls it a Functional model (else Sequential).
    pub fn functional(&self) -> bool {
        self.class == "Functional"
    }
}

/// One entry of Keras's `model.layers` (InputLayers aside): a plain layer (its index in the
/// flattened `ModelSpec::layers`) or a nested model (its index in `ModelSpec::nested`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Layer(usize),
    Nested(usize),
}

/// The units of a model of `n` flattened layers with these nested models (sorted by `start`).
pub fn units(n: usize, nested: &[NestedSpec]) -> Vec<Unit> {
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        match nested.iter().position(|m| m.start == i) {
            Some(k) => {
                out.push(Unit::Nested(k));
                i = nested[k].end.max(i + 1);
            }
            None => {
                out.push(Unit::Layer(i));
                i += 1;
            }
        }
    }
    out
}

/// Checks the nested models of a model of layers named `names` wired by `inbound` (`None` for a
/// chain): each a non-empty run inside the model, not overlapping another, its name used by no
/// layer; its layers read only each other and one tensor from outside (what it is called on), and
/// the layers after it read only its last layer.
pub fn check(nested: &[NestedSpec], names: &[&str], inbound: Option<&[Vec<Source>]>) -> Result<()> {
    let n = names.len();
    let mut end = 0;
    for m in nested {
        if m.start < end || m.start >= m.end || m.end > n {
            return Err(Error::invalid(
                "model",
                format!(
                    "nested model '{}' holds layers {}..{} of {n}, not a run of its own",
                    m.name, m.start, m.end
                ),
            ));
        }
        if m.class != "Sequential" && m.class != "Functional" {
            return Err(Error::invalid(
                "model",
                format!("nested model '{}' has class '{}'", m.name, m.class),
            ));
        }
        if m.name.is_empty() || m.name.contains('/') || names.contains(&m.name.as_str()) {
            return Err(Error::invalid(
                "model",
                format!(
                    "nested model name '{}' is empty, holds '/', or is a layer's name",
                    m.name
                ),
            ));
        }
        end = m.end;
        let Some(inbound) = inbound else { continue };
        let mut outside: Option<Source> = None;
        for (i, srcs) in inbound.iter().enumerate() {
            for &s in srcs {
                let inner = matches!(s, Source::Layer(j) if m.holds(j));
                let ok = if m.holds(i) {
                    inner || outside.replace(s).is_none_or(|o| o == s)
                } else {
                    !inner || s == Source::Layer(m.end - 1)
                };
                if !ok {
                    return Err(Error::invalid(
                        "model",
                        format!(
                            "layer '{}' is wired across nested model '{}': a nested model reads one tensor and only its output is read",
                            names.get(i).copied().unwrap_or("?"),
                            m.name
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
