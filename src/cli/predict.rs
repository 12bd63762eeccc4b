//! `keras-transfer predict`: a saved model's class probabilities for the rows of a CSV file.

use crate::cli::args::PredictArgs;
use crate::cli::output::say;
use crate::cli::sandbox::load_model_guarded as load_model;
use anyhow::Result;
use keras_transfer::data::csv::{read_features, write_table};

pub fn run(a: PredictArgs) -> Result<()> {
    if let Some(out) = &a.output {
        keras_transfer::fsutil::check_target(out)?;
    }
    let m = load_model(&a.model)?;
    let model = m.to_model()?;
    let (x, _rows) = read_features(&a.input, m.spec.input_dim, a.label.as_deref())?;
    let p = model.predict(&x)?;
    let header: Vec<String> = (0..m.spec.output_dim()).map(|k| format!("p{k}")).collect();
    match &a.output {
        Some(out) => write_table(out, &header, &p)?,
        None => {
            say!("{}", header.join(","));
            for row in p.chunks(header.len()) {
                say!(
                    "{}",
                    row.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
        }
    }
    Ok(())
}
