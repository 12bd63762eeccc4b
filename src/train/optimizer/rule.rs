//! What one Keras optimizer is, in its own file: its config keys and Keras's defaults, its slots
//! with Keras's variable names (Keras 3's and tf.keras 2's), and its update step in Keras's float
//! operation order. `mod.rs` keys the implementations by Keras class name.

use crate::error::Result;
use crate::model::ops::Real;
use candle_core::WithDType;
use serde_json::Value;

/// One Keras optimizer's own part. Clipping and weight decay, common to all, are the wrapper's
/// (`wrapper.rs`); the loop over variables and the state bookkeeping are the engine's.
pub(crate) trait Rule: Clone {
    /// Keras's class name (`SGD`, `Adam`, ...).
    const CLASS: &'static str;
    /// Its own `get_config` keys (after those every optimizer has).
    const KEYS: &'static [&'static str];

    /// Keras 3's defaults: the optimizer, its learning rate and weight decay.
    fn keras_default() -> (Self, f32, Option<f64>);

    /// Its own hyper-parameters as Keras's `get_config` lists them.
    fn params(&self) -> Value;

    /// Sets the hyper-parameters that `get` (a config's keys) gives as numbers or booleans.
    fn set_params(&mut self, get: &dyn Fn(&str) -> Option<Value>);

    /// Keras 3's `add_optimizer_variables` calls in order, each with its slot names: a group's
    /// slots are interleaved per model variable (`dense_kernel_momentum`). A slot's index in the
    /// engine's state is its place in the flattened groups.
    fn slot_groups(&self) -> Vec<Vec<&'static str>>;

    /// tf.keras 2's `add_variable_from_reference` calls in order: each slot's tf.keras 2 name and
    /// the Keras 3 slot it is, `None` for one that plays no part in the update.
    fn tfkeras2_slot_groups(&self) -> Vec<Vec<(&'static str, Option<&'static str>)>>;

    /// The value slot `slot` (its place in the flattened groups) starts at.
    fn initial_slot_value(&self, _slot: usize) -> f64 {
        0.0
    }

    /// Scalars of the optimizer's own, saved after the slots (`(name, initial value)`).
    fn scalars(&self) -> &'static [(&'static str, f64)] {
        &[]
    }

    /// Updates the scalars once per step, before any variable (`step` = iterations + 1).
    fn before_step<T: Real>(&self, _scalars: &mut [T], _step: T) {}

    /// Keras's `update_step` for one variable's values `w`, gradient `g` and slots `s`.
    fn update<T: Real>(
        &self,
        w: &mut [T],
        g: &[T],
        s: &mut [Vec<T>],
        lr: T,
        step: T,
        scalars: &[T],
    );

    /// Its settings worth a word in `describe` (`momentum 0.9`, `amsgrad`).
    fn describe(&self, _parts: &mut Vec<String>) {}

    /// Checks its own settings.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// `T(a)`: how Keras casts a Python float hyper-parameter into an op of the variable's dtype.
pub(crate) fn f<T: Real>(a: f64) -> T {
    <T as WithDType>::from_f64(a)
}

/// Keras's `ops.cast(python_float, variable.dtype)`: TensorFlow makes a float32 constant of the
/// Python float first, so a float64 model sees the float32-rounded value widened (Adam's
/// `beta_1_power`; the `1 - self.beta_1` of its updates stays the exact double, as `f`).
pub(crate) fn cast<T: Real>(a: f64) -> T {
    f(f64::from(a as f32))
}

/// Sets `*x` to the number `get(key)` gives, if any.
pub(crate) fn set_num(get: &dyn Fn(&str) -> Option<Value>, key: &str, x: &mut f64) {
    if let Some(v) = get(key).and_then(|v| v.as_f64()) {
        *x = v;
    }
}

/// Sets `*x` to the boolean `get(key)` gives, if any.
pub(crate) fn set_flag(get: &dyn Fn(&str) -> Option<Value>, key: &str, x: &mut bool) {
    if let Some(v) = get(key).and_then(|v| v.as_bool()) {
        *x = v;
    }
}

/// The `beta_1`, `beta_2`, `epsilon` of Adamax and Nadam (and Adam's first three), as
/// `get_config` lists them.
pub(crate) fn betas_json(beta_1: f64, beta_2: f64, epsilon: f64) -> Value {
    serde_json::json!({"beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon})
}

/// Sets `beta_1`, `beta_2`, `epsilon` from a config (`set_num` each).
pub(crate) fn set_betas(
    get: &dyn Fn(&str) -> Option<Value>,
    beta_1: &mut f64,
    beta_2: &mut f64,
    epsilon: &mut f64,
) {
    set_num(get, "beta_1", beta_1);
    set_num(get, "beta_2", beta_2);
    set_num(get, "epsilon", epsilon);
}
