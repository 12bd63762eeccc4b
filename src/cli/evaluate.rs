//! `keras-transfer evaluate`: a saved model's loss and compiled metrics on a labelled data set, its columns
//! and labels read by the names the model keeps.

use crate::cli::args::{
    EvaluateArgs, class_list, loss_flag, metrics_flag, model_names, tell, training_means,
};
use crate::cli::output::{say, tell_err};
use crate::cli::sandbox::load_model_guarded as load_model;
use anyhow::Result;
use keras_transfer::data::classes::{classes_for_labels, with_own_classes};
use keras_transfer::data::csv::{ReadSpec, check_width, read_table};
use keras_transfer::data::targets::{
    label_columns, read_regression_with, read_target_columns_with, several_labels,
};
use keras_transfer::train::history::progbar_number;
use keras_transfer::{BlobsParams, Compile, Metric, Target, make_blobs};

pub fn run(a: EvaluateArgs) -> Result<()> {
    let m = load_model(&a.model)?;
    let model = m.to_model()?;
    let compile = compiled_as(&a, m.compile())?;
    let given = class_list(a.classes.as_deref())?;
    let mut csv = a.csv.clone();
    csv.float64 = m.spec.dtype == keras_transfer::FloatDtype::Float64;
    csv.sample_shape = m.spec.sample_shape();
    let data = match (&a.data, a.problem) {
        (Some(path), _) => {
            let names = model_names(&a.model, m.data.as_ref());
            let mut dialect = csv.dialect();
            training_means(&a.model, names, &mut dialect)?;
            let spec = ReadSpec {
                label: a
                    .label
                    .as_deref()
                    .or(names.and_then(|n| n.label.as_deref())),
                labelled: true,
                features: names.map(|n| n.features.as_slice()),
                ignore: &csv.ignore,
                dialect,
                sample_shape: csv.sample_shape.clone(),
                skip_bad_images: csv.skip_bad_images,
                ..ReadSpec::default()
            };
            if let Some(text) = spec.label.filter(|l| several_labels(Some(l))) {
                let (data, _, notes) =
                    read_target_columns_with(path, None, &spec, &label_columns(text))?;
                tell(&notes);
                check_width_of(&data, path, m.spec.input_dim)?;
                data
            } else if compile.loss.target() == Target::Numeric {
                let (data, _, notes) = read_regression_with(path, None, &spec)?;
                tell(&notes);
                check_width_of(&data, path, m.spec.input_dim)?;
                data
            } else {
                // An image folder's rows are decoded batch by batch as they are evaluated.
                let spec = ReadSpec {
                    stream_images: true,
                    ..spec
                };
                let table = read_table(path, &spec)?;
                tell(&table.notes);
                check_width(&table, m.spec.input_dim)?;
                // A binary head's one sigmoid unit stands for the two classes 0 and 1.
                let outputs = if compile.loss.target() == Target::Binary {
                    2
                } else {
                    m.spec.output_dim()
                };
                let stored = names.map_or(&[][..], |n| n.classes.as_slice());
                let given = with_own_classes(given, table.classes.as_deref(), path)?;
                let classes =
                    classes_for_labels(&table, &a.model, stored, given.as_deref(), outputs)?;
                table.into_dataset(classes, "")?
            }
        }
        (None, seed) => {
            make_blobs(&BlobsParams::tutorial(seed.unwrap_or(1)))?
                .data
                .split_at(500)?
                .1
        }
    };
    let e = keras_transfer::train::fit::evaluate_all(
        &model,
        &data,
        a.batch_size,
        compile.loss,
        &compile.metrics,
    )?
    .remove(0);
    // Keras's `evaluate` order (the loss, then the metrics in compile order), with the digits its
    // progress bar prints.
    let mut line = format!("loss: {}", progbar_number(e.loss));
    for (k, v) in &e.metrics {
        line.push_str(&format!(", {k}: {}", progbar_number(*v)));
    }
    say!("{line}");
    Ok(())
}

/// The loss and metrics to evaluate with: the file's compile settings, with `--loss` and
/// `--metrics` in place of what they name, as `model.compile(loss=..., metrics=[...])` before
/// `evaluate` would; a note on stderr says what the flags replaced. A file compiled with settings
/// this tool cannot apply needs `--loss`; a file not compiled is evaluated with the tutorial's
/// loss unless `--loss` names one (a note says so).
fn compiled_as(
    a: &EvaluateArgs,
    file: Option<std::result::Result<Compile, String>>,
) -> Result<Compile> {
    let flag_loss = loss_flag(a.loss.as_deref())?;
    let model = a.model.display();
    let base = match file {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) if flag_loss.is_some() => {
            tell_err!(
                "note: {model} is compiled with {e}, which is not supported: evaluating with --loss and --metrics"
            );
            None
        }
        // The file's problem (exit 3), not the command line's.
        Some(Err(e)) => anyhow::bail!(keras_transfer::Error::Unsupported {
            path: a.model.clone(),
            found: format!(
                "compiled with {e}, which keras-transfer cannot evaluate; evaluate with --loss NAME (and --metrics)"
            ),
        }),
        None => {
            if flag_loss.is_none() {
                tell_err!(
                    "note: {model} is not compiled: evaluating with the loss categorical_crossentropy (--loss chooses another)"
                );
            }
            None
        }
    };
    let loss = flag_loss
        .or(base.as_ref().map(|c| c.loss))
        .unwrap_or(Compile::default().loss);
    let metrics = match (&a.metrics, &base) {
        (Some(list), _) => metrics_flag(list)?,
        // The file's metrics by name, as a re-compile with only a new loss resolves them.
        (None, Some(c)) if c.loss == loss => c.metrics.clone(),
        (None, Some(c)) => c
            .metrics
            .iter()
            .map(|m| Metric::named(m.key).unwrap_or(*m))
            .collect(),
        (None, None) => vec![Metric::default_for(loss)],
    };
    if let Some(c) = &base {
        if c.loss != loss {
            tell_err!(
                "note: {model} is compiled with the loss {}: evaluating with --loss {} instead, as model.compile(loss=...) would",
                c.loss.describe(),
                loss.describe()
            );
        }
        let keys = |v: &[Metric]| v.iter().map(|m| m.key).collect::<Vec<_>>().join(", ");
        if a.metrics.is_some() && keys(&c.metrics) != keys(&metrics) {
            tell_err!(
                "note: {model} is compiled with the metrics [{}]: reporting --metrics {} instead, as model.compile(metrics=[...]) would",
                keys(&c.metrics),
                keys(&metrics)
            );
        }
    }
    Ok(Compile {
        loss,
        metrics,
        ..base.unwrap_or_default()
    })
}

/// Refuses a regression data set whose feature count is not the model's input count.
fn check_width_of(
    data: &keras_transfer::Dataset,
    path: &std::path::Path,
    width: usize,
) -> Result<()> {
    if data.n_features != width {
        anyhow::bail!(keras_transfer::Error::Csv {
            path: path.to_path_buf(),
            reason: format!(
                "has {} feature columns, the model expects {width} inputs",
                data.n_features
            ),
        });
    }
    Ok(())
}
