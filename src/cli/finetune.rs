//! `keras-transfer finetune`: a saved model adapted (frozen, re-initialised, extended) and fitted on
//! new data, with the model file's compile settings unless the flags re-compile it.

use crate::cli::args::{AdaptArgs, FinetuneArgs};
use crate::cli::sandbox::load_model_guarded as load_model;
use anyhow::{Context, Result, bail};
use keras_transfer::experiment::finetune::{adapt_owned_weights, thaw_from};
use keras_transfer::model::{Activation, LayerSpec};
use keras_transfer::train::OptimizerState;
use keras_transfer::train::fit::fit_and_score;
use keras_transfer::{Dataset, FitConfig, History, KerasModel, Model, Target, Transfer};

/// The transfer a command asks for: `freeze` first layers, and the adaptations of `a`.
pub fn transfer_of(freeze: usize, a: &AdaptArgs) -> Transfer {
    use keras_transfer::experiment::finetune::Unfreeze;
    Transfer {
        freeze,
        unfreeze: match a.unfreeze.as_slice() {
            [] => Unfreeze::Nothing,
            [all] if all == "all" => Unfreeze::All,
            names => Unfreeze::Named(names.to_vec()),
        },
        reinit: a.reinit.clone(),
        add_hidden: a.add_hidden,
        new_head: a.new_head,
    }
}

pub fn run(mut a: FinetuneArgs) -> Result<()> {
    a.output.check()?;
    if a.then_epochs.is_none() {
        let flag = match (&a.then_unfreeze, a.then_lr) {
            (Some(_), _) => Some("--then-unfreeze"),
            (None, Some(_)) => Some("--then-lr"),
            _ => None,
        };
        if let Some(flag) = flag {
            bail!(keras_transfer::Error::invalid(
                flag,
                "sets the second phase, which needs --then-epochs N"
            ));
        }
    }
    let mut base = load_model(&a.from)?;
    a.data.csv.float64 = base.spec.dtype == keras_transfer::FloatDtype::Float64;
    let from = a.from.display();
    let file_compile = match base.compile() {
        None => {
            crate::cli::output::tell_err!("{from} is not compiled: compiling it as the flags say");
            None
        }
        Some(Ok(c)) => Some(c),
        Some(Err(e)) if a.fit.optimizer.is_some() && a.fit.loss.is_some() => {
            crate::cli::output::tell_err!(
                "{from} is compiled with {e}, which is not supported: re-compiled as the flags say"
            );
            None
        }
        // The file's problem (exit 3), not the command line's.
        Some(Err(e)) => bail!(keras_transfer::Error::Unsupported {
            path: a.from.clone(),
            found: format!(
                "compiled with {e}, which keras-transfer cannot train exactly as Keras; re-compile with --optimizer NAME and --loss NAME"
            ),
        }),
    };
    let recompiled = a.fit.optimizer.is_some()
        || a.fit.lr.is_some()
        || a.fit.momentum.is_some()
        || a.fit.nesterov
        || file_compile.is_none();
    let mut cfg = a.fit.config_over(file_compile)?;
    let (data, split) = a.data.load_split_for_model(
        2,
        &a.from,
        &base,
        a.adapt.new_head,
        cfg.loss,
        a.fit.validation_split,
    )?;
    let train = &data.0;
    cfg.class_weight = a.fit.class_weights(train)?;
    let outputs = match cfg.loss.target() {
        Target::Classes => train.n_classes,
        // One sigmoid unit per label column (several for multi-label data).
        Target::Binary => train.n_targets().max(1),
        Target::Numeric => train.n_targets(),
    };
    let k = base.spec.output_dim();
    if cfg.loss.target() == Target::Binary && outputs == 1 && k > 1 && !a.adapt.new_head {
        return Err(keras_transfer::Error::invalid(
            "--label",
            format!(
                "binary_crossentropy on a model of {k} sigmoid outputs needs {k} label columns (--label y0,y1,...), the data has one"
            ),
        )
        .into());
    }
    let t = transfer_of(a.freeze, &a.adapt);
    // The base's weights are not needed after this: taken over, not copied.
    let weights = std::mem::take(&mut base.weights);
    let mut adapted = adapt_owned_weights(
        &base.spec,
        weights,
        &t,
        train.n_features,
        outputs,
        a.fit.seed,
    )
    .with_context(|| format!("adapting {from}"))?;
    if t.new_head
        && let Some(LayerSpec::Dense(last)) = adapted.spec.layers.last_mut()
        && cfg.loss.pairs_with() != Activation::Softmax
    {
        last.activation = cfg.loss.pairs_with();
    }
    let changed = adapted.spec != base.spec;
    let model = Model::from_weights(adapted.spec, adapted.weights)?;
    // As load_model + fit: the saved optimizer state carries on when the model and its compile
    // settings are the file's; after a re-compile or a change of layers Keras starts it afresh.
    let start = match &base.optimizer_state {
        Some(Ok(s)) if !recompiled && !changed => {
            let fresh = s.variables.is_empty() && s.iterations == 0;
            (!fresh).then_some(s)
        }
        Some(Ok(s)) if s.iterations > 0 => {
            crate::cli::output::tell_err!(
                "the optimizer starts afresh ({}): the state saved in {from} is not used",
                if changed {
                    "layers changed"
                } else {
                    "re-compiled"
                }
            );
            None
        }
        Some(Err(e)) => {
            crate::cli::output::tell_err!(
                "the optimizer starts afresh: {from}'s saved state is not readable ({e})"
            );
            None
        }
        _ => None,
    };
    if let Some(why) = start.and_then(|s| cfg.optimizer.missing_for_continuing(s)) {
        bail!(keras_transfer::Error::Unsupported {
            path: a.from.clone(),
            found: why,
        });
    }
    let title = format!("Transfer from {from} (fixed={})", a.freeze);
    let second = if split { "Validation" } else { "Test" };
    if let Some(then_epochs) = a.then_epochs {
        return two_phase(&a, model, &data, cfg, start, then_epochs, second);
    }
    crate::cli::train::fit_and_report(
        &model,
        &data,
        &cfg,
        a.fit.seed,
        start,
        &a.output,
        &title,
        second,
        a.fit.verbose,
    )
}

