//! The frozen base computed once: when a part of the graph that reads only the inputs is frozen and
//! runs as in inference (no trainable weight, no Dropout, no trainable BatchNormalization, no
//! activity regulariser), `fit` computes the tensors that part hands the rest (the "cut") once per
//! training row and trains the rest on them, bit for bit what recomputing them every batch gives.

use crate::error::Result;
use crate::model::{LayerSpec, Model, ModelSpec, Source};
use candle_core::Tensor;

/// Whether `fit` may compute the frozen base once (`Auto`) or recomputes it every batch (`Off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CachePolicy {
    #[default]
    Auto,
    Off,
}

/// Bytes the cached rows may take in memory; above it `fit` recomputes the base every batch.
/// `KERAS_TRANSFER_CACHE_BUDGET` (bytes) overrides it.
pub const DEFAULT_BUDGET: usize = 4 << 30;

/// The budget in force: `KERAS_TRANSFER_CACHE_BUDGET` when set to a number, else `DEFAULT_BUDGET`.
pub fn budget() -> usize {
    std::env::var("KERAS_TRANSFER_CACHE_BUDGET")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_BUDGET)
}

/// Which layers are computed once (`cached`) and which of their outputs the rest reads (`cut`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub cached: Vec<bool>,
    pub cut: Vec<usize>,
}

/// Whether layer `i` computes the same in fit's training mode as in inference, with weights the
/// optimizer never changes, and each row on its own.
fn frozen(spec: &ModelSpec, i: usize) -> bool {
    let l = &spec.layers[i];
    match l {
        LayerSpec::Dropout(_) => return false,
        LayerSpec::BatchNormalization(_) if l.trainable() => return false,
        LayerSpec::Dense(d) if d.activity_regularizer.is_some() => return false,
        _ => {}
    }
    !(l.trainable() && l.weights(spec.fan_in(i)).iter().any(|w| w.trainable))
}

/// The largest set of layers (never the output layer) that read only the inputs and frozen layers
/// and are frozen themselves, and the cut it hands the rest; `None` when there is none.
pub fn plan(spec: &ModelSpec) -> Option<Plan> {
    let n = spec.layers.len();
    let mut cached = vec![false; n];
    for i in 0..n.saturating_sub(1) {
        let reads_frozen = match &spec.graph {
            Some(g) => g.inbound[i].iter().all(|s| match *s {
                Source::Input(_) => true,
                Source::Layer(j) => cached[j],
            }),
            None => i == 0 || cached[i - 1],
        };
        cached[i] = reads_frozen && frozen(spec, i);
    }
    let mut read = vec![false; n];
    for i in (0..n).filter(|&i| !cached[i]) {
        match &spec.graph {
            Some(g) => {
                for s in &g.inbound[i] {
                    if let Source::Layer(j) = *s {
                        read[j] = true;
                    }
                }
            }
            None if i > 0 => read[i - 1] = true,
            None => {}
        }
    }
    let cut: Vec<usize> = (0..n).filter(|&j| cached[j] && read[j]).collect();
    (!cut.is_empty()).then_some(Plan { cached, cut })
}

/// The cut's tensors for every training row of a lone model, `[1, N, ...]` each.
pub struct FeatureCache {
    pub plan: Plan,
    rows: Vec<Tensor>,
}

impl FeatureCache {
    /// Computes the cut in inference mode over spans of rows; `span(lo, hi)` gives rows lo..hi as
    /// the model's input `[1, hi - lo, d]`. `None` when the rows would pass the memory budget.
    pub fn build(
        model: &Model,
        plan: Plan,
        n: usize,
        span_rows: usize,
        budget: usize,
        span: impl Fn(usize, usize) -> Result<Tensor>,
    ) -> Result<Option<Self>> {
        let mut parts: Vec<Vec<Tensor>> = vec![Vec::new(); plan.cut.len()];
        let mut bytes = 0usize;
        for lo in (0..n).step_by(span_rows.max(1)) {
            let hi = (lo + span_rows.max(1)).min(n);
            let x = span(lo, hi)?;
            let active: Vec<bool> = plan.cached.clone();
            let (outs, _) =
                model.run_layers(&x, &mut crate::model::Forward::inference(), &[], &active)?;
            for (p, &j) in parts.iter_mut().zip(&plan.cut) {
                let t = outs[j].clone().ok_or_else(|| {
                    crate::error::Error::Internal(format!("cut layer {j} was not run"))
                })?;
                bytes += t.elem_count() * t.dtype().size_in_bytes();
                p.push(t);
            }
            if hi > lo && bytes / hi * n > budget {
                return Ok(None);
            }
        }
        let rows = parts
            .iter()
            .map(|p| Tensor::cat(p, 1))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Some(FeatureCache { plan, rows }))
    }

    /// The cut for rows `rows`, as `Model::logits_from` takes it (one entry per layer).
    pub fn batch(&self, rows: &[usize]) -> Result<Vec<Option<Tensor>>> {
        let n = self.plan.cached.len();
        let mut given = vec![None; n];
        let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        let idx = Tensor::from_vec(idx, rows.len(), self.rows[0].device())?;
        for (t, &j) in self.rows.iter().zip(&self.plan.cut) {
            given[j] = Some(t.index_select(&idx, 1)?);
        }
        Ok(given)
    }
}
