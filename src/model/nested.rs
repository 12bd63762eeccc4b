//! `NestedSpec`: a Keras model used as a layer of another (`base(x, training=False)`, the transfer
//! learning guide's base), kept flattened: its layers sit in the outer `ModelSpec::layers` as one
//! contiguous run, wired in the outer graph (its first layers read what the nested model is called
//! on, the layers after it read its last layer). This record says which run belongs to which nested
//! model, so that `summary()` shows it as one row, freezing it freezes its layers, and files get
//! the nested structure (config and weight paths) Keras writes.
//!
//! A nested model may hold nested models of its own (ConvNeXt's stem and downsampling blocks are
//! Sequential models inside the Functional application, itself the base of the guide's model):
//! their runs lie inside its run, at most `MAX_DEPTH` levels deep. `ModelSpec::nested` lists every
//! level, sorted by `start`, an outer model before the models inside it (`parent` says which holds
//! which); `units` gives one level's entries of Keras's `model.layers`.

use crate::error::{Error, Result};
use crate::model::graph::Source;
use serde::{Deserialize, Serialize};

/// The most levels of models nested in one another that a model may have (a nested model is level
/// 1, a model inside it level 2, ...).
pub const MAX_DEPTH: usize = 8;

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

/// Whether nested model `j` holds nested model `k` (`j` before `k` in the list when both hold the
/// same layers: the list puts an outer model first).
pub fn contains(nested: &[NestedSpec], j: usize, k: usize) -> bool {
    let (a, b) = (&nested[j], &nested[k]);
    j != k && a.start <= b.start && b.end <= a.end && (a.end - a.start > b.end - b.start || j < k)
}

/// The nested model that directly holds nested model `k`, if any (else `k` is an entry of the
/// outer model's layers).
pub fn parent(nested: &[NestedSpec], k: usize) -> Option<usize> {
    (0..nested.len())
        .filter(|&j| contains(nested, j, k))
        .min_by_key(|&j| (nested[j].end - nested[j].start, std::cmp::Reverse(j)))
}

/// The nested models holding layer `i`, outermost first.
pub fn holders(nested: &[NestedSpec], i: usize) -> Vec<usize> {
    let mut out: Vec<usize> = (0..nested.len()).filter(|&k| nested[k].holds(i)).collect();
    out.sort_by_key(|&k| (std::cmp::Reverse(nested[k].end - nested[k].start), k));
    out
}

/// The units of a model of `n` flattened layers with these nested models (sorted by `start`, an
/// outer model first): the entries of the outer model's `model.layers`.
pub fn units(n: usize, nested: &[NestedSpec]) -> Vec<Unit> {
    units_in(n, nested, None)
}

