//! `fit` and `evaluate` with Keras 3's semantics (docs/keras-training.md): float32, batches in order
//! after a seeded per-epoch shuffle, the mean loss of each batch, the optimizer's step, running-mean
//! history. One loop serves a lone model and R stacked members alike.

use crate::data::Dataset;
use crate::data::folder_rows::FolderRows;
use crate::error::{Error, Result};
use crate::model::{FloatDtype, Forward, Mode, Model};
use crate::rng::NumpyRandomState;
pub use crate::train::feature_cache::CachePolicy;
use crate::train::feature_cache::{self, FeatureCache};
pub use crate::train::metrics::argmax;
use crate::train::{Compile, History, Loss, Metric, OptimizerSpec, OptimizerState, Target};
use candle_core::{D, DType, Tensor};

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
    /// The compiled metrics, in compile order (none: the history records the loss only); the
    /// history records each under its key, as Keras's `history.history` does.
    pub metrics: Vec<Metric>,
    /// Keras's `EarlyStopping` callback, when asked for (lone models only).
    pub early_stopping: Option<EarlyStopping>,
    /// Keras's `class_weight`: one weight per class index, weighting each training row's loss and
    /// metric (not the validation data's).
    pub class_weight: Option<Vec<f32>>,
    /// Where a frozen base's rows are kept while it trains (`train::feature_cache`); the numbers
    /// are the same whichever is chosen.
    pub cache: CachePolicy,
}

/// Keras's `EarlyStopping(monitor, min_delta, patience, restore_best_weights)` with `mode="auto"`.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    /// A history key: `val_loss` (Keras's default), `loss`, `accuracy`, `val_accuracy`, `mae`, ...
    pub monitor: String,
    pub min_delta: f32,
    pub patience: usize,
    pub restore_best_weights: bool,
}

/// Keras's `validation_split`: the last `fraction` of the rows (before any shuffling) validate,
/// the first `floor(n * (1 - fraction))` train.
pub fn validation_split(data: &Dataset, fraction: f64) -> Result<(Dataset, Dataset)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::invalid(
            "validation_split",
            format!("must be between 0 and 1 (exclusive), got {fraction}"),
        ));
    }
    let at = (data.len() as f64 * (1.0 - fraction)).floor() as usize;
    data.split_at(at).map_err(|_| {
        Error::invalid(
            "validation_split",
            format!(
                "{fraction} of {} rows leaves no rows on one side",
                data.len()
            ),
        )
    })
}

/// `EarlyStopping`'s bookkeeping for one lone model.
struct Stopper<'a> {
    es: &'a EarlyStopping,
    /// `less` (loss, errors) or `greater` (accuracies).
    lower_is_better: bool,
    best: Option<f32>,
    wait: usize,
    best_weights: Option<Vec<crate::model::LayerWeights>>,
}

impl<'a> Stopper<'a> {
    fn new(es: &'a EarlyStopping) -> Self {
        let name = es.monitor.strip_prefix("val_").unwrap_or(&es.monitor);
        let lower_is_better = !name.contains("acc");
        Stopper {
            es,
            lower_is_better,
            best: None,
            wait: 0,
            best_weights: None,
        }
    }

    fn improves(&self, current: f32, reference: Option<f32>) -> bool {
        let Some(r) = reference else { return true };
        if self.lower_is_better {
            current + self.es.min_delta < r
        } else {
            current - self.es.min_delta > r
        }
    }

    /// Keras's `on_epoch_end` for 0-based `epoch`: true when training should stop.
    fn epoch_end(&mut self, epoch: usize, h: &History, model: &Model) -> Result<bool> {
        let current = h
            .columns()
            .into_iter()
            .find(|(k, _)| *k == self.es.monitor)
            .and_then(|(_, v)| v.last().copied())
            .ok_or_else(|| {
                let keys: Vec<String> = h.columns().into_iter().map(|c| c.0).collect();
                Error::invalid(
                    "monitor",
                    format!(
                        "'{}' is not recorded (available: {})",
                        self.es.monitor,
                        keys.join(", ")
                    ),
                )
            })?;
        if self.es.restore_best_weights && self.best_weights.is_none() {
            self.best_weights = Some(model.weights()?);
        }
        self.wait += 1;
        if self.improves(current, self.best) {
            self.best = Some(current);
            if self.es.restore_best_weights {
                self.best_weights = Some(model.weights()?);
            }
            self.wait = 0;
            return Ok(false);
        }
        Ok(self.wait >= self.es.patience && epoch > 0)
    }
}

