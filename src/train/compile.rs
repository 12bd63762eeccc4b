//! `Compile`: what Keras's `model.compile(optimizer, loss, metrics)` fixes, as a model file stores it
//! in its `training_config` and as a fit uses it.

use crate::train::{Loss, Metric, OptimizerSpec};

/// A model's compile settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Compile {
    pub optimizer: OptimizerSpec,
    pub loss: Loss,
    /// The compiled metrics in compile order (empty when compiled without metrics); `evaluate`
    /// reports each, a fit's history records the first.
    pub metrics: Vec<Metric>,
}

impl Default for Compile {
    /// The tutorial's `compile(SGD(0.01), 'categorical_crossentropy', ['accuracy'])`.
    fn default() -> Self {
        Compile {
            optimizer: OptimizerSpec::default(),
            loss: Loss::CATEGORICAL,
            metrics: vec![Metric::ACCURACY],
        }
    }
}

impl Compile {
    /// The first compiled metric, the one a fit's history records.
    pub fn metric(&self) -> Option<Metric> {
        self.metrics.first().copied()
    }

    /// `compile(optimizer)` with the tutorial's loss and metric.
    pub fn with_optimizer(optimizer: OptimizerSpec) -> Self {
        Compile {
            optimizer,
            ..Compile::default()
        }
    }

    /// The one line every run prints: `optimizer Adam (lr 0.001), loss categorical_crossentropy`.
    pub fn describe(&self) -> String {
        format!(
            "optimizer {}, loss {}",
            self.optimizer.describe(),
            self.loss.describe()
        )
    }
}
