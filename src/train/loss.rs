//! Losses: each knows its forward pass on a batch of logits (one mean loss per stacked member), the
//! output activation it pairs with, the targets it takes, and its Keras serialisation. Keras 3's
//! categorical (from probabilities, clipped, or from logits; label smoothing), sparse categorical,
//! binary cross-entropy (sigmoid head), mean squared / absolute error and Huber.

use crate::error::{Error, Result};
use crate::model::Activation;
use crate::model::ops;
use candle_core::{D, Tensor};
use serde_json::{Value, json};

/// Which loss function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LossKind {
    /// `categorical_crossentropy` on one-hot targets. After a softmax output (or `from_logits`) Keras
    /// computes it from the logits (no clipping); after any other output, from the outputs normalised
    /// to sum to one and clipped to `[1e-7, 1 - 1e-7]`.
    #[default]
    CategoricalCrossentropy,
    /// `sparse_categorical_crossentropy`: integer class labels.
    SparseCategoricalCrossentropy,
    /// `binary_crossentropy`: one sigmoid unit, 0/1 labels.
    BinaryCrossentropy,
    /// `mean_squared_error` on numeric targets.
    MeanSquaredError,
    /// `mean_absolute_error` on numeric targets.
    MeanAbsoluteError,
    /// `Huber(delta)` on numeric targets.
    Huber,
}

/// A Keras loss with its options.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Loss {
    pub kind: LossKind,
    /// The model outputs logits (the cross-entropies only).
    pub from_logits: bool,
    /// Keras's `label_smoothing` (categorical and binary cross-entropy).
    pub label_smoothing: f32,
    /// Huber's `delta` (1.0 by default).
    pub delta: f32,
}

/// What a loss wants as its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One class per row, one output per class.
    Classes,
    /// 0/1 labels for one sigmoid output.
    Binary,
    /// Numeric values, one output per target column.
    Numeric,
}

impl Loss {
    /// `categorical_crossentropy` from probabilities: the tutorial's loss.
    pub const CATEGORICAL: Loss = Loss {
        kind: LossKind::CategoricalCrossentropy,
        from_logits: false,
        label_smoothing: 0.0,
        delta: 1.0,
    };

    /// The loss with Keras's defaults.
    pub fn of(kind: LossKind) -> Self {
        Loss {
            kind,
            ..Loss::CATEGORICAL
        }
    }

    /// The loss of a Keras name or alias (`mse`, `categorical_crossentropy`, `huber`, ...).
    pub fn named(name: &str) -> Option<Self> {
        let kind = match name {
            "categorical_crossentropy" | "CategoricalCrossentropy" => {
                LossKind::CategoricalCrossentropy
            }
            "sparse_categorical_crossentropy" | "SparseCategoricalCrossentropy" => {
                LossKind::SparseCategoricalCrossentropy
            }
            "binary_crossentropy" | "BinaryCrossentropy" => LossKind::BinaryCrossentropy,
            "mse" | "mean_squared_error" | "MeanSquaredError" => LossKind::MeanSquaredError,
            "mae" | "mean_absolute_error" | "MeanAbsoluteError" => LossKind::MeanAbsoluteError,
            "huber" | "huber_loss" | "Huber" => LossKind::Huber,
            _ => return None,
        };
        Some(Loss::of(kind))
    }

