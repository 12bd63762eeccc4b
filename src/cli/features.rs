//! `keras-transfer features`: a layer's output for the rows or images of a dataset, as .npy or .csv.

use crate::cli::args::{FeaturesArgs, model_names, tell, training_means};
use crate::cli::sandbox::load_model_guarded as load_model;
use anyhow::Result;
use keras_transfer::Error;
use keras_transfer::data::csv::{ReadSpec, check_width, read_table};
use keras_transfer::data::ingest::Missing;
use keras_transfer::fsutil::write_bytes_atomic;
use keras_transfer::model::features::{extract, select_as};

pub fn run(a: FeaturesArgs) -> Result<()> {
    let ext = a
        .output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let npy = match ext.as_deref() {
        Some("npy") => true,
        Some("csv") => false,
        _ => {
            return Err(Error::invalid("--output", "must end in .npy or .csv").into());
        }
    };
    keras_transfer::fsutil::check_target(&a.output)?;
    let m = load_model(&a.model)?;
    let model = m.to_model()?;
    select_as(model.spec(), &a.layer, "--layer")?;
    let mut csv = a.csv.clone();
    csv.float64 = m.spec.dtype == keras_transfer::FloatDtype::Float64;
    csv.sample_shape = m.spec.sample_shape();
    let mut dialect = csv.dialect();
    if dialect.missing == Missing::Drop {
        return Err(Error::invalid(
            "--missing",
            "drop would leave rows out of the features; use mean or zero to fill them",
        )
        .into());
    }
    let names = model_names(&a.model, m.data.as_ref());
    training_means(&a.model, names, &mut dialect)?;
    let spec = ReadSpec {
        features: names.map(|n| n.features.as_slice()),
        ignore: &csv.ignore,
        skip_if_present: names.and_then(|n| n.label.as_deref()),
        dialect,
        sample_shape: csv.sample_shape.clone(),
        skip_bad_images: csv.skip_bad_images,
        ..ReadSpec::default()
    };
    let table = read_table(&a.input, &spec)?;
    tell(&table.notes);
    check_width(&table, m.spec.input_dim)?;
    let f = extract(&model, &table.x, &a.layer)?;
    let bytes = match npy {
        true => f.to_npy(),
        false => f.to_csv(table.row_names.as_deref())?,
    };
    write_bytes_atomic(&a.output, &bytes)?;
    Ok(())
}
