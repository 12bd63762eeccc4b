//! The frozen base computed once: when a part of the graph that reads only the inputs is frozen and
//! runs as in inference (no trainable weight, no Dropout, no trainable BatchNormalization, no
//! activity regulariser), `fit` computes the tensors that part hands the rest (the "cut") once per
//! training row and trains the rest on them, bit for bit what recomputing them every batch gives.
//! The rows live in memory within a budget, past it in a temporary file mapped back (deleted when
//! the fit ends), past a second budget nowhere: the base is then recomputed every batch. The cache
//! lives for one fit only, computed from the weights and rows that fit trains on, so it is never
//! stale.

use crate::error::{Error, Result};
use crate::model::{LayerSpec, Model, ModelSpec, Source};
use candle_core::{DType, Tensor};
use std::os::unix::fs::FileExt;

/// Whether `fit` may compute the frozen base once (`Auto`: in memory, else on disk), keeps it on
/// disk whatever its size (`Disk`), or recomputes it every batch (`Off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CachePolicy {
    #[default]
    Auto,
    Disk,
    Off,
}

/// Bytes the cached rows may take in memory; above it they go to a temporary file.
/// `KERAS_TRANSFER_CACHE_BUDGET` (bytes) overrides it.
pub const DEFAULT_BUDGET: usize = 4 << 30;

/// Bytes the cached rows may take in a temporary file (in `std::env::temp_dir()`, `TMPDIR`); above
/// it `fit` recomputes the base every batch. `KERAS_TRANSFER_DISK_CACHE_BUDGET` overrides it.
pub const DEFAULT_DISK_BUDGET: usize = 64 << 30;

/// The memory budget in force: `KERAS_TRANSFER_CACHE_BUDGET` when set to a number, else
/// `DEFAULT_BUDGET`.
pub fn budget() -> usize {
    env_bytes("KERAS_TRANSFER_CACHE_BUDGET", DEFAULT_BUDGET)
}

/// The disk budget in force: `KERAS_TRANSFER_DISK_CACHE_BUDGET` when set to a number, else
/// `DEFAULT_DISK_BUDGET`.
pub fn disk_budget() -> usize {
    env_bytes("KERAS_TRANSFER_DISK_CACHE_BUDGET", DEFAULT_DISK_BUDGET)
}

