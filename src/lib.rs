//! keras-transfer: the Keras transfer-learning study in Rust. sklearn-exact blobs data, Keras-faithful
//! training on candle with freezing by variable selection, and Keras's `model.h5` checkpoints read and
//! written.
//!
//! Modules depend on the ones before them in this list, never on later ones:
//! `rng` -> `data` -> `model` -> `train` -> `keras` -> `checkpoint` -> `experiment` -> `plot` ->
//! `report` -> `study` (`error` and `fsutil` serve them all). The binary's `cli` is a thin layer on top.
//!
//! ```no_run
//! use keras_transfer::{Dataset, FitConfig, KerasModel, Model, ModelSpec, fit, save_model};
//! # fn main() -> keras_transfer::Result<()> {
//! let (train, test) = keras_transfer::make_blobs(&keras_transfer::BlobsParams::tutorial(1))?
//!     .data
//!     .split_at(500)?;
//! let model = Model::new(ModelSpec::tutorial(), 7)?;
//! let history = fit(&model, &train, Some(&test), &FitConfig::default(), &[7])?;
//! println!("test accuracy {}", history[0].val_accuracy.last().unwrap());
//! let cfg = FitConfig::default();
//! save_model("model.h5".as_ref(), &KerasModel::new(model.spec().clone(), model.weights()?, Some(&cfg.optimizer)))?;
//! # Ok(()) }
//! ```

pub mod checkpoint;
pub mod data;
pub mod error;
pub mod experiment;
pub mod fsutil;
pub mod keras;
pub mod model;
pub mod plot;
pub mod report;
pub mod rng;
pub mod study;
pub mod train;

pub use checkpoint::{FileKind, load_model, load_model_with_weights, save_model};
pub use data::{BlobsParams, DataSchema, Dataset, make_blobs};
pub use error::{Error, Result};
pub use experiment::compare::{Arm, ArmScores, CompareConfig, compare};
pub use experiment::finetune::{Transfer, adapt};
pub use keras::{Format, KerasModel};
pub use model::{
    Activation, DenseSpec, FloatDtype, Initializer, LayerSpec, LayerWeights, Model, ModelSpec,
};
pub use train::{
    Compile, FitConfig, History, LearningRate, Loss, LossKind, Metric, MetricKind, Optimizer,
    OptimizerKind, OptimizerSpec, OptimizerState, Score, Target, evaluate, fit,
};

/// Makes candle's CPU kernels single-threaded. On this project's tiny tensors candle's own threading
/// costs far more than it gains (docs/candle-and-crates.md#threading); parallelism belongs across
/// fits instead. Call it at the start of `main`, before any thread exists and before candle first runs.
///
/// # Safety
/// Sets a process environment variable: call it while the process is single-threaded.
pub unsafe fn single_threaded_candle() {
    // SAFETY: the caller guarantees no other thread reads or writes the environment now.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
}
