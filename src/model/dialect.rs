//! What both of Keras's JSON dialects share at the bottom of the config code: which dialect a file
//! is in (`Format`), why a config is refused (`ConfigError`), Keras 3's object wrapper and dtype
//! policy, and initializers read and written. `config` (models, training) and `layer_config` (the
//! layers around Dense) both build on this file.

use crate::model::{Activation, FloatDtype, Initializer};
use serde_json::{Value, json};

/// The Keras 3 module its operations on tensors are recorded under (`x + 3.0`, `inputs + x`), not
/// layers of `model.layers` (`op_layer`, and `merge` for two tensors).
pub const OPS_MODULE: &str = "keras.src.ops.numpy";

/// Which Keras dialect a file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// What Keras 3.15 writes; loads in Keras 3.
    Keras3,
    /// A Keras-2-style file that loads cleanly in both Keras 3 and tf.keras 2.
    Universal,
}

impl Format {
    /// The `keras_version` string written into files of this format.
    pub fn keras_version(self) -> &'static str {
        match self {
            Format::Keras3 => "3.15.1",
            Format::Universal => "2.21.0",
        }
    }
}

/// Why a config could not be understood: either it is not a model config at all, or it describes
/// something this tool does not support.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    Malformed(String),
    Unsupported(String),
}

pub(crate) type Res<T> = std::result::Result<T, ConfigError>;

pub(crate) fn unsupported<T>(msg: impl Into<String>) -> Res<T> {
    Err(ConfigError::Unsupported(msg.into()))
}

pub(crate) fn malformed<T>(msg: impl Into<String>) -> Res<T> {
    Err(ConfigError::Malformed(msg.into()))
}

pub(crate) fn class_name(v: &Value) -> Option<&str> {
    v.get("class_name").and_then(Value::as_str)
}

pub(crate) fn k3_object(module: &str, class: &str, config: Value) -> Value {
    json!({"module": module, "class_name": class, "config": config, "registered_name": null})
}

pub(crate) fn k3_policy(dtype: FloatDtype) -> Value {
    k3_object("keras", "DTypePolicy", json!({"name": dtype.keras_name()}))
}

fn initializer_config(init: &Initializer) -> Value {
    match *init {
        Initializer::HeUniform
        | Initializer::GlorotUniform
        | Initializer::HeNormal
        | Initializer::GlorotNormal => {
            json!({"seed": null})
        }
        Initializer::RandomUniform { minval, maxval } => {
            json!({"minval": minval, "maxval": maxval, "seed": null})
        }
        Initializer::RandomNormal { mean, stddev } => {
            json!({"mean": mean, "stddev": stddev, "seed": null})
        }
        Initializer::Zeros | Initializer::Ones => json!({}),
        Initializer::Constant { value } => json!({"value": value}),
        Initializer::Keras { json: ref v, .. } => {
            v.get("config").cloned().unwrap_or_else(|| json!({}))
        }
    }
}

pub(crate) fn initializer_json(init: &Initializer, format: Format) -> Value {
    if let Initializer::Keras { json: v, .. } = init {
        // As read; only the wrapping follows the format written.
        let as_read = v.is_string()
            || match format {
                Format::Keras3 => v.get("module").is_some(),
                Format::Universal => v.get("module").is_none(),
            };
        if as_read {
            return v.clone();
        }
    }
    match format {
        Format::Keras3 => k3_object(
            "keras.initializers",
            init.keras_class(),
            initializer_config(init),
        ),
        Format::Universal => {
            json!({"class_name": init.keras_class(), "config": initializer_config(init)})
        }
    }
}

pub(crate) fn parse_initializer(v: Option<&Value>, default: Initializer) -> Res<Initializer> {
    let Some(v) = v else { return Ok(default) };
    let (name, cfg) = match v {
        Value::Null => return Ok(default),
        Value::String(s) => (s.as_str(), &Value::Null),
        Value::Object(_) => (
            class_name(v).unwrap_or(""),
            v.get("config").unwrap_or(&Value::Null),
        ),
        _ => return malformed(format!("initializer {v} is neither a name nor an object")),
    };
    let num = |key: &str, d: f64| cfg.get(key).and_then(Value::as_f64).unwrap_or(d);
    let known = match name {
        "HeUniform" | "he_uniform" => Initializer::HeUniform,
        "GlorotUniform" | "glorot_uniform" => Initializer::GlorotUniform,
        "HeNormal" | "he_normal" => Initializer::HeNormal,
        "GlorotNormal" | "glorot_normal" => Initializer::GlorotNormal,
        "RandomUniform" | "random_uniform" => Initializer::RandomUniform {
            minval: num("minval", -0.05),
            maxval: num("maxval", 0.05),
        },
        "RandomNormal" | "random_normal" => Initializer::RandomNormal {
            mean: num("mean", 0.0),
            stddev: num("stddev", 0.05),
        },
        "Zeros" | "zeros" => Initializer::Zeros,
        "Ones" | "ones" => Initializer::Ones,
        "Constant" | "constant" => Initializer::Constant {
            value: num("value", 0.0),
        },
        // Any other initializer is kept as read: written back unchanged, never drawn from.
        _ => {
            return Ok(Initializer::Keras {
                json: v.clone(),
                drawn_as: None,
            });
        }
    };
    // A known class whose config says more than the tool keeps (a seed, another argument, a value
    // that is not a number) is kept as read too, rather than written back without it.
    if let Value::Object(given) = cfg {
        let ours = initializer_config(&known);
        let same = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        };
        let differ: Vec<&String> = given
            .iter()
            // A null the tool does not hold (Keras 3.15's `input_axes`) is the default.
            .filter(|(k, val)| match ours.get(k.as_str()) {
                Some(o) => !same(o, val),
                None => !val.is_null(),
            })
            .map(|(k, _)| k)
            .collect();
        if !differ.is_empty() {
            let only_seed = differ.iter().all(|k| k.as_str() == "seed");
            return Ok(Initializer::Keras {
                json: v.clone(),
                drawn_as: only_seed.then(|| Box::new(known)),
            });
        }
    }
    Ok(known)
}

