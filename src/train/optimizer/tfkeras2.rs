//! tf.keras 2's optimizer layout (tf_keras 2.x's `optimizer.variables()`, what its `.h5`
//! `optimizer_weights` and its `.keras` `optimizer/vars` hold) mapped onto this tool's optimizer
//! state, which is Keras 3's layout (docs/architecture.md, *tf.keras 2's optimizer state*).
//!
//! tf.keras 2 saves `iteration:0` then its slots, each `add_variable_from_reference` group
//! interleaved per model variable as Keras 3 does, named `<optimizer>/<slot>/<layer>/<weight>:0`.
//! It keeps no learning-rate variable (the rate comes from the config), SGD always has its `m`
//! slots (unused without momentum), and Nadam saves no momentum-schedule product.

use super::kind::OptimizerKind;
use super::state::OptimizerState;

/// One model variable an optimizer is built on: its layer, its weight (`kernel`) and shape.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainableWeight {
    pub layer: String,
    pub weight: String,
    pub shape: Vec<usize>,
}

/// One variable of tf.keras 2's layout after `iteration:0`: slot `slot` of a model weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Tf2Slot {
    /// tf.keras 2's slot name (`m`, `v`, `vhat`, `velocity`, ...), the second component of the
    /// variable's name (`Adam/m/dense/kernel:0`).
    pub slot: &'static str,
    /// The model weight it tracks.
    pub of: TrainableWeight,
    /// The state variable of this tool it becomes (`dense_kernel_momentum`), `None` for one that
    /// plays no part in the update (SGD's `m` without momentum).
    pub keras3: Option<String>,
}

impl Tf2Slot {
    /// Why tf.keras 2's variable `name` is not this slot (`None` when it is): its slot component
    /// and its weight (`.../kernel:0`) must be this slot's.
    pub fn mismatch(&self, name: &str) -> Option<String> {
        let parts: Vec<&str> = name.split('/').collect();
        let leaf = format!("{}:0", self.of.weight);
        if parts.len() >= 4 && parts[1] == self.slot && parts.last() == Some(&leaf.as_str()) {
            return None;
        }
        Some(format!(
            "is not tf.keras 2's slot '{}' of {}/{} (expected '<optimizer>/{}/{}/{leaf}')",
            self.slot, self.of.layer, self.of.weight, self.slot, self.of.layer
        ))
    }
}

/// tf.keras 2's variables of optimizer `kind` after `iteration:0` once built on `weights`, in order.
pub(crate) fn layout(kind: &OptimizerKind, weights: &[TrainableWeight]) -> Vec<Tf2Slot> {
    let mut out = Vec::new();
    for group in kind.tfkeras2_slot_groups() {
        for w in weights {
            for &(slot, keras3) in &group {
                out.push(Tf2Slot {
                    slot,
                    of: w.clone(),
                    keras3: keras3.map(|s| format!("{}_{}_{s}", w.layer, w.weight)),
                });
            }
        }
    }
    out
}

/// The state of this tool (Keras 3's layout, `slot_variables` order) from tf.keras 2's saved
/// `iterations` and `values`, one per `layout` entry, with the learning-rate variable
/// `learning_rate` (tf.keras 2 saves none). Nadam's momentum-schedule product, which tf.keras 2
/// does not save, stays absent: `missing_for_continuing` names it.
pub(crate) fn state(
    kind: &OptimizerKind,
    learning_rate: Option<f64>,
    iterations: u64,
    layout: &[Tf2Slot],
    values: Vec<Vec<f64>>,
) -> OptimizerState {
    let mut by_name: std::collections::HashMap<String, Vec<f64>> = layout
        .iter()
        .zip(values)
        .filter_map(|(s, v)| s.keras3.clone().map(|n| (n, v)))
        .collect();
    let mut weights: Vec<(String, Vec<usize>)> = Vec::new();
    for s in layout {
        let w = (
            format!("{}_{}", s.of.layer, s.of.weight),
            s.of.shape.clone(),
        );
        if !weights.contains(&w) {
            weights.push(w);
        }
    }
    let variables = kind
        .slot_variables(&weights)
        .into_iter()
        .filter_map(|(name, _)| by_name.remove(&name).map(|v| (name, v)))
        .collect();
    OptimizerState {
        iterations,
        learning_rate,
        variables,
    }
}
