//! The table of optimizers, keyed by Keras class name: `OptimizerKind` (one variant per optimizer
//! file), the `each!` dispatch to its `Rule`, and `OPTIMIZERS` with Keras 3's defaults.

use super::rule::Rule;
use super::state::OptimizerState;
use super::{Adadelta, Adagrad, Adam, AdamW, Adamax, Ftrl, Lion, Nadam, RmsProp, Sgd};
use crate::error::Result;
use crate::model::ops::Real;
use serde_json::Value;

/// The optimizer class and its own hyper-parameters (Python floats, as Keras keeps them): one
/// variant per optimizer file.
#[derive(Debug, Clone, PartialEq)]
pub enum OptimizerKind {
    Sgd(Sgd),
    Adam(Adam),
    /// Adam with decoupled weight decay (`weight_decay` of the spec, default 0.004).
    AdamW(AdamW),
    RmsProp(RmsProp),
    Adagrad(Adagrad),
    Adadelta(Adadelta),
    Adamax(Adamax),
    Nadam(Nadam),
    Lion(Lion),
    Ftrl(Ftrl),
}

/// Runs `$e` with `$o` bound to the optimizer of whichever variant `$kind` is.
macro_rules! each {
    ($kind:expr, $o:ident => $e:expr) => {
        match $kind {
            OptimizerKind::Sgd($o) => $e,
            OptimizerKind::Adam($o) => $e,
            OptimizerKind::AdamW($o) => $e,
            OptimizerKind::RmsProp($o) => $e,
            OptimizerKind::Adagrad($o) => $e,
            OptimizerKind::Adadelta($o) => $e,
            OptimizerKind::Adamax($o) => $e,
            OptimizerKind::Nadam($o) => $e,
            OptimizerKind::Lion($o) => $e,
            OptimizerKind::Ftrl($o) => $e,
        }
    };
}

/// Every optimizer by Keras class name, with Keras 3's defaults (`Rule::keras_default`): the
/// optimizer, its learning rate and weight decay.
pub const OPTIMIZERS: &[(&str, fn() -> (OptimizerKind, f32, Option<f64>))] = &[
    (Sgd::CLASS, || {
        kind_of(Sgd::keras_default(), OptimizerKind::Sgd)
    }),
    (Adam::CLASS, || {
        kind_of(Adam::keras_default(), OptimizerKind::Adam)
    }),
    (AdamW::CLASS, || {
        kind_of(AdamW::keras_default(), OptimizerKind::AdamW)
    }),
    (RmsProp::CLASS, || {
        kind_of(RmsProp::keras_default(), OptimizerKind::RmsProp)
    }),
    (Adagrad::CLASS, || {
        kind_of(Adagrad::keras_default(), OptimizerKind::Adagrad)
    }),
    (Adadelta::CLASS, || {
        kind_of(Adadelta::keras_default(), OptimizerKind::Adadelta)
    }),
    (Adamax::CLASS, || {
        kind_of(Adamax::keras_default(), OptimizerKind::Adamax)
    }),
    (Nadam::CLASS, || {
        kind_of(Nadam::keras_default(), OptimizerKind::Nadam)
    }),
    (Lion::CLASS, || {
        kind_of(Lion::keras_default(), OptimizerKind::Lion)
    }),
    (Ftrl::CLASS, || {
        kind_of(Ftrl::keras_default(), OptimizerKind::Ftrl)
    }),
];

fn kind_of<R>(
    (r, lr, wd): (R, f32, Option<f64>),
    variant: fn(R) -> OptimizerKind,
) -> (OptimizerKind, f32, Option<f64>) {
    (variant(r), lr, wd)
}

/// Keras's class names, in `OPTIMIZERS` order.
pub const OPTIMIZER_CLASSES: &[&str] = &[
    Sgd::CLASS,
    Adam::CLASS,
    AdamW::CLASS,
    RmsProp::CLASS,
    Adagrad::CLASS,
    Adadelta::CLASS,
    Adamax::CLASS,
    Nadam::CLASS,
    Lion::CLASS,
    Ftrl::CLASS,
];

