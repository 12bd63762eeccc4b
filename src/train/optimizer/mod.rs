//! Optimizers: built from exactly the variables they may change (a frozen layer's are simply not
//! handed over), each owning its own state. Keras 3's optimizers with their exact float32 update
//! rules (`keras/src/optimizers/*.py`): SGD (momentum, nesterov), Adam (amsgrad), AdamW, RMSprop,
//! Adagrad, Adadelta, Adamax, Nadam, Lion; clipnorm / global_clipnorm / clipvalue and weight decay as
//! the base optimizer applies them; learning-rate schedules. Stacked members stay independent: every
//! norm is taken per member.

use crate::error::{Error, Result};
use crate::model::ModelSpec;
use crate::model::ops::Real;
use crate::train::schedule::LearningRate;
use candle_core::{DType, Tensor, Var, WithDType};
use candle_nn::Optimizer as _;
use num_traits::Float;

mod tfkeras2;
pub use tfkeras2::{Tf2Slot, TrainableWeight};

/// The optimizer class and its own hyper-parameters (Python floats, as Keras keeps them).
#[derive(Debug, Clone, PartialEq)]
pub enum OptimizerKind {
    Sgd {
        momentum: f64,
        nesterov: bool,
    },
    Adam {
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        amsgrad: bool,
    },
    /// Adam with decoupled weight decay (`weight_decay` of the spec, default 0.004).
    AdamW {
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        amsgrad: bool,
    },
    RmsProp {
        rho: f64,
        momentum: f64,
        epsilon: f64,
        centered: bool,
    },
    Adagrad {
        initial_accumulator_value: f64,
        epsilon: f64,
    },
    Adadelta {
        rho: f64,
        epsilon: f64,
    },
    Adamax {
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
    },
    Nadam {
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
    },
    Lion {
        beta_1: f64,
        beta_2: f64,
    },
}

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

/// One training step's update of the variables an optimizer was built with.
pub trait Optimizer {
    /// Back-propagates `loss` (a `[R]` tensor of per-member losses: member r's gradient comes from its
    /// own loss only) and updates the variables.
    fn backward_step(&mut self, loss: &Tensor) -> Result<()>;

    /// Member `m`'s optimizer variables as Keras lists them (`optimizer.variables`).
    fn state(&self, m: usize) -> Result<OptimizerState>;

    /// Continues from `state` (one model's, as `state` gives it or a Keras file holds it): the same
    /// state for every member.
    fn set_state(&mut self, state: &OptimizerState) -> Result<()>;
}

/// An optimizer's variables in Keras 3's order (`optimizer.variables`, the layout of a `.h5` file's
/// `optimizer_weights`): the step count, the learning-rate variable (absent under a schedule), then
/// the state slots.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OptimizerState {
    pub iterations: u64,
    /// The learning-rate variable (a float32 model's holds a float32 value, kept exactly as f64).
    pub learning_rate: Option<f64>,
    /// `(name, values)`: `<layer>_<weight>_<slot>` (`dense_kernel_momentum`), or `variable` for
    /// Nadam's momentum-schedule product; values in the model's dtype, kept exactly as f64.
    pub variables: Vec<(String, Vec<f64>)>,
}

