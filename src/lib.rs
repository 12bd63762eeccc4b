//! keras-transfer: the Keras transfer-learning study in Rust. sklearn-exact blobs data, Keras-faithful
//! training on candle with freezing by variable selection, and Keras's `model.h5` checkpoints read and
//! written.
//!
//! Data flows one way: `rng` -> `data` -> `model` -> `train` -> `keras` -> `experiment` -> `plot`/`report`;
//! the binary's `cli` is a thin layer over these.

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
pub mod train;

pub use error::{Error, Result};

/// Makes candle's CPU kernels single-threaded. On this project's tiny tensors candle's own threading
/// costs far more than it gains (FACTS.md §5); parallelism belongs across fits instead. Call it at
/// the start of `main`, before any thread exists and before candle first runs.
///
/// # Safety
/// Sets a process environment variable: call it while the process is single-threaded.
pub unsafe fn single_threaded_candle() {
    // SAFETY: the caller guarantees no other thread reads or writes the environment now.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
}
