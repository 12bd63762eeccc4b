//! `fit` and `evaluate` with Keras 3's semantics (FACTS.md §3): float32, batches in order after a
//! seeded per-epoch shuffle, the mean loss of each batch, `w -= lr * g`, running-mean history.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{Activation, Mlp};
use crate::rng::NumpyRandomState;
use crate::train::History;
use candle_core::{D, Device, Tensor};
use candle_nn::{Optimizer, SGD};

/// How to train: Keras's `compile(optimizer=SGD(lr))` plus `fit(epochs, batch_size, shuffle)`, and
/// which layers are frozen.
#[derive(Debug, Clone, PartialEq)]
pub struct FitConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// The SGD learning rate, a float32 as in Keras.
    pub lr: f32,
    /// Shuffle the training rows before each epoch (Keras's default).
    pub shuffle: bool,
    /// Seed of the shuffle order.
    pub seed: u32,
    /// The first `frozen` Dense layers are not trained.
    pub frozen: usize,
}

impl Default for FitConfig {
    fn default() -> Self {
        Self {
            epochs: 100,
            batch_size: 32,
            lr: 0.01,
            shuffle: true,
            seed: 0,
            frozen: 0,
        }
    }
}

impl FitConfig {
    /// Checks the numbers against each other and the model.
    pub fn validate(&self, mlp: &Mlp) -> Result<()> {
        self.validate_numbers()?;
        let n = mlp.spec().layers.len();
        if self.frozen > n {
            return Err(Error::invalid(
                "--freeze",
                format!("{} is more than the model's {n} Dense layers", self.frozen),
            ));
        }
        Ok(())
    }

    /// Checks batch size, epochs and learning rate.
    pub fn validate_numbers(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::invalid("--batch-size", "must be at least 1"));
        }
        if self.epochs == 0 {
            return Err(Error::invalid("--epochs", "must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::invalid(
                "--lr",
                format!("must be a positive number, got {}", self.lr),
            ));
        }
        Ok(())
    }
}

/// A batch loss above this means training has blown up: softmax cross-entropy that high needs logits
/// thousands apart, which no sound fit reaches. Together with NaN and infinity it stops training.
pub const DIVERGED_LOSS: f32 = 1e4;