/// Keras's two-phase recipe: `fit` as the flags say, then thaw (`--then-unfreeze`), re-compile (a new
/// optimizer with `--then-lr`, same loss and metric) and `fit` `then_epochs` more; one history.
fn two_phase(
    a: &FinetuneArgs,
    model: Model,
    data: &(Dataset, Option<Dataset>),
    cfg: FitConfig,
    start: Option<&OptimizerState>,
    then_epochs: usize,
    second: &str,
) -> Result<()> {
    if then_epochs == 0 {
        bail!(keras_transfer::Error::invalid(
            "--then-epochs",
            "must be at least 1"
        ));
    }
    let mut cfg2 = FitConfig {
        epochs: then_epochs,
        ..cfg.clone()
    };
    if let Some(lr) = a.then_lr {
        if !(lr.is_finite() && lr > 0.0) {
            bail!(keras_transfer::Error::invalid(
                "--then-lr",
                format!("{lr} is not a positive learning rate")
            ));
        }
        cfg2.optimizer.learning_rate = keras_transfer::LearningRate::Constant(lr);
    }
    // Refuse a bad name before the first phase spends its time.
    let then_spec = |m: &Model| -> Result<keras_transfer::ModelSpec> {
        Ok(match &a.then_unfreeze {
            Some(name) => thaw_from(m.spec(), name, "--then-unfreeze")?,
            None => m.spec().clone(),
        })
    };
    then_spec(&model)?;
    let (train, val) = data;
    let verbose = a.fit.verbose;
    let metric = cfg2
        .metric()
        .unwrap_or_else(|| keras_transfer::Metric::default_for(cfg2.loss));
    // Phase `phase`'s fit; the last one also scores the rows (`Some(metric)`).
    let run = |m: &Model, c: &FitConfig, s: Option<&OptimizerState>, phase: usize, last: bool| {
        let mut progress = |epoch: usize, h: &[History]| {
            if verbose {
                crate::cli::output::tell_err!(
                    "phase {phase}: {}",
                    h[0].epoch_line(epoch, c.epochs)
                );
            }
        };
        let score = last.then_some(metric);
        fit_and_score(
            m,
            train,
            val.as_ref(),
            c,
            &[a.fit.seed],
            s,
            &mut progress,
            score,
        )
    };
    let first = run(&model, &cfg, start, 1, false)?;
    let h1 = &first.histories[0];
    // Keras: the same weights (moving statistics included), new trainable flags, a new optimizer.
    let model2 = Model::from_weights(then_spec(&model)?, model.weights()?)?;
    let mut second_fit = run(&model2, &cfg2, None, 2, true)?;
    let (h2, state) = (&second_fit.histories[0], second_fit.states.remove(0));
    let train_value = second_fit.train[0].accuracy;
    match &second_fit.val {
        Some(t) => crate::cli::output::say!(
            "Train {}: {:.3}, {second} {}: {:.3}",
            metric.key,
            train_value,
            metric.key,
            t[0].accuracy
        ),
        None => crate::cli::output::say!("Train {}: {train_value:.3}", metric.key),
    }
    if let Some(p) = &a.output.history {
        write_phases(p, &[h1, h2]).with_context(|| format!("writing --history {}", p.display()))?;
    }
    if a.output.plot.is_some() {
        crate::cli::output::tell_err!("--plot is not drawn for a two-phase run; use --history");
    }
    if let Some(out) = &a.output.out {
        let mut saved = KerasModel::compiled(
            model2.spec().clone(),
            model2.weights()?,
            Some(&cfg2.compile()),
        )
        .with_data(train.schema());
        saved.format = a.output.format.into();
        saved.optimizer_state = Some(Ok(state));
        keras_transfer::save_model(out, &saved)?;
    }
    crate::cli::output::tell_err!(
        "trained with {}, then {}",
        cfg.compile().describe(),
        cfg2.compile().describe()
    );
    Ok(())
}

/// Keras's two `History` objects as one CSVLogger-style table: `phase,epoch,...`, the epoch counted
/// from 0 in each phase (a re-compiled `fit` starts again at epoch 0).
fn write_phases(path: &std::path::Path, phases: &[&History]) -> keras_transfer::Result<()> {
    let cols = phases[0].columns();
    let mut header = vec!["phase".to_string(), "epoch".to_string()];
    header.extend(cols.iter().map(|c| c.0.clone()));
    let mut cells: Vec<String> = Vec::new();
    for (p, h) in phases.iter().enumerate() {
        let cols = h.columns();
        for e in 0..h.epochs() {
            cells.push((p + 1).to_string());
            cells.push(e.to_string());
            for (_, v) in &cols {
                cells.push(f64::from(v[e]).to_string());
            }
        }
    }
    keras_transfer::data::csv::write_table(path, &header, &cells)
}
