//! Training as Keras 3's `fit` does it (minibatch SGD on softmax cross-entropy, per-epoch history),
//! plus `evaluate`. Freezing = the frozen layers' variables are simply not handed to the optimizer.

pub mod ensemble;
pub mod fit;
pub mod history;

pub use fit::{FitConfig, Score, evaluate, fit};
pub use history::History;
