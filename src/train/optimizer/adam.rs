//! Adam (`keras/src/optimizers/adam.py`), with AMSGrad.

use super::rule::{Rule, betas_json, cast, f, set_betas, set_flag};
use crate::model::ops::Real;
use num_traits::Float;
use serde_json::Value;

/// `Adam(beta_1, beta_2, epsilon, amsgrad)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
    pub amsgrad: bool,
}

impl Adam {
    /// Keras 3's defaults.
    pub(crate) const DEFAULT: Adam = Adam {
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-7,
        amsgrad: false,
    };
}

impl Rule for Adam {
    const CLASS: &'static str = "Adam";
    const KEYS: &'static [&'static str] = &["beta_1", "beta_2", "epsilon", "amsgrad"];

    fn keras_default() -> (Self, f32, Option<f64>) {
        (Adam::DEFAULT, 0.001, None)
    }

    fn params(&self) -> Value {
        let mut p = betas_json(self.beta_1, self.beta_2, self.epsilon);
        p["amsgrad"] = Value::Bool(self.amsgrad);
        p
    }

    fn set_params(&mut self, get: &dyn Fn(&str) -> Option<Value>) {
        set_betas(get, &mut self.beta_1, &mut self.beta_2, &mut self.epsilon);
        set_flag(get, "amsgrad", &mut self.amsgrad);
    }

    fn slot_groups(&self) -> Vec<Vec<&'static str>> {
        let mut g = vec![vec!["momentum", "velocity"]];
        if self.amsgrad {
            g.push(vec!["velocity_hat"]);
        }
        g
    }

    fn tfkeras2_slot_groups(&self) -> Vec<Vec<(&'static str, Option<&'static str>)>> {
        let mut g = vec![vec![("m", Some("momentum")), ("v", Some("velocity"))]];
        if self.amsgrad {
            g.push(vec![("vhat", Some("velocity_hat"))]);
        }
        g
    }

    fn update<T: Real>(&self, w: &mut [T], g: &[T], s: &mut [Vec<T>], lr: T, step: T, _: &[T]) {
        let b1p = cast::<T>(self.beta_1).powf(step);
        let b2p = cast::<T>(self.beta_2).powf(step);
        let alpha = lr * (T::one() - b2p).sqrt() / (T::one() - b1p);
        let (one_b1, one_b2, eps): (T, T, T) =
            (f(1.0 - self.beta_1), f(1.0 - self.beta_2), f(self.epsilon));
        let (ms, rest) = s.split_at_mut(1);
        let (vs, hats) = rest.split_at_mut(1);
        let (m, v) = (&mut ms[0], &mut vs[0]);
        for i in 0..w.len() {
            let d_m = (g[i] - m[i]) * one_b1;
            m[i] += d_m;
            let d_v = (g[i] * g[i] - v[i]) * one_b2;
            v[i] += d_v;
            let vv = if self.amsgrad {
                let h = &mut hats[0];
                h[i] = Float::max(h[i], v[i]);
                h[i]
            } else {
                v[i]
            };
            w[i] -= (m[i] * alpha) / (vv.sqrt() + eps);
        }
    }

    fn describe(&self, parts: &mut Vec<String>) {
        if self.amsgrad {
            parts.push("amsgrad".into());
        }
    }
}
