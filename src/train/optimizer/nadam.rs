//! Nadam (`keras/src/optimizers/nadam.py`): its momentum-schedule product is a scalar of its own,
//! saved after the slots as `variable`.

use super::rule::{Rule, betas_json, f, set_betas};
use crate::model::ops::Real;
use serde_json::Value;

/// `Nadam(beta_1, beta_2, epsilon)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Nadam {
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
}

/// The name Keras 3 gives the momentum-schedule product among `optimizer.variables`.
pub(crate) const PRODUCT: &str = "variable";

impl Rule for Nadam {
    const CLASS: &'static str = "Nadam";
    const KEYS: &'static [&'static str] = &["beta_1", "beta_2", "epsilon"];

    fn keras_default() -> (Self, f32, Option<f64>) {
        let n = Nadam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
        };
        (n, 0.001, None)
    }

    fn params(&self) -> Value {
        betas_json(self.beta_1, self.beta_2, self.epsilon)
    }

    fn set_params(&mut self, get: &dyn Fn(&str) -> Option<Value>) {
        set_betas(get, &mut self.beta_1, &mut self.beta_2, &mut self.epsilon);
    }

    fn slot_groups(&self) -> Vec<Vec<&'static str>> {
        vec![vec!["momentum", "velocity"]]
    }

    fn tfkeras2_slot_groups(&self) -> Vec<Vec<(&'static str, Option<&'static str>)>> {
        // tf.keras 2 saves no momentum-schedule product: `missing_for_continuing` says so.
        vec![vec![("m", Some("momentum")), ("v", Some("velocity"))]]
    }

    fn scalars(&self) -> &'static [(&'static str, f64)] {
        &[(PRODUCT, 1.0)]
    }

    fn before_step<T: Real>(&self, scalars: &mut [T], step: T) {
        scalars[0] =
            scalars[0] * f(self.beta_1) * (T::one() - f::<T>(0.5) * f::<T>(0.96).powf(step));
    }

    fn update<T: Real>(&self, w: &mut [T], g: &[T], s: &mut [Vec<T>], lr: T, step: T, sc: &[T]) {
        let (b1, b2, eps): (T, T, T) = (f(self.beta_1), f(self.beta_2), f(self.epsilon));
        let (one, half): (T, T) = (T::one(), f(0.5));
        let decay: T = f(0.96);
        let u_t = b1 * (one - half * decay.powf(step));
        let u_t_1 = b1 * (one - half * decay.powf(step + one));
        let u_product_t = sc[0];
        let u_product_t_1 = u_product_t * u_t_1;
        let b2p = b2.powf(step);
        let (m, v) = s.split_at_mut(1);
        let (m, v) = (&mut m[0], &mut v[0]);
        for i in 0..w.len() {
            let d_m = (g[i] - m[i]) * (one - b1);
            m[i] += d_m;
            let d_v = (g[i] * g[i] - v[i]) * (one - b2);
            v[i] += d_v;
            let m_hat =
                (u_t_1 * m[i]) / (one - u_product_t_1) + ((one - u_t) * g[i]) / (one - u_product_t);
            let v_hat = v[i] / (one - b2p);
            w[i] -= (m_hat * lr) / (v_hat.sqrt() + eps);
        }
    }
}
