//! Optimizers: built from exactly the variables they may change (a frozen layer's are simply not
//! handed over), each owning its own state. Today: Keras's plain SGD.

use crate::error::{Error, Result};
use candle_core::{Tensor, Var};
use candle_nn::Optimizer as _;

/// An optimizer's Keras configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum OptimizerSpec {
    /// `keras.optimizers.SGD(learning_rate)` without momentum: `w -= lr * g` in float32.
    Sgd { learning_rate: f32 },
}

impl Default for OptimizerSpec {
    /// The tutorial's `SGD(learning_rate=0.01)`.
    fn default() -> Self {
        OptimizerSpec::Sgd {
            learning_rate: 0.01,
        }
    }
}

/// One training step's update of the variables an optimizer was built with.
pub trait Optimizer {
    /// Back-propagates `loss` (a `[R]` tensor of per-member losses: member r's gradient comes from its
    /// own loss only) and updates the variables.
    fn backward_step(&mut self, loss: &Tensor) -> Result<()>;
}

impl OptimizerSpec {
    /// Keras's class name of the optimizer.
    pub fn keras_class(&self) -> &'static str {
        match self {
            OptimizerSpec::Sgd { .. } => "SGD",
        }
    }

    /// The learning rate (float32, as Keras keeps it).
    pub fn learning_rate(&self) -> f32 {
        match self {
            OptimizerSpec::Sgd { learning_rate } => *learning_rate,
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        let lr = self.learning_rate();
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::invalid(
                "--lr",
                format!("must be a positive number, got {lr}"),
            ));
        }
        Ok(())
    }

    /// The optimizer for `vars`, with fresh state.
    pub fn build(&self, vars: Vec<Var>) -> Result<Box<dyn Optimizer>> {
        self.validate()?;
        Ok(match self {
            OptimizerSpec::Sgd { learning_rate } => {
                Box::new(Sgd(candle_nn::SGD::new(vars, f64::from(*learning_rate))?))
            }
        })
    }
}

/// Plain SGD through candle's own (`var -= grad * lr`).
struct Sgd(candle_nn::SGD);

impl Optimizer for Sgd {
    fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        Ok(self.0.backward_step(loss)?)
    }
}
