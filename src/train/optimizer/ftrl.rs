//! Ftrl (`keras/src/optimizers/ftrl.py`).

use super::rule::{Rule, f, set_num};
use crate::error::{Error, Result};
use crate::model::ops::Real;
use serde_json::{Value, json};

/// `Ftrl(learning_rate_power, initial_accumulator_value, l1_regularization_strength,
/// l2_regularization_strength, l2_shrinkage_regularization_strength, beta)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ftrl {
    pub learning_rate_power: f64,
    pub initial_accumulator_value: f64,
    pub l1_regularization_strength: f64,
    pub l2_regularization_strength: f64,
    pub l2_shrinkage_regularization_strength: f64,
    pub beta: f64,
}

impl Rule for Ftrl {
    const CLASS: &'static str = "Ftrl";
    const KEYS: &'static [&'static str] = &[
        "learning_rate_power",
        "initial_accumulator_value",
        "l1_regularization_strength",
        "l2_regularization_strength",
        "l2_shrinkage_regularization_strength",
        "beta",
    ];

    fn keras_default() -> (Self, f32, Option<f64>) {
        let a = Ftrl {
            learning_rate_power: -0.5,
            initial_accumulator_value: 0.1,
            l1_regularization_strength: 0.0,
            l2_regularization_strength: 0.0,
            l2_shrinkage_regularization_strength: 0.0,
            beta: 0.0,
        };
        (a, 0.001, None)
    }

    fn params(&self) -> Value {
        json!({
            "learning_rate_power": self.learning_rate_power,
            "initial_accumulator_value": self.initial_accumulator_value,
            "l1_regularization_strength": self.l1_regularization_strength,
            "l2_regularization_strength": self.l2_regularization_strength,
            "l2_shrinkage_regularization_strength": self.l2_shrinkage_regularization_strength,
            "beta": self.beta,
        })
    }

    fn set_params(&mut self, get: &dyn Fn(&str) -> Option<Value>) {
        set_num(get, "learning_rate_power", &mut self.learning_rate_power);
        set_num(
            get,
            "initial_accumulator_value",
            &mut self.initial_accumulator_value,
        );
        set_num(
            get,
            "l1_regularization_strength",
            &mut self.l1_regularization_strength,
        );
        set_num(
            get,
            "l2_regularization_strength",
            &mut self.l2_regularization_strength,
        );
        set_num(
            get,
            "l2_shrinkage_regularization_strength",
            &mut self.l2_shrinkage_regularization_strength,
        );
        set_num(get, "beta", &mut self.beta);
    }

    fn slot_groups(&self) -> Vec<Vec<&'static str>> {
        vec![vec!["accumulator", "linear"]]
    }

    fn tfkeras2_slot_groups(&self) -> Vec<Vec<(&'static str, Option<&'static str>)>> {
        // tf.keras 2's Ftrl: `accumulator` and `linear` per variable, as Keras 3 (same update).
        vec![vec![
            ("accumulator", Some("accumulator")),
            ("linear", Some("linear")),
        ]]
    }

    fn initial_slot_value(&self, slot: usize) -> f64 {
        if slot == 0 {
            self.initial_accumulator_value
        } else {
            0.0
        }
    }

    fn update<T: Real>(&self, w: &mut [T], g: &[T], s: &mut [Vec<T>], lr: T, _: T, _: &[T]) {
        let (accs, rest) = s.split_at_mut(1);
        let (acc, lin) = (&mut accs[0], &mut rest[0]);
        let neg_power = f::<T>(-self.learning_rate_power);
        let l2 = f::<T>(self.l2_regularization_strength) + f::<T>(self.beta) / (f::<T>(2.0) * lr);
        let shrink2 = f::<T>(2.0 * self.l2_shrinkage_regularization_strength);
        let l1 = f::<T>(self.l1_regularization_strength);
        let two = f::<T>(2.0);
        for i in 0..w.len() {
            let grad_to_use = g[i] + shrink2 * w[i];
            let new_acc = acc[i] + g[i] * g[i];
            let new_p = new_acc.powf(neg_power);
            lin[i] += grad_to_use - ((new_p - acc[i].powf(neg_power)) / lr) * w[i];
            let quadratic = new_p / lr + two * l2;
            let clipped = num_traits::Float::min(num_traits::Float::max(lin[i], -l1), l1);
            w[i] = (clipped - lin[i]) / quadratic;
            acc[i] = new_acc;
        }
    }

    fn validate(&self) -> Result<()> {
        // Keras's own `Ftrl.__init__` refuses these.
        let checks = [
            ("learning_rate_power", self.learning_rate_power, false),
            (
                "initial_accumulator_value",
                self.initial_accumulator_value,
                true,
            ),
            (
                "l1_regularization_strength",
                self.l1_regularization_strength,
                true,
            ),
            (
                "l2_regularization_strength",
                self.l2_regularization_strength,
                true,
            ),
            (
                "l2_shrinkage_regularization_strength",
                self.l2_shrinkage_regularization_strength,
                true,
            ),
        ];
        for (key, v, nonneg) in checks {
            let ok = v.is_finite() && if nonneg { v >= 0.0 } else { v <= 0.0 };
            if !ok {
                let want = if nonneg { ">= 0" } else { "<= 0" };
                return Err(Error::invalid(
                    format!("Ftrl {key}"),
                    format!("must be a number {want}, got {v}"),
                ));
            }
        }
        Ok(())
    }
}