impl Default for FitConfig {
    /// The tutorial's settings: 100 epochs, batches of 32, shuffled, SGD 0.01, categorical
    /// cross-entropy, accuracy.
    fn default() -> Self {
        Self {
            epochs: 100,
            batch_size: 32,
            shuffle: true,
            optimizer: OptimizerSpec::default(),
            loss: Loss::CATEGORICAL,
            metrics: vec![Metric::ACCURACY],
            early_stopping: None,
            class_weight: None,
            cache: CachePolicy::Auto,
        }
    }
}

impl FitConfig {
    /// The compile settings this fit trains with.
    pub fn compile(&self) -> Compile {
        Compile {
            optimizer: self.optimizer.clone(),
            loss: self.loss,
            metrics: self.metrics.clone(),
        }
    }

    /// These fit settings with `c`'s optimizer, loss and metric.
    pub fn with_compile(self, c: Compile) -> Self {
        FitConfig {
            metrics: c.metrics,
            optimizer: c.optimizer,
            loss: c.loss,
            ..self
        }
    }

    /// The first compiled metric: the one `Score::accuracy` and the tutorial's lines report.
    pub fn metric(&self) -> Option<Metric> {
        self.metrics.first().copied()
    }

    /// Checks batch size, epochs and the optimizer's settings.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::invalid("batch_size", "must be at least 1"));
        }
        if self.epochs == 0 {
            return Err(Error::invalid("epochs", "must be at least 1"));
        }
        self.optimizer.validate()
    }
}

/// Member m's dropout masks come from `NumpyRandomState(seeds[m] ^ DROPOUT_STREAM)`.
pub const DROPOUT_STREAM: u32 = 0x5eed_d0d0;

/// Stops training when a batch loss is NaN or infinite, as Keras's `TerminateOnNaN` does, at
/// 1-based `epoch`. A large finite loss is no divergence: a regression on targets in the hundreds
/// starts with losses near 1e5 and trains (Keras stops on non-finite losses only).
pub(crate) fn check_loss(epoch: usize, loss: f32) -> Result<()> {
    if loss.is_finite() {
        Ok(())
    } else {
        Err(Error::Diverged { epoch, loss })
    }
}

/// Loss and metric as Keras's `evaluate` reports them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub loss: f32,
    /// The compiled metric's value (accuracy for the tutorial; MAE or MSE for regression; 0 when
    /// compiled without a metric).
    pub accuracy: f32,
}

