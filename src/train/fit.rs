//! `fit` and `evaluate` with Keras 3's semantics (docs/keras-training.md): float32, batches in order
//! after a seeded per-epoch shuffle, the mean loss of each batch, the optimizer's step, running-mean
//! history. One loop serves a lone model and R stacked members alike.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{Forward, Mode, Model};
use crate::rng::NumpyRandomState;
use crate::train::{History, Loss, OptimizerSpec};
use candle_core::{D, Tensor};

/// How to train: Keras's `compile(optimizer, loss)` plus `fit(epochs, batch_size, shuffle)`. Which
/// layers train is the model's own business (their `trainable` flags).
#[derive(Debug, Clone, PartialEq)]
pub struct FitConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Shuffle the training rows before each epoch (Keras's default).
    pub shuffle: bool,
    pub optimizer: OptimizerSpec,
    pub loss: Loss,
}

impl Default for FitConfig {
    /// The tutorial's settings: 100 epochs, batches of 32, shuffled, SGD 0.01, categorical cross-entropy.
    fn default() -> Self {
        Self {
            epochs: 100,
            batch_size: 32,
            shuffle: true,
            optimizer: OptimizerSpec::default(),
            loss: Loss::default(),
        }
    }
}

impl FitConfig {
    /// Checks batch size, epochs and the optimizer's settings.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::invalid("--batch-size", "must be at least 1"));
        }
        if self.epochs == 0 {
            return Err(Error::invalid("--epochs", "must be at least 1"));
        }
        self.optimizer.validate()
    }
}

/// Member m's dropout masks come from `NumpyRandomState(seeds[m] ^ DROPOUT_STREAM)`.
pub const DROPOUT_STREAM: u32 = 0x5eed_d0d0;

/// A batch loss above this means training has blown up: cross-entropy that high needs logits
/// thousands apart, which no sound fit reaches. Together with NaN and infinity it stops training.
pub const DIVERGED_LOSS: f32 = 1e4;

/// Stops training (like Keras's `TerminateOnNaN`, and also on an exploded loss) at 1-based `epoch`.
pub(crate) fn check_loss(epoch: usize, loss: f32) -> Result<()> {
    if loss.is_finite() && loss <= DIVERGED_LOSS {
        Ok(())
    } else {
        Err(Error::Diverged { epoch, loss })
    }
}

/// Loss and accuracy as Keras's `evaluate` reports them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub loss: f32,
    pub accuracy: f32,
}

/// The index of the first largest value (numpy's and TensorFlow's `argmax`).
pub(crate) fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Keras's `Mean` metric: a float32 running total and count.
#[derive(Default, Clone, Copy)]
struct RunningMean {
    total: f32,
    count: f32,
}

impl RunningMean {
    fn add(&mut self, value_sum: f32, n: usize) {
        self.total += value_sum;
        self.count += n as f32;
    }
    fn result(&self) -> f32 {
        if self.count == 0.0 {
            0.0
        } else {
            self.total / self.count
        }
    }
}

/// A dataset checked against a model, as float32 rows ready to gather into batches.
struct Prepared<'a> {
    x: Vec<f32>,
    labels: &'a [usize],
    d: usize,
    k: usize,
}

impl<'a> Prepared<'a> {
    fn new(model: &Model, data: &'a Dataset) -> Result<Self> {
        let spec = model.spec();
        if data.n_features != spec.input_dim {
            return Err(Error::Mismatch(format!(
                "the data has {} features but the model takes {} inputs",
                data.n_features, spec.input_dim
            )));
        }
        if data.n_classes > spec.output_dim() {
            return Err(Error::Mismatch(format!(
                "the data has {} classes but the model has {} outputs (use --new-head to replace the output layer)",
                data.n_classes,
                spec.output_dim()
            )));
        }
        Ok(Self {
            x: data.features_f32(),
            labels: &data.labels,
            d: data.n_features,
            k: spec.output_dim(),
        })
    }

