//! RMSprop (`keras/src/optimizers/rmsprop.py`), with momentum and centering.

use super::rule::{Rule, f, set_flag, set_num};
use super::sgd::check_momentum;
use crate::error::Result;
use crate::model::ops::Real;
use serde_json::{Value, json};

/// `RMSprop(rho, momentum, epsilon, centered)`.
#[derive(Debug, Clone, PartialEq)]
pub struct RmsProp {
    pub rho: f64,
    pub momentum: f64,
    pub epsilon: f64,
    pub centered: bool,
}

impl Rule for RmsProp {
    const CLASS: &'static str = "RMSprop";
    const KEYS: &'static [&'static str] = &["rho", "momentum", "epsilon", "centered"];

    fn keras_default() -> (Self, f32, Option<f64>) {
        let r = RmsProp {
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
        };
        (r, 0.001, None)
    }

    fn params(&self) -> Value {
        json!({"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon, "centered": self.centered})
    }

    fn set_params(&mut self, get: &dyn Fn(&str) -> Option<Value>) {
        set_num(get, "rho", &mut self.rho);
        set_num(get, "momentum", &mut self.momentum);
        set_num(get, "epsilon", &mut self.epsilon);
        set_flag(get, "centered", &mut self.centered);
    }

    fn slot_groups(&self) -> Vec<Vec<&'static str>> {
        let mut g = vec![vec!["velocity"]];
        if self.momentum > 0.0 {
            g.push(vec!["momentum"]);
        }
        if self.centered {
            g.push(vec!["average_gradient"]);
        }
        g
    }

    fn tfkeras2_slot_groups(&self) -> Vec<Vec<(&'static str, Option<&'static str>)>> {
        self.slot_groups()
            .into_iter()
            .map(|g| g.into_iter().map(|s| (s, Some(s))).collect())
            .collect()
    }

    fn update<T: Real>(&self, w: &mut [T], g: &[T], s: &mut [Vec<T>], lr: T, _: T, _: &[T]) {
        let (r, one_r, eps, mom): (T, T, T, T) = (
            f(self.rho),
            f(1.0 - self.rho),
            f(self.epsilon),
            f(self.momentum),
        );
        let (vel, rest) = s.split_at_mut(1);
        let vel = &mut vel[0];
        let (moms, rest) = rest.split_at_mut(usize::from(self.momentum > 0.0));
        for i in 0..w.len() {
            vel[i] = r * vel[i] + one_r * (g[i] * g[i]);
            let denom = if self.centered {
                let a = &mut rest[0];
                a[i] = r * a[i] + one_r * g[i];
                vel[i] - a[i] * a[i] + eps
            } else {
                vel[i] + eps
            };
            let inc = (lr * g[i]) / denom.sqrt();
            if self.momentum > 0.0 {
                let mo = &mut moms[0];
                mo[i] = mom * mo[i] + inc;
                w[i] -= mo[i];
            } else {
                w[i] -= inc;
            }
        }
    }

    fn describe(&self, parts: &mut Vec<String>) {
        if self.momentum != 0.0 {
            parts.push(format!("momentum {}", self.momentum));
        }
        if self.centered {
            parts.push("centered".into());
        }
    }

    fn validate(&self) -> Result<()> {
        check_momentum(self.momentum)
    }
}
