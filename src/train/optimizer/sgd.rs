//! SGD (`keras/src/optimizers/sgd.py`): momentum and Nesterov momentum; plain SGD (the tutorial's)
//! runs through candle's own `SGD`.

use super::rule::{Rule, f, set_flag, set_num};
use super::{Optimizer, OptimizerState};
use crate::error::{Error, Result};
use crate::model::ops::Real;
use candle_core::Tensor;
use candle_nn::Optimizer as _;
use serde_json::{Value, json};

/// `SGD(momentum, nesterov)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sgd {
    pub momentum: f64,
    pub nesterov: bool,
}

impl Rule for Sgd {
    const CLASS: &'static str = "SGD";
    const KEYS: &'static [&'static str] = &["momentum", "nesterov"];

    fn keras_default() -> (Self, f32, Option<f64>) {
        let sgd = Sgd {
            momentum: 0.0,
            nesterov: false,
        };
        (sgd, 0.01, None)
    }

    fn params(&self) -> Value {
        json!({"momentum": self.momentum, "nesterov": self.nesterov})
    }

    fn set_params(&mut self, get: &dyn Fn(&str) -> Option<Value>) {
        set_num(get, "momentum", &mut self.momentum);
        set_flag(get, "nesterov", &mut self.nesterov);
    }

    fn slot_groups(&self) -> Vec<Vec<&'static str>> {
        if self.momentum != 0.0 {
            vec![vec!["momentum"]]
        } else {
            vec![]
        }
    }

    fn tfkeras2_slot_groups(&self) -> Vec<Vec<(&'static str, Option<&'static str>)>> {
        // tf.keras 2's SGD builds `m` whatever the momentum; without momentum it only ever holds
        // the last step's `-lr * g`, which the update multiplies by 0.
        vec![vec![("m", (self.momentum != 0.0).then_some("momentum"))]]
    }

    fn update<T: Real>(&self, w: &mut [T], g: &[T], s: &mut [Vec<T>], lr: T, _: T, _: &[T]) {
        if self.momentum == 0.0 {
            for (w, &g) in w.iter_mut().zip(g) {
                *w -= g * lr;
            }
            return;
        }
        let mom: T = f(self.momentum);
        let m = &mut s[0];
        for i in 0..w.len() {
            m[i] = m[i] * mom - g[i] * lr;
            if self.nesterov {
                w[i] += m[i] * mom - g[i] * lr;
            } else {
                w[i] += m[i];
            }
        }
    }

    fn describe(&self, parts: &mut Vec<String>) {
        if self.momentum != 0.0 {
            parts.push(format!("momentum {}", self.momentum));
        }
        if self.nesterov {
            parts.push("nesterov".into());
        }
    }

    fn validate(&self) -> Result<()> {
        check_momentum(self.momentum)
    }
}

/// A momentum (SGD's, RMSprop's) must lie in [0, 1].
pub(crate) fn check_momentum(momentum: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&momentum) {
        return Err(Error::invalid(
            "momentum",
            format!("must be between 0 and 1, got {momentum}"),
        ));
    }
    Ok(())
}

/// Plain SGD through candle's own (`var -= grad * lr`): the tutorial's optimizer.
pub(crate) struct CandleSgd {
    inner: candle_nn::SGD,
    iterations: u64,
    learning_rate: f64,
}

impl CandleSgd {
    /// candle's SGD on `vars` at rate `lr` (in the variables' dtype).
    pub(crate) fn new(vars: Vec<candle_core::Var>, lr: f64) -> Result<Self> {
        Ok(CandleSgd {
            inner: candle_nn::SGD::new(vars, lr)?,
            iterations: 0,
            learning_rate: lr,
        })
    }
}

impl Optimizer for CandleSgd {
    fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        self.inner.backward_step(loss)?;
        self.iterations += 1;
        Ok(())
    }

    fn state(&self, _m: usize) -> Result<OptimizerState> {
        Ok(OptimizerState {
            iterations: self.iterations,
            learning_rate: Some(self.learning_rate),
            variables: Vec::new(),
        })
    }

    fn set_state(&mut self, state: &OptimizerState) -> Result<()> {
        if !state.variables.is_empty() {
            return Err(Error::Mismatch(format!(
                "plain SGD has no state, the saved optimizer has {} variables",
                state.variables.len()
            )));
        }
        self.iterations = state.iterations;
        Ok(())
    }
}
