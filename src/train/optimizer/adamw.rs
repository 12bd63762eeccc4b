//! AdamW (`keras/src/optimizers/adamw.py`): Adam whose decoupled weight decay (the wrapper's,
//! `weight_decay` of the spec) defaults to 0.004.

use super::adam::Adam;
use super::rule::Rule;
use crate::model::ops::Real;
use serde_json::Value;

/// `AdamW(beta_1, beta_2, epsilon, amsgrad)`: Adam's settings and step.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamW(pub Adam);

impl Rule for AdamW {
    const CLASS: &'static str = "AdamW";
    const KEYS: &'static [&'static str] = Adam::KEYS;

    fn keras_default() -> (Self, f32, Option<f64>) {
        (AdamW(Adam::DEFAULT), 0.001, Some(0.004))
    }

    fn params(&self) -> Value {
        self.0.params()
    }

    fn set_params(&mut self, get: &dyn Fn(&str) -> Option<Value>) {
        self.0.set_params(get)
    }

    fn slot_groups(&self) -> Vec<Vec<&'static str>> {
        self.0.slot_groups()
    }

    fn tfkeras2_slot_groups(&self) -> Vec<Vec<(&'static str, Option<&'static str>)>> {
        self.0.tfkeras2_slot_groups()
    }

    fn update<T: Real>(&self, w: &mut [T], g: &[T], s: &mut [Vec<T>], lr: T, step: T, sc: &[T]) {
        self.0.update(w, g, s, lr, step, sc)
    }

    fn describe(&self, parts: &mut Vec<String>) {
        self.0.describe(parts)
    }
}
