//! What both of Keras's JSON dialects share at the bottom of the config code: which dialect a file
//! is in (`Format`), why a config is refused (`ConfigError`), Keras 3's object wrapper and dtype
//! policy, and initializers read and written. `config` (models, training) and `layer_config` (the
//! layers around Dense) both build on this file.

use crate::model::{FloatDtype, Initializer};
use serde_json::{Value, json};

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
    }
}

pub(crate) fn initializer_json(init: &Initializer, format: Format) -> Value {
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
    Ok(match name {
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
        // Any other initializer only matters for re-initialising; the weights come from the file.
        _ => default,
    })
}