/// Keys every layer config may carry without changing what the layer computes.
const COMMON: &[&str] = &[
    "name",
    "trainable",
    "dtype",
    "batch_input_shape",
    "batch_shape",
    "input_dtype",
];

/// Refuses any key of `cfg` outside `known` whose value asks for something (not null, not false).
pub(crate) fn check_keys(class: &str, cfg: &Value, known: &[&str]) -> Res<()> {
    let Some(obj) = cfg.as_object() else {
        return malformed(format!("{class}: the layer config is not an object"));
    };
    for (k, v) in obj {
        if COMMON.contains(&k.as_str()) || known.contains(&k.as_str()) {
            continue;
        }
        if !(v.is_null() || v == &Value::Bool(false)) {
            return unsupported(format!("{class} setting '{k}' = {v}"));
        }
    }
    Ok(())
}

/// Refuses a setting that must be null (a regularizer, a constraint) but is not.
pub(crate) fn require_null(class: &str, cfg: &Value, keys: &[&str]) -> Res<()> {
    for k in keys {
        if let Some(v) = cfg.get(*k).filter(|v| !v.is_null()) {
            return unsupported(format!("{class} setting '{k}' = {v}"));
        }
    }
    Ok(())
}

/// The layer's dtype (a string or a DTypePolicy object): float32 or float64, `None` when the config
/// gives none. Any other dtype or policy (float16, bfloat16, `mixed_float16`, a quantized policy) is
/// refused, naming the layer.
pub(crate) fn check_dtype(class: &str, cfg: &Value) -> Res<Option<FloatDtype>> {
    let name = match cfg.get("dtype") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.as_str(),
        Some(v) => v
            .pointer("/config/name")
            .and_then(Value::as_str)
            .unwrap_or("an unknown policy"),
    };
    match FloatDtype::from_keras(name) {
        Some(d) => Ok(Some(d)),
        None => {
            let layer = cfg.get("name").and_then(Value::as_str).unwrap_or("?");
            unsupported(format!(
                "{class} '{layer}' dtype '{name}' (this tool computes in float32 or float64 only)"
            ))
        }
    }
}

/// The dtype of a model: the one its input layer and every layer agree on (float32 when none
/// names one). Layers of different dtypes are refused, naming the first that differs.
pub(crate) fn model_dtype(layers: &[(&str, &Value)]) -> Res<FloatDtype> {
    let mut first: Option<(String, FloatDtype)> = None;
    for (class, cfg) in layers {
        let Some(d) = check_dtype(class, cfg)? else {
            continue;
        };
        let name = cfg.get("name").and_then(Value::as_str).unwrap_or("?");
        match &first {
            None => first = Some((name.to_string(), d)),
            Some((other, d0)) if *d0 != d => {
                return unsupported(format!(
                    "a model mixing dtypes: {class} '{name}' is {}, '{other}' is {} (every layer must be float32, or every layer float64)",
                    d.keras_name(),
                    d0.keras_name()
                ));
            }
            Some(_) => {}
        }
    }
    Ok(first.map_or(FloatDtype::Float32, |(_, d)| d))
}

/// A layer's `dtype` entry for a model of `dtype`, in `format`'s dialect (a DTypePolicy object in
/// Keras 3, the dtype's name in Keras 2).
pub(crate) fn dtype_json(dtype: FloatDtype, format: Format) -> Value {
    match format {
        Format::Keras3 => k3_policy(dtype),
        Format::Universal => json!(dtype.keras_name()),
    }
}

pub(crate) fn name_of(cfg: &Value, default: String) -> String {
    cfg.get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or(default)
}

pub(crate) fn trainable_of(cfg: &Value) -> bool {
    cfg.get("trainable")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

pub(crate) fn number(class: &str, cfg: &Value, key: &str, default: f64) -> Res<f64> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() => Ok(x),
            _ => malformed(format!("{class} '{key}' = {v} is not a number")),
        },
    }
}

pub(crate) fn flag(cfg: &Value, key: &str, default: bool) -> bool {
    cfg.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// An activation by its Keras name, as the file's dialect means it.
pub(crate) fn parse_activation(v: Option<&Value>, keras2: bool) -> Res<Activation> {
    match v {
        None | Some(Value::Null) => Ok(Activation::Linear),
        Some(Value::String(s)) => {
            let a = Activation::from_keras(s)
                .ok_or_else(|| ConfigError::Unsupported(format!("activation '{s}'")))?;
            if keras2 && a == Activation::HardSigmoid {
                // tf.keras 2's hard_sigmoid is clip(0.2 x + 0.5, 0, 1), Keras 3's relu6(x + 3) / 6.
                return unsupported(
                    "activation 'hard_sigmoid' of a Keras 2 file (tf.keras 2's clip(0.2x+0.5, 0, 1) differs from Keras 3's)",
                );
            }
            Ok(a)
        }
        Some(other) => unsupported(format!(
            "activation {other} (a custom or parametrised function)"
        )),
    }
}