/// The loss and every compiled metric, as Keras's `evaluate` returns them: the loss, then each
/// metric under its key in compile order.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub loss: f32,
    pub metrics: Vec<(&'static str, f32)>,
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

/// Where a prepared dataset's rows come from.
enum Inputs<'a> {
    /// The rows as float32, for a float32 model.
    F32(Vec<f32>),
    /// The dataset's own f64 rows, which a float64 model takes as they are.
    F64(&'a [f64]),
    /// An image folder's rows, decoded batch by batch (float32 pixels, widened exactly for a
    /// float64 model): the values the folder's rows would hold in memory.
    Folder(&'a FolderRows),
}

/// A dataset checked against a model and loss, as rows and targets in the model's dtype ready to
/// gather into batches (a float64 model reads the dataset's f64 rows as they are).
struct Prepared<'a> {
    inputs: Inputs<'a>,
    dtype: FloatDtype,
    /// Targets per row (in the model's dtype, kept as f64), `k` per row, for the numeric and binary
    /// losses (empty for classes).
    y: Vec<f64>,
    labels: &'a [usize],
    d: usize,
    k: usize,
    target: Target,
}

impl<'a> Prepared<'a> {
    fn new(model: &Model, data: &'a Dataset, loss: Loss) -> Result<Self> {
        let spec = model.spec();
        if data.n_features != spec.input_dim {
            return Err(Error::Mismatch(format!(
                "the data has {} features but the model takes {} inputs",
                data.n_features, spec.input_dim
            )));
        }
        let k = spec.output_dim();
        let target = loss.target();
        loss.check_output(spec.output_activation(), k)?;
        loss.check_dtype(spec.dtype)?;
        let y = match (target, &data.targets) {
            // Several 0/1 label columns for as many sigmoid units: the multi-label recipe.
            (Target::Numeric | Target::Binary, Some(t)) => {
                if t.names.len() != k {
                    return Err(Error::Mismatch(format!(
                        "the data has {} target columns but the model has {k} outputs",
                        t.names.len()
                    )));
                }
                t.values.iter().map(|&v| spec.dtype.round(v)).collect()
            }
            (Target::Numeric, None) => {
                return Err(Error::Mismatch(format!(
                    "the loss {} needs numeric targets, but the data has class labels",
                    loss.keras_name()
                )));
            }
            (_, Some(_)) => {
                return Err(Error::Mismatch(format!(
                    "the loss {} needs class labels, but the data has numeric targets",
                    loss.keras_name()
                )));
            }
            (Target::Binary, None) => {
                if k != 1 {
                    return Err(Error::Mismatch(format!(
                        "binary_crossentropy on a model of {k} outputs needs {k} label columns (--label y0,y1,...), the data has one"
                    )));
                }
                if data.n_classes > 2 {
                    return Err(Error::Mismatch(format!(
                        "binary_crossentropy needs two classes (0/1), the data has {}",
                        data.n_classes
                    )));
                }
                data.labels.iter().map(|&l| l as f64).collect()
            }
            (Target::Classes, None) => {
                if data.n_classes > k {
                    return Err(Error::Mismatch(format!(
                        "the data has {} classes but the model has {k} outputs (use --new-head to replace the output layer)",
                        data.n_classes
                    )));
                }
                Vec::new()
            }
        };
        let dtype = spec.dtype;
        Ok(Self {
            inputs: match (&data.folder, dtype) {
                (Some(f), _) => Inputs::Folder(f),
                (None, FloatDtype::Float32) => Inputs::F32(data.features_f32()),
                (None, FloatDtype::Float64) => Inputs::F64(&data.x),
            },
            dtype,
            y,
            labels: &data.labels,
            d: data.n_features,
            k,
            target,
        })
    }

    /// Whether the rows are decoded from files as they are read.
    fn streamed(&self) -> bool {
        matches!(self.inputs, Inputs::Folder(_))
    }

    /// Inputs `[R, b, d]`: member m gets rows `rows(m)`.
    fn inputs<'r>(
        &self,
        model: &Model,
        b: usize,
        rows: &impl Fn(usize) -> &'r [usize],
    ) -> Result<Tensor> {
        let r = model.members();
        let (dev, shape) = (model.device(), (r, b, self.d));
        Ok(match &self.inputs {
            Inputs::F32(x) => Tensor::from_vec(self.gather(x, r, b, rows), shape, dev)?,
            Inputs::F64(x) => Tensor::from_vec(self.gather(x, r, b, rows), shape, dev)?,
            Inputs::Folder(f) => {
                let groups: Vec<&[usize]> = (0..r).map(rows).collect();
                match self.dtype {
                    FloatDtype::Float32 => Tensor::from_vec(f.gather(&groups, |v| v)?, shape, dev)?,
                    FloatDtype::Float64 => {
                        Tensor::from_vec(f.gather(&groups, f64::from)?, shape, dev)?
                    }
                }
            }
        })
    }

    /// Targets `[R, b, k]` (one-hot for classes): member m gets rows `rows(m)`.
    fn target_tensor<'r>(
        &self,
        model: &Model,
        b: usize,
        rows: &impl Fn(usize) -> &'r [usize],
    ) -> Result<Tensor> {
        let (r, dev) = (model.members(), model.device());
        let shape = (r, b, self.k);
        Ok(match self.dtype {
            FloatDtype::Float64 => Tensor::from_vec(self.targets(r, b, rows, |v| v), shape, dev)?,
            FloatDtype::Float32 => {
                Tensor::from_vec(self.targets(r, b, rows, |v| v as f32), shape, dev)?
            }
        })
    }

    /// The rows `rows(m)` of `x` for every member, member after member.
    fn gather<'r, T: Copy>(
        &self,
        x: &[T],
        r: usize,
        b: usize,
        rows: &impl Fn(usize) -> &'r [usize],
    ) -> Vec<T> {
        let mut xb = Vec::with_capacity(r * b * self.d);
        for m in 0..r {
            for &row in rows(m) {
                xb.extend_from_slice(&x[row * self.d..(row + 1) * self.d]);
            }
        }
        xb
    }

    /// The targets of rows `rows(m)` for every member (one-hot for classes), in the model's float
    /// type (`cast` from the f64 they are kept in, exactly).
    fn targets<'r, T: Copy + Default + From<u8>>(
        &self,
        r: usize,
        b: usize,
        rows: &impl Fn(usize) -> &'r [usize],
        cast: impl Fn(f64) -> T,
    ) -> Vec<T> {
        let mut tb = vec![T::default(); r * b * self.k];
        for m in 0..r {
            for (j, &row) in rows(m).iter().enumerate() {
                let at = (m * b + j) * self.k;
                match self.target {
                    Target::Classes => tb[at + self.labels[row]] = T::from(1u8),
                    _ => {
                        for (t, &y) in tb[at..at + self.k]
                            .iter_mut()
                            .zip(&self.y[row * self.k..(row + 1) * self.k])
                        {
                            *t = cast(y);
                        }
                    }
                }
            }
        }
        tb
    }

    /// The batch's loss per member (the compiled loss plus the model's penalties, as Keras's
    /// `compute_loss`), and the logits.
    fn losses(
        &self,
        model: &Model,
        xb: &Tensor,
        tb: &Tensor,
        loss: Loss,
        f: &mut Forward,
        weights: Option<&Tensor>,
        given: Option<(&FeatureCache, &[Option<Tensor>])>,
    ) -> Result<(Tensor, Tensor)> {
        let (logits, penalty) = match given {
            None => model.logits_and_penalty(xb, f)?,
            Some((c, g)) => model.logits_from(xb, g, &c.plan.cached, f)?,
        };
        let output = model.spec().output_activation();
        let mut losses = match weights {
            None => loss.batch_losses(&logits, output, tb)?,
            Some(w) => loss.weighted_batch_losses(&logits, output, tb, w)?,
        };
        if let Some(p) = penalty {
            losses = (losses + p)?;
        }
        Ok((logits, losses))
    }
}

