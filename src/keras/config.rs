//! Keras's JSON configs: `model_config` (a Sequential model) in the Keras 3 and Keras 2 dialects, and
//! `training_config`, to and from `ModelSpec`. Each layer type's config is written and read here.

use crate::keras::layer_config::{
    check_dtype, check_keys, functional_chain, inbound_node, layer_config, layer_entry,
    parse_activation, parse_layer, require_null,
};
use crate::model::{DenseSpec, Initializer, LayerSpec, ModelKind, ModelSpec};
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

pub(crate) fn k3_object(module: &str, class: &str, config: Value) -> Value {
    json!({"module": module, "class_name": class, "config": config, "registered_name": null})
}

pub(crate) fn k3_policy() -> Value {
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

/// Checks that every layer of `spec` can be written in `format`; the reason when one cannot.
pub fn writable(spec: &ModelSpec, format: Format) -> std::result::Result<(), String> {
    spec.layers
        .iter()
        .try_for_each(|l| crate::keras::layer_config::writable(l, format))
}

/// The `model_config` JSON of a model in the given dialect: Sequential, or Functional for a chain
/// that came from a Functional model.
pub fn model_config(spec: &ModelSpec, format: Format) -> Value {
    let batch = json!([null, spec.input_dim]);
    let functional = match &spec.kind {
        ModelKind::Functional { input_name } => Some(input_name.as_str()),
        ModelKind::Sequential => None,
    };
    let mut layers = Vec::with_capacity(spec.layers.len() + 1);
    let input_name = functional.unwrap_or(match format {
        Format::Keras3 => "input_layer",
        Format::Universal => "dense_input",
    });
    let mut input = match format {
        Format::Keras3 => k3_object(
            "keras.layers",
            "InputLayer",
            json!({"batch_shape": batch, "dtype": "float32", "sparse": false, "ragged": false, "name": input_name}),
        ),
        Format::Universal => json!({"class_name": "InputLayer", "config": {
            "batch_input_shape": batch, "dtype": "float32", "sparse": false, "ragged": false, "name": input_name}}),
    };
    if functional.is_some() {
        input["name"] = json!(input_name);
        input["inbound_nodes"] = json!([]);
    }
    layers.push(input);
    let mut previous = input_name.to_string();
    for (i, layer) in spec.layers.iter().enumerate() {
        let mut entry = match layer {
            LayerSpec::Dense(l) => dense_entry(l, spec.fan_in(i), format),
            other => layer_entry(other.class_name(), layer_config(other, format), format),
        };
        if let Some(obj) = entry.as_object_mut() {
            if format == Format::Keras3 && !layer.weights(spec.fan_in(i)).is_empty() {
                obj.insert(
                    "build_config".into(),
                    json!({"input_shape": [null, spec.fan_in(i)]}),
                );
            }
            if functional.is_some() {
                obj.insert("name".into(), json!(layer.name()));
                obj.insert(
                    "inbound_nodes".into(),
                    inbound_node(&previous, spec.fan_in(i), format),
                );
            }
        }
        previous = layer.name().to_string();
        layers.push(entry);
    }
    match (format, functional) {
        (Format::Keras3, None) => {
            let mut v = k3_object(
                "keras",
                "Sequential",
                json!({"name": "sequential", "trainable": true, "dtype": k3_policy(), "layers": layers}),
            );
            v["build_config"] = json!({"input_shape": batch});
            v
        }
        (Format::Universal, None) => {
            json!({"class_name": "Sequential", "config": {"name": "sequential", "layers": layers},
            "keras_version": format.keras_version(), "backend": "tensorflow"})
        }
        (Format::Keras3, Some(input)) => {
            let output = previous;
            k3_object(
                "keras",
                "Functional",
                json!({"name": "functional", "trainable": true, "layers": layers,
                    "input_layers": [input, 0, 0], "output_layers": [output, 0, 0]}),
            )
        }
        (Format::Universal, Some(input)) => {
            json!({"class_name": "Functional", "config": {"name": "functional", "layers": layers,
                "input_layers": [[input, 0, 0]], "output_layers": [[previous, 0, 0]]},
                "keras_version": format.keras_version(), "backend": "tensorflow"})
        }
    }
}

/// A Dense layer's entry in the dialect.
fn dense_entry(l: &DenseSpec, _fan_in: usize, format: Format) -> Value {
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
    match format {
        Format::Keras3 => {
            obj.insert("quantization_config".into(), Value::Null);
            k3_object("keras.layers", "Dense", cfg)
        }
        Format::Universal => {
            obj.insert("activity_regularizer".into(), Value::Null);
            json!({"class_name": "Dense", "config": cfg})
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

fn parse_dense(cfg: &Value, default_name: String, keras2: bool) -> Res<DenseSpec> {
    check_dtype("Dense", cfg)?;
    check_keys(
        "Dense",
        cfg,
        &[
            "units",
            "activation",
            "use_bias",
            "kernel_initializer",
            "bias_initializer",
        ],
    )?;
    require_null(
        "Dense",
        cfg,
        &[
            "kernel_regularizer",
            "bias_regularizer",
            "activity_regularizer",
            "kernel_constraint",
            "bias_constraint",
            "quantization_config",
            "lora_rank",
        ],
    )?;
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
    let activation = parse_activation(cfg.get("activation"), keras2)?;
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
    // The dialect decides what some names mean (hard_sigmoid), so it is settled first: Keras 3
    // objects carry a module, its input layers a batch_shape, its dtypes are policy objects.
    let keras3_dialect = root.get("module").is_some()
        || layers.iter().any(|l| {
            l.pointer("/config/batch_shape").is_some()
                || l.pointer("/config/dtype").is_some_and(Value::is_object)
        });
    let keras2 = !keras3_dialect;
    let (input_layer, chain, kind): (Option<&Value>, Vec<&Value>, ModelKind) = match class {
        "Sequential" => {
            let input = layers.iter().find(|l| class_name(l) == Some("InputLayer"));
            let rest = layers
                .iter()
                .filter(|l| class_name(l) != Some("InputLayer"))
                .collect();
            (input, rest, ModelKind::Sequential)
        }
        "Functional" | "Model" => {
            let (input, chain) = functional_chain(layers)?;
            let input_name = input
                .get("name")
                .or_else(|| input.pointer("/config/name"))
                .and_then(Value::as_str)
                .unwrap_or("input_layer")
                .to_string();
            (Some(input), chain, ModelKind::Functional { input_name })
        }
        other => {
            return Err(ConfigError::Unsupported(format!(
                "model class '{other}'; only Sequential models and Functional chains are supported"
            )));
        }
    };
    // Name an unsupported layer before anything else about it (its input shape, say).
    const KNOWN: &[&str] = &[
        "Dense",
        "Dropout",
        "BatchNormalization",
        "LayerNormalization",
        "Activation",
        "LeakyReLU",
        "Flatten",
    ];
    if let Some(other) = chain
        .iter()
        .filter_map(|l| class_name(l))
        .find(|c| !KNOWN.contains(c))
    {
        return Err(ConfigError::Unsupported(format!(
            "layer {other} (supported: {})",
            KNOWN.join(", ")
        )));
    }
    let mut input_dim: Option<usize> = None;
    if let Some(l) = input_layer {
        let lc = l.get("config").unwrap_or(&Value::Null);
        check_dtype("InputLayer", lc)?;
        if let Some(s) = lc.get("batch_shape") {
            input_dim = Some(input_width(s, "InputLayer batch_shape")?);
        } else if let Some(s) = lc.get("batch_input_shape") {
            input_dim = Some(input_width(s, "InputLayer batch_input_shape")?);
        } else {
            return malformed("InputLayer has no batch_shape or batch_input_shape");
        }
        if lc.get("sparse").and_then(Value::as_bool) == Some(true) {
            return Err(ConfigError::Unsupported("a sparse InputLayer".into()));
        }
    }
    let mut parsed = Vec::with_capacity(chain.len());
    for (i, layer) in chain.iter().enumerate() {
        let lc = layer.get("config").unwrap_or(&Value::Null);
        if let (0, None, Some(s)) = (
            i,
            input_dim,
            lc.get("batch_input_shape")
                .or_else(|| lc.get("batch_shape")),
        ) {
            input_dim = Some(input_width(s, "batch_input_shape of the first layer")?);
        }
        let default_name = crate::model::spec::dense_name(i);
        parsed.push(match class_name(layer) {
            Some("Dense") => LayerSpec::Dense(parse_dense(lc, default_name, keras2)?),
            Some(other) => parse_layer(other, lc, default_name, keras2)?,
            None => return malformed("a layer without class_name"),
        });
    }
    if parsed.is_empty() {
        return Err(ConfigError::Unsupported("a model with no layers".into()));
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
        layers: parsed,
        kind,
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
