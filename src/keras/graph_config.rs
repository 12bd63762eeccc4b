//! The wiring of a Functional model's config, in both dialects: which layers are its inputs (in the
//! order of `input_layers`, Keras's `model.inputs`), its one output, and the tensors each layer is
//! called on (Keras 3's `inbound_nodes: [{"args": [...keras_history...]}]`, tf.keras 2's nested
//! lists `[[["name", node, tensor, {}], ...]]`). Only the topology is read here; `config` reads
//! the layers themselves.
//!
//! Refused, naming the layer: a layer called more than once (shared), a tensor that is not a
//! layer's first output, a model with several outputs, a call with keyword arguments other than
//! `training=False` (kept and written back; Keras 3 overrides it with the model's own mode) and null ones, and wiring that is not a graph (unknown
//! names, cycles).

use crate::model::Source;
use crate::model::dialect::{ConfigError, Format, Res, malformed};
use serde_json::{Value, json};

/// A Functional model's topology.
pub(crate) struct Wiring<'a> {
    /// The InputLayer entries, in `input_layers` order.
    pub inputs: Vec<&'a Value>,
    /// The other layers, each after every layer it reads, the output last.
    pub layers: Vec<&'a Value>,
    /// Per layer of `layers`, what it is called on.
    pub inbound: Vec<Vec<Source>>,
    /// Per layer of `layers`, whether its call records `training=False` (kept for writing back).
    pub inference: Vec<bool>,
}

impl Wiring<'_> {
    /// One input, and every layer called on the one before it: a chain.
    pub fn is_chain(&self) -> bool {
        self.inputs.len() == 1
            && !self.inference.contains(&true)
            && self.inbound.iter().enumerate().all(|(i, s)| {
                s.as_slice()
                    == [if i == 0 {
                        Source::Input(0)
                    } else {
                        Source::Layer(i - 1)
                    }]
            })
    }
}

fn unsupported<T>(msg: impl Into<String>) -> Res<T> {
    Err(ConfigError::Unsupported(msg.into()))
}

