//! Adadelta (`keras/src/optimizers/adadelta.py`).

use super::rule::{Rule, f, set_num};
use crate::model::ops::Real;
use serde_json::{Value, json};

/// `Adadelta(rho, epsilon)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Adadelta {
    pub rho: f64,
    pub epsilon: f64,
}

impl Rule for Adadelta {
    const CLASS: &'static str = "Adadelta";
    const KEYS: &'static [&'static str] = &["rho", "epsilon"];

    fn keras_default() -> (Self, f32, Option<f64>) {
        let a = Adadelta {
            rho: 0.95,
            epsilon: 1e-7,
        };
        (a, 0.001, None)
    }

    fn params(&self) -> Value {
        json!({"rho": self.rho, "epsilon": self.epsilon})
    }

    fn set_params(&mut self, get: &dyn Fn(&str) -> Option<Value>) {
        set_num(get, "rho", &mut self.rho);
        set_num(get, "epsilon", &mut self.epsilon);
    }

    fn slot_groups(&self) -> Vec<Vec<&'static str>> {
        vec![vec!["accumulated_grad", "accumulated_delta_var"]]
    }

    fn tfkeras2_slot_groups(&self) -> Vec<Vec<(&'static str, Option<&'static str>)>> {
        vec![vec![
            ("accumulated_grad", Some("accumulated_grad")),
            ("accumulated_delta_var", Some("accumulated_delta_var")),
        ]]
    }

    fn update<T: Real>(&self, w: &mut [T], g: &[T], s: &mut [Vec<T>], lr: T, _: T, _: &[T]) {
        let (r, one_r, eps): (T, T, T) = (f(self.rho), f(1.0 - self.rho), f(self.epsilon));
        let (ag, ad) = s.split_at_mut(1);
        let (ag, ad) = (&mut ag[0], &mut ad[0]);
        for i in 0..w.len() {
            ag[i] = r * ag[i] + one_r * (g[i] * g[i]);
            let delta = -(((ad[i] + eps).sqrt() * g[i]) / (ag[i] + eps).sqrt());
            ad[i] = r * ad[i] + one_r * (delta * delta);
            w[i] += lr * delta;
        }
    }
}