impl OptimizerKind {
    /// Keras's `add_optimizer_variables` calls in order: each group's slots are interleaved per
    /// variable; the number is this tool's slot index for that state.
    fn slot_groups(&self) -> Vec<Vec<(&'static str, usize)>> {
        match *self {
            OptimizerKind::Sgd { momentum, .. } if momentum != 0.0 => vec![vec![("momentum", 0)]],
            OptimizerKind::Sgd { .. } => vec![],
            OptimizerKind::Adam { amsgrad, .. } | OptimizerKind::AdamW { amsgrad, .. } => {
                let mut g = vec![vec![("momentum", 0), ("velocity", 1)]];
                if amsgrad {
                    g.push(vec![("velocity_hat", 2)]);
                }
                g
            }
            OptimizerKind::RmsProp {
                momentum, centered, ..
            } => {
                let mut g = vec![vec![("velocity", 0)]];
                if momentum > 0.0 {
                    g.push(vec![("momentum", 1)]);
                }
                if centered {
                    g.push(vec![("average_gradient", g.len())]);
                }
                g
            }
            OptimizerKind::Adagrad { .. } => vec![vec![("accumulator", 0)]],
            OptimizerKind::Adadelta { .. } => {
                vec![vec![("accumulated_grad", 0), ("accumulated_delta_var", 1)]]
            }
            OptimizerKind::Adamax { .. } => vec![vec![("momentum", 0), ("norm", 1)]],
            OptimizerKind::Nadam { .. } => vec![vec![("momentum", 0), ("velocity", 1)]],
            OptimizerKind::Lion { .. } => vec![vec![("momentum", 0)]],
        }
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
    for (i, l) in spec.layers.iter().enumerate() {
        if !l.trainable() {
            continue;
        }
        for w in l.weights(spec.fan_in(i)) {
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

/// Keras's class names, in the order `OptimizerSpec::named` knows them.
pub const OPTIMIZER_CLASSES: &[&str] = &[
    "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Lion",
];

impl OptimizerSpec {
    /// Plain `SGD(learning_rate)`.
    pub fn sgd(learning_rate: f32) -> Self {
        Self::with_kind(
            OptimizerKind::Sgd {
                momentum: 0.0,
                nesterov: false,
            },
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
        let adam = |lr| {
            (
                OptimizerKind::Adam {
                    beta_1: 0.9,
                    beta_2: 0.999,
                    epsilon: 1e-7,
                    amsgrad: false,
                },
                lr,
            )
        };
        let (kind, lr) = match name.to_ascii_lowercase().as_str() {
            "sgd" => (
                OptimizerKind::Sgd {
                    momentum: 0.0,
                    nesterov: false,
                },
                0.01,
            ),
            "adam" => adam(0.001),
            "adamw" => {
                let mut s = Self::with_kind(
                    OptimizerKind::AdamW {
                        beta_1: 0.9,
                        beta_2: 0.999,
                        epsilon: 1e-7,
                        amsgrad: false,
                    },
                    0.001,
                );
                s.weight_decay = Some(0.004);
                return Ok(s);
            }
            "rmsprop" => (
                OptimizerKind::RmsProp {
                    rho: 0.9,
                    momentum: 0.0,
                    epsilon: 1e-7,
                    centered: false,
                },
                0.001,
            ),
            "adagrad" => (
                OptimizerKind::Adagrad {
                    initial_accumulator_value: 0.1,
                    epsilon: 1e-7,
                },
                0.001,
            ),
            "adadelta" => (
                OptimizerKind::Adadelta {
                    rho: 0.95,
                    epsilon: 1e-7,
                },
                0.001,
            ),
            "adamax" => (
                OptimizerKind::Adamax {
                    beta_1: 0.9,
                    beta_2: 0.999,
                    epsilon: 1e-7,
                },
                0.001,
            ),
            "nadam" => (
                OptimizerKind::Nadam {
                    beta_1: 0.9,
                    beta_2: 0.999,
                    epsilon: 1e-7,
                },
                0.001,
            ),
            "lion" => (
                OptimizerKind::Lion {
                    beta_1: 0.9,
                    beta_2: 0.99,
                },
                0.001,
            ),
            _ => {
                return Err(Error::invalid(
                    "--optimizer",
                    format!(
                        "'{name}' is not one of {}",
                        OPTIMIZER_CLASSES.join(", ").to_lowercase()
                    ),
                ));
            }
        };
        Ok(Self::with_kind(kind, lr))
    }

    /// True when Keras keeps the learning rate as one of the optimizer's variables (a constant rate;
    /// a schedule is no variable).
    pub fn has_learning_rate_variable(&self) -> bool {
        matches!(self.learning_rate, LearningRate::Constant(_))
    }

    /// The optimizer's state variables once Keras has built it on model variables `vars`
    /// (`trainable_variables`), after `iteration` and the learning rate: each
    /// `add_optimizer_variables` group's slots interleaved per variable, `<var>_<slot>` with the
    /// variable's shape, then Nadam's scalar momentum-schedule product `variable`. The names and
    /// order of `Optimizer::state`.
    pub fn slot_variables(&self, vars: &[(String, Vec<usize>)]) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for group in self.kind.slot_groups() {
            for (name, shape) in vars {
                for &(slot, _) in &group {
                    out.push((format!("{name}_{slot}"), shape.clone()));
                }
            }
        }
        if matches!(self.kind, OptimizerKind::Nadam { .. }) {
            out.push(("variable".to_string(), Vec::new()));
        }
        out
    }

    /// Keras's class name of the optimizer.
    pub fn keras_class(&self) -> &'static str {
        match self.kind {
            OptimizerKind::Sgd { .. } => "SGD",
            OptimizerKind::Adam { .. } => "Adam",
            OptimizerKind::AdamW { .. } => "AdamW",
            OptimizerKind::RmsProp { .. } => "RMSprop",
            OptimizerKind::Adagrad { .. } => "Adagrad",
            OptimizerKind::Adadelta { .. } => "Adadelta",
            OptimizerKind::Adamax { .. } => "Adamax",
            OptimizerKind::Nadam { .. } => "Nadam",
            OptimizerKind::Lion { .. } => "Lion",
        }
    }

    /// The learning rate at the first step (float32, as Keras keeps it).
    pub fn learning_rate(&self) -> f32 {
        self.learning_rate.initial()
    }

    /// True for the tutorial's plain SGD: constant rate, no momentum, clipping or weight decay.
    pub fn is_plain_sgd(&self) -> bool {
        matches!(
            self.kind,
            OptimizerKind::Sgd {
                momentum: 0.0,
                nesterov: false
            }
        ) && matches!(self.learning_rate, LearningRate::Constant(_))
            && self.weight_decay.is_none()
            && self.clipnorm.is_none()
            && self.global_clipnorm.is_none()
            && self.clipvalue.is_none()
    }

    /// One line for people: `SGD (lr 0.01)`, `Adam (lr 0.001, clipnorm 1)`, ...
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("lr {}", self.learning_rate.describe())];
        match &self.kind {
            OptimizerKind::Sgd { momentum, nesterov } => {
                if *momentum != 0.0 {
                    parts.push(format!("momentum {momentum}"));
                }
                if *nesterov {
                    parts.push("nesterov".into());
                }
            }
            OptimizerKind::Adam { amsgrad: true, .. }
            | OptimizerKind::AdamW { amsgrad: true, .. } => parts.push("amsgrad".into()),
            OptimizerKind::RmsProp {
                momentum, centered, ..
            } => {
                if *momentum != 0.0 {
                    parts.push(format!("momentum {momentum}"));
                }
                if *centered {
                    parts.push("centered".into());
                }
            }
            _ => {}
        }
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
                "--lr",
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
        if let OptimizerKind::Sgd { momentum, .. } | OptimizerKind::RmsProp { momentum, .. } =
            self.kind
            && !(0.0..=1.0).contains(&momentum)
        {
            return Err(Error::invalid(
                "--momentum",
                format!("must be between 0 and 1, got {momentum}"),
            ));
        }
        Ok(())
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
            return Ok(Box::new(Sgd {
                inner: candle_nn::SGD::new(vars, lr)?,
                iterations: 0,
                learning_rate: lr,
            }));
        }
        if float64 {
            return Ok(Box::new(KerasOptimizer::<f64>::new(
                self.clone(),
                vars,
                names,
            )?));
        }
        Ok(Box::new(KerasOptimizer::<f32>::new(
            self.clone(),
            vars,
            names,
        )?))
    }