/// Per member: the loss values of `losses [R]` and each metric's sum over the rows (`[R][metrics]`).
/// The metrics are unweighted, as Keras's compiled `metrics` are (class weights reach only
/// `weighted_metrics`).
fn batch_metrics<'r>(
    model: &Model,
    metrics: &[Metric],
    logits: &Tensor,
    losses: &Tensor,
    targets: &Tensor,
    labels: &[usize],
    rows: impl Fn(usize) -> &'r [usize],
) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
    // History and metrics are kept as float32 (a float64 model's are rounded to float32 here).
    let lv = losses.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    let members = logits.dim(0)?;
    let mut sums = vec![Vec::with_capacity(metrics.len()); members];
    if metrics.is_empty() {
        return Ok((lv, sums));
    }
    let k = logits.dim(D::Minus1)?;
    let b = logits.dim(1)?;
    let flat = |t: &Tensor| t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>();
    let t = flat(targets)?;
    let raw = flat(logits)?;
    let activated = if metrics
        .iter()
        .any(|m| m.kind != crate::train::MetricKind::CategoricalAccuracy)
    {
        flat(&model.spec().output_activation().apply(logits)?)?
    } else {
        Vec::new()
    };
    for metric in metrics {
        let v = if metric.kind == crate::train::MetricKind::CategoricalAccuracy {
            &raw
        } else {
            &activated
        };
        for (m, (member, tm)) in v.chunks(b * k).zip(t.chunks(b * k)).enumerate() {
            sums[m].push(
                metric
                    .row_values(member, tm, rows(m).iter().map(|&r| labels[r]), k)
                    .iter()
                    .sum(),
            );
        }
    }
    Ok((lv, sums))
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
    Ok(fit_from(model, train, val, cfg, seeds, None)?.0)
}

