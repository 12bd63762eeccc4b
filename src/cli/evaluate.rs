//! `keras-transfer evaluate`: a saved model's loss and accuracy on a labelled data set.

use crate::cli::args::EvaluateArgs;
use crate::cli::output::say;
use crate::cli::sandbox::load_model_guarded as load_model;
use anyhow::Result;
use keras_transfer::data::csv::{LabelSpec, read_labelled};
use keras_transfer::{BlobsParams, Loss, make_blobs};

pub fn run(a: EvaluateArgs) -> Result<()> {
    let m = load_model(&a.model)?;
    let model = m.to_model()?;
    let data = match (&a.data, a.problem) {
        (Some(path), _) => {
            let column = a.label.as_deref();
            let labelled = read_labelled(
                path,
                &LabelSpec {
                    column,
                    classes: None,
                },
            )?;
            if labelled
                .class_names
                .iter()
                .all(|c| c.parse::<i64>().is_ok())
            {
                // Integer labels name the model's outputs: "0".."K-1".
                let classes: Vec<String> =
                    (0..m.spec.output_dim()).map(|c| c.to_string()).collect();
                read_labelled(
                    path,
                    &LabelSpec {
                        column,
                        classes: Some(&classes),
                    },
                )?
            } else {
                labelled
            }
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