    /// Refuses what a float64 model's optimizer cannot do exactly here: anything but plain SGD and
    /// Adam (no weight decay or clipping) with a constant rate, the two checked against Keras's
    /// float64 epoch (fixtures/keras_float64). The others' float64 versions are not checked yet.
    fn check_float64(&self) -> Result<()> {
        let plain_adam = matches!(self.kind, OptimizerKind::Adam { .. })
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
        if matches!(self.kind, OptimizerKind::Nadam { .. }) {
            return Err(Error::invalid(
                "optimizer",
                "Nadam on a float64 model is not supported yet",
            ));
        }
        Ok(())
    }
}

/// Plain SGD through candle's own (`var -= grad * lr`): the tutorial's optimizer.
struct Sgd {
    inner: candle_nn::SGD,
    iterations: u64,
    learning_rate: f64,
}

impl Optimizer for Sgd {
    fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        self.inner.backward_step(loss)?;
        self.iterations += 1;
        Ok(())
    }

    fn state(&self, _m: usize) -> Result<OptimizerState> {
        Ok(OptimizerState {
            iterations: self.iterations,
            learning_rate: Some(self.learning_rate),
            variables: Vec::new(),
        })
    }

    fn set_state(&mut self, state: &OptimizerState) -> Result<()> {
        if !state.variables.is_empty() {
            return Err(Error::Mismatch(format!(
                "plain SGD has no state, the saved optimizer has {} variables",
                state.variables.len()
            )));
        }
        self.iterations = state.iterations;
        Ok(())
    }
}

