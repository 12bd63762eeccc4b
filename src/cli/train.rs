//! `keras-transfer train`: a fresh MLP fitted on a blobs problem or the user's CSV, and what a single
//! fit reports and writes (shared with `finetune`).

use crate::cli::args::{FitArgs, OutputArgs, TrainArgs};
use crate::cli::output::say;
use anyhow::{Context, Result};
use keras_transfer::{Dataset, KerasModel, Model, ModelSpec, evaluate, fit, save_model};

pub fn run(a: TrainArgs) -> Result<()> {
    let data = a.data.load(1)?;
    let (train, _) = &data;
    let spec = ModelSpec::classifier(train.n_features, &a.hidden, &a.activation, train.n_classes)?;
    let model = Model::new(spec, a.fit.seed)?;
    let title = match a.data.problem.or(a.data.train.is_none().then_some(1)) {
        Some(p) => format!("MLP on blobs problem {p}"),
        None => "MLP".to_string(),
    };
    fit_and_report(&model, &data, &a.fit, &a.output, &title)
}

/// Fits on the training set of `data` (validating on its test set, when there is one), prints the
/// tutorial's `Train: ..., Test: ...` line, and writes the history, the curves and the model where
/// asked. Nothing is written when training fails.
pub fn fit_and_report(
    model: &Model,
    (train, test): &(Dataset, Option<Dataset>),
    f: &FitArgs,
    o: &OutputArgs,
    title: &str,
) -> Result<()> {
    let cfg = &f.config();
    let history = fit(model, train, test.as_ref(), cfg, &[f.seed])?.remove(0);
    let accuracy = |d: &Dataset| -> Result<f32> {
        Ok(evaluate(model, d, cfg.batch_size, cfg.loss)?[0].accuracy)
    };
    match test {
        Some(t) => say!("Train: {:.3}, Test: {:.3}", accuracy(train)?, accuracy(t)?),
        None => say!("Train: {:.3}", accuracy(train)?),
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
            KerasModel::new(model.spec().clone(), model.weights()?, Some(&cfg.optimizer))
                .with_data(train.schema());
        saved.format = o.format.into();
        save_model(out, &saved)?;
    }
    Ok(())
}
