//! Optimizers: built from exactly the variables they may change (a frozen layer's are simply not
//! handed over), each owning its own state. Keras 3's optimizers with their exact float32 update
//! rules (`keras/src/optimizers/*.py`), one file each (`sgd.rs`, `adam.rs`, `adamw.rs`,
//! `rmsprop.rs`, `adagrad.rs`, `adadelta.rs`, `adamax.rs`, `nadam.rs`, `lion.rs`, `ftrl.rs`: its config, its
//! slots with Keras's variable names, its step; the `Rule` of `rule.rs`), keyed here by Keras class
//! name (`OptimizerKind`, `OPTIMIZERS`); clipnorm / global_clipnorm / clipvalue and weight decay as
//! one wrapper (`wrapper.rs`) around the one update loop (`engine.rs`); tf.keras 2's slot layout
//! (`tfkeras2.rs`); learning-rate schedules. Stacked members stay independent: every norm is taken
//! per member.

use crate::error::{Error, Result};
use crate::model::ModelSpec;
use crate::train::schedule::LearningRate;
use candle_core::{DType, Var};

mod adadelta;
mod adagrad;
mod adam;
mod adamax;
mod adamw;
mod engine;
mod ftrl;
mod kind;
mod lion;
mod nadam;
mod rmsprop;
mod rule;
mod sgd;
mod state;
mod tfkeras2;
mod wrapper;

pub use adadelta::Adadelta;
pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamax::Adamax;
pub use adamw::AdamW;
pub use ftrl::Ftrl;
pub use kind::{OPTIMIZER_CLASSES, OPTIMIZERS, OptimizerKind};
pub use lion::Lion;
pub use nadam::Nadam;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;
pub use state::{Optimizer, OptimizerState};
pub use tfkeras2::{Tf2Slot, TrainableWeight};

/// An optimizer's Keras configuration: its class, learning rate (or schedule) and Keras 3's common
/// options.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerSpec {
    pub kind: OptimizerKind,
    pub learning_rate: LearningRate,
    /// Decoupled weight decay: `w -= w * weight_decay * lr` before each update.
    pub weight_decay: Option<f64>,
    /// Clip each variable's gradient to this L2 norm.
    pub clipnorm: Option<f64>,
    /// Clip all gradients together to this global L2 norm.
    pub global_clipnorm: Option<f64>,
    /// Clip each gradient value to `[-clipvalue, clipvalue]`.
    pub clipvalue: Option<f64>,
    /// The optimizer's Keras `name` (`sgd`, `adam`, ...), when the file gave one.
    pub name: Option<String>,
}

impl Default for OptimizerSpec {
    /// The tutorial's `SGD(learning_rate=0.01)`.
    fn default() -> Self {
        OptimizerSpec::sgd(0.01)
    }
}

/// The model variables an optimizer is built on, as Keras's `model.trainable_variables` lists them:
/// the trainable weights of the layers whose `trainable` flag is set, in layer order, each as
/// `(<layer>_<weight>, shape)` (the order of `Model::trainable_vars`).
pub fn trainable_variables(spec: &ModelSpec) -> Vec<(String, Vec<usize>)> {
    trainable_weights(spec)
        .into_iter()
        .map(|w| (format!("{}_{}", w.layer, w.weight), w.shape))
        .collect()
}

/// `trainable_variables` with each variable's layer and weight name apart.
pub fn trainable_weights(spec: &ModelSpec) -> Vec<TrainableWeight> {
    let mut vars = Vec::new();
    let fan_ins = spec.fan_ins();
    for (i, l) in spec.layers.iter().enumerate() {
        if !l.trainable() {
            continue;
        }
        for w in l.weights(fan_ins[i]) {
            if w.trainable {
                vars.push(TrainableWeight {
                    layer: l.name().to_string(),
                    weight: w.name.to_string(),
                    shape: w.shape.clone(),
                });
            }
        }
    }
    vars
}

impl OptimizerSpec {
    /// Plain `SGD(learning_rate)`.
    pub fn sgd(learning_rate: f32) -> Self {
        Self::with_kind(
            OptimizerKind::Sgd(Sgd {
                momentum: 0.0,
                nesterov: false,
            }),
            learning_rate,
        )
    }

