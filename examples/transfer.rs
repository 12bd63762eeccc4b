//! The tutorial's transfer learning through the library, without the command line: train an MLP on
//! blobs problem 1, save it as Keras `model.h5`, load it back, freeze its first hidden layer,
//! fine-tune it on problem 2, and save the result.
//!
//! ```sh
//! cargo run --release --example transfer [OUT_DIR]
//! ```

use keras_transfer::{
    BlobsParams, FitConfig, KerasModel, Model, ModelSpec, Transfer, adapt, evaluate, fit,
    load_model, make_blobs, save_model,
};
use std::path::PathBuf;

fn main() -> keras_transfer::Result<()> {
    // SAFETY: first statement of the process, no other thread exists yet.
    unsafe { keras_transfer::single_threaded_candle() };
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&out).map_err(|e| keras_transfer::Error::io(&out, e))?;

    // Problem 1: the tutorial's 2-5-5-3 MLP, SGD 0.01, 100 shuffled epochs of batches of 32.
    let (train1, test1) = make_blobs(&BlobsParams::tutorial(1))?.data.split_at(500)?;
    let cfg = FitConfig::default();
    let seed = 7;
    let model = Model::new(ModelSpec::tutorial(), seed)?;
    fit(&model, &train1, None, &cfg, &[seed])?;
    let acc1 = evaluate(&model, &test1, cfg.batch_size, cfg.loss)?[0].accuracy;
    println!("Problem 1 test accuracy: {acc1:.3}");

    // Saved as Keras's model.h5 (Python Keras's load_model opens it), then read back.
    let path = out.join("model.h5");
    let saved = KerasModel::new(model.spec().clone(), model.weights()?, Some(&cfg.optimizer));
    save_model(&path, &saved)?;
    let base = load_model(&path)?;

    // Problem 2: the first hidden layer frozen (its variables are not handed to the optimizer).
    let (train2, test2) = make_blobs(&BlobsParams::tutorial(2))?.data.split_at(500)?;
    let transfer = Transfer {
        freeze: 1,
        ..Transfer::default()
    };
    let tuned = adapt(&base, &transfer, train2.n_features, train2.n_classes, seed)?;
    let frozen_before = tuned.weights()?[0].clone();
    let history = fit(&tuned, &train2, Some(&test2), &cfg, &[seed])?;
    assert_eq!(
        tuned.weights()?[0],
        frozen_before,
        "the frozen layer did not move"
    );
    println!(
        "Problem 2 with transfer (first layer frozen): test accuracy {:.3} after {} epochs",
        history[0].val_accuracy.last().copied().unwrap_or(0.0),
        history[0].epochs()
    );
    let out_path = out.join("model_problem2.h5");
    save_model(
        &out_path,
        &KerasModel::new(tuned.spec().clone(), tuned.weights()?, Some(&cfg.optimizer)),
    )?;
    println!("Saved {} and {}", path.display(), out_path.display());
    Ok(())
}