/// Stops training (like Keras's `TerminateOnNaN`, and also on an exploded loss) at 1-based `epoch`.
pub fn check_loss(epoch: usize, loss: f32) -> Result<()> {
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

/// A dataset as float32 tensors-to-be, with the row gathering a batch needs.
struct Prepared {
    x: Vec<f32>,
    t: Vec<f32>,
    labels: Vec<usize>,
    d: usize,
    k: usize,
}

impl Prepared {
    fn new(mlp: &Mlp, data: &Dataset) -> Result<Self> {
        let spec = mlp.spec();
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
        let k = spec.output_dim();
        let mut t = vec![0f32; data.len() * k];
        for (i, &l) in data.labels.iter().enumerate() {
            t[i * k + l] = 1.0;
        }
        Ok(Self {
            x: data.features_f32(),
            t,
            labels: data.labels.clone(),
            d: data.n_features,
            k,
        })
    }

    fn batch(&self, rows: &[usize], dev: &Device) -> Result<(Tensor, Tensor)> {
        let mut xb = Vec::with_capacity(rows.len() * self.d);
        let mut tb = Vec::with_capacity(rows.len() * self.k);
        for &r in rows {
            xb.extend_from_slice(&self.x[r * self.d..(r + 1) * self.d]);
            tb.extend_from_slice(&self.t[r * self.k..(r + 1) * self.k]);
        }
        Ok((
            Tensor::from_vec(xb, (rows.len(), self.d), dev)?,
            Tensor::from_vec(tb, (rows.len(), self.k), dev)?,
        ))
    }
}

/// The mean categorical cross-entropy of a batch, as Keras computes it: from the logits when the
/// output layer is softmax, else from the (normalised, clipped) outputs.
fn batch_loss(mlp: &Mlp, logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let last = mlp
        .spec()
        .layers
        .last()
        .map(|l| l.activation)
        .unwrap_or(Activation::Linear);
    if last == Activation::Softmax {
        return Ok(crate::model::ops::softmax_xent(logits, targets)?);
    }
    let log_p = {
        let out = crate::model::mlp::activate(logits, last)?;
        let p = out.broadcast_div(&out.sum_keepdim(D::Minus1)?)?;
        p.clamp(1e-7f32, 1.0 - 1e-7f32)?.log()?
    };
    Ok((targets * log_p)?.sum(D::Minus1)?.neg()?.mean_keepdim(0)?)
}

/// The index of the first largest value (numpy's and TensorFlow's `argmax`).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Number of rows whose arg-max output is the true class.
pub fn correct(logits: &Tensor, labels: &[usize]) -> Result<usize> {
    let k = logits.dim(D::Minus1)?;
    let v = logits.flatten_all()?.to_vec1::<f32>()?;
    Ok(v.chunks(k)
        .zip(labels)
        .filter(|(row, l)| argmax(row) == **l)
        .count())
}

/// Keras's `Mean` metric: a float32 running total and count.
#[derive(Default)]
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

/// Trains `mlp` in place on `train` (validating on `val` after each epoch when given) and returns the
/// history. The optimizer is candle's SGD over only the variables of the unfrozen layers.
pub fn fit(mlp: &Mlp, train: &Dataset, val: Option<&Dataset>, cfg: &FitConfig) -> Result<History> {
    cfg.validate(mlp)?;
    let data = Prepared::new(mlp, train)?;
    let val = val.map(|v| Prepared::new(mlp, v)).transpose()?;
    let mut sgd = SGD::new(mlp.trainable_vars(cfg.frozen)?, f64::from(cfg.lr))?;
    let mut rng = NumpyRandomState::new(cfg.seed);
    let mut history = History::default();
    let n = train.len();
    let mut order: Vec<usize> = (0..n).collect();
    for epoch in 0..cfg.epochs {
        if cfg.shuffle {
            order = rng.permutation(n);
        }
        let (mut loss, mut acc) = (RunningMean::default(), RunningMean::default());
        for rows in order.chunks(cfg.batch_size) {
            let (xb, tb) = data.batch(rows, mlp.device())?;
            let logits = mlp.logits_frozen(&xb, cfg.frozen)?;
            let l = batch_loss(mlp, &logits, &tb)?;
            let lv = l.to_vec1::<f32>()?[0];
            check_loss(epoch + 1, lv)?;
            let labels: Vec<usize> = rows.iter().map(|&r| data.labels[r]).collect();
            loss.add(lv * rows.len() as f32, rows.len());
            acc.add(correct(&logits, &labels)? as f32, rows.len());
            sgd.backward_step(&l)?;
        }
        history.loss.push(loss.result());
        history.accuracy.push(acc.result());
        if let Some(v) = &val {
            let s = score(mlp, v, cfg.batch_size)?;
            history.val_loss.push(s.loss);
            history.val_accuracy.push(s.accuracy);
        }
    }
    Ok(history)
}

fn score(mlp: &Mlp, data: &Prepared, batch_size: usize) -> Result<Score> {
    let (mut loss, mut acc) = (RunningMean::default(), RunningMean::default());
    let all: Vec<usize> = (0..data.labels.len()).collect();
    for rows in all.chunks(batch_size.max(1)) {
        let (xb, tb) = data.batch(rows, mlp.device())?;
        let logits = mlp.logits(&xb)?;
        let lv = batch_loss(mlp, &logits, &tb)?.to_vec1::<f32>()?[0];
        loss.add(lv * rows.len() as f32, rows.len());
        acc.add(
            correct(&logits, &data.labels[rows[0]..rows[0] + rows.len()])? as f32,
            rows.len(),
        );
    }
    Ok(Score {
        loss: loss.result(),
        accuracy: acc.result(),
    })
}

/// `model.evaluate(x, y, batch_size)`: the loss and accuracy over `data` with the current weights.
pub fn evaluate(mlp: &Mlp, data: &Dataset, batch_size: usize) -> Result<Score> {
    if batch_size == 0 {
        return Err(Error::invalid("--batch-size", "must be at least 1"));
    }
    score(mlp, &Prepared::new(mlp, data)?, batch_size)
}
