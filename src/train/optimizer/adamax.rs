//! Adamax (`keras/src/optimizers/adamax.py`).

use super::rule::{Rule, betas_json, f, set_betas};
use crate::model::ops::Real;
use num_traits::Float;
use serde_json::Value;

/// `Adamax(beta_1, beta_2, epsilon)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Adamax {
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
}

impl Rule for Adamax {
    const CLASS: &'static str = "Adamax";
    const KEYS: &'static [&'static str] = &["beta_1", "beta_2", "epsilon"];

    fn keras_default() -> (Self, f32, Option<f64>) {
        let a = Adamax {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
        };
        (a, 0.001, None)
    }

    fn params(&self) -> Value {
        betas_json(self.beta_1, self.beta_2, self.epsilon)
    }

    fn set_params(&mut self, get: &dyn Fn(&str) -> Option<Value>) {
        set_betas(get, &mut self.beta_1, &mut self.beta_2, &mut self.epsilon);
    }

    fn slot_groups(&self) -> Vec<Vec<&'static str>> {
        vec![vec!["momentum", "norm"]]
    }

    fn tfkeras2_slot_groups(&self) -> Vec<Vec<(&'static str, Option<&'static str>)>> {
        vec![vec![("m", Some("momentum")), ("u", Some("norm"))]]
    }

    fn update<T: Real>(&self, w: &mut [T], g: &[T], s: &mut [Vec<T>], lr: T, step: T, _: &[T]) {
        let b1p = f::<T>(self.beta_1).powf(step);
        let (one_b1, b2, eps): (T, T, T) = (f(1.0 - self.beta_1), f(self.beta_2), f(self.epsilon));
        let (m, u) = s.split_at_mut(1);
        let (m, u) = (&mut m[0], &mut u[0]);
        for i in 0..w.len() {
            let d_m = (g[i] - m[i]) * one_b1;
            m[i] += d_m;
            u[i] = Float::max(b2 * u[i], g[i].abs());
            w[i] -= (lr * m[i]) / ((T::one() - b1p) * (u[i] + eps));
        }
    }
}