    /// Inputs `[R, b, d]` and one-hot targets `[R, b, k]`: member m gets rows `rows(m)`.
    fn batch<'r>(
        &self,
        model: &Model,
        b: usize,
        rows: impl Fn(usize) -> &'r [usize],
    ) -> Result<(Tensor, Tensor)> {
        let r = model.members();
        let mut xb = Vec::with_capacity(r * b * self.d);
        let mut tb = vec![0f32; r * b * self.k];
        for m in 0..r {
            for (j, &row) in rows(m).iter().enumerate() {
                xb.extend_from_slice(&self.x[row * self.d..(row + 1) * self.d]);
                tb[(m * b + j) * self.k + self.labels[row]] = 1.0;
            }
        }
        let dev = model.device();
        Ok((
            Tensor::from_vec(xb, (r, b, self.d), dev)?,
            Tensor::from_vec(tb, (r, b, self.k), dev)?,
        ))
    }
}

/// Per member: the loss values of `losses [R]` and the number of rows whose arg-max logit is the true
/// class.
fn batch_metrics<'r>(
    logits: &Tensor,
    losses: &Tensor,
    labels: &[usize],
    rows: impl Fn(usize) -> &'r [usize],
) -> Result<(Vec<f32>, Vec<usize>)> {
    let k = logits.dim(D::Minus1)?;
    let b = logits.dim(1)?;
    let v = logits.flatten_all()?.to_vec1::<f32>()?;
    let hits = v
        .chunks(b * k)
        .enumerate()
        .map(|(m, member)| {
            member
                .chunks(k)
                .zip(rows(m))
                .filter(|(row, r)| argmax(row) == labels[**r])
                .count()
        })
        .collect();
    Ok((losses.to_vec1::<f32>()?, hits))
}

/// Trains every member of `model` in place on `train` as Keras's `fit` would train it alone, member m
/// shuffling with `NumpyRandomState(seeds[m])`, validating on `val` after each epoch when given.
/// Only the variables of trainable layers are handed to the optimizer. Returns each member's history.
pub fn fit(
    model: &Model,
    train: &Dataset,
    val: Option<&Dataset>,
    cfg: &FitConfig,
    seeds: &[u32],
) -> Result<Vec<History>> {
    cfg.validate()?;
    let r = model.members();
    if seeds.len() != r {
        return Err(Error::invalid(
            "seeds",
            format!("{} seeds for {r} members", seeds.len()),
        ));
    }
    let data = Prepared::new(model, train)?;
    let val = val.map(|v| Prepared::new(model, v)).transpose()?;
    let output = model.spec().output_activation();
    let mut opt = cfg.optimizer.build(model.trainable_vars())?;
    let mut rngs: Vec<NumpyRandomState> = seeds.iter().map(|&s| NumpyRandomState::new(s)).collect();
    // Dropout masks come from streams of their own, so that the shuffle order does not depend on
    // whether the model has dropout.
    let mut dropout: Vec<NumpyRandomState> = seeds
        .iter()
        .map(|&s| NumpyRandomState::new(s ^ DROPOUT_STREAM))
        .collect();
    let n = train.len();
    let mut orders: Vec<Vec<usize>> = vec![(0..n).collect(); r];
    let mut histories = vec![History::default(); r];
    for epoch in 0..cfg.epochs {
        if cfg.shuffle {
            for (o, rng) in orders.iter_mut().zip(&mut rngs) {
                *o = rng.permutation(n);
            }
        }
        let mut loss = vec![RunningMean::default(); r];
        let mut acc = vec![RunningMean::default(); r];
        for start in (0..n).step_by(cfg.batch_size) {
            let end = (start + cfg.batch_size).min(n);
            let b = end - start;
            let rows = |m: usize| &orders[m][start..end];
            let (xb, tb) = data.batch(model, b, rows)?;
            let mut f = Forward {
                mode: Mode::Training,
                rngs: Some(&mut dropout),
            };
            let logits = model.logits(&xb, &mut f)?;
            let losses = cfg.loss.batch_losses(&logits, output, &tb)?;
            let (lv, hits) = batch_metrics(&logits, &losses, data.labels, rows)?;
            for m in 0..r {
                check_loss(epoch + 1, lv[m])?;
                loss[m].add(lv[m] * b as f32, b);
                acc[m].add(hits[m] as f32, b);
            }
            opt.backward_step(&losses)?;
        }
        for m in 0..r {
            histories[m].loss.push(loss[m].result());
            histories[m].accuracy.push(acc[m].result());
        }
        if let Some(v) = &val {
            for (h, s) in histories.iter_mut().zip(score(model, v, cfg)?) {
                h.val_loss.push(s.loss);
                h.val_accuracy.push(s.accuracy);
            }
        }
    }
    Ok(histories)
}

