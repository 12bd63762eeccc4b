//! Learning rates: a constant or one of the Keras 3 schedules a file can carry
//! (`keras.optimizers.schedules.*`), evaluated at the optimizer's step in float32 as Keras does, and
//! read from / written to their Keras JSON.

use serde_json::{Value, json};

/// An optimizer's `learning_rate`: a constant (the double the config gives; a float32 model's
/// optimizer uses it rounded to float32, a float64 model's as it is) or a schedule of the step count.
#[derive(Debug, Clone, PartialEq)]
pub enum LearningRate {
    Constant(f64),
    /// `ExponentialDecay`: `initial * rate ^ (step / decay_steps)` (floored when `staircase`).
    ExponentialDecay {
        initial: f64,
        decay_steps: f64,
        decay_rate: f64,
        staircase: bool,
    },
    /// `PiecewiseConstantDecay`: `values[i]` while `step <= boundaries[i]`, the last value after.
    PiecewiseConstantDecay {
        boundaries: Vec<i64>,
        values: Vec<f64>,
    },
    /// `CosineDecay` (with its optional linear warm-up).
    CosineDecay {
        initial: f64,
        decay_steps: f64,
        alpha: f64,
        warmup_target: Option<f64>,
        warmup_steps: f64,
    },
    /// `InverseTimeDecay`: `initial / (1 + rate * step / decay_steps)`.
    InverseTimeDecay {
        initial: f64,
        decay_steps: f64,
        decay_rate: f64,
        staircase: bool,
    },
}

impl LearningRate {
    /// The learning rate at 0-based optimizer step `step` (Keras's `optimizer.iterations` before the
    /// update), in float32.
    pub fn at(&self, step: u64) -> f32 {
        let s = step as f32;
        match self {
            LearningRate::Constant(lr) => *lr as f32,
            LearningRate::ExponentialDecay {
                initial,
                decay_steps,
                decay_rate,
                staircase,
            } => {
                *initial as f32
                    * (*decay_rate as f32).powf(decay_progress(s, *decay_steps, *staircase))
            }
            LearningRate::InverseTimeDecay {
                initial,
                decay_steps,
                decay_rate,
                staircase,
            } => {
                *initial as f32
                    / (1.0 + *decay_rate as f32 * decay_progress(s, *decay_steps, *staircase))
            }
            LearningRate::PiecewiseConstantDecay { boundaries, values } => {
                let step = step as i64;
                let i = boundaries
                    .iter()
                    .position(|&b| step <= b)
                    .unwrap_or(boundaries.len());
                values[i] as f32
            }
            LearningRate::CosineDecay {
                initial,
                decay_steps,
                alpha,
                warmup_target,
                warmup_steps,
            } => {
                let decay_steps = *decay_steps as f32;
                let decay = |step: f32, from: f32| {
                    let fraction = step / decay_steps;
                    let cosine = 0.5 * (1.0 + (std::f32::consts::PI * fraction).cos());
                    let decayed = (1.0 - *alpha as f32) * cosine + *alpha as f32;
                    from * decayed
                };
                let initial = *initial as f32;
                match warmup_target {
                    None => decay(s.min(decay_steps), initial),
                    Some(target) => {
                        let (target, warm) = (*target as f32, *warmup_steps as f32);
                        let s = s.min(decay_steps + warm);
                        if s < warm {
                            (target - initial) * (s / warm) + initial
                        } else {
                            decay(s - warm, target)
                        }
                    }
                }
            }
        }
    }

    /// The learning rate of a float64 model's optimizer (Keras keeps it as the config's double); a
    /// schedule is not evaluated in float64 here (`None`).
    pub fn constant_f64(&self) -> Option<f64> {
        match self {
            LearningRate::Constant(lr) => Some(*lr),
            _ => None,
        }
    }

    /// The rate at step 0 (what a one-line summary shows).
    pub fn initial(&self) -> f32 {
        self.at(0)
    }