fn env_bytes(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Which layers are computed once (`cached`) and which of their outputs the rest reads (`cut`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub cached: Vec<bool>,
    pub cut: Vec<usize>,
}

/// Whether layer `i` computes the same in fit's training mode as in inference, with weights the
/// optimizer never changes, and each row on its own.
fn frozen(spec: &ModelSpec, i: usize, fan_in: usize) -> bool {
    let l = &spec.layers[i];
    match l {
        LayerSpec::Dropout(_) => return false,
        LayerSpec::BatchNormalization(_) if l.trainable() => return false,
        LayerSpec::Dense(d) if d.activity_regularizer.is_some() => return false,
        _ => {}
    }
    !(l.trainable() && l.weights(fan_in).iter().any(|w| w.trainable))
}

impl Plan {
    /// Whether a layer computed every batch (one not cached) reads the model's inputs: when none
    /// does, a batch needs only the cached rows.
    pub fn reads_input(&self, spec: &ModelSpec) -> bool {
        (0..spec.layers.len())
            .filter(|&i| !self.cached[i])
            .any(|i| match &spec.graph {
                Some(g) => g.inbound[i].iter().any(|s| matches!(s, Source::Input(_))),
                None => i == 0,
            })
    }
}

/// The largest set of layers (never the output layer) that read only the inputs and frozen layers
/// and are frozen themselves, and the cut it hands the rest; `None` when there is none.
pub fn plan(spec: &ModelSpec) -> Option<Plan> {
    let fan_ins = spec.fan_ins();
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
        cached[i] = reads_frozen && frozen(spec, i, fan_ins[i]);
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
    rows: Rows,
}

/// Where the cut's rows are kept.
enum Rows {
    Memory(Vec<Tensor>),
    Disk(DiskRows),
}

/// The cut's rows in a temporary file (deleted when closed), mapped back: cut tensor `c`'s row `r`
/// at `parts[c].offset + r * parts[c].row_bytes`, as little-endian values.
struct DiskRows {
    map: memmap2::Mmap,
    parts: Vec<DiskPart>,
    device: candle_core::Device,
}

struct DiskPart {
    offset: usize,
    row_bytes: usize,
    /// A row's dimensions (after the batch axis).
    dims: Vec<usize>,
    dtype: DType,
}

/// The temporary file while it is written.
struct Spill {
    file: std::fs::File,
    parts: Vec<DiskPart>,
}

impl Spill {
    /// A file for `n` rows of each of `first`'s tensors (rows `0..hi` of each).
    fn create(first: &[Tensor], hi: usize, n: usize) -> Result<Self> {
        let dir = std::env::temp_dir();
        let file = tempfile::tempfile_in(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut parts = Vec::with_capacity(first.len());
        let mut offset = 0usize;
        for t in first {
            let dims = t.dims()[2..].to_vec();
            let row_bytes = t.elem_count() / hi.max(1) * t.dtype().size_in_bytes();
            parts.push(DiskPart {
                offset,
                row_bytes,
                dims,
                dtype: t.dtype(),
            });
            offset += row_bytes * n;
        }
        file.set_len(offset as u64)
            .map_err(|e| Error::io(&dir, e))?;
        Ok(Spill { file, parts })
    }

    /// Writes rows `lo..` of each cut tensor (`[1, rows, ...]`).
    fn write(&self, lo: usize, tensors: &[Tensor]) -> Result<()> {
        for (p, t) in self.parts.iter().zip(tensors) {
            let bytes: Vec<u8> = match t.dtype() {
                DType::F64 => t
                    .flatten_all()?
                    .to_vec1::<f64>()?
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
                _ => t
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()?
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            };
            self.file
                .write_all_at(&bytes, (p.offset + lo * p.row_bytes) as u64)
                .map_err(|e| Error::io(&std::env::temp_dir(), e))?;
        }
        Ok(())
    }

    fn finish(self, device: candle_core::Device) -> Result<DiskRows> {
        // SAFETY: the file is this process's own unnamed temporary file, written above and never
        // written again; nothing else can reach it to change it under the map.
        let map = unsafe { memmap2::Mmap::map(&self.file) }
            .map_err(|e| Error::io(&std::env::temp_dir(), e))?;
        Ok(DiskRows {
            map,
            parts: self.parts,
            device,
        })
    }
}

/// The cut's tensors for the rows of `x` (`[1, rows, d]`), in inference mode: the rows in chunks of
/// `chunk_rows`, run side by side on the model's pool, their outputs joined in row order (the same
/// bits whatever `chunk_rows` is: inference computes each row on its own).
pub fn cut_of(model: &Model, plan: &Plan, x: &Tensor, chunk_rows: usize) -> Result<Vec<Tensor>> {
    let rows = x.dim(1)?;
    let run = |lo: usize| -> Result<Vec<Tensor>> {
        let xc = x.narrow(1, lo, chunk_rows.min(rows - lo))?;
        let (outs, _) = model.run_layers(
            &xc,
            &mut crate::model::Forward::inference(),
            &[],
            &plan.cached,
            &plan.cut,
            true,
        )?;
        plan.cut
            .iter()
            .map(|&j| {
                outs[j]
                    .clone()
                    .ok_or_else(|| Error::Internal(format!("cut layer {j} was not run")))
            })
            .collect()
    };
    let starts: Vec<usize> = (0..rows).step_by(chunk_rows).collect();
    let parts: Vec<Vec<Tensor>> = if starts.len() < 2 {
        starts.into_iter().map(run).collect::<Result<_>>()?
    } else {
        use rayon::prelude::*;
        let go = || starts.into_par_iter().map(run).collect::<Result<_>>();
        match crate::model::wide::own_pool() {
            Some(pool) if rayon::current_thread_index().is_none() => pool.install(go)?,
            _ => go()?,
        }
    };
    (0..plan.cut.len())
        .map(|c| {
            let ts: Vec<Tensor> = parts.iter().map(|p| p[c].clone()).collect();
            Ok(Tensor::cat(&ts, 1)?)
        })
        .collect()
}

impl FeatureCache {
    /// Computes the cut in inference mode over spans of rows; `span(lo, hi)` gives rows lo..hi as
    /// the model's input `[1, hi - lo, d]`. The rows stay in memory while they fit in `budget`
    /// bytes (`Disk`: never), else go to a temporary file while they fit in `disk_budget`; `None`
    /// when they fit in neither (the caller recomputes).
    pub fn build(
        model: &Model,
        plan: Plan,
        n: usize,
        span_rows: usize,
        budgets: (usize, usize),
        policy: CachePolicy,
        span: impl Fn(usize, usize) -> Result<Tensor>,
    ) -> Result<Option<Self>> {
        let (budget, disk_budget) = budgets;
        let mut parts: Vec<Vec<Tensor>> = vec![Vec::new(); plan.cut.len()];
        let mut spill: Option<Spill> = None;
        let mut bytes = 0usize;
        // Inference computes each row on its own, so the rows may go through in any grouping with
        // the same bits: a span in chunks of `rows_at_once` (a few images) run side by side, as
        // `predict` runs them, rather than one wide pass whose activations overflow the caches.
        let chunk_rows = model.rows_at_once().max(1);
        let threads = crate::model::wide::own_pool().map_or(1, |p| p.current_num_threads());
        let step = span_rows.max(chunk_rows * threads).max(1);
        for lo in (0..n).step_by(step) {
            let hi = (lo + step).min(n);
            let x = span(lo, hi)?;
            let ts = cut_of(model, &plan, &x, chunk_rows)?;
            bytes += ts
                .iter()
                .map(|t| t.elem_count() * t.dtype().size_in_bytes())
                .sum::<usize>();
            let total = bytes / hi * n;
            if let Some(s) = &spill {
                s.write(lo, &ts)?;
                continue;
            }
            if total > budget || policy == CachePolicy::Disk {
                if total > disk_budget {
                    return Ok(None);
                }
                // Past the memory budget: what is computed so far, and the rest, to the file.
                let s = Spill::create(&ts, hi - lo, n)?;
                let mut at = 0;
                for k in 0..parts.first().map_or(0, Vec::len) {
                    let done: Vec<Tensor> = parts.iter().map(|p| p[k].clone()).collect();
                    s.write(at, &done)?;
                    at += done[0].dim(1)?;
                }
                s.write(lo, &ts)?;
                parts.clear();
                spill = Some(s);
                continue;
            }
            for (p, t) in parts.iter_mut().zip(ts) {
                p.push(t);
            }
        }
        let rows = match spill {
            Some(s) => Rows::Disk(s.finish(model.device().clone())?),
            None => Rows::Memory(
                parts
                    .iter()
                    .map(|p| Tensor::cat(p, 1))
                    .collect::<candle_core::Result<Vec<_>>>()?,
            ),
        };
        Ok(Some(FeatureCache { plan, rows }))
    }

    /// Whether the rows are kept in a temporary file.
    pub fn on_disk(&self) -> bool {
        matches!(self.rows, Rows::Disk(_))
    }

    /// The cut for rows `rows`, as `Model::logits_from` takes it (one entry per layer).
    pub fn batch(&self, rows: &[usize]) -> Result<Vec<Option<Tensor>>> {
        let n = self.plan.cached.len();
        let mut given = vec![None; n];
        match &self.rows {
            Rows::Memory(ts) => {
                let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
                let idx = Tensor::from_vec(idx, rows.len(), ts[0].device())?;
                for (t, &j) in ts.iter().zip(&self.plan.cut) {
                    given[j] = Some(t.index_select(&idx, 1)?);
                }
            }
            Rows::Disk(d) => {
                for (p, &j) in d.parts.iter().zip(&self.plan.cut) {
                    let mut shape = vec![1, rows.len()];
                    shape.extend(&p.dims);
                    let row = |r: usize| &d.map[p.offset + r * p.row_bytes..][..p.row_bytes];
                    let t = match p.dtype {
                        DType::F64 => Tensor::from_vec(
                            rows.iter()
                                .flat_map(|&r| row(r).chunks_exact(8))
                                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                                .collect::<Vec<f64>>(),
                            shape,
                            &d.device,
                        )?,
                        dt => Tensor::from_vec(
                            rows.iter()
                                .flat_map(|&r| row(r).chunks_exact(4))
                                .map(|b| f32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
                                .collect::<Vec<f32>>(),
                            shape,
                            &d.device,
                        )?
                        .to_dtype(dt)?,
                    };
                    given[j] = Some(t);
                }
            }
        }
        Ok(given)
    }
}
