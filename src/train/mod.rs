//! Training as Keras 3's `fit` does it (one loop for one model or R stacked members), its losses,
//! metrics and optimizers, learning-rate schedules, the compile settings that tie them together,
//! `evaluate`, and the per-epoch history. Freezing = the frozen layers' variables are simply not
//! handed to the optimizer.

pub mod compile;
pub mod feature_cache;
pub mod fit;
pub mod history;
pub mod loss;
pub mod metrics;
pub mod optimizer;
pub mod schedule;

pub use compile::Compile;
pub use fit::{
    EarlyStopping, FitConfig, Score, evaluate, fit, fit_from, fit_with, validation_split,
};
pub use history::{History, MetricHistory};
pub use loss::{Loss, LossKind, Target};
pub use metrics::{Metric, MetricKind};
pub use optimizer::{Optimizer, OptimizerKind, OptimizerSpec, OptimizerState};
pub use schedule::LearningRate;
