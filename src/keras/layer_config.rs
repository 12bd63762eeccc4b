//! The Keras configs of the layers around Dense (Dropout, BatchNormalization, LayerNormalization,
//! Activation, LeakyReLU, Flatten) in both dialects, the settings every layer shares (name,
//! trainable, dtype), and the wiring of a Functional model that is a single chain.
//!
//! Every field is either understood or, when it asks for something this tool does not do, refused
//! with a message naming it (`ConfigError::Unsupported`); keys with a null/false value, and keys
//! that do not change the computation, are accepted.

use crate::keras::dialect::{
    ConfigError, Format, initializer_json, k3_object, k3_policy, parse_initializer,
};
use crate::model::{
    Activation, ActivationLayerSpec, BatchNormSpec, DropoutSpec, FlattenSpec, FloatDtype,
    Initializer, LayerNormSpec, LayerSpec, LeakyReluSpec, MergeKind, MergeSpec,
};
use serde_json::{Value, json};

type Res<T> = std::result::Result<T, ConfigError>;

fn unsupported<T>(msg: impl Into<String>) -> Res<T> {
    Err(ConfigError::Unsupported(msg.into()))
}

fn malformed<T>(msg: impl Into<String>) -> Res<T> {
    Err(ConfigError::Malformed(msg.into()))
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

fn name_of(cfg: &Value, default: String) -> String {
    cfg.get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or(default)
}

fn trainable_of(cfg: &Value) -> bool {
    cfg.get("trainable")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

fn number(class: &str, cfg: &Value, key: &str, default: f64) -> Res<f64> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() => Ok(x),
            _ => malformed(format!("{class} '{key}' = {v} is not a number")),
        },
    }
}