    fn with_kind(kind: OptimizerKind, learning_rate: f32) -> Self {
        OptimizerSpec {
            kind,
            learning_rate: LearningRate::Constant(f64::from(learning_rate)),
            weight_decay: None,
            clipnorm: None,
            global_clipnorm: None,
            clipvalue: None,
            name: None,
        }
    }

    /// The optimizer of Keras class (or alias) `name` with Keras 3's defaults for everything,
    /// learning rate included (`keras.optimizers.get(name)`).
    pub fn named(name: &str) -> Result<Self> {
        let Some((_, default)) = OPTIMIZERS
            .iter()
            .find(|(class, _)| class.eq_ignore_ascii_case(name))
        else {
            return Err(Error::invalid(
                "optimizer",
                format!(
                    "'{name}' is not one of {}",
                    OPTIMIZER_CLASSES.join(", ").to_lowercase()
                ),
            ));
        };
        let (kind, lr, weight_decay) = default();
        Ok(OptimizerSpec {
            weight_decay,
            ..Self::with_kind(kind, lr)
        })
    }

    /// True when Keras keeps the learning rate as one of the optimizer's variables (a constant rate;
    /// a schedule is no variable).
    pub fn has_learning_rate_variable(&self) -> bool {
        matches!(self.learning_rate, LearningRate::Constant(_))
    }

    /// The optimizer's state variables once Keras has built it on model variables `vars`
    /// (`trainable_variables`), after `iteration` and the learning rate: each
    /// `add_optimizer_variables` group's slots interleaved per variable, `<var>_<slot>` with the
    /// variable's shape, then the optimizer's own scalars (Nadam's momentum-schedule product
    /// `variable`). The names and order of `Optimizer::state`.
    pub fn slot_variables(&self, vars: &[(String, Vec<usize>)]) -> Vec<(String, Vec<usize>)> {
        self.kind.slot_variables(vars)
    }

    /// tf.keras 2's optimizer variables after `iteration:0` once built on `weights`, in order.
    pub fn tfkeras2_layout(&self, weights: &[TrainableWeight]) -> Vec<Tf2Slot> {
        tfkeras2::layout(&self.kind, weights)
    }

    /// This tool's state from tf.keras 2's saved `iterations` and `values`, one per `layout`
    /// entry (`tfkeras2::state`), with the compiled learning rate as `dtype_round` keeps it
    /// (tf.keras 2 saves none).
    pub fn state_from_tfkeras2(
        &self,
        iterations: u64,
        layout: &[Tf2Slot],
        values: Vec<Vec<f64>>,
        dtype_round: impl Fn(f64) -> f64,
    ) -> OptimizerState {
        let lr = self
            .learning_rate
            .constant_f64()
            .filter(|_| self.has_learning_rate_variable())
            .map(dtype_round);
        tfkeras2::state(&self.kind, lr, iterations, layout, values)
    }

    /// Why `state` cannot be continued by this optimizer although it was read whole
    /// (tf.keras 2's Nadam state); `None` for any other.
    pub fn missing_for_continuing(&self, state: &OptimizerState) -> Option<String> {
        self.kind.missing_for_continuing(state)
    }

