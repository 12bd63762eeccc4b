//! `keras-transfer blobs`: a make_blobs problem as CSV, as a scatter plot, or described.

use crate::cli::args::BlobsArgs;
use crate::cli::output::say;
use anyhow::Result;
use keras_transfer::data::csv::write_dataset;
use keras_transfer::{BlobsParams, make_blobs};

pub fn run(a: BlobsArgs) -> Result<()> {
    let params = BlobsParams {
        n_samples: a.samples,
        centers: a.centers,
        n_features: a.features,
        cluster_std: a.std,
        center_box: (-10.0, 10.0),
        shuffle: !a.no_shuffle,
        random_state: a.seed,
    };
    let b = make_blobs(&params)?;
    if let Some(path) = &a.csv {
        write_dataset(path, &b.data)?;
    }
    if let Some(path) = &a.plot {
        keras_transfer::plot::plot_problems(
            path,
            &[(format!("Blobs problem (random_state={})", a.seed), &b.data)],
        )?;
    }
    if a.csv.is_none() && a.plot.is_none() {
        say!(
            "make_blobs(n_samples={}, centers={}, n_features={}, cluster_std={}, random_state={})",
            a.samples,
            a.centers,
            a.features,
            a.std,
            a.seed
        );
        for (c, count) in b.data.class_counts().iter().enumerate() {
            let center = &b.centers[c * a.features..(c + 1) * a.features];
            say!("  class {c}: {count} samples around {center:?}");
        }
    }
    Ok(())
}