/// The entries of `model.layers` of nested model `scope` (of the outer model for `None`): its own
/// layers, and the nested models it directly holds, each one unit.
pub fn units_in(n: usize, nested: &[NestedSpec], scope: Option<usize>) -> Vec<Unit> {
    let (from, to) = scope.map_or((0, n), |k| (nested[k].start, nested[k].end.min(n)));
    let mut out = Vec::with_capacity(to - from);
    let mut i = from;
    while i < to {
        let child = (0..nested.len())
            .find(|&k| nested[k].start == i && Some(k) != scope && parent(nested, k) == scope);
        match child {
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
/// chain): each a non-empty run inside the model, beside or inside another (listed by start, an
/// outer one first), at most `MAX_DEPTH` levels deep, its name used by no layer and no other nested
/// model; its layers read only each other and one tensor from outside (what it is called on), and
/// the layers after it read only its last layer.
pub fn check(nested: &[NestedSpec], names: &[&str], inbound: Option<&[Vec<Source>]>) -> Result<()> {
    let n = names.len();
    for (k, m) in nested.iter().enumerate() {
        if m.start >= m.end || m.end > n {
            return Err(Error::invalid(
                "model",
                format!(
                    "nested model '{}' holds layers {}..{} of {n}, not a run of its own",
                    m.name, m.start, m.end
                ),
            ));
        }
        // Runs are disjoint or one inside the other, listed by start, an outer one first.
        for (j, o) in nested[..k].iter().enumerate() {
            let disjoint = o.end <= m.start;
            if !(disjoint || contains(nested, j, k)) {
                return Err(Error::invalid(
                    "model",
                    format!(
                        "nested model '{}' holds layers {}..{} of {n}, not a run of its own beside or inside '{}'",
                        m.name, m.start, m.end, o.name
                    ),
                ));
            }
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
        if nested[..k].iter().any(|o| o.name == m.name) {
            return Err(Error::invalid(
                "model",
                format!("two nested models are named '{}'", m.name),
            ));
        }
        let mut depth = 1;
        let mut up = parent(nested, k);
        while let Some(p) = up {
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(Error::invalid(
                    "model",
                    format!(
                        "nested model '{}' lies more than {MAX_DEPTH} levels of nested models deep",
                        m.name
                    ),
                ));
            }
            up = parent(nested, p);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, class: &str, start: usize, end: usize) -> NestedSpec {
        NestedSpec {
            name: name.into(),
            class: class.into(),
            input_name: format!("{name}_input"),
            start,
            end,
            trainable: true,
            inference: false,
        }
    }

    /// ConvNeXt's shape: layer 0 outside, base = 1..9 holding stem = 2..4 and block = 6..8.
    fn convnext_like() -> Vec<NestedSpec> {
        vec![
            m("base", "Functional", 1, 9),
            m("stem", "Sequential", 2, 4),
            m("block", "Sequential", 6, 8),
        ]
    }

    #[test]
    fn each_level_lists_its_own_entries() {
        let n = convnext_like();
        assert_eq!(parent(&n, 0), None);
        assert_eq!(parent(&n, 1), Some(0));
        assert_eq!(parent(&n, 2), Some(0));
        assert_eq!(
            units(10, &n),
            [Unit::Layer(0), Unit::Nested(0), Unit::Layer(9)]
        );
        assert_eq!(
            units_in(10, &n, Some(0)),
            [
                Unit::Layer(1),
                Unit::Nested(1),
                Unit::Layer(4),
                Unit::Layer(5),
                Unit::Nested(2),
                Unit::Layer(8)
            ]
        );
        assert_eq!(units_in(10, &n, Some(1)), [Unit::Layer(2), Unit::Layer(3)]);
        assert_eq!(holders(&n, 3), [0, 1]);
        assert_eq!(holders(&n, 5), [0]);
        // A model holding exactly one nested model of the same run: the one listed first is outside.
        let same = vec![
            m("outer", "Sequential", 0, 2),
            m("inner", "Sequential", 0, 2),
        ];
        assert_eq!(parent(&same, 1), Some(0));
        assert_eq!(units(2, &same), [Unit::Nested(0)]);
        assert_eq!(units_in(2, &same, Some(0)), [Unit::Nested(1)]);
        assert_eq!(
            units_in(2, &same, Some(1)),
            [Unit::Layer(0), Unit::Layer(1)]
        );
    }

    #[test]
    fn runs_must_nest_or_stand_apart_and_stay_shallow() {
        let names: Vec<String> = (0..12).map(|i| format!("l{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert!(check(&convnext_like(), &names[..10], None).is_ok());
        // Overlapping without nesting.
        let bad = vec![m("a", "Sequential", 1, 5), m("b", "Sequential", 3, 7)];
        let e = check(&bad, &names[..10], None).unwrap_err().to_string();
        assert!(e.contains("'b'") && e.contains("'a'"), "{e}");
        // Inner listed before outer.
        let bad = vec![m("stem", "Sequential", 2, 4), m("base", "Functional", 1, 9)];
        assert!(check(&bad, &names[..10], None).is_err());
        // Two nested models of one name.
        let bad = vec![m("a", "Sequential", 1, 5), m("a", "Sequential", 2, 3)];
        let e = check(&bad, &names[..10], None).unwrap_err().to_string();
        assert!(e.contains("two nested models are named 'a'"), "{e}");
        // MAX_DEPTH levels pass, one more is refused.
        let deep = |levels: usize| -> Vec<NestedSpec> {
            (0..levels)
                .map(|k| m(&format!("n{k}"), "Sequential", 0, 12 - k))
                .collect()
        };
        assert!(check(&deep(MAX_DEPTH), &names, None).is_ok());
        let e = check(&deep(MAX_DEPTH + 1), &names, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("more than {MAX_DEPTH} levels")), "{e}");
    }
}
