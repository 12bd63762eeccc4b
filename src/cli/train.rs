//! `keras-transfer train`: a fresh MLP fitted on a blobs problem or the user's CSV, and what a single
//! fit reports and writes (shared with `finetune`).

use crate::cli::args::{OutputArgs, TrainArgs};
use crate::cli::output::say;
use anyhow::{Context, Result};
use keras_transfer::model::{Activation, LayerSpec};
use keras_transfer::train::OptimizerState;
use keras_transfer::{Dataset, FitConfig, KerasModel, Model, ModelSpec, Target, save_model};

pub fn run(mut a: TrainArgs) -> Result<()> {
    a.output.check()?;
    a.data.csv.float64 = a.dtype == keras_transfer::FloatDtype::Float64;
    let mut cfg = a.fit.config()?;
    let (data, split) =
        a.data
            .load_split(1, cfg.loss, a.fit.loss.is_some(), a.fit.validation_split)?;
    let (train, _) = &data;
    cfg.class_weight = a.fit.class_weights(train)?;
    let outputs = match cfg.loss.target() {
        Target::Numeric => train.n_targets(),
        // One sigmoid unit per label column (several for multi-label data).
        Target::Binary => train.n_targets().max(1),
        Target::Classes => train.n_classes,
    };
    if a.hidden.len() > crate::cli::args::MAX_HIDDEN {
        return Err(keras_transfer::Error::invalid(
            "--hidden",
            format!(
                "{} hidden layers is more than this flag's limit of {}",
                a.hidden.len(),
                crate::cli::args::MAX_HIDDEN
            ),
        )
        .into());
    }
    let mut spec = ModelSpec::classifier(train.n_features, &a.hidden, &a.activation, outputs)?;
    if let Some(LayerSpec::Dense(last)) = spec.layers.last_mut() {
        // The output layer the loss expects: softmax for classes, sigmoid for binary, linear for
        // regression (or for a loss computed from logits).
        let act = cfg.loss.pairs_with();
        if act != Activation::Softmax {
            last.activation = act;
        }
    }
    spec.dtype = a.dtype;
    let model = Model::new(spec, a.fit.seed)?;
    let title = match a.data.problem.or(a.data.train.is_none().then_some(1)) {
        Some(p) => format!("MLP on blobs problem {p}"),
        None => "MLP".to_string(),
    };
    let second = if split { "Validation" } else { "Test" };
    fit_and_report(
        &model,
        &data,
        &cfg,
        a.fit.seed,
        None,
        &a.output,
        &title,
        second,
        a.fit.verbose,
    )
}

/// Fits on the training set of `data` (validating on its second set, when there is one, called
/// `second` in the report: Test or Validation), prints the tutorial's `Train: ..., Test: ...` line (the compiled metric, accuracy for classifiers), and
/// writes the history, the curves and the model where asked. Nothing is written when training
/// fails. The compile settings it trained with are said on stderr and saved with the model.
#[allow(clippy::too_many_arguments)]
pub fn fit_and_report(
    model: &Model,
    (train, test): &(Dataset, Option<Dataset>),
    cfg: &FitConfig,
    seed: u32,
    start: Option<&OptimizerState>,
    o: &OutputArgs,
    title: &str,
    second: &str,
    verbose: bool,
) -> Result<()> {
    let mut progress = |epoch: usize, h: &[keras_transfer::History]| {
        if verbose {
            crate::cli::output::tell_err!("{}", h[0].epoch_line(epoch, cfg.epochs));
        }
    };
    let metric = cfg
        .metric()
        .unwrap_or_else(|| keras_transfer::Metric::default_for(cfg.loss));
    let fitted = keras_transfer::train::fit::fit_and_score(
        model,
        train,
        test.as_ref(),
        cfg,
        &[seed],
        start,
        &mut progress,
        Some(metric),
    )?;
    let (mut histories, mut states) = (fitted.histories, fitted.states);
    let (history, state) = (histories.remove(0), states.remove(0));
    if history.epochs() < cfg.epochs {
        crate::cli::output::tell_err!("early stopping after epoch {}", history.epochs());
    }
    let tag = if matches!(
        metric.kind,
        keras_transfer::MetricKind::CategoricalAccuracy
            | keras_transfer::MetricKind::BinaryAccuracy
            | keras_transfer::MetricKind::Accuracy
    ) {
        String::new()
    } else {
        format!(" {}", metric.key)
    };
    let train_value = fitted.train[0].accuracy;
    match fitted.val {
        Some(t) => say!(
            "Train{tag}: {:.3}, {second}{tag}: {:.3}",
            train_value,
            t[0].accuracy
        ),
        None => say!("Train{tag}: {train_value:.3}"),
    }
    if let Some(p) = &o.history {
        history
            .write_csv(p)
            .with_context(|| format!("writing --history {}", p.display()))?;
    }
    if let Some(p) = &o.plot {
        keras_transfer::plot::plot_history(p, title, &history)?;
    }
    if let Some(out) = &o.out {
        let mut saved =
            KerasModel::compiled(model.spec().clone(), model.weights()?, Some(&cfg.compile()))
                .with_data(train.schema());
        saved.format = o.format.into();
        saved.optimizer_state = Some(Ok(state));
        save_model(out, &saved)?;
    }
    // What it trained with, said once when all went well (on stderr, so that stdout keeps the
    // tutorial's lines and a failure stays a one-line error).
    crate::cli::output::tell_err!("trained with {}", cfg.compile().describe());
    Ok(())
}
