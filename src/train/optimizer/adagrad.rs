//! Adagrad (`keras/src/optimizers/adagrad.py`).

use super::rule::{Rule, f, set_num};
use crate::model::ops::Real;
use serde_json::{Value, json};

/// `Adagrad(initial_accumulator_value, epsilon)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Adagrad {
    pub initial_accumulator_value: f64,
    pub epsilon: f64,
}

impl Rule for Adagrad {
    const CLASS: &'static str = "Adagrad";
    const KEYS: &'static [&'static str] = &["initial_accumulator_value", "epsilon"];

    fn keras_default() -> (Self, f32, Option<f64>) {
        let a = Adagrad {
            initial_accumulator_value: 0.1,
            epsilon: 1e-7,
        };
        (a, 0.001, None)
    }

    fn params(&self) -> Value {
        json!({"initial_accumulator_value": self.initial_accumulator_value, "epsilon": self.epsilon})
    }

    fn set_params(&mut self, get: &dyn Fn(&str) -> Option<Value>) {
        set_num(
            get,
            "initial_accumulator_value",
            &mut self.initial_accumulator_value,
        );
        set_num(get, "epsilon", &mut self.epsilon);
    }

    fn slot_groups(&self) -> Vec<Vec<&'static str>> {
        vec![vec!["accumulator"]]
    }

    fn tfkeras2_slot_groups(&self) -> Vec<Vec<(&'static str, Option<&'static str>)>> {
        vec![vec![("accumulator", Some("accumulator"))]]
    }

    fn initial_slot_value(&self, _slot: usize) -> f64 {
        self.initial_accumulator_value
    }

    fn update<T: Real>(&self, w: &mut [T], g: &[T], s: &mut [Vec<T>], lr: T, _: T, _: &[T]) {
        let (acc, eps) = (&mut s[0], f::<T>(self.epsilon));
        for i in 0..w.len() {
            acc[i] += g[i] * g[i];
            w[i] -= (lr * g[i]) / (acc[i] + eps).sqrt();
        }
    }
}
