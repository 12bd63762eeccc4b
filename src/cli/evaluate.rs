//! `keras-transfer evaluate`: a saved model's loss and accuracy on a labelled data set, its columns
//! and labels read by the names the model keeps.

use crate::cli::args::{
    EvaluateArgs, class_list, model_names, tell, training_means, with_own_classes,
};
use crate::cli::output::say;
use crate::cli::sandbox::load_model_guarded as load_model;
use anyhow::Result;
use keras_transfer::data::classes::classes_for_labels;
use keras_transfer::data::csv::{ReadSpec, check_width, read_table};
use keras_transfer::data::targets::read_regression_with;
use keras_transfer::{BlobsParams, Compile, Metric, Target, make_blobs};

pub fn run(a: EvaluateArgs) -> Result<()> {
    let m = load_model(&a.model)?;
    let model = m.to_model()?;
    // The loss and metric the model was compiled with (the tutorial's when it was not).
    let compile = match m.compile() {
        Some(Ok(c)) => c,
        // The file's problem (exit 3), not the command line's.
        Some(Err(e)) => anyhow::bail!(keras_transfer::Error::Unsupported {
            path: a.model.clone(),
            found: format!("compiled with {e}, which keras-transfer cannot evaluate"),
        }),
        None => Compile::default(),
    };
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
            if compile.loss.target() == Target::Numeric {
                let (data, _, notes) = read_regression_with(path, None, &spec)?;
                tell(&notes);
                check_width_of(&data, path, m.spec.input_dim)?;
                data
            } else {
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
    let metric = compile
        .metric
        .unwrap_or_else(|| Metric::default_for(compile.loss));
    let s = keras_transfer::train::fit::evaluate_with(
        &model,
        &data,
        a.batch_size,
        compile.loss,
        Some(metric),
    )?[0];
    say!("loss: {:.4}, {}: {:.3}", s.loss, metric.key, s.accuracy);
    Ok(())
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