fn flag(cfg: &Value, key: &str, default: bool) -> bool {
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

/// The axis of a per-feature normalisation must be the feature axis of 2-D input.
fn check_feature_axis(class: &str, cfg: &Value) -> Res<()> {
    let ok = match cfg.get("axis") {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.len() == 1 && matches!(a[0].as_i64(), Some(-1 | 1)),
        Some(v) => matches!(v.as_i64(), Some(-1 | 1)),
    };
    if ok {
        Ok(())
    } else {
        unsupported(format!(
            "{class} axis {} (only the feature axis of 2-D input, -1)",
            cfg.get("axis").cloned().unwrap_or(Value::Null)
        ))
    }
}

/// Parses a layer other than Dense and InputLayer; `keras2` says the file's dialect.
pub(crate) fn parse_layer(
    class: &str,
    cfg: &Value,
    default_name: String,
    keras2: bool,
) -> Res<LayerSpec> {
    check_dtype(class, cfg)?;
    let name = name_of(cfg, default_name);
    let trainable = trainable_of(cfg);
    let init = |key: &str, d: Initializer| parse_initializer(cfg.get(key), d);
    Ok(match class {
        "Dropout" => {
            check_keys(class, cfg, &["rate", "seed"])?;
            let rate = number(class, cfg, "rate", 0.0)?;
            if !(0.0..1.0).contains(&rate) {
                return unsupported(format!("Dropout rate {rate} (expected 0 <= rate < 1)"));
            }
            LayerSpec::Dropout(DropoutSpec {
                name,
                rate,
                trainable,
            })
        }
        "BatchNormalization" => {
            check_keys(
                class,
                cfg,
                &[
                    "axis",
                    "momentum",
                    "epsilon",
                    "center",
                    "scale",
                    "beta_initializer",
                    "gamma_initializer",
                    "moving_mean_initializer",
                    "moving_variance_initializer",
                    "synchronized",
                    "renorm_momentum",
                ],
            )?;
            check_feature_axis(class, cfg)?;
            LayerSpec::BatchNormalization(BatchNormSpec {
                name,
                momentum: number(class, cfg, "momentum", 0.99)?,
                epsilon: number(class, cfg, "epsilon", 1e-3)?,
                center: flag(cfg, "center", true),
                scale: flag(cfg, "scale", true),
                beta_initializer: init("beta_initializer", Initializer::Zeros)?,
                gamma_initializer: init("gamma_initializer", Initializer::Ones)?,
                moving_mean_initializer: init("moving_mean_initializer", Initializer::Zeros)?,
                moving_variance_initializer: init(
                    "moving_variance_initializer",
                    Initializer::Ones,
                )?,
                trainable,
            })
        }
        "LayerNormalization" => {
            check_keys(
                class,
                cfg,
                &[
                    "axis",
                    "epsilon",
                    "center",
                    "scale",
                    "beta_initializer",
                    "gamma_initializer",
                ],
            )?;
            check_feature_axis(class, cfg)?;
            LayerSpec::LayerNormalization(LayerNormSpec {
                name,
                epsilon: number(class, cfg, "epsilon", 1e-3)?,
                center: flag(cfg, "center", true),
                scale: flag(cfg, "scale", true),
                beta_initializer: init("beta_initializer", Initializer::Zeros)?,
                gamma_initializer: init("gamma_initializer", Initializer::Ones)?,
                trainable,
            })
        }
        "Activation" => {
            check_keys(class, cfg, &["activation"])?;
            LayerSpec::Activation(ActivationLayerSpec {
                name,
                activation: parse_activation(cfg.get("activation"), keras2)?,
                trainable,
            })
        }
        "LeakyReLU" => {
            check_keys(class, cfg, &["negative_slope", "alpha"])?;
            let slope = match cfg.get("negative_slope") {
                Some(v) if !v.is_null() => number(class, cfg, "negative_slope", 0.3)?,
                _ => number(class, cfg, "alpha", 0.3)?,
            };
            LayerSpec::LeakyReLU(LeakyReluSpec {
                name,
                negative_slope: slope,
                trainable,
            })
        }
        "Flatten" => {
            check_keys(class, cfg, &["data_format"])?;
            LayerSpec::Flatten(FlattenSpec { name, trainable })
        }
        other if MergeKind::from_class(other).is_some() => {
            let kind = MergeKind::from_class(other).unwrap_or(MergeKind::Add);
            let axis = if kind == MergeKind::Concatenate {
                check_keys(class, cfg, &["axis"])?;
                match cfg.get("axis") {
                    None | Some(Value::Null) => -1,
                    Some(a) => a.as_i64().ok_or_else(|| {
                        ConfigError::Unsupported(format!("Concatenate axis {a} (an integer)"))
                    })?,
                }
            } else {
                check_keys(class, cfg, &[])?;
                -1
            };
            LayerSpec::Merge(MergeSpec {
                name,
                kind,
                axis,
                trainable,
            })
        }
        other => return unsupported(format!("layer {other}")),
    })
}

/// The activations tf.keras 2 knows by the same name and meaning, so a universal file may use them.
fn keras2_knows(a: Activation) -> bool {
    !matches!(
        a,
        Activation::Relu6
            | Activation::LeakyRelu
            | Activation::HardSigmoid
            | Activation::HardSilu
            | Activation::LogSoftmax
            | Activation::Mish
    )
}

/// Checks that the layer can be written in `format`; the reason when it cannot.
pub(crate) fn writable(l: &LayerSpec, format: Format) -> std::result::Result<(), String> {
    if let (Format::Universal, Some(a)) = (format, l.activation().filter(|a| !keras2_knows(*a))) {
        return Err(format!(
            "layer '{}': activation '{}' has no Keras 2 equivalent of the same meaning; write the Keras 3 format",
            l.name(),
            a.keras_name()
        ));
    }
    Ok(())
}

/// The config object of a layer other than Dense of a model of `dtype`, in `format`'s dialect.
pub(crate) fn layer_config(l: &LayerSpec, dtype: FloatDtype, format: Format) -> Value {
    let dtype = dtype_json(dtype, format);
    let mut cfg = json!({"name": l.name(), "trainable": l.trainable(), "dtype": dtype});
    let extra = match l {
        LayerSpec::Dense(_) => json!({}),
        LayerSpec::Dropout(d) => json!({"rate": d.rate, "noise_shape": null, "seed": null}),
        LayerSpec::BatchNormalization(b) => {
            let mut v = json!({
                "axis": -1, "momentum": b.momentum, "epsilon": b.epsilon, "center": b.center,
                "scale": b.scale,
                "beta_initializer": initializer_json(&b.beta_initializer, format),
                "gamma_initializer": initializer_json(&b.gamma_initializer, format),
                "moving_mean_initializer": initializer_json(&b.moving_mean_initializer, format),
                "moving_variance_initializer": initializer_json(&b.moving_variance_initializer, format),
                "beta_regularizer": null, "gamma_regularizer": null,
                "beta_constraint": null, "gamma_constraint": null,
            });
            if format == Format::Keras3 {
                v["synchronized"] = json!(false);
                v["renorm"] = json!(false);
                v["renorm_clipping"] = Value::Null;
                v["renorm_momentum"] = json!(0.99);
            }
            v
        }
        LayerSpec::LayerNormalization(n) => {
            let mut v = json!({
                "axis": -1, "epsilon": n.epsilon, "center": n.center, "scale": n.scale,
                "beta_initializer": initializer_json(&n.beta_initializer, format),
                "gamma_initializer": initializer_json(&n.gamma_initializer, format),
                "beta_regularizer": null, "gamma_regularizer": null,
                "beta_constraint": null, "gamma_constraint": null,
            });
            if format == Format::Keras3 {
                v["rms_scaling"] = json!(false);
            }
            v
        }
        LayerSpec::Activation(a) => json!({"activation": a.activation.keras_name()}),
        LayerSpec::LeakyReLU(r) => match format {
            Format::Keras3 => json!({"negative_slope": r.negative_slope}),
            Format::Universal => json!({"alpha": r.negative_slope}),
        },
        LayerSpec::Flatten(_) => json!({"data_format": "channels_last"}),
        LayerSpec::Merge(m) if m.kind == MergeKind::Concatenate => json!({"axis": m.axis}),
        LayerSpec::Merge(_) => json!({}),
    };
    if let (Some(c), Some(e)) = (cfg.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    cfg
}

/// Wraps a layer's config as a layer entry of `format`'s dialect.
pub(crate) fn layer_entry(class: &str, cfg: Value, format: Format) -> Value {
    match format {
        Format::Keras3 => k3_object("keras.layers", class, cfg),
        Format::Universal => json!({"class_name": class, "config": cfg}),
    }
}

/// The inbound node of a Functional layer that reads the output of layer `from`.
pub(crate) fn inbound_node(from: &str, width: usize, dtype: FloatDtype, format: Format) -> Value {
    match format {
        Format::Keras3 => json!([{"args": [{"class_name": "__keras_tensor__", "config": {
            "shape": [null, width], "dtype": dtype.keras_name(), "keras_history": [from, 0, 0]}}],
            "kwargs": {}}]),
        Format::Universal => json!([[[from, 0, 0, {}]]]),
    }
}

/// The names of the layers an inbound-node list reads, in either dialect: `[[...]]` when the
/// layer is called once on one tensor; more than one name means a merge, more than one node a
/// layer shared between branches.
fn sources(nodes: &Value) -> Res<Vec<Vec<String>>> {
    let Some(nodes) = nodes.as_array() else {
        return malformed("inbound_nodes is not a list");
    };
    let mut out = Vec::new();
    for node in nodes {
        let mut names = Vec::new();
        collect_history(node, &mut names, 0)?;
        out.push(names);
    }
    Ok(out)
}

/// Collects `keras_history` layer names (Keras 3) or `[name, node, tensor, kwargs]` entries (Keras 2).
fn collect_history(v: &Value, names: &mut Vec<String>, depth: usize) -> Res<()> {
    if depth > 16 {
        return malformed("inbound_nodes are nested too deeply");
    }
    match v {
        Value::Object(o) => {
            if let Some(h) = o.get("config").and_then(|c| c.get("keras_history")) {
                if let Some(n) = h.get(0).and_then(Value::as_str) {
                    names.push(n.to_string());
                }
                return Ok(());
            }
            for (k, x) in o {
                if k == "args" {
                    collect_history(x, names, depth + 1)?;
                }
            }
        }
        Value::Array(a) => {
            if let (Some(Value::String(n)), Some(Value::Number(_))) = (a.first(), a.get(1)) {
                names.push(n.clone());
                return Ok(());
            }
            for x in a {
                collect_history(x, names, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The layers of a Functional model in chain order (without the input layer), with the input
/// layer's entry. A model that branches or merges is refused, naming the first layer that does.
pub(crate) fn functional_chain(layers: &[Value]) -> Res<(&Value, Vec<&Value>)> {
    let name = |l: &Value| -> String {
        l.get("name")
            .or_else(|| l.pointer("/config/name"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let class = |l: &Value| {
        l.get("class_name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let inputs: Vec<&Value> = layers.iter().filter(|l| class(l) == "InputLayer").collect();
    let input = match inputs.as_slice() {
        [one] => *one,
        [] => return malformed("a Functional model without an InputLayer"),
        many => {
            return unsupported(format!(
                "a Functional model with {} inputs ({}); only single chains are supported",
                many.len(),
                many.iter().map(|l| name(l)).collect::<Vec<_>>().join(", ")
            ));
        }
    };
    // Every other layer with the names of the layers it reads, call by call.
    let mut reads: Vec<(String, &Value, Vec<Vec<String>>)> = Vec::new();
    for l in layers.iter().filter(|l| class(l) != "InputLayer") {
        let nodes = sources(l.get("inbound_nodes").unwrap_or(&Value::Null))?;
        reads.push((name(l), l, nodes));
    }
    // Walk from the input: each step must find exactly one layer, called once, on one tensor.
    let mut chain = Vec::new();
    let mut current = name(input);
    loop {
        let readers: Vec<usize> = (0..reads.len())
            .filter(|&i| reads[i].2.iter().flatten().any(|s| *s == current))
            .collect();
        let i = match readers.as_slice() {
            [] => break,
            [i] => *i,
            many => {
                return unsupported(format!(
                    "a Functional model that branches: the output of '{current}' feeds {}; only single chains are supported",
                    many.iter()
                        .map(|&i| format!("'{}'", reads[i].0))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
            }
        };
        let (lname, layer, nodes) = &reads[i];
        match nodes.as_slice() {
            [one] if one.len() == 1 => {}
            [one] => {
                return unsupported(format!(
                    "a Functional model that merges: layer '{lname}' ({}) reads {}; only single chains are supported",
                    class(layer),
                    one.join(" and ")
                ));
            }
            _ => {
                return unsupported(format!(
                    "a Functional model that calls layer '{lname}' {} times; only single chains are supported",
                    nodes.len()
                ));
            }
        }
        chain.push(*layer);
        current = lname.clone();
        if chain.len() > reads.len() {
            return malformed("the layers of the Functional model form a cycle");
        }
    }
    if chain.len() != reads.len() {
        return unsupported("a Functional model with layers off its main chain");
    }
    Ok((input, chain))
}
