//! Keras's `Dense` layer: its configuration (read and written in both dialects, with its
//! regularisers), its weights (kernel `(in, out)`, optional bias) and its forward pass through the
//! fused candle op, on the last axis of input of any rank.

use crate::error::Result;
use crate::model::dialect::{
    ConfigError, Format, Res, check_keys, class_name, initializer_json, k3_object, malformed,
    parse_activation, parse_initializer, require_null,
};
use crate::model::layer::{Common, KerasLayer, Layer, Step, WeightSpec, named_layer, yes};
use crate::model::ops;
use crate::model::shape::Shape;
use crate::model::{Activation, Initializer};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One Dense layer: Keras's `Dense(units, activation, use_bias, kernel_initializer, bias_initializer)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseSpec {
    /// The layer's name (`dense`, `dense_1`, ...); its variables are `<name>/kernel` and `<name>/bias`.
    pub name: String,
    pub units: usize,
    pub activation: Activation,
    pub use_bias: bool,
    pub kernel_initializer: Initializer,
    pub bias_initializer: Initializer,
    /// Keras's `trainable` flag: false for a frozen layer.
    #[serde(default = "yes")]
    pub trainable: bool,
    /// `kernel_regularizer`: its penalty on the kernel is added to the loss while the layer trains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_regularizer: Option<Regularizer>,
    /// `bias_regularizer`, likewise on the bias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_regularizer: Option<Regularizer>,
    /// `activity_regularizer`: its penalty on the layer's output, divided by the batch size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_regularizer: Option<Regularizer>,
}

/// Keras's `L1`, `L2` and `L1L2` regularisers: `l1 * sum(|x|) + l2 * sum(x^2)` in float32.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Regularizer {
    pub l1: f64,
    pub l2: f64,
}

impl Regularizer {
    /// Keras's class name: `L1`, `L2` or `L1L2`.
    pub fn keras_class(&self) -> &'static str {
        match (self.l1 != 0.0, self.l2 != 0.0) {
            (true, false) => "L1",
            (false, true) => "L2",
            _ => "L1L2",
        }
    }

    /// The penalty of each member of `x [R, ...]`, `[R]`, in `x`'s dtype (the factors as Keras casts
    /// them: to float32 in a float32 model, kept in a float64 one).
    pub fn penalty(&self, x: &Tensor) -> Result<Tensor> {
        let r = x.dim(0)?;
        let flat = x.reshape((r, ()))?;
        let f64_model = x.dtype() == candle_core::DType::F64;
        let factor = |v: f64| if f64_model { v } else { f64::from(v as f32) };
        let mut total = Tensor::zeros(r, x.dtype(), x.device())?;
        if self.l1 != 0.0 {
            total = (total + (flat.abs()?.sum(1)? * factor(self.l1))?)?;
        }
        if self.l2 != 0.0 {
            total = (total + (flat.sqr()?.sum(1)? * factor(self.l2))?)?;
        }
        Ok(total)
    }
}

impl DenseSpec {
    /// A trainable layer with a bias and Keras's default zero bias initializer.
    pub fn new(
        name: impl Into<String>,
        units: usize,
        activation: Activation,
        kernel_initializer: Initializer,
    ) -> Self {
        DenseSpec {
            name: name.into(),
            units,
            activation,
            use_bias: true,
            kernel_initializer,
            bias_initializer: Initializer::Zeros,
            trainable: true,
            kernel_regularizer: None,
            bias_regularizer: None,
            activity_regularizer: None,
        }
    }
}

impl Layer for DenseSpec {
    named_layer!("Dense");

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        let mut dims = input.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = self.units;
        }
        Ok(Shape(dims))
    }

    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }

    /// Kernel `(in, out)`, then the bias when the layer has one.
    fn weights(&self, fan_in: usize) -> Vec<WeightSpec> {
        let fans = (fan_in, self.units);
        let mut w = vec![WeightSpec {
            name: "kernel",
            shape: vec![fan_in, self.units],
            trainable: true,
            initializer: self.kernel_initializer.clone(),
            fans,
        }];
        if self.use_bias {
            w.push(WeightSpec {
                name: "bias",
                shape: vec![self.units],
                trainable: true,
                initializer: self.bias_initializer.clone(),
                fans,
            });
        }
        w
    }

    /// `act(x · kernel + bias)` for stacked weights `[R, in, out]`, `[R, out]` (a layer without a bias
    /// gets a constant zero one after its kernel).
    fn forward(&self, x: &Tensor, s: Step) -> Result<Tensor> {
        if x.rank() > 3 {
            // N-D input: the kernel applies to the last axis of every position.
            let mut dims = x.dims().to_vec();
            let rows = crate::model::batchnorm::rows(x)?;
            let out = self.forward(&rows, s)?;
            if let Some(last) = dims.last_mut() {
                *last = self.units;
            }
            return Ok(out.reshape(dims)?);
        }
        let act = if s.logits {
            Activation::Linear
        } else {
            self.activation
        };
        let (kernel, bias) = (&s.w[0], &s.w[1]);
        Ok(match act.fused() {
            Some(f) => ops::dense(x, kernel, bias, f)?,
            None => act.apply(&ops::dense(x, kernel, bias, ops::Fused::Linear)?)?,
        })
    }

    fn config(&self, format: Format) -> Value {
        let mut cfg = json!({
            "units": self.units,
            "activation": self.activation.keras_name(),
            "use_bias": self.use_bias,
            "kernel_initializer": initializer_json(&self.kernel_initializer, format),
            "bias_initializer": initializer_json(&self.bias_initializer, format),
            "kernel_regularizer": regularizer_json(self.kernel_regularizer.as_ref(), format),
            "bias_regularizer": regularizer_json(self.bias_regularizer.as_ref(), format),
            "kernel_constraint": null,
            "bias_constraint": null,
        });
        match format {
            Format::Keras3 => {
                cfg["quantization_config"] = Value::Null;
                if self.activity_regularizer.is_some() {
                    cfg["activity_regularizer"] =
                        regularizer_json(self.activity_regularizer.as_ref(), format);
                }
            }
            Format::Universal => {
                cfg["activity_regularizer"] =
                    regularizer_json(self.activity_regularizer.as_ref(), format);
            }
        }
        cfg
    }
}