/// A layer entry's name (Keras 3 and 2 write it at the top; older files only in `config`).
pub(crate) fn entry_name(l: &Value) -> &str {
    l.get("name")
        .or_else(|| l.pointer("/config/name"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn entry_class(l: &Value) -> &str {
    l.get("class_name").and_then(Value::as_str).unwrap_or("")
}

/// `(layer, node, tensor)` references in `input_layers`/`output_layers`: `[name, 0, 0]` (Keras 3,
/// one) or `[[name, 0, 0], ...]`.
fn endpoints(v: Option<&Value>, what: &str) -> Res<Vec<String>> {
    let Some(Value::Array(a)) = v else {
        return malformed(format!("a Functional model without {what}"));
    };
    let one = |e: &Value| -> Res<String> {
        match e.as_array().map(Vec::as_slice) {
            Some([Value::String(n), node, tensor, ..]) => {
                if node.as_u64() != Some(0) || tensor.as_u64() != Some(0) {
                    return unsupported(format!(
                        "{what} names call {node}, output {tensor} of layer '{n}': only a layer's first call and first output are supported"
                    ));
                }
                Ok(n.clone())
            }
            _ => malformed(format!("{what} entry {e} is not [name, node, tensor]")),
        }
    };
    if a.first().is_some_and(Value::is_string) {
        return Ok(vec![one(&Value::Array(a.clone()))?]);
    }
    a.iter().map(one).collect()
}

/// The tensors one call reads, as `(layer, node, tensor)`, from its `args` (Keras 3) or its list
/// (tf.keras 2), with the call's keyword arguments (Keras 3 `kwargs`, tf.keras 2's fourth entries).
pub(crate) fn call_tensors(
    node: &Value,
    out: &mut Vec<(String, u64, u64)>,
    kwargs: &mut Vec<Value>,
    depth: usize,
) -> Res<()> {
    if depth > 16 {
        return malformed("inbound_nodes are nested too deeply");
    }
    match node {
        Value::Object(o) => {
            if let Some(h) = o.get("config").and_then(|c| c.get("keras_history")) {
                match h.as_array().map(Vec::as_slice) {
                    Some([Value::String(n), a, b, ..]) => out.push((
                        n.clone(),
                        a.as_u64().unwrap_or(u64::MAX),
                        b.as_u64().unwrap_or(u64::MAX),
                    )),
                    _ => {
                        return malformed(format!("keras_history {h} is not [name, node, tensor]"));
                    }
                }
                return Ok(());
            }
            if let Some(a) = o.get("args") {
                call_tensors(a, out, kwargs, depth + 1)?;
            }
            if let Some(k) = o.get("kwargs") {
                kwargs.push(k.clone());
            }
        }
        Value::Array(a) => {
            if let (Some(Value::String(n)), Some(node)) = (a.first(), a.get(1))
                && node.is_number()
            {
                let tensor = a.get(2).and_then(Value::as_u64).unwrap_or(0);
                out.push((n.clone(), node.as_u64().unwrap_or(u64::MAX), tensor));
                if let Some(k) = a.get(3) {
                    kwargs.push(k.clone());
                }
                return Ok(());
            }
            for x in a {
                call_tensors(x, out, kwargs, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Reads the wiring of a Functional model from its `config` (`layers`, `input_layers`,
/// `output_layers`).
pub(crate) fn functional_wiring<'a>(cfg: &'a Value, layers: &'a [Value]) -> Res<Wiring<'a>> {
    let input_names = endpoints(cfg.get("input_layers"), "input_layers")?;
    let by_name = |n: &str| layers.iter().find(|l| entry_name(l) == n);
    let mut inputs = Vec::with_capacity(input_names.len());
    for n in &input_names {
        match by_name(n) {
            Some(l) if entry_class(l) == "InputLayer" => inputs.push(l),
            Some(l) => {
                return unsupported(format!(
                    "input '{n}' is a {} layer, not an InputLayer",
                    entry_class(l)
                ));
            }
            None => return malformed(format!("input_layers names '{n}', which is not a layer")),
        }
    }
    // Every other layer, with what it reads.
    let mut rest: Vec<(&Value, Vec<String>, bool)> = Vec::new();
    for l in layers.iter().filter(|l| entry_class(l) != "InputLayer") {
        let name = entry_name(l);
        let nodes = match l.get("inbound_nodes") {
            Some(Value::Array(a)) => a,
            _ => return malformed(format!("layer '{name}' has no inbound_nodes list")),
        };
        let node = match nodes.as_slice() {
            [one] => one,
            [] => {
                return unsupported(format!(
                    "layer '{name}' is not called on anything (a layer off the model's graph)"
                ));
            }
            many => {
                return unsupported(format!(
                    "a Functional model that calls layer '{name}' {} times (a shared layer); only layers called once are supported",
                    many.len()
                ));
            }
        };
        let mut tensors = Vec::new();
        let mut kwargs = Vec::new();
        call_tensors(node, &mut tensors, &mut kwargs, 0)?;
        let mut inference = false;
        for k in &kwargs {
            if k.get("training") == Some(&Value::Bool(false)) {
                inference = true;
            }
            if let Some((key, v)) = k.as_object().into_iter().flatten().find(|(key, v)| {
                let recorded_default = key.as_str() == "training" && **v == Value::Bool(false);
                !(v.is_null() || recorded_default)
            }) {
                return unsupported(format!(
                    "layer '{name}' is called with {key}={v}; calls with keyword arguments are not supported"
                ));
            }
        }
        let mut reads = Vec::with_capacity(tensors.len());
        for (src, node, tensor) in tensors {
            if node != 0 || tensor != 0 {
                return unsupported(format!(
                    "layer '{name}' reads call {node}, output {tensor} of '{src}': only a layer's first call and first output are supported (a shared layer, or one with several outputs)"
                ));
            }
            reads.push(src);
        }
        if reads.is_empty() {
            return malformed(format!("layer '{name}' reads no tensor"));
        }
        rest.push((l, reads, inference));
    }
    // The output, once every layer's calls are known (a shared layer is named as such first).
    let output_names = endpoints(cfg.get("output_layers"), "output_layers")?;
    if output_names.len() != 1 {
        return unsupported(format!(
            "a Functional model with {} outputs ({}); only models with one output are supported",
            output_names.len(),
            output_names.join(", ")
        ));
    }
    // Order the layers so that each comes after what it reads (Kahn's algorithm, keeping the
    // file's order among the ready ones).
    let mut order: Vec<usize> = Vec::with_capacity(rest.len());
    let mut placed = vec![false; rest.len()];
    let known = |n: &str| input_names.iter().any(|i| i == n);
    while order.len() < rest.len() {
        let ready = (0..rest.len()).find(|&i| {
            !placed[i]
                && rest[i].1.iter().all(|src| {
                    known(src) || order.iter().any(|&j| entry_name(rest[j].0) == src.as_str())
                })
        });
        match ready {
            Some(i) => {
                placed[i] = true;
                order.push(i);
            }
            None => {
                let (l, reads) = rest
                    .iter()
                    .enumerate()
                    .find(|(i, _)| !placed[*i])
                    .map(|(_, (l, r, _))| (l, r))
                    .unwrap_or((&rest[0].0, &rest[0].1));
                let missing = reads.iter().find(|s| {
                    !known(s) && !rest.iter().any(|(o, _, _)| entry_name(o) == s.as_str())
                });
                return match missing {
                    Some(m) if layers.iter().any(|o| entry_name(o) == m.as_str()) => {
                        unsupported(format!(
                            "layer '{}' reads '{m}', an InputLayer that is not one of input_layers",
                            entry_name(l)
                        ))
                    }
                    Some(m) => malformed(format!(
                        "layer '{}' reads '{m}', which is not a layer",
                        entry_name(l)
                    )),
                    None => malformed("the layers of the Functional model form a cycle"),
                };
            }
        }
    }
    // The output last: it must be the one layer nothing else reads (checked again on the spec).
    let out = &output_names[0];
    let Some(pos) = order
        .iter()
        .position(|&i| entry_name(rest[i].0) == out.as_str())
    else {
        return if known(out) {
            unsupported(format!(
                "a Functional model whose output is its input '{out}'"
            ))
        } else {
            malformed(format!("output_layers names '{out}', which is not a layer"))
        };
    };
    if pos + 1 != order.len() {
        let after = entry_name(rest[order[pos + 1]].0);
        return unsupported(format!(
            "layer '{after}' does not lead to the output '{out}': only models with one output are supported"
        ));
    }
    let index = |n: &str, upto: usize| -> Source {
        match input_names.iter().position(|i| i == n) {
            Some(k) => Source::Input(k),
            None => Source::Layer(
                order[..upto]
                    .iter()
                    .position(|&j| entry_name(rest[j].0) == n)
                    .unwrap_or(usize::MAX),
            ),
        }
    };
    let inbound = order
        .iter()
        .enumerate()
        .map(|(at, &i)| rest[i].1.iter().map(|n| index(n, at)).collect())
        .collect();
    Ok(Wiring {
        inputs,
        layers: order.iter().map(|&i| rest[i].0).collect(),
        inbound,
        inference: order.iter().map(|&i| rest[i].2).collect(),
    })
}

/// A layer's `inbound_nodes` in `format`'s dialect: one call on `reads` (`(layer name, per-sample
/// shape, node)` each; a merge's list when `merge`), with `training=False` when `inference`.
pub(crate) fn inbound_nodes(
    reads: &[(String, Vec<usize>, u64)],
    merge: bool,
    inference: bool,
    dtype: &str,
    format: Format,
) -> Value {
    match format {
        Format::Keras3 => {
            let tensors: Vec<Value> = reads
                .iter()
                .map(|(n, shape, node)| {
                    let mut batch = vec![Value::Null];
                    batch.extend(shape.iter().map(|&d| json!(d)));
                    json!({"class_name": "__keras_tensor__", "config": {
                        "shape": batch, "dtype": dtype, "keras_history": [n, node, 0]}})
                })
                .collect();
            let args = if merge {
                json!([tensors])
            } else {
                Value::Array(tensors)
            };
            let kwargs = if inference {
                json!({"training": false})
            } else {
                json!({})
            };
            json!([{"args": args, "kwargs": kwargs}])
        }
        Format::Universal => {
            let kwargs = if inference {
                json!({"training": false})
            } else {
                json!({})
            };
            let calls: Vec<Value> = reads
                .iter()
                .map(|(n, _, node)| json!([n, node, 0, kwargs]))
                .collect();
            json!([calls])
        }
    }
}

/// `input_layers`/`output_layers` in `format`'s dialect: Keras 3 writes one as `[name, 0, 0]`,
/// several as a list of them; tf.keras 2 always a list.
pub(crate) fn endpoint_list(names: &[&str], format: Format) -> Value {
    match (format, names) {
        (Format::Keras3, [one]) => json!([one, 0, 0]),
        _ => Value::Array(names.iter().map(|n| json!([n, 0, 0])).collect()),
    }
}