/// Keras 3's optimizers, computed value by value in Keras's operation order in the variables' float
/// type `T`: float32, or float64 for a float64 model (Keras casts every hyper-parameter to the
/// variable's dtype).
struct KerasOptimizer<T: Real> {
    spec: OptimizerSpec,
    vars: Vec<Var>,
    /// The variables' names, `<layer>_<weight>` (empty when not given).
    names: Vec<String>,
    /// Per variable, its state slots (momentum, velocity, ...), each as long as the variable.
    slots: Vec<Vec<Vec<T>>>,
    /// Keras's `iterations`: the number of steps taken.
    iterations: u64,
    /// Nadam's running product of the momentum schedule.
    u_product: T,
}

/// `T(a)`: how Keras casts a Python float hyper-parameter into an op of the variable's dtype.
fn f<T: Real>(a: f64) -> T {
    <T as WithDType>::from_f64(a)
}

/// Keras's `ops.cast(python_float, variable.dtype)`: TensorFlow makes a float32 constant of the
/// Python float first, so a float64 model sees the float32-rounded value widened (Adam's
/// `beta_1_power`; the `1 - self.beta_1` of its updates stays the exact double, as `f`).
fn cast<T: Real>(a: f64) -> T {
    f(f64::from(a as f32))
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

impl<T: Real> KerasOptimizer<T> {
    fn new(spec: OptimizerSpec, vars: Vec<Var>, names: Vec<String>) -> Result<Self> {
        let n_slots = match spec.kind {
            OptimizerKind::Sgd { momentum, .. } => usize::from(momentum != 0.0),
            OptimizerKind::Adam { amsgrad, .. } | OptimizerKind::AdamW { amsgrad, .. } => {
                2 + usize::from(amsgrad)
            }
            OptimizerKind::RmsProp {
                momentum, centered, ..
            } => 1 + usize::from(momentum > 0.0) + usize::from(centered),
            OptimizerKind::Adagrad { .. } | OptimizerKind::Lion { .. } => 1,
            OptimizerKind::Adadelta { .. }
            | OptimizerKind::Adamax { .. }
            | OptimizerKind::Nadam { .. } => 2,
        };
        let init = match spec.kind {
            OptimizerKind::Adagrad {
                initial_accumulator_value,
                ..
            } => f(initial_accumulator_value),
            _ => T::zero(),
        };
        let slots = vars
            .iter()
            .map(|v| vec![vec![init; v.elem_count()]; n_slots])
            .collect();
        Ok(KerasOptimizer {
            spec,
            vars,
            names,
            slots,
            iterations: 0,
            u_product: T::one(),
        })
    }

    /// The learning rate of this step: float32 as the schedule gives it, or a float64 model's
    /// constant as the config gives it.
    fn lr(&self) -> T {
        match self.spec.learning_rate.constant_f64() {
            Some(lr) if T::DTYPE == DType::F64 => f(lr),
            _ => f(f64::from(self.spec.learning_rate.at(self.iterations))),
        }
    }

    /// Keras's `_clip_gradients`, per member (`members` equal chunks of each gradient).
    fn clip(&self, grads: &mut [Vec<T>], members: usize) {
        if let Some(c) = self.spec.clipnorm {
            let c: T = f(c);
            for g in grads.iter_mut() {
                let per = g.len() / members;
                for chunk in g.chunks_mut(per.max(1)) {
                    let l2sum: T = chunk.iter().map(|&v| v * v).sum();
                    let l2norm = if l2sum > T::zero() {
                        l2sum.sqrt()
                    } else {
                        l2sum
                    };
                    let denom = Float::max(l2norm, c);
                    for v in chunk.iter_mut() {
                        *v = *v * c / denom;
                    }
                }
            }
        } else if let Some(c) = self.spec.global_clipnorm {
            let c: T = f(c);
            for m in 0..members {
                let sq: T = grads
                    .iter()
                    .map(|g| {
                        let per = g.len() / members;
                        g[m * per..(m + 1) * per].iter().map(|&v| v * v).sum::<T>()
                    })
                    .sum();
                let norm = sq.sqrt();
                // Keras adds `norm - norm` so that an infinite or NaN norm makes the scale NaN.
                let scale = if norm.is_finite() {
                    c * Float::min(T::one() / norm, T::one() / c)
                } else {
                    T::nan()
                };
                for g in grads.iter_mut() {
                    let per = g.len() / members;
                    for v in &mut g[m * per..(m + 1) * per] {
                        *v *= scale;
                    }
                }
            }
        } else if let Some(c) = self.spec.clipvalue {
            let c: T = f(c);
            for v in grads.iter_mut().flatten() {
                *v = num_traits::clamp(*v, -c, c);
            }
        }
    }

    /// Keras's `update_step` for one variable's values `w`, gradient `g` and state `s`.
    fn update(&self, w: &mut [T], g: &[T], s: &mut [Vec<T>], lr: T) {
        let step: T = f((self.iterations + 1) as f64);
        match self.spec.kind {
            OptimizerKind::Sgd { momentum, nesterov } => {
                if momentum == 0.0 {
                    for (w, &g) in w.iter_mut().zip(g) {
                        *w -= g * lr;
                    }
                    return;
                }
                let mom: T = f(momentum);
                let m = &mut s[0];
                for i in 0..w.len() {
                    m[i] = m[i] * mom - g[i] * lr;
                    if nesterov {
                        w[i] += m[i] * mom - g[i] * lr;
                    } else {
                        w[i] += m[i];
                    }
                }
            }
            OptimizerKind::Adam {
                beta_1,
                beta_2,
                epsilon,
                amsgrad,
            }
            | OptimizerKind::AdamW {
                beta_1,
                beta_2,
                epsilon,
                amsgrad,
            } => {
                let b1p = cast::<T>(beta_1).powf(step);
                let b2p = cast::<T>(beta_2).powf(step);
                let alpha = lr * (T::one() - b2p).sqrt() / (T::one() - b1p);
                let (one_b1, one_b2, eps): (T, T, T) =
                    (f(1.0 - beta_1), f(1.0 - beta_2), f(epsilon));
                let (ms, rest) = s.split_at_mut(1);
                let (vs, hats) = rest.split_at_mut(1);
                let (m, v) = (&mut ms[0], &mut vs[0]);
                for i in 0..w.len() {
                    let d_m = (g[i] - m[i]) * one_b1;
                    m[i] += d_m;
                    let d_v = (g[i] * g[i] - v[i]) * one_b2;
                    v[i] += d_v;
                    let vv = if amsgrad {
                        let h = &mut hats[0];
                        h[i] = Float::max(h[i], v[i]);
                        h[i]
                    } else {
                        v[i]
                    };
                    w[i] -= (m[i] * alpha) / (vv.sqrt() + eps);
                }
            }
            OptimizerKind::RmsProp {
                rho,
                momentum,
                epsilon,
                centered,
            } => {
                let (r, one_r, eps, mom): (T, T, T, T) =
                    (f(rho), f(1.0 - rho), f(epsilon), f(momentum));
                let (vel, rest) = s.split_at_mut(1);
                let vel = &mut vel[0];
                let (moms, rest) = rest.split_at_mut(usize::from(momentum > 0.0));
                for i in 0..w.len() {
                    vel[i] = r * vel[i] + one_r * (g[i] * g[i]);
                    let denom = if centered {
                        let a = &mut rest[0];
                        a[i] = r * a[i] + one_r * g[i];
                        vel[i] - a[i] * a[i] + eps
                    } else {
                        vel[i] + eps
                    };
                    let inc = (lr * g[i]) / denom.sqrt();
                    if momentum > 0.0 {
                        let mo = &mut moms[0];
                        mo[i] = mom * mo[i] + inc;
                        w[i] -= mo[i];
                    } else {
                        w[i] -= inc;
                    }
                }
            }
            OptimizerKind::Adagrad { epsilon, .. } => {
                let (acc, eps) = (&mut s[0], f::<T>(epsilon));
                for i in 0..w.len() {
                    acc[i] += g[i] * g[i];
                    w[i] -= (lr * g[i]) / (acc[i] + eps).sqrt();
                }
            }
            OptimizerKind::Adadelta { rho, epsilon } => {
                let (r, one_r, eps): (T, T, T) = (f(rho), f(1.0 - rho), f(epsilon));
                let (ag, ad) = s.split_at_mut(1);
                let (ag, ad) = (&mut ag[0], &mut ad[0]);
                for i in 0..w.len() {
                    ag[i] = r * ag[i] + one_r * (g[i] * g[i]);
                    let delta = -(((ad[i] + eps).sqrt() * g[i]) / (ag[i] + eps).sqrt());
                    ad[i] = r * ad[i] + one_r * (delta * delta);
                    w[i] += lr * delta;
                }
            }
            OptimizerKind::Adamax {
                beta_1,
                beta_2,
                epsilon,
            } => {
                let b1p = f::<T>(beta_1).powf(step);
                let (one_b1, b2, eps): (T, T, T) = (f(1.0 - beta_1), f(beta_2), f(epsilon));
                let (m, u) = s.split_at_mut(1);
                let (m, u) = (&mut m[0], &mut u[0]);
                for i in 0..w.len() {
                    let d_m = (g[i] - m[i]) * one_b1;
                    m[i] += d_m;
                    u[i] = Float::max(b2 * u[i], g[i].abs());
                    w[i] -= (lr * m[i]) / ((T::one() - b1p) * (u[i] + eps));
                }
            }
            OptimizerKind::Nadam {
                beta_1,
                beta_2,
                epsilon,
            } => {
                let (b1, b2, eps): (T, T, T) = (f(beta_1), f(beta_2), f(epsilon));
                let (one, half): (T, T) = (T::one(), f(0.5));
                let decay: T = f(0.96);
                let u_t = b1 * (one - half * decay.powf(step));
                let u_t_1 = b1 * (one - half * decay.powf(step + one));
                let u_product_t = self.u_product;
                let u_product_t_1 = u_product_t * u_t_1;
                let b2p = b2.powf(step);
                let (m, v) = s.split_at_mut(1);
                let (m, v) = (&mut m[0], &mut v[0]);
                for i in 0..w.len() {
                    let d_m = (g[i] - m[i]) * (one - b1);
                    m[i] += d_m;
                    let d_v = (g[i] * g[i] - v[i]) * (one - b2);
                    v[i] += d_v;
                    let m_hat = (u_t_1 * m[i]) / (one - u_product_t_1)
                        + ((one - u_t) * g[i]) / (one - u_product_t);
                    let v_hat = v[i] / (one - b2p);
                    w[i] -= (m_hat * lr) / (v_hat.sqrt() + eps);
                }
            }
            OptimizerKind::Lion { beta_1, beta_2 } => {
                let (b1, b2): (T, T) = (f(beta_1), f(beta_2));
                let m = &mut s[0];
                for i in 0..w.len() {
                    w[i] -= lr * sign(m[i] * b1 + g[i] * (T::one() - b1));
                    m[i] = m[i] * b2 + g[i] * (T::one() - b2);
                }
            }
        }
    }
}

impl<T: Real> Optimizer for KerasOptimizer<T> {
    fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let members = loss.elem_count().max(1);
        let store = loss.backward()?;
        let mut present = Vec::with_capacity(self.vars.len());
        let mut grads = Vec::with_capacity(self.vars.len());
        for (i, v) in self.vars.iter().enumerate() {
            if let Some(g) = store.get(v) {
                present.push(i);
                grads.push(g.flatten_all()?.to_vec1::<T>()?);
            }
        }
        self.clip(&mut grads, members);
        let lr = self.lr();
        if let OptimizerKind::Nadam { beta_1, .. } = self.spec.kind {
            let step: T = f((self.iterations + 1) as f64);
            self.u_product =
                self.u_product * f(beta_1) * (T::one() - f::<T>(0.5) * f::<T>(0.96).powf(step));
        }
        let wd: Option<T> = self.spec.weight_decay.map(f);
        for (&i, g) in present.iter().zip(&grads) {
            let var = &self.vars[i];
            let mut w = var.flatten_all()?.to_vec1::<T>()?;
            if let Some(wd) = wd {
                for x in w.iter_mut() {
                    *x -= *x * wd * lr;
                }
            }
            let mut s = std::mem::take(&mut self.slots[i]);
            self.update(&mut w, g, &mut s, lr);
            self.slots[i] = s;
            var.set(&Tensor::from_vec(w, var.shape(), var.device())?)?;
        }
        self.iterations += 1;
        Ok(())
    }

    fn state(&self, m: usize) -> Result<OptimizerState> {
        let mut variables = Vec::new();
        for group in self.spec.kind.slot_groups() {
            for (i, v) in self.vars.iter().enumerate() {
                let members = v.dim(0)?;
                for &(slot, si) in &group {
                    let all = &self.slots[i][si];
                    let per = all.len() / members;
                    let name = match self.names.get(i) {
                        Some(n) => format!("{n}_{slot}"),
                        None => format!("variable_{i}_{slot}"),
                    };
                    let values = all[m * per..(m + 1) * per].iter();
                    variables.push((name, values.map(|&v| WithDType::to_f64(v)).collect()));
                }
            }
        }
        if matches!(self.spec.kind, OptimizerKind::Nadam { .. }) {
            variables.push((
                "variable".to_string(),
                vec![WithDType::to_f64(self.u_product)],
            ));
        }
        let learning_rate = match self.spec.learning_rate {
            LearningRate::Constant(_) => Some(WithDType::to_f64(self.lr())),
            _ => None,
        };
        Ok(OptimizerState {
            iterations: self.iterations,
            learning_rate,
            variables,
        })
    }

    fn set_state(&mut self, state: &OptimizerState) -> Result<()> {
        let mut values = state.variables.iter();
        let groups = self.spec.kind.slot_groups();
        let expected = groups.iter().map(Vec::len).sum::<usize>() * self.vars.len()
            + usize::from(matches!(self.spec.kind, OptimizerKind::Nadam { .. }));
        if state.variables.len() != expected {
            return Err(Error::Mismatch(format!(
                "the saved {} state has {} variables, this model's needs {expected}",
                self.spec.keras_class(),
                state.variables.len()
            )));
        }
        for group in &groups {
            for (i, v) in self.vars.iter().enumerate() {
                let members = v.dim(0)?;
                for &(slot, si) in group {
                    let (name, vals) = values.next().expect("counted above");
                    let per = self.slots[i][si].len() / members;
                    if vals.len() != per {
                        return Err(Error::Mismatch(format!(
                            "saved optimizer variable '{name}' has {} values, expected {per} for {slot}",
                            vals.len()
                        )));
                    }
                    let vals: Vec<T> = vals.iter().map(|&v| f(v)).collect();
                    self.slots[i][si] = vals.repeat(members);
                }
            }
        }
        if matches!(self.spec.kind, OptimizerKind::Nadam { .. }) {
            let (_, u) = values.next().expect("counted above");
            self.u_product = u
                .first()
                .map(|&v| f(v))
                .ok_or_else(|| Error::Mismatch("Nadam's saved momentum product is empty".into()))?;
        }
        self.iterations = state.iterations;
        Ok(())
    }
}