/// Rows `score` sends through the model at once (rounded down to whole batches): large enough for the
/// wide kernels to use every core, small enough to keep the activations small.
const SCORE_ROWS: usize = 4096;

/// Loss and accuracy of every member over `data`, in batches as Keras's `evaluate` goes: the mean loss
/// of each batch, averaged over the batches weighted by their sizes. The forward pass runs over spans
/// of many batches (each row's outputs do not depend on the rows around it), and the loss of every
/// batch of a span comes from one call, the span's logits reshaped to one "member" per batch.
fn score(model: &Model, data: &Prepared, cfg: &FitConfig) -> Result<Vec<Score>> {
    let r = model.members();
    let output = model.spec().output_activation();
    let (mut loss, mut acc) = (
        vec![RunningMean::default(); r],
        vec![RunningMean::default(); r],
    );
    let b = cfg.batch_size;
    let k = data.k;
    let all: Vec<usize> = (0..data.labels.len()).collect();
    for span in all.chunks((SCORE_ROWS / b).max(1) * b) {
        let (xs, ts) = data.batch(model, span.len(), |_| span)?;
        let logits = model.logits(&xs, &mut Forward::inference())?;
        // The span's whole batches, then its last, shorter batch (only the data's last span has one).
        let whole = span.len() / b * b;
        for (first, len, size) in [
            (0, whole, b),
            (whole, span.len() - whole, span.len() - whole),
        ] {
            if len == 0 {
                continue;
            }
            let nb = len / size;
            let part = |t: &Tensor| -> Result<Tensor> {
                Ok(t.narrow(1, first, len)?
                    .contiguous()?
                    .reshape((r * nb, size, k))?)
            };
            let lp = part(&logits)?;
            let lv = cfg
                .loss
                .batch_losses(&lp, output, &part(&ts)?)?
                .to_vec1::<f32>()?;
            let values = lp.flatten_all()?.to_vec1::<f32>()?;
            for (j, (row_values, lm)) in values.chunks(size * k).zip(&lv).enumerate() {
                let (m, batch) = (j / nb, j % nb);
                let rows = &span[first + batch * size..][..size];
                let hits = row_values
                    .chunks(k)
                    .zip(rows)
                    .filter(|(v, row)| argmax(v) == data.labels[**row])
                    .count();
                loss[m].add(lm * size as f32, size);
                acc[m].add(hits as f32, size);
            }
        }
    }
    Ok(loss
        .iter()
        .zip(&acc)
        .map(|(l, a)| Score {
            loss: l.result(),
            accuracy: a.result(),
        })
        .collect())
}

/// `model.evaluate(x, y, batch_size)` for every member: the loss and accuracy over `data` with the
/// current weights.
pub fn evaluate(
    model: &Model,
    data: &Dataset,
    batch_size: usize,
    loss: Loss,
) -> Result<Vec<Score>> {
    if batch_size == 0 {
        return Err(Error::invalid("--batch-size", "must be at least 1"));
    }
    let cfg = FitConfig {
        batch_size,
        loss,
        ..FitConfig::default()
    };
    score(model, &Prepared::new(model, data)?, &cfg)
}
