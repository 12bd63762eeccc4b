//! Lion (`keras/src/optimizers/lion.py`).

use super::rule::{Rule, f, set_num};
use crate::model::ops::Real;
use serde_json::{Value, json};

/// `Lion(beta_1, beta_2)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lion {
    pub beta_1: f64,
    pub beta_2: f64,
}

impl Rule for Lion {
    const CLASS: &'static str = "Lion";
    const KEYS: &'static [&'static str] = &["beta_1", "beta_2"];

    fn keras_default() -> (Self, f32, Option<f64>) {
        let l = Lion {
            beta_1: 0.9,
            beta_2: 0.99,
        };
        (l, 0.001, None)
    }

    fn params(&self) -> Value {
        json!({"beta_1": self.beta_1, "beta_2": self.beta_2})
    }

    fn set_params(&mut self, get: &dyn Fn(&str) -> Option<Value>) {
        set_num(get, "beta_1", &mut self.beta_1);
        set_num(get, "beta_2", &mut self.beta_2);
    }

    fn slot_groups(&self) -> Vec<Vec<&'static str>> {
        vec![vec!["momentum"]]
    }

    fn tfkeras2_slot_groups(&self) -> Vec<Vec<(&'static str, Option<&'static str>)>> {
        vec![vec![("m", Some("momentum"))]]
    }

    fn update<T: Real>(&self, w: &mut [T], g: &[T], s: &mut [Vec<T>], lr: T, _: T, _: &[T]) {
        let (b1, b2): (T, T) = (f(self.beta_1), f(self.beta_2));
        let m = &mut s[0];
        for i in 0..w.len() {
            w[i] -= lr * sign(m[i] * b1 + g[i] * (T::one() - b1));
            m[i] = m[i] * b2 + g[i] * (T::one() - b2);
        }
    }
}

/// TensorFlow's `sign` (0 at 0, unlike `f32::signum`).
fn sign<T: Real>(x: T) -> T {
    if x > T::zero() {
        T::one()
    } else if x < T::zero() {
        -T::one()
    } else {
        T::zero()
    }
}
