//! A layer's Keras config as a whole: the settings every layer shares (name, trainable, dtype) around
//! what each layer type's own file reads and writes (through the table in `model::layer_spec`), and
//! the wiring of a Functional model that is a single chain.
//!
//! Every field is either understood or, when it asks for something this tool does not do, refused
//! with a message naming it (`ConfigError::Unsupported`); keys with a null/false value, and keys
//! that do not change the computation, are accepted.

pub(crate) use crate::model::dialect::model_dtype;
use crate::model::dialect::{
    ConfigError, Format, check_dtype, dtype_json, k3_object, name_of, trainable_of,
};
use crate::model::layer::Common;
use crate::model::{Activation, FloatDtype, LayerSpec};
use serde_json::{Value, json};

type Res<T> = std::result::Result<T, ConfigError>;

fn unsupported<T>(msg: impl Into<String>) -> Res<T> {
    Err(ConfigError::Unsupported(msg.into()))
}

fn malformed<T>(msg: impl Into<String>) -> Res<T> {
    Err(ConfigError::Malformed(msg.into()))
}

/// Parses a layer config of Keras class `class` through the table of layer types
/// (`LayerSpec::from_keras`); `keras2` says the file's dialect.
pub(crate) fn parse_layer(
    class: &str,
    cfg: &Value,
    default_name: String,
    keras2: bool,
) -> Res<LayerSpec> {
    check_dtype(class, cfg)?;
    let common = Common {
        class,
        name: name_of(cfg, default_name),
        trainable: trainable_of(cfg),
        keras2,
    };
    LayerSpec::from_keras(cfg, &common).unwrap_or_else(|| unsupported(format!("layer {class}")))
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

/// Whether layer `l` is a Keras 3 operation on tensors (`keras.src.ops.numpy`), not a layer: Keras's
/// `model.layers` leaves it out.
pub(crate) fn is_operation(l: &LayerSpec) -> bool {
    l.layer().keras3_module() == Some(crate::model::dialect::OPS_MODULE)
}

/// Whether layer `l` is called on a list of tensors (Keras's merge layers: `args: [[x, y]]`), not on
/// the tensors themselves (an operation on two tensors: `args: [x, y]`).
pub(crate) fn takes_list(l: &LayerSpec) -> bool {
    matches!(l, LayerSpec::Merge(_)) && !is_operation(l)
}

/// The entry Keras 3 writes for layer `l` when it is an operation (on a number or on two tensors),
/// called as `inbound_nodes` says; `None` for a layer.
pub(crate) fn operation_entry(l: &LayerSpec, inbound_nodes: &Value) -> Option<Value> {
    use crate::model::op_layer::{op_entry, ops_entry};
    match l {
        LayerSpec::Op(op) => Some(op_entry(op, inbound_nodes.clone())),
        LayerSpec::Merge(m) if m.op => Some(ops_entry(
            m.kind.class_name(),
            &m.name,
            inbound_nodes.clone(),
        )),
        _ => None,
    }
}

/// Checks that the layer can be written in `format`; the reason when it cannot.
pub(crate) fn writable(l: &LayerSpec, format: Format) -> std::result::Result<(), String> {
    if let (Format::Universal, Some(module)) = (format, l.layer().keras3_module()) {
        return Err(format!(
            "layer '{}': Keras 2 (tf.keras) has no {} ({module}); write the Keras 3 format",
            l.name(),
            l.class_name()
        ));
    }
    if let (Format::Universal, Some(a)) = (format, l.activation().filter(|a| !keras2_knows(*a))) {
        return Err(format!(
            "layer '{}': activation '{}' has no Keras 2 equivalent of the same meaning; write the Keras 3 format",
            l.name(),
            a.keras_name()
        ));
    }
    Ok(())
}

/// The config object of a layer of a model of `dtype`, in `format`'s dialect: the keys every layer
/// shares, then the layer's own (`Layer::config`).
pub(crate) fn layer_config(l: &LayerSpec, dtype: FloatDtype, format: Format) -> Value {
    let dtype = dtype_json(dtype, format);
    let mut cfg = json!({"name": l.name(), "trainable": l.trainable(), "dtype": dtype});
    if let (Some(c), Value::Object(e)) = (cfg.as_object_mut(), l.layer().config(format)) {
        c.extend(e);
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
pub(crate) fn inbound_node(from: &str, dims: &[usize], dtype: FloatDtype, format: Format) -> Value {
    let mut shape = vec![Value::Null];
    shape.extend(dims.iter().map(|&d| json!(d)));
    match format {
        Format::Keras3 => json!([{"args": [{"class_name": "__keras_tensor__", "config": {
            "shape": shape, "dtype": dtype.keras_name(), "keras_history": [from, 0, 0]}}],
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