    /// Keras's class name of a schedule (`None` for a constant).
    pub fn schedule_class(&self) -> Option<&'static str> {
        Some(match self {
            LearningRate::Constant(_) => return None,
            LearningRate::ExponentialDecay { .. } => "ExponentialDecay",
            LearningRate::PiecewiseConstantDecay { .. } => "PiecewiseConstantDecay",
            LearningRate::CosineDecay { .. } => "CosineDecay",
            LearningRate::InverseTimeDecay { .. } => "InverseTimeDecay",
        })
    }

    /// One line for people: `0.01` or `ExponentialDecay from 0.05`.
    pub fn describe(&self) -> String {
        match self.schedule_class() {
            None => format!("{}", self.initial()),
            Some(c) => format!("{c} from {}", self.initial()),
        }
    }

    /// The `learning_rate` value of an optimizer config: a number, or the schedule's serialised
    /// object (Keras 3's `{"module", "class_name", "config", "registered_name"}` when `keras3`).
    pub fn to_json(&self, keras3: bool) -> Value {
        let (class, config) = match self {
            LearningRate::Constant(lr) => return json!(*lr),
            LearningRate::ExponentialDecay {
                initial,
                decay_steps,
                decay_rate,
                staircase,
            } => (
                "ExponentialDecay",
                json!({"initial_learning_rate": initial, "decay_steps": decay_steps,
                    "decay_rate": decay_rate, "staircase": staircase, "name": "ExponentialDecay"}),
            ),
            LearningRate::InverseTimeDecay {
                initial,
                decay_steps,
                decay_rate,
                staircase,
            } => (
                "InverseTimeDecay",
                json!({"initial_learning_rate": initial, "decay_steps": decay_steps,
                    "decay_rate": decay_rate, "staircase": staircase, "name": "InverseTimeDecay"}),
            ),
            LearningRate::PiecewiseConstantDecay { boundaries, values } => (
                "PiecewiseConstantDecay",
                json!({"boundaries": boundaries, "values": values, "name": "PiecewiseConstant"}),
            ),
            LearningRate::CosineDecay {
                initial,
                decay_steps,
                alpha,
                warmup_target,
                warmup_steps,
            } => (
                "CosineDecay",
                json!({"initial_learning_rate": initial, "decay_steps": decay_steps, "alpha": alpha,
                    "name": "CosineDecay", "warmup_target": warmup_target, "warmup_steps": warmup_steps}),
            ),
        };
        if keras3 {
            json!({"module": "keras.optimizers.schedules", "class_name": class, "config": config,
                "registered_name": null})
        } else {
            json!({"class_name": class, "config": config})
        }
    }

    /// Reads an optimizer config's `learning_rate`; the error names what is not supported.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        if let Some(lr) = v.as_f64() {
            return Ok(LearningRate::Constant(lr));
        }
        let class = v
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("learning_rate {v} is neither a number nor a schedule"))?;
        let cfg = v.get("config").unwrap_or(&Value::Null);
        let own: &[&str] = match class {
            "ExponentialDecay" | "InverseTimeDecay" => &[
                "initial_learning_rate",
                "decay_steps",
                "decay_rate",
                "staircase",
            ],
            "PiecewiseConstantDecay" => &["boundaries", "values"],
            "CosineDecay" => &[
                "initial_learning_rate",
                "decay_steps",
                "alpha",
                "warmup_target",
                "warmup_steps",
            ],
            _ => &[],
        };
        if let Some(k) = cfg.as_object().and_then(|o| {
            o.keys()
                .find(|k| k.as_str() != "name" && !own.contains(&k.as_str()))
        }) {
            return Err(format!(
                "learning-rate schedule {class} has the unknown setting '{k}' (Keras: \"Argument(s) not recognized\")"
            ));
        }
        let num = |k: &str| -> Result<f64, String> {
            cfg.get(k)
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("learning-rate schedule {class} has no numeric '{k}'"))
        };
        let flag = |k: &str| cfg.get(k).and_then(Value::as_bool).unwrap_or(false);
        let lr = match class {
            "ExponentialDecay" => LearningRate::ExponentialDecay {
                initial: num("initial_learning_rate")?,
                decay_steps: num("decay_steps")?,
                decay_rate: num("decay_rate")?,
                staircase: flag("staircase"),
            },
            "InverseTimeDecay" => LearningRate::InverseTimeDecay {
                initial: num("initial_learning_rate")?,
                decay_steps: num("decay_steps")?,
                decay_rate: num("decay_rate")?,
                staircase: flag("staircase"),
            },
            "PiecewiseConstantDecay" => {
                let list = |k: &str| {
                    cfg.get(k)
                        .and_then(Value::as_array)
                        .cloned()
                        .ok_or_else(|| format!("learning-rate schedule {class} has no list '{k}'"))
                };
                let boundaries = list("boundaries")?
                    .iter()
                    .map(|b| b.as_i64())
                    .collect::<Option<Vec<_>>>()
                    .ok_or("PiecewiseConstantDecay boundaries that are not integers")?;
                let values = list("values")?
                    .iter()
                    .map(Value::as_f64)
                    .collect::<Option<Vec<_>>>()
                    .ok_or("PiecewiseConstantDecay values that are not numbers")?;
                if values.len() != boundaries.len() + 1 {
                    return Err(format!(
                        "PiecewiseConstantDecay with {} boundaries needs {} values, has {}",
                        boundaries.len(),
                        boundaries.len() + 1,
                        values.len()
                    ));
                }
                LearningRate::PiecewiseConstantDecay { boundaries, values }
            }
            "CosineDecay" => LearningRate::CosineDecay {
                initial: num("initial_learning_rate")?,
                decay_steps: num("decay_steps")?,
                alpha: cfg.get("alpha").and_then(Value::as_f64).unwrap_or(0.0),
                warmup_target: cfg.get("warmup_target").and_then(Value::as_f64),
                warmup_steps: cfg
                    .get("warmup_steps")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0),
            },
            other => {
                return Err(format!(
                    "learning-rate schedule {other} (supported: ExponentialDecay, PiecewiseConstantDecay, CosineDecay, InverseTimeDecay)"
                ));
            }
        };
        Ok(lr)
    }
}

/// `step / decay_steps` in float32, floored for a staircase schedule (Keras's `p`).
fn decay_progress(s: f32, decay_steps: f64, staircase: bool) -> f32 {
    let p = s / decay_steps as f32;
    if staircase { p.floor() } else { p }
}
