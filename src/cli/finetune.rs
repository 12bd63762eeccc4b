//! `keras-transfer finetune`: a saved model adapted (frozen, re-initialised, extended) and fitted on
//! new data, with the model file's compile settings unless the flags re-compile it.

use crate::cli::args::{AdaptArgs, FinetuneArgs};
use crate::cli::sandbox::load_model_guarded as load_model;
use anyhow::{Context, Result, bail};
use keras_transfer::experiment::finetune::adapt_weights;
use keras_transfer::model::{Activation, LayerSpec};
use keras_transfer::{Model, Target, Transfer};

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
    let base = load_model(&a.from)?;
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
        Target::Binary => 1,
        Target::Numeric => train.n_targets(),
    };
    let t = transfer_of(a.freeze, &a.adapt);
    let mut adapted = adapt_weights(&base, &t, train.n_features, outputs, a.fit.seed)
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
