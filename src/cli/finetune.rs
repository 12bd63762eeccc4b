//! `keras-transfer finetune`: a saved model adapted (frozen, re-initialised, extended) and fitted on
//! new data.

use crate::cli::args::{AdaptArgs, FinetuneArgs};
use crate::cli::sandbox::load_model_guarded as load_model;
use anyhow::{Context, Result};
use keras_transfer::{Transfer, adapt};

/// The transfer a command asks for: `freeze` first layers, and the adaptations of `a`.
pub fn transfer_of(freeze: usize, a: &AdaptArgs) -> Transfer {
    Transfer {
        freeze,
        reinit: a.reinit.clone(),
        add_hidden: a.add_hidden,
        new_head: a.new_head,
    }
}

pub fn run(a: FinetuneArgs) -> Result<()> {
    let base = load_model(&a.from)?;
    let data = a.data.load_for_model(2, &a.from, &base, a.adapt.new_head)?;
    let t = transfer_of(a.freeze, &a.adapt);
    let model = adapt(&base, &t, data.0.n_features, data.0.n_classes, a.fit.seed)
        .with_context(|| format!("adapting {}", a.from.display()))?;
    let title = format!("Transfer from {} (fixed={})", a.from.display(), a.freeze);
    crate::cli::train::fit_and_report(&model, &data, &a.fit, &a.output, &title)
}
