//! Keras's JSON configs: `model_config` (a Sequential model) in the Keras 3 and Keras 2 dialects, and
//! `training_config`, to and from `ModelSpec`. Each layer type's config is written and read here.

use crate::model::{Activation, DenseSpec, Initializer, LayerSpec, ModelSpec};
use crate::train::OptimizerSpec;
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

type Res<T> = std::result::Result<T, ConfigError>;

fn malformed<T>(msg: impl Into<String>) -> Res<T> {
    Err(ConfigError::Malformed(msg.into()))
}

// ---------------------------------------------------------------------------------------------
// Writing

fn k3_object(module: &str, class: &str, config: Value) -> Value {
    json!({"module": module, "class_name": class, "config": config, "registered_name": null})
}

fn k3_policy() -> Value {
    k3_object("keras", "DTypePolicy", json!({"name": "float32"}))
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

fn initializer_json(init: &Initializer, format: Format) -> Value {
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

/// The `model_config` JSON of a Sequential model in the given dialect.
pub fn model_config(spec: &ModelSpec, format: Format) -> Value {
    let batch = json!([null, spec.input_dim]);
    let mut layers = Vec::with_capacity(spec.layers.len() + 1);
    match format {
        Format::Keras3 => layers.push(k3_object(
            "keras.layers",
            "InputLayer",
            json!({"batch_shape": batch, "dtype": "float32", "sparse": false, "ragged": false, "name": "input_layer"}),
        )),
        Format::Universal => layers.push(json!({"class_name": "InputLayer", "config": {
            "batch_input_shape": batch, "dtype": "float32", "sparse": false, "ragged": false, "name": "dense_input"}})),
    }
    for (i, layer) in spec.layers.iter().enumerate() {
        let LayerSpec::Dense(l) = layer;
        let mut cfg = json!({
            "name": l.name,
            "trainable": l.trainable,
            "dtype": if format == Format::Keras3 { k3_policy() } else { json!("float32") },
            "units": l.units,
            "activation": l.activation.keras_name(),
            "use_bias": l.use_bias,
            "kernel_initializer": initializer_json(&l.kernel_initializer, format),
            "bias_initializer": initializer_json(&l.bias_initializer, format),
            "kernel_regularizer": null,
            "bias_regularizer": null,
            "kernel_constraint": null,
            "bias_constraint": null,
        });
        let obj = cfg.as_object_mut().expect("a JSON object literal");
        let layer = match format {
            Format::Keras3 => {
                obj.insert("quantization_config".into(), Value::Null);
                let mut v = k3_object("keras.layers", "Dense", cfg);
                v["build_config"] = json!({"input_shape": [null, spec.fan_in(i)]});
                v
            }
            Format::Universal => {
                obj.insert("activity_regularizer".into(), Value::Null);
                json!({"class_name": "Dense", "config": cfg})
            }
        };
        layers.push(layer);
    }
    match format {
        Format::Keras3 => {
            let mut v = k3_object(
                "keras",
                "Sequential",
                json!({"name": "sequential", "trainable": true, "dtype": k3_policy(), "layers": layers}),
            );
            v["build_config"] = json!({"input_shape": batch});
            v
        }
        Format::Universal => {
            json!({"class_name": "Sequential", "config": {"name": "sequential", "layers": layers},
            "keras_version": format.keras_version(), "backend": "tensorflow"})
        }
    }
}

/// The `training_config` JSON: the loss, accuracy, and the optimizer with its settings.
pub fn training_config(optimizer: &OptimizerSpec, format: Format) -> Value {
    let OptimizerSpec::Sgd { learning_rate } = optimizer;
    let lr = f64::from(*learning_rate);
    match format {
        Format::Keras3 => json!({
            "loss": "categorical_crossentropy",
            "loss_weights": null,
            "metrics": ["accuracy"],
            "weighted_metrics": null,
            "run_eagerly": false,
            "steps_per_execution": 1,
            "jit_compile": false,
            "optimizer_config": {"class_name": "SGD", "config": {
                "name": "SGD", "learning_rate": lr, "weight_decay": null, "clipnorm": null,
                "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99,
                "ema_overwrite_frequency": null, "loss_scale_factor": null,
                "gradient_accumulation_steps": null, "momentum": 0.0, "nesterov": false}},
        }),
        Format::Universal => json!({
            "loss": "categorical_crossentropy",
            "metrics": ["accuracy"],
            "loss_weights": null,
            "optimizer_config": {"class_name": "SGD", "config": {"learning_rate": lr}},
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// What a `model_config` says, reduced to what this tool needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedConfig {
    pub spec: ModelSpec,
    /// True when the config is in the Keras 3 dialect (objects carry `module`, input has `batch_shape`).
    pub keras3_dialect: bool,
}

fn class_name(v: &Value) -> Option<&str> {
    v.get("class_name").and_then(Value::as_str)
}

/// The feature count from a `[null, F]` batch shape.
fn input_width(shape: &Value, what: &str) -> Res<usize> {
    let dims = shape
        .as_array()
        .ok_or_else(|| ConfigError::Malformed(format!("{what} is not a list")))?;
    match dims.as_slice() {
        [_, f] => match f.as_u64() {
            Some(f) if f > 0 => Ok(f as usize),
            _ => malformed(format!("{what} {shape} has no positive feature count")),
        },
        _ => Err(ConfigError::Unsupported(format!(
            "input of shape {shape} (only flat inputs [batch, features] are supported)"
        ))),
    }
}

fn parse_initializer(v: Option<&Value>, default: Initializer) -> Res<Initializer> {
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

fn parse_dense(cfg: &Value, default_name: String) -> Res<DenseSpec> {
    let units = match cfg.get("units") {
        Some(u) => match u.as_u64() {
            Some(u) if u > 0 && u <= crate::model::spec::MAX_UNITS as u64 => u as usize,
            _ => {
                return malformed(format!(
                    "Dense units {u} is not a positive integer within this tool's limit"
                ));
            }
        },
        None => return malformed("a Dense layer has no 'units'"),
    };
    let activation = match cfg.get("activation") {
        None | Some(Value::Null) => Activation::Linear,
        Some(Value::String(s)) => Activation::from_keras(s)
            .ok_or_else(|| ConfigError::Unsupported(format!("activation '{s}'")))?,
        Some(other) => return Err(ConfigError::Unsupported(format!("activation {other}"))),
    };
    let use_bias = cfg.get("use_bias").and_then(Value::as_bool).unwrap_or(true);
    let name = cfg
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or(default_name);
    Ok(DenseSpec {
        name,
        units,
        activation,
        use_bias,
        kernel_initializer: parse_initializer(
            cfg.get("kernel_initializer"),
            Initializer::GlorotUniform,
        )?,
        bias_initializer: parse_initializer(cfg.get("bias_initializer"), Initializer::Zeros)?,
        trainable: cfg
            .get("trainable")
            .and_then(Value::as_bool)
            .unwrap_or(true),
    })
}

/// Parses a `model_config` string (either dialect) into a `ModelSpec`.
pub fn parse_model_config(text: &str) -> Res<ParsedConfig> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| ConfigError::Malformed(format!("model_config is not JSON ({e})")))?;
    let class = class_name(&root)
        .ok_or_else(|| ConfigError::Malformed("model_config has no class_name".into()))?;
    match class {
        "Sequential" => {}
        "Functional" | "Model" => {
            return Err(ConfigError::Unsupported(format!(
                "a functional model ({class}); only Sequential models of Dense layers are supported"
            )));
        }
        other => {
            return Err(ConfigError::Unsupported(format!(
                "model class '{other}'; only Sequential models are supported"
            )));
        }
    }
    let cfg = root
        .get("config")
        .ok_or_else(|| ConfigError::Malformed("model_config has no config".into()))?;
    // Keras <= 2.2 wrote the layer list as the config itself.
    let layers = match cfg {
        Value::Array(a) => a,
        _ => cfg
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| ConfigError::Malformed("model_config has no layer list".into()))?,
    };
    // Name an unsupported layer before anything else about it (its input shape, say).
    if let Some(other) = layers
        .iter()
        .filter_map(class_name)
        .find(|c| !matches!(*c, "InputLayer" | "Dense"))
    {
        return Err(ConfigError::Unsupported(format!(
            "layer {other} (only Dense layers are supported)"
        )));
    }
    let mut keras3_dialect = root.get("module").is_some();
    let mut input_dim: Option<usize> = None;
    let mut dense = Vec::new();
    for layer in layers {
        let lc = layer.get("config").unwrap_or(&Value::Null);
        match class_name(layer) {
            Some("InputLayer") => {
                if let Some(s) = lc.get("batch_shape") {
                    keras3_dialect = true;
                    input_dim = Some(input_width(s, "InputLayer batch_shape")?);
                } else if let Some(s) = lc.get("batch_input_shape") {
                    input_dim = Some(input_width(s, "InputLayer batch_input_shape")?);
                } else {
                    return malformed("InputLayer has no batch_shape or batch_input_shape");
                }
            }
            Some("Dense") => {
                if let (true, None, Some(s)) = (
                    dense.is_empty(),
                    input_dim,
                    lc.get("batch_input_shape")
                        .or_else(|| lc.get("batch_shape")),
                ) {
                    input_dim = Some(input_width(s, "Dense batch_input_shape")?);
                }
                dense.push(LayerSpec::Dense(parse_dense(
                    lc,
                    crate::model::spec::dense_name(dense.len()),
                )?));
            }
            Some(other) => {
                return Err(ConfigError::Unsupported(format!(
                    "layer {other} (only Dense layers are supported)"
                )));
            }
            None => return malformed("a layer without class_name"),
        }
    }
    if dense.is_empty() {
        return Err(ConfigError::Unsupported(
            "a model with no Dense layers".into(),
        ));
    }
    let input_dim = match input_dim {
        Some(d) => d,
        None => {
            let shape = cfg
                .get("build_input_shape")
                .or_else(|| root.pointer("/build_config/input_shape"));
            match shape {
                Some(s) => input_width(s, "build_input_shape")?,
                None => return malformed("model_config gives the model no input shape"),
            }
        }
    };
    let spec = ModelSpec {
        input_dim,
        layers: dense,
    };
    spec.validate()
        .map_err(|e| ConfigError::Malformed(e.to_string()))?;
    Ok(ParsedConfig {
        spec,
        keras3_dialect,
    })
}

/// The SGD learning rate in a `training_config`, when there is one.
pub fn training_lr(text: &str) -> Option<f64> {
    let v: Value = serde_json::from_str(text).ok()?;
    v.pointer("/optimizer_config/config/learning_rate")
        .and_then(Value::as_f64)
}
