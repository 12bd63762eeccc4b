//! `keras-transfer evaluate`: a saved model's loss and accuracy on a labelled data set, its columns
//! and labels read by the names the model keeps.

use crate::cli::args::{EvaluateArgs, model_names, tell};
use crate::cli::output::say;
use crate::cli::sandbox::load_model_guarded as load_model;
use anyhow::Result;
use keras_transfer::data::csv::{ReadSpec, check_width, read_table, sorted_classes};
use keras_transfer::{BlobsParams, Loss, make_blobs};

pub fn run(a: EvaluateArgs) -> Result<()> {
    let m = load_model(&a.model)?;
    let model = m.to_model()?;
    let data = match (&a.data, a.problem) {
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
                        // Integer labels name the model's outputs: "0".."K-1".
                        (0..m.spec.output_dim()).map(|c| c.to_string()).collect()
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
    let s =
        keras_transfer::evaluate(&model, &data, a.batch_size, Loss::CategoricalCrossentropy)?[0];
    say!("loss: {:.4}, accuracy: {:.3}", s.loss, s.accuracy);
    Ok(())
}
