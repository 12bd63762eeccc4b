//! `keras-transfer evaluate`: a saved model's loss and accuracy on a labelled data set, its columns
//! and labels read by the names the model keeps.

use crate::cli::args::{EvaluateArgs, model_names, tell};
use crate::cli::output::say;
use crate::cli::sandbox::load_model_guarded as load_model;
use anyhow::Result;
use keras_transfer::data::csv::{ReadSpec, check_width, read_table, sorted_classes};
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
    let data = match (&a.data, a.problem) {
        (Some(path), _) if compile.loss.target() == Target::Numeric => {
            keras_transfer::data::targets::read_regression(path, a.label.as_deref())?
        }
        (Some(path), _) => {
            let names = model_names(&a.model, m.data.as_ref());
            let spec = ReadSpec {
                label: a
                    .label
                    .as_deref()
                    .or(names.and_then(|n| n.label.as_deref())),
                labelled: true,
                features: names.map(|n| n.features.as_slice()),
                ignore: &a.csv.ignore,
                dialect: a.csv.dialect(),
                ..ReadSpec::default()
            };
            let table = read_table(path, &spec)?;
            tell(&table.notes);
            check_width(&table, m.spec.input_dim)?;
            let classes = match names {
                Some(n) if !n.classes.is_empty() => n.classes.clone(),
                _ => {
                    let own = table.distinct_labels();
                    if own.iter().all(|c| c.parse::<i64>().is_ok()) {
                        // Integer labels name the model's outputs: "0".."K-1"; a binary
                        // head's one sigmoid unit stands for the two classes 0 and 1.
                        let k = if compile.loss.target() == Target::Binary {
                            2
                        } else {
                            m.spec.output_dim()
                        };
                        (0..k).map(|c| c.to_string()).collect()
                    } else {
                        sorted_classes(&own)
                    }
                }
            };
            table.into_dataset(classes, "")?
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