impl KerasLayer for DenseSpec {
    const CLASSES: &'static [&'static str] = &["Dense"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        check_keys(
            "Dense",
            cfg,
            &[
                "units",
                "activation",
                "use_bias",
                "kernel_initializer",
                "bias_initializer",
                "kernel_regularizer",
                "bias_regularizer",
                "activity_regularizer",
            ],
        )?;
        require_null(
            "Dense",
            cfg,
            &[
                "kernel_constraint",
                "bias_constraint",
                "quantization_config",
                "lora_rank",
            ],
        )?;
        let units = match cfg.get("units") {
            Some(u) => match u.as_u64() {
                Some(u) if u > 0 && u <= crate::model::shape::MAX_UNITS as u64 => u as usize,
                _ => {
                    return malformed(format!(
                        "Dense units {u} is not a positive integer within this tool's limit"
                    ));
                }
            },
            None => return malformed("a Dense layer has no 'units'"),
        };
        Ok(DenseSpec {
            name: c.name.clone(),
            units,
            activation: parse_activation(cfg.get("activation"), c.keras2)?,
            use_bias: cfg.get("use_bias").and_then(Value::as_bool).unwrap_or(true),
            kernel_initializer: parse_initializer(
                cfg.get("kernel_initializer"),
                Initializer::GlorotUniform,
            )?,
            bias_initializer: parse_initializer(cfg.get("bias_initializer"), Initializer::Zeros)?,
            trainable: c.trainable,
            kernel_regularizer: parse_regularizer(
                cfg.get("kernel_regularizer"),
                "kernel_regularizer",
            )?,
            bias_regularizer: parse_regularizer(cfg.get("bias_regularizer"), "bias_regularizer")?,
            activity_regularizer: parse_regularizer(
                cfg.get("activity_regularizer"),
                "activity_regularizer",
            )?,
        })
    }
}

/// A regulariser's config: Keras 3's `{"module": "keras.regularizers", ...}` or Keras 2's
/// `{"class_name", "config"}`; `null` for none.
fn regularizer_json(r: Option<&Regularizer>, format: Format) -> Value {
    let Some(r) = r else { return Value::Null };
    let cfg = match r.keras_class() {
        "L1" => json!({"l1": r.l1}),
        "L2" => json!({"l2": r.l2}),
        _ => json!({"l1": r.l1, "l2": r.l2}),
    };
    match format {
        Format::Keras3 => k3_object("keras.regularizers", r.keras_class(), cfg),
        Format::Universal => json!({"class_name": r.keras_class(), "config": cfg}),
    }
}

/// A Dense layer's regulariser: `L1`, `L2`, `L1L2` (Keras 3 or 2 spelling) or none.
fn parse_regularizer(v: Option<&Value>, what: &str) -> Res<Option<Regularizer>> {
    let v = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let (name, cfg) = match v {
        Value::String(s) => (s.as_str(), &Value::Null),
        _ => (
            class_name(v).unwrap_or(""),
            v.get("config").unwrap_or(&Value::Null),
        ),
    };
    let num = |k: &str, d: f64| cfg.get(k).and_then(Value::as_f64).unwrap_or(d);
    let r = match name {
        "L1" | "l1" => Regularizer {
            l1: num("l1", 0.01),
            l2: 0.0,
        },
        "L2" | "l2" => Regularizer {
            l1: 0.0,
            l2: num("l2", 0.01),
        },
        "L1L2" | "l1_l2" => Regularizer {
            l1: num("l1", 0.0),
            l2: num("l2", 0.0),
        },
        _ => {
            return Err(ConfigError::Unsupported(format!(
                "Dense {what} {v} (supported: L1, L2, L1L2)"
            )));
        }
    };
    Ok(Some(r))
}