    /// Keras's name of the loss.
    pub fn keras_name(self) -> &'static str {
        match self.kind {
            LossKind::CategoricalCrossentropy => "categorical_crossentropy",
            LossKind::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
            LossKind::BinaryCrossentropy => "binary_crossentropy",
            LossKind::MeanSquaredError => "mean_squared_error",
            LossKind::MeanAbsoluteError => "mean_absolute_error",
            LossKind::Huber => "huber_loss",
        }
    }

    /// Keras's class name of the loss.
    fn keras_class(self) -> &'static str {
        match self.kind {
            LossKind::CategoricalCrossentropy => "CategoricalCrossentropy",
            LossKind::SparseCategoricalCrossentropy => "SparseCategoricalCrossentropy",
            LossKind::BinaryCrossentropy => "BinaryCrossentropy",
            LossKind::MeanSquaredError => "MeanSquaredError",
            LossKind::MeanAbsoluteError => "MeanAbsoluteError",
            LossKind::Huber => "Huber",
        }
    }

    /// One line for people: `categorical_crossentropy (from_logits)`.
    pub fn describe(self) -> String {
        let mut opts = Vec::new();
        if self.from_logits {
            opts.push("from_logits".to_string());
        }
        if self.label_smoothing != 0.0 {
            opts.push(format!("label_smoothing {}", self.label_smoothing));
        }
        if self.kind == LossKind::Huber && self.delta != 1.0 {
            opts.push(format!("delta {}", self.delta));
        }
        if opts.is_empty() {
            self.keras_name().to_string()
        } else {
            format!("{} ({})", self.keras_name(), opts.join(", "))
        }
    }

    /// What the loss takes as targets.
    pub fn target(self) -> Target {
        match self.kind {
            LossKind::CategoricalCrossentropy | LossKind::SparseCategoricalCrossentropy => {
                Target::Classes
            }
            LossKind::BinaryCrossentropy => Target::Binary,
            _ => Target::Numeric,
        }
    }

    /// The output activation the loss is meant for (for a fresh output layer).
    pub fn pairs_with(self) -> Activation {
        match (self.target(), self.from_logits) {
            (_, true) | (Target::Numeric, _) => Activation::Linear,
            (Target::Classes, false) => Activation::Softmax,
            (Target::Binary, false) => Activation::Sigmoid,
        }
    }

    /// The `loss` entry of a `training_config`: the name when every option is Keras's default, the
    /// serialised object otherwise.
    pub fn to_json(self, keras3: bool) -> Value {
        let default = !self.from_logits
            && self.label_smoothing == 0.0
            && (self.kind != LossKind::Huber || self.delta == 1.0);
        if default && self.kind != LossKind::Huber {
            return json!(self.keras_name());
        }
        let mut cfg = json!({"name": self.keras_name(), "reduction": "sum_over_batch_size"});
        match self.kind {
            LossKind::CategoricalCrossentropy | LossKind::BinaryCrossentropy => {
                cfg["from_logits"] = json!(self.from_logits);
                cfg["label_smoothing"] = json!(f64::from(self.label_smoothing));
                cfg["axis"] = json!(-1);
            }
            LossKind::SparseCategoricalCrossentropy => {
                cfg["from_logits"] = json!(self.from_logits);
                cfg["ignore_class"] = Value::Null;
            }
            LossKind::Huber => cfg["delta"] = json!(f64::from(self.delta)),
            _ => {}
        }
        if keras3 {
            json!({"module": "keras.losses", "class_name": self.keras_class(), "config": cfg,
                "registered_name": null})
        } else {
            json!({"class_name": self.keras_class(), "config": cfg})
        }
    }

    /// Reads a `training_config` `loss` entry; the error names what is not supported.
    pub fn from_json(v: &Value) -> std::result::Result<Self, String> {
        if let Some(name) = v.as_str() {
            return Loss::named(name).ok_or_else(|| format!("loss '{name}'"));
        }
        if v.is_array() || (v.is_object() && v.get("class_name").is_none()) {
            return Err(format!(
                "several losses {v} (one loss per model is supported)"
            ));
        }
        let class = v
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("loss {v}"))?;
        let mut loss = Loss::named(class).ok_or_else(|| format!("loss '{class}'"))?;
        let cfg = v.get("config").unwrap_or(&Value::Null);
        let known = [
            "name",
            "reduction",
            "from_logits",
            "label_smoothing",
            "axis",
            "ignore_class",
            "delta",
            "dtype",
            "fn",
        ];
        if let Some(k) = cfg
            .as_object()
            .and_then(|o| o.keys().find(|k| !known.contains(&k.as_str())))
        {
            return Err(format!(
                "loss {class} has the unknown setting '{k}' (Keras: \"Argument(s) not recognized\")"
            ));
        }
        if let Some(r) = cfg.get("reduction").and_then(Value::as_str)
            && !matches!(r, "sum_over_batch_size" | "auto")
        {
            return Err(format!("loss reduction '{r}'"));
        }
        if let Some(axis) = cfg.get("axis").and_then(Value::as_i64)
            && axis != -1
        {
            return Err(format!("loss axis {axis}"));
        }
        if cfg.get("ignore_class").is_some_and(|c| !c.is_null()) {
            return Err("loss ignore_class".to_string());
        }
        loss.from_logits = cfg
            .get("from_logits")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        loss.label_smoothing = cfg
            .get("label_smoothing")
            .and_then(Value::as_f64)
            .unwrap_or(0.0) as f32;
        loss.delta = cfg.get("delta").and_then(Value::as_f64).unwrap_or(1.0) as f32;
        Ok(loss)
    }

    /// Checks the loss against the model's output layer: its activation and width.
    pub fn check_output(self, output: Activation, width: usize) -> Result<()> {
        let refuse = |why: String| Err(Error::invalid("loss", why));
        match self.target() {
            Target::Binary if !self.from_logits && output == Activation::Softmax => refuse(
                "binary_crossentropy after a softmax output is not supported (use a sigmoid unit)"
                    .into(),
            ),
            Target::Classes if width < 2 => refuse(format!(
                "{} needs one output per class, the model has {width}",
                self.keras_name()
            )),
            _ => Ok(()),
        }
    }

    /// The mean loss of each member's batch: `logits [R, N, K]` (the last layer's pre-activation
    /// output, `output` its activation) and targets `[R, N, K]` (one-hot for the categorical losses,
    /// 0/1 for binary, values for regression) give `[R]`.
    pub fn batch_losses(
        self,
        logits: &Tensor,
        output: Activation,
        targets: &Tensor,
    ) -> Result<Tensor> {
        if self.target() == Target::Classes && (self.from_logits || output == Activation::Softmax) {
            // The fused softmax cross-entropy: Keras's computation from the logits.
            let x = if self.from_logits && output != Activation::Linear {
                output.apply(logits)?
            } else {
                logits.clone()
            };
            return Ok(ops::softmax_xent(&x, &self.smoothed(targets)?)?);
        }
        Ok(self
            .row_losses(logits, output, targets)?
            .mean_keepdim(D::Minus1)?
            .squeeze(D::Minus1)?)
    }

    /// Keras's reduction with sample weights (`class_weight`): `sum(loss_i * w_i) / N` per member,
    /// `weights [R, N]`.
    pub fn weighted_batch_losses(
        self,
        logits: &Tensor,
        output: Activation,
        targets: &Tensor,
        weights: &Tensor,
    ) -> Result<Tensor> {
        let n = weights.dim(D::Minus1)? as f64;
        Ok(((self.row_losses(logits, output, targets)? * weights)?.sum(D::Minus1)? / n)?)
    }

    /// Refuses what this loss cannot compute exactly in a model of `dtype`: label smoothing and
    /// Huber's delta are kept as float32 here, which a float64 model would see.
    pub fn check_dtype(self, dtype: crate::model::FloatDtype) -> Result<()> {
        if dtype == crate::model::FloatDtype::Float32 {
            return Ok(());
        }
        if self.kind == LossKind::Huber {
            return Err(Error::invalid(
                "loss",
                "huber on a float64 model is not supported yet (its delta is kept as float32)",
            ));
        }
        if self.label_smoothing > 0.0 {
            return Err(Error::invalid(
                "label_smoothing",
                "on a float64 model is not supported yet (it is kept as float32)",
            ));
        }
        Ok(())
    }

    /// The targets after label smoothing.
    fn smoothed(self, targets: &Tensor) -> Result<Tensor> {
        if self.label_smoothing <= 0.0 {
            return Ok(targets.clone());
        }
        let ls = f64::from(self.label_smoothing);
        Ok(match self.target() {
            Target::Binary => ((targets * (1.0 - ls))? + 0.5 * ls)?,
            _ => {
                let k = targets.dim(D::Minus1)? as f64;
                ((targets * (1.0 - ls))? + ls / k)?
            }
        })
    }

    /// Each row's loss, `[R, N]`.
    fn row_losses(self, logits: &Tensor, output: Activation, targets: &Tensor) -> Result<Tensor> {
        let mean_row =
            |t: Tensor| -> Result<Tensor> { Ok(t.mean_keepdim(D::Minus1)?.squeeze(D::Minus1)?) };
        let t = self.smoothed(targets)?;
        let logit_input = || -> Result<Tensor> {
            Ok(if self.from_logits && output != Activation::Linear {
                output.apply(logits)?
            } else {
                logits.clone()
            })
        };
        match self.kind {
            LossKind::CategoricalCrossentropy | LossKind::SparseCategoricalCrossentropy => {
                if self.from_logits || output == Activation::Softmax {
                    let log_p = candle_nn::ops::log_softmax(&logit_input()?, D::Minus1)?;
                    return Ok((t * log_p)?.sum(D::Minus1)?.neg()?);
                }
                let out = output.apply(logits)?;
                let p = out.broadcast_div(&out.sum_keepdim(D::Minus1)?)?;
                let p = if p.dtype() == candle_core::DType::F64 {
                    // Keras clips with the Python double epsilon 1e-7 in a float64 model.
                    p.clamp(1e-7f64, 1.0 - 1e-7f64)?
                } else {
                    p.clamp(1e-7f32, 1.0 - 1e-7f32)?
                };
                let log_p = p.log()?;
                Ok((t * log_p)?.sum(D::Minus1)?.neg()?)
            }
            LossKind::BinaryCrossentropy => {
                if self.from_logits || output == Activation::Sigmoid {
                    let x = logit_input()?;
                    // TensorFlow's sigmoid_cross_entropy_with_logits.
                    let e = ((x.relu()? - (&x * &t)?)? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
                    return mean_row(e);
                }
                let eps = 1e-7f64;
                let p = output.apply(logits)?;
                let p = if p.dtype() == candle_core::DType::F64 {
                    p.clamp(eps, 1.0 - eps)?
                } else {
                    p.clamp(eps as f32, 1.0 - eps as f32)?
                };
                let pos = (&t * (&p + eps)?.log()?)?;
                let neg = (t.affine(-1.0, 1.0)? * (p.affine(-1.0, 1.0)? + eps)?.log()?)?;
                mean_row((pos + neg)?.neg()?)
            }
            LossKind::MeanSquaredError | LossKind::MeanAbsoluteError | LossKind::Huber => {
                let err = (output.apply(logits)? - targets)?;
                let e = match self.kind {
                    LossKind::MeanSquaredError => err.sqr()?,
                    LossKind::MeanAbsoluteError => err.abs()?,
                    _ => {
                        let d = f64::from(self.delta);
                        let abs = err.abs()?;
                        let quad = (err.sqr()? * 0.5)?;
                        let lin = ((&abs * d)? - 0.5 * d * d)?;
                        abs.le(d)?.where_cond(&quad, &lin)?
                    }
                };
                mean_row(e)
            }
        }
    }
}