impl OptimizerKind {
    /// Keras's class name.
    pub fn keras_class(&self) -> &'static str {
        fn class<R: Rule>(_: &R) -> &'static str {
            R::CLASS
        }
        each!(self, o => class(o))
    }

    /// Its own `get_config` keys (after those every optimizer has).
    pub fn keys(&self) -> &'static [&'static str] {
        fn keys<R: Rule>(_: &R) -> &'static [&'static str] {
            R::KEYS
        }
        each!(self, o => keys(o))
    }

    /// Its own hyper-parameters as Keras's `get_config` lists them.
    pub fn params(&self) -> Value {
        each!(self, o => o.params())
    }

    /// Sets the hyper-parameters a config's keys give (`get`), leaving the others.
    pub fn set_params(&mut self, get: &dyn Fn(&str) -> Option<Value>) {
        each!(self, o => o.set_params(get))
    }

    pub(crate) fn slot_groups(&self) -> Vec<Vec<&'static str>> {
        each!(self, o => o.slot_groups())
    }

    pub(crate) fn tfkeras2_slot_groups(&self) -> Vec<Vec<(&'static str, Option<&'static str>)>> {
        each!(self, o => o.tfkeras2_slot_groups())
    }

    pub(crate) fn initial_slot_value(&self, slot: usize) -> f64 {
        each!(self, o => o.initial_slot_value(slot))
    }

    pub(crate) fn scalars(&self) -> &'static [(&'static str, f64)] {
        each!(self, o => o.scalars())
    }

    pub(crate) fn before_step<T: Real>(&self, scalars: &mut [T], step: T) {
        each!(self, o => o.before_step(scalars, step))
    }

    pub(crate) fn update<T: Real>(
        &self,
        w: &mut [T],
        g: &[T],
        s: &mut [Vec<T>],
        lr: T,
        step: T,
        sc: &[T],
    ) {
        each!(self, o => o.update(w, g, s, lr, step, sc))
    }

    /// Its settings worth a word in `describe`.
    pub(crate) fn describe(&self, parts: &mut Vec<String>) {
        each!(self, o => o.describe(parts))
    }

    /// Checks its own settings.
    pub(crate) fn validate(&self) -> Result<()> {
        each!(self, o => o.validate())
    }

    /// Its state variables once built on model variables `vars`: each `add_optimizer_variables`
    /// group's slots interleaved per variable, `<var>_<slot>` with the variable's shape, then its
    /// own scalars (Nadam's momentum-schedule product `variable`).
    pub(crate) fn slot_variables(
        &self,
        vars: &[(String, Vec<usize>)],
    ) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for group in self.slot_groups() {
            for (name, shape) in vars {
                for slot in &group {
                    out.push((format!("{name}_{slot}"), shape.clone()));
                }
            }
        }
        for &(name, _) in self.scalars() {
            out.push((name.to_string(), Vec::new()));
        }
        out
    }

    /// Why `state` cannot be continued although it was read whole: its own scalars are missing,
    /// as in tf.keras 2's Nadam state, which lacks the momentum-schedule product (`None` for any
    /// other state).
    pub(crate) fn missing_for_continuing(&self, state: &OptimizerState) -> Option<String> {
        let scalars = self.scalars();
        let fresh = state.iterations == 0 && state.variables.is_empty();
        let n = state.variables.len();
        let has = n >= scalars.len()
            && state.variables[n - scalars.len()..]
                .iter()
                .zip(scalars)
                .all(|((a, _), (b, _))| a == b);
        (!fresh && !has).then(|| {
            format!(
                "its {} state has no momentum-schedule product (tf.keras 2 does not save it, and tf.keras's own \
                 continuation differs between its .h5 and .keras files), so it cannot be continued exactly; \
                 re-compile with --optimizer {} to start the optimizer afresh",
                self.keras_class(),
                self.keras_class().to_lowercase()
            )
        })
    }
}