    /// Keras's class name of the optimizer.
    pub fn keras_class(&self) -> &'static str {
        self.kind.keras_class()
    }

    /// The learning rate at the first step (float32, as Keras keeps it).
    pub fn learning_rate(&self) -> f32 {
        self.learning_rate.initial()
    }

    /// True for the tutorial's plain SGD: constant rate, no momentum, clipping or weight decay.
    pub fn is_plain_sgd(&self) -> bool {
        matches!(
            self.kind,
            OptimizerKind::Sgd(Sgd {
                momentum: 0.0,
                nesterov: false
            })
        ) && matches!(self.learning_rate, LearningRate::Constant(_))
            && self.weight_decay.is_none()
            && self.clipnorm.is_none()
            && self.global_clipnorm.is_none()
            && self.clipvalue.is_none()
    }

    /// One line for people: `SGD (lr 0.01)`, `Adam (lr 0.001, clipnorm 1)`, ...
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("lr {}", self.learning_rate.describe())];
        self.kind.describe(&mut parts);
        for (k, v) in [
            ("weight_decay", self.weight_decay),
            ("clipnorm", self.clipnorm),
            ("global_clipnorm", self.global_clipnorm),
            ("clipvalue", self.clipvalue),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k} {v}"));
            }
        }
        format!("{} ({})", self.keras_class(), parts.join(", "))
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        let lr = self.learning_rate();
        // 0 is valid, as in Keras (a warm-up schedule starts there); negative or non-finite is not.
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::invalid(
                "learning_rate",
                format!("must be a number >= 0, got {lr}"),
            ));
        }
        let positive = |what: &str, v: Option<f64>| match v {
            Some(v) if !(v.is_finite() && v > 0.0) => Err(Error::invalid(
                what,
                format!("must be a positive number, got {v}"),
            )),
            _ => Ok(()),
        };
        positive("clipnorm", self.clipnorm)?;
        positive("global_clipnorm", self.global_clipnorm)?;
        positive("clipvalue", self.clipvalue)?;
        if let Some(wd) = self.weight_decay
            && !(wd.is_finite() && wd >= 0.0)
        {
            return Err(Error::invalid(
                "weight_decay",
                format!("must be a non-negative number, got {wd}"),
            ));
        }
        if self.clipnorm.is_some() && self.global_clipnorm.is_some() {
            return Err(Error::invalid(
                "optimizer",
                "clipnorm and global_clipnorm cannot both be set (Keras refuses it too)",
            ));
        }
        self.kind.validate()
    }

    /// The optimizer for `vars` (named `names`, `<layer>_<weight>`, for its saved state), with
    /// fresh state.
    pub fn build(&self, vars: Vec<Var>) -> Result<Box<dyn Optimizer>> {
        self.build_named(vars, Vec::new())
    }

    /// `build` with the variables' names (`<layer>_<weight>`) for the state it reports.
    pub fn build_named(&self, vars: Vec<Var>, names: Vec<String>) -> Result<Box<dyn Optimizer>> {
        self.validate()?;
        let float64 = vars.first().is_some_and(|v| v.dtype() == DType::F64);
        if float64 {
            self.check_float64()?;
        }
        if self.is_plain_sgd() {
            // candle's SGD computes `w - g * lr` in the variables' dtype from an f64 rate: a
            // float32 model's rate rounded to float32 first, a float64 model's as the config gives it.
            let lr = match self.learning_rate.constant_f64() {
                Some(lr) if float64 => lr,
                _ => f64::from(self.learning_rate()),
            };
            return Ok(Box::new(sgd::CandleSgd::new(vars, lr)?));
        }
        if float64 {
            return Ok(Box::new(engine::KerasOptimizer::<f64>::new(
                self.kind.clone(),
                self.learning_rate.clone(),
                self.wrapper(),
                vars,
                names,
            )));
        }
        Ok(Box::new(engine::KerasOptimizer::<f32>::new(
            self.kind.clone(),
            self.learning_rate.clone(),
            self.wrapper(),
            vars,
            names,
        )))
    }

    /// The clipping and weight decay around the optimizer's own step.
    fn wrapper(&self) -> wrapper::Wrapper {
        wrapper::Wrapper {
            clipnorm: self.clipnorm,
            global_clipnorm: self.global_clipnorm,
            clipvalue: self.clipvalue,
            weight_decay: self.weight_decay,
        }
    }

    /// Refuses what a float64 model's optimizer cannot do exactly here: anything but plain SGD and
    /// Adam (no weight decay or clipping) with a constant rate, the two checked against Keras's
    /// float64 epoch (fixtures/keras_float64). The others' float64 versions are not checked yet.
    fn check_float64(&self) -> Result<()> {
        let plain_adam = matches!(self.kind, OptimizerKind::Adam(_))
            && self.weight_decay.is_none()
            && self.clipnorm.is_none()
            && self.global_clipnorm.is_none()
            && self.clipvalue.is_none();
        if !(self.is_plain_sgd() || plain_adam) && self.learning_rate.schedule_class().is_none() {
            return Err(Error::invalid(
                "optimizer",
                format!(
                    "{} on a float64 model is not supported yet (plain SGD and Adam train a float64 model exactly as Keras does here)",
                    self.describe()
                ),
            ));
        }
        if let Some(c) = self.learning_rate.schedule_class() {
            return Err(Error::invalid(
                "learning_rate",
                format!(
                    "the schedule {c} on a float64 model is not supported yet (this tool evaluates schedules in float32)"
                ),
            ));
        }
        if matches!(self.kind, OptimizerKind::Nadam(_)) {
            return Err(Error::invalid(
                "optimizer",
                "Nadam on a float64 model is not supported yet",
            ));
        }
        Ok(())
    }
}
