//! Training as Keras 3's `fit` does it (one loop for one model or R stacked members), its losses and
//! optimizers, `evaluate`, and the per-epoch history. Freezing = the frozen layers' variables are
//! simply not handed to the optimizer.

pub mod fit;
pub mod history;
pub mod loss;
pub mod optimizer;

pub use fit::{FitConfig, Score, evaluate, fit};
pub use history::History;
pub use loss::Loss;
pub use optimizer::{Optimizer, OptimizerSpec};