/// The names Keras gives the optimizer's per-variable state: `<layer>_<weight>` for each variable
/// the optimizer is handed (the order of `Model::trainable_vars`).
pub fn trainable_names(model: &Model) -> Vec<String> {
    crate::train::optimizer::trainable_variables(model.spec())
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// `fit`, continuing the optimizer from `start` (a saved state, as `load_model` + `fit` does) when
/// given, and returning each member's optimizer state at the end with the histories.
pub fn fit_from(
    model: &Model,
    train: &Dataset,
    val: Option<&Dataset>,
    cfg: &FitConfig,
    seeds: &[u32],
    start: Option<&OptimizerState>,
) -> Result<(Vec<History>, Vec<OptimizerState>)> {
    fit_with(model, train, val, cfg, seeds, start, &mut |_, _| {})
}

/// `fit_from`, calling `on_epoch(epoch, histories)` after each epoch (0-based) with the histories
/// so far (a Keras callback's `on_epoch_end`, for progress lines). The frozen base is computed once
/// per row as `cfg.cache` says (`train::feature_cache`).
pub fn fit_with(
    model: &Model,
    train: &Dataset,
    val: Option<&Dataset>,
    cfg: &FitConfig,
    seeds: &[u32],
    start: Option<&OptimizerState>,
    on_epoch: &mut (dyn FnMut(usize, &[History]) + Send),
) -> Result<(Vec<History>, Vec<OptimizerState>)> {
    fit_and_score(model, train, val, cfg, seeds, start, on_epoch, None)
        .map(|f| (f.histories, f.states))
}

/// What `fit_and_score` gives: `fit_with`'s histories and optimizer states, and every member's
/// score (loss and the metric) over the training rows and the validation rows after the last epoch
/// (empty and `None` when it was asked for no score).
pub struct Fitted {
    pub histories: Vec<History>,
    pub states: Vec<OptimizerState>,
    pub train: Vec<Score>,
    pub val: Option<Vec<Score>>,
}

/// `fit_with`, then (given a metric) `evaluate_with(metric)` over the training and the validation
/// rows, with the same numbers; the frozen base's cache (see `train::feature_cache`) serves the
/// evaluation too, so the base is not run over the rows once more.
#[allow(clippy::too_many_arguments)]
pub fn fit_and_score(
    model: &Model,
    train: &Dataset,
    val: Option<&Dataset>,
    cfg: &FitConfig,
    seeds: &[u32],
    start: Option<&OptimizerState>,
    on_epoch: &mut (dyn FnMut(usize, &[History]) + Send),
    metric: Option<Metric>,
) -> Result<Fitted> {
    crate::model::on_every_core(|| {
        fit_inner(model, train, val, cfg, seeds, start, on_epoch, metric)
    })
}

/// Training a model with a trainable Embedding takes SGD only: Keras hands the other optimizers the
/// table's gradient as sparse rows and squares them row by row before summing the rows a batch
/// picks twice (Adam's second moment), which this tool does not reproduce.
fn embedding_optimizer(
    spec: &crate::model::ModelSpec,
    kind: &crate::train::optimizer::OptimizerKind,
) -> Result<()> {
    if matches!(kind, crate::train::optimizer::OptimizerKind::Sgd { .. }) {
        return Ok(());
    }
    match spec
        .layers
        .iter()
        .find(|l| l.trainable() && matches!(l, crate::model::LayerSpec::Embedding(_)))
    {
        Some(l) => Err(Error::invalid(
            "optimizer",
            format!(
                "training Embedding '{}' is supported with SGD only (Keras's other optimizers update its sparse gradient differently); freeze the layer or use SGD",
                l.name()
            ),
        )),
        None => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
fn fit_inner(
    model: &Model,
    train: &Dataset,
    val: Option<&Dataset>,
    cfg: &FitConfig,
    seeds: &[u32],
    start: Option<&OptimizerState>,
    on_epoch: &mut (dyn FnMut(usize, &[History]) + Send),
    final_metric: Option<Metric>,
) -> Result<Fitted> {
    let policy = cfg.cache;
    cfg.validate()?;
    embedding_optimizer(model.spec(), &cfg.optimizer.kind)?;
    if model.spec().dtype == FloatDtype::Float64 && cfg.class_weight.is_some() {
        return Err(Error::invalid(
            "class_weight",
            "on a float64 model is not supported yet (class weights are kept as float32)",
        ));
    }
    let r = model.members();
    if seeds.len() != r {
        return Err(Error::invalid(
            "seeds",
            format!("{} seeds for {r} members", seeds.len()),
        ));
    }
    let data = Prepared::new(model, train, cfg.loss)?;
    let val = val.map(|v| Prepared::new(model, v, cfg.loss)).transpose()?;
    let mut opt = cfg
        .optimizer
        .build_named(model.trainable_vars(), trainable_names(model))?;
    if let Some(s) = start {
        opt.set_state(s)?;
    }
    if cfg.early_stopping.is_some() && r != 1 {
        return Err(Error::invalid(
            "early stopping",
            "is for a lone model, not stacked members",
        ));
    }
    let mut stopper = cfg.early_stopping.as_ref().map(Stopper::new);
    let class_weight = cfg.class_weight.as_deref();
    if let Some(cw) = class_weight
        && (train.n_classes > cw.len() || cfg.loss.target() == Target::Numeric)
    {
        return Err(Error::invalid(
            "class_weight",
            format!(
                "gives {} weights for a {} with {} classes",
                cw.len(),
                cfg.loss.keras_name(),
                train.n_classes
            ),
        ));
    }
    let mut rngs: Vec<NumpyRandomState> = seeds.iter().map(|&s| NumpyRandomState::new(s)).collect();
    // Dropout masks come from streams of their own, so that the shuffle order does not depend on
    // whether the model has dropout.
    let mut dropout: Vec<NumpyRandomState> = seeds
        .iter()
        .map(|&s| NumpyRandomState::new(s ^ DROPOUT_STREAM))
        .collect();
    let n = train.len();
    // The frozen base, computed once per training row (a lone model only).
    let cache = build_cache(model, &data, policy)?;
    // The validation rows' too, so that scoring them each epoch does not run the base again.
    let val_cache = match (&cache, &val) {
        (Some(_), Some(v)) => build_cache(model, v, policy)?,
        _ => None,
    };
    // Rows decoded from files are not decoded again each epoch when the frozen base's cache is all
    // the trained layers read (the inputs are then an empty placeholder, which no layer reads).
    let skip_inputs = data.streamed()
        && cache
            .as_ref()
            .is_some_and(|c| !c.plan.reads_input(model.spec()));
    let mut orders: Vec<Vec<usize>> = vec![(0..n).collect(); r];
    let mut histories = vec![History::default(); r];
    for epoch in 0..cfg.epochs {
        if cfg.shuffle {
            for (o, rng) in orders.iter_mut().zip(&mut rngs) {
                *o = rng.permutation(n);
            }
        }
        let mut loss = vec![RunningMean::default(); r];
        let mut acc = vec![vec![RunningMean::default(); cfg.metrics.len()]; r];
        for start in (0..n).step_by(cfg.batch_size) {
            let end = (start + cfg.batch_size).min(n);
            let b = end - start;
            let rows = |m: usize| &orders[m][start..end];
            let xb = if skip_inputs {
                Tensor::zeros((r, b, 0), model.spec().dtype.candle(), model.device())?
            } else {
                data.inputs(model, b, &rows)?
            };
            let tb = data.target_tensor(model, b, &rows)?;
            let weights: Option<Vec<f32>> = class_weight.map(|cw| {
                (0..r)
                    .flat_map(|m| rows(m).iter().map(|&row| cw[data.labels[row]]))
                    .collect()
            });
            let wt = weights
                .as_ref()
                .map(|w| Tensor::from_slice(w, (r, b), model.device()))
                .transpose()?;
            let mut f = Forward {
                mode: Mode::Training,
                rngs: Some(&mut dropout),
            };
            let given = cache.as_ref().map(|c| c.batch(rows(0))).transpose()?;
            let given = cache.as_ref().zip(given.as_deref());
            let (logits, losses) =
                data.losses(model, &xb, &tb, cfg.loss, &mut f, wt.as_ref(), given)?;
            let (lv, hits) = batch_metrics(
                model,
                &cfg.metrics,
                &logits,
                &losses,
                &tb,
                data.labels,
                rows,
            )?;
            for m in 0..r {
                check_loss(epoch + 1, lv[m])?;
                loss[m].add(lv[m] * b as f32, b);
                for (a, h) in acc[m].iter_mut().zip(&hits[m]) {
                    a.add(*h, b);
                }
            }
            opt.backward_step(&losses)?;
        }
        for m in 0..r {
            let results: Vec<f32> = acc[m].iter().map(RunningMean::result).collect();
            histories[m].loss.push(loss[m].result());
            histories[m].push_metrics(&cfg.metrics, &results, false);
        }
        if let Some(v) = &val {
            let scores = score_all(
                model,
                v,
                val_cache.as_ref(),
                cfg.batch_size,
                cfg.loss,
                &cfg.metrics,
            )?;
            for (h, s) in histories.iter_mut().zip(scores) {
                h.val_loss.push(s.loss);
                let results: Vec<f32> = s.metrics.iter().map(|x| x.1).collect();
                h.push_metrics(&cfg.metrics, &results, true);
            }
        }
        on_epoch(epoch, &histories);
        if let Some(st) = &mut stopper
            && st.epoch_end(epoch, &histories[0], model)?
        {
            break;
        }
    }
    if let Some(w) = stopper.and_then(|s| s.best_weights) {
        model.set_member_weights(0, &w)?;
    }
    let states = (0..r).map(|m| opt.state(m)).collect::<Result<_>>()?;
    let scores = |d: &Prepared, c: Option<&FeatureCache>, m: Metric| -> Result<Vec<Score>> {
        Ok(score_all(model, d, c, cfg.batch_size, cfg.loss, &[m])?
            .into_iter()
            .map(Score::from)
            .collect())
    };
    let (train, val) = match final_metric {
        Some(m) => (
            scores(&data, cache.as_ref(), m)?,
            val.as_ref()
                .map(|v| scores(v, val_cache.as_ref(), m))
                .transpose()?,
        ),
        None => (Vec::new(), None),
    };
    Ok(Fitted {
        histories,
        states,
        train,
        val,
    })
}

/// Rows the frozen base is computed over at once when the feature cache is built.
const CACHE_SPAN_ROWS: usize = 64;

/// The frozen base's output for every row of `data` (a lone model's, as `policy` allows), or
/// `None` where there is no frozen base or it fits no budget.
fn build_cache(
    model: &Model,
    data: &Prepared,
    policy: CachePolicy,
) -> Result<Option<FeatureCache>> {
    if policy == CachePolicy::Off || model.members() != 1 {
        return Ok(None);
    }
    let Some(plan) = feature_cache::plan(model.spec()) else {
        return Ok(None);
    };
    let n = data.labels.len();
    let all: Vec<usize> = (0..n).collect();
    FeatureCache::build(
        model,
        plan,
        n,
        CACHE_SPAN_ROWS,
        (feature_cache::budget(), feature_cache::disk_budget()),
        policy,
        |lo, hi| data.inputs(model, hi - lo, &|_| &all[lo..hi]),
    )
}

/// Rows per member that `score` runs through the model at once (rounded down to whole batches).
const SPAN_ROWS: usize = 4096;

/// Loss and accuracy of every member over `data`, in batches as Keras's `evaluate` goes: the mean loss
/// of each batch (plus the model's penalties), averaged over the batches weighted by their sizes.
///
/// The forward pass runs over spans of whole batches (about `SPAN_ROWS` rows), and each span's
/// logits are then viewed as one "member" per batch, `[R * batches, batch, k]`, so that the loss and
/// the metric are computed per batch exactly as batch-by-batch evaluation computes them, in one call
/// per span. Every layer computes each row on its own in inference mode, so the logits do not depend
/// on how the rows are grouped. An activity regulariser's penalty depends on the batch's rows, so a
/// model with one is scored one batch at a time.
fn score(model: &Model, data: &Prepared, cfg: &FitConfig) -> Result<Vec<Score>> {
    let metrics: Vec<Metric> = cfg.metric().into_iter().collect();
    Ok(
        score_all(model, data, None, cfg.batch_size, cfg.loss, &metrics)?
            .into_iter()
            .map(Score::from)
            .collect(),
    )
}

impl From<Evaluation> for Score {
    /// The loss and the first metric's value (0 without one).
    fn from(e: Evaluation) -> Score {
        Score {
            loss: e.loss,
            accuracy: e.metrics.first().map_or(0.0, |m| m.1),
        }
    }
}

/// `score` with every metric of `metrics`.
fn score_all(
    model: &Model,
    data: &Prepared,
    cache: Option<&FeatureCache>,
    bs: usize,
    loss_fn: Loss,
    metrics: &[Metric],
) -> Result<Vec<Evaluation>> {
    let r = model.members();
    let mut loss = vec![RunningMean::default(); r];
    let mut acc = vec![vec![RunningMean::default(); metrics.len()]; r];
    let n = data.labels.len();
    let all: Vec<usize> = (0..n).collect();
    let output = model.spec().output_activation();
    let per_batch = model.spec().layers.iter().any(|l| match l {
        crate::model::LayerSpec::Dense(d) => d.activity_regularizer.is_some(),
        _ => false,
    });
    let span_rows = if per_batch {
        bs
    } else {
        // Whole batches, at most SPAN_ROWS rows and as many as an image model's activations allow.
        (SPAN_ROWS.min(model.rows_at_once()) / bs).max(1) * bs
    };
    for span in all.chunks(span_rows) {
        let ts = data.target_tensor(model, span.len(), &|_| span)?;
        let mut f = Forward::inference();
        let (logits, penalty) = match cache {
            // The cache holds the frozen base's output computed in inference mode: the same bits
            // as running it here. Inputs no trained layer reads are not gathered (nor decoded).
            Some(c) => {
                let xs = if c.plan.reads_input(model.spec()) {
                    data.inputs(model, span.len(), &|_| span)?
                } else {
                    Tensor::zeros(
                        (r, span.len(), 0),
                        model.spec().dtype.candle(),
                        model.device(),
                    )?
                };
                model.logits_from(&xs, &c.batch(span)?, &c.plan.cached, &mut f)?
            }
            None => {
                model.logits_and_penalty(&data.inputs(model, span.len(), &|_| span)?, &mut f)?
            }
        };
        let k = logits.dim(D::Minus1)?;
        let whole = span.len() / bs * bs;
        // The span's whole batches, then its last, shorter batch (if any).
        for (lo, hi, b) in [(0, whole, bs), (whole, span.len(), span.len() - whole)] {
            if hi == lo {
                continue;
            }
            let nb = (hi - lo) / b;
            let view = |t: &Tensor| t.narrow(1, lo, hi - lo)?.reshape((r * nb, b, k));
            let (lg, tg) = (view(&logits)?, view(&ts)?);
            let mut losses = loss_fn.batch_losses(&lg, output, &tg)?;
            if let Some(p) = &penalty {
                losses = losses
                    .reshape((r, nb))?
                    .broadcast_add(&p.reshape((r, 1))?)?
                    .flatten_all()?;
            }
            let rows = |g: usize| &span[lo + (g % nb) * b..lo + (g % nb + 1) * b];
            let (lv, hits) = batch_metrics(model, metrics, &lg, &losses, &tg, data.labels, rows)?;
            for m in 0..r {
                for j in 0..nb {
                    loss[m].add(lv[m * nb + j] * b as f32, b);
                    for (a, h) in acc[m].iter_mut().zip(&hits[m * nb + j]) {
                        a.add(*h, b);
                    }
                }
            }
        }
    }
    Ok(loss
        .iter()
        .zip(&acc)
        .map(|(l, a)| Evaluation {
            loss: l.result(),
            metrics: metrics
                .iter()
                .zip(a)
                .map(|(m, a)| (m.key, a.result()))
                .collect(),
        })
        .collect())
}

/// `model.evaluate(x, y, batch_size)` for every member: the loss and the metric Keras compiles
/// next to `loss` by default (accuracy; MAE for regression) over `data` with the current weights.
pub fn evaluate(
    model: &Model,
    data: &Dataset,
    batch_size: usize,
    loss: Loss,
) -> Result<Vec<Score>> {
    evaluate_with(
        model,
        data,
        batch_size,
        loss,
        Some(Metric::default_for(loss)),
    )
}

/// `evaluate` with the given metric.
pub fn evaluate_with(
    model: &Model,
    data: &Dataset,
    batch_size: usize,
    loss: Loss,
    metric: Option<Metric>,
) -> Result<Vec<Score>> {
    if batch_size == 0 {
        return Err(Error::invalid("batch_size", "must be at least 1"));
    }
    let cfg = FitConfig {
        batch_size,
        loss,
        metrics: metric.into_iter().collect(),
        ..FitConfig::default()
    };
    crate::model::on_every_core(|| score(model, &Prepared::new(model, data, loss)?, &cfg))
}

/// `model.evaluate(x, y, batch_size)` for every member of a model compiled with `loss` and
/// `metrics`: the loss and each metric's value.
pub fn evaluate_all(
    model: &Model,
    data: &Dataset,
    batch_size: usize,
    loss: Loss,
    metrics: &[Metric],
) -> Result<Vec<Evaluation>> {
    if batch_size == 0 {
        return Err(Error::invalid("batch_size", "must be at least 1"));
    }
    crate::model::on_every_core(|| {
        score_all(
            model,
            &Prepared::new(model, data, loss)?,
            None,
            batch_size,
            loss,
            metrics,
        )
    })
}
