//! `keras-transfer compare`: the tutorial's repeated comparison of standalone and transfer models.

use crate::cli::args::CompareArgs;
use crate::cli::finetune::transfer_of;
use crate::cli::output::{progress_bar, say};
use crate::cli::sandbox::load_model_guarded as load_model;
use anyhow::Result;
use keras_transfer::report::{compare_json, compare_lines};
use keras_transfer::{Arm, CompareConfig, Error, compare};

pub fn run(mut a: CompareArgs) -> Result<()> {
    for p in [&a.plot, &a.json].into_iter().flatten() {
        keras_transfer::fsutil::check_target(p)?;
    }
    if a.fit.validation_split.is_some() || a.fit.patience.is_some() {
        return Err(Error::invalid(
            if a.fit.patience.is_some() {
                "--patience"
            } else {
                "--validation-split"
            },
            "is for train and finetune; compare scores every fit on the test data",
        )
        .into());
    }
    let base = load_model(&a.from)?;
    a.data.csv.float64 = base.spec.dtype == keras_transfer::FloatDtype::Float64;
    if keras_transfer::data::targets::several_labels(a.data.label.as_deref()) {
        return Err(Error::invalid(
            "--label",
            "names several label columns: multi-label data (with binary_crossentropy) is for train, finetune, evaluate and predict; compare takes one label column of classes",
        )
        .into());
    }
    // compare trains classifiers: the labels are classes.
    let ((train, test), _) = a.data.load_split_for_model(
        2,
        &a.from,
        &base,
        a.adapt.new_head,
        keras_transfer::Loss::CATEGORICAL,
        None,
    )?;
    let test = test
        .ok_or_else(|| Error::invalid("--test", "compare needs test data to score the models"))?;
    let mut arms = Vec::new();
    if !a.no_standalone {
        arms.push(Arm::Standalone);
    }
    arms.extend(
        a.freeze
            .iter()
            .map(|&f| Arm::Transfer(transfer_of(f, &a.adapt))),
    );
    if arms.is_empty() {
        return Err(Error::invalid(
            "--freeze",
            "nothing to compare: give --freeze values or drop --no-standalone",
        )
        .into());
    }
    let cfg = CompareConfig {
        repeats: a.repeats,
        fit: a.fit.config()?,
        seed: a.fit.seed,
        threads: a.threads,
    };
    let bar = progress_bar((arms.len() * a.repeats) as u64);
    let results = compare(&base, &arms, &train, &test, &cfg, &|| bar.inc(1))?;
    bar.finish_and_clear();
    for line in compare_lines(&results) {
        say!("{line}");
    }
    if let Some(p) = &a.json {
        // The compile settings every fit ran with, as Keras's training_config writes them; the
        // learning rate as given (a double), null under a schedule (its config is in `compile`).
        let compile = cfg.fit.compile();
        let meta = serde_json::json!({"model": a.from.display().to_string(), "repeats": a.repeats, "epochs": a.fit.epochs,
            "batch_size": a.fit.batch_size, "learning_rate": compile.optimizer.learning_rate.constant_f64(),
            "compile": keras_transfer::keras::config::training_config(&compile, keras_transfer::Format::Keras3),
            "shuffle": cfg.fit.shuffle, "seed": a.fit.seed});
        let text = serde_json::to_string_pretty(&compare_json(&results, meta))?;
        keras_transfer::fsutil::write_bytes_atomic(p, text.as_bytes())?;
    }
    if let Some(p) = &a.plot {
        let groups: Vec<(String, Vec<f64>)> = results
            .iter()
            .map(|r| (r.arm.label(), r.scores.clone()))
            .collect();
        keras_transfer::plot::box_plot(p, "Test accuracy over repeated fits", &groups)?;
    }
    Ok(())
}
