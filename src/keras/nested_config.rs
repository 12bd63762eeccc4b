//! Nested models in a `model_config` (a Sequential or Functional model used as a layer of another,
//! `base(x, training=False)`), both dialects. Reading flattens the config before the rest of
//! `config` reads it: the nested model's entry is replaced by its own layers, wired to what it is
//! called on, and every read of its output becomes a read of its last layer; what was nested is
//! returned beside it. Writing puts the structure back: one entry per nested model, its config that
//! of a model of its own, called as the file called it.
//!
//! A nested model may hold nested models (ConvNeXt's Sequential stem inside the application, the
//! base of the guide's model): they are flattened first, level by level, at most
//! `nested::MAX_DEPTH` levels deep (each level a bounded recursion), and written back level by
//! level (`sub_spec` keeps a nested model's own nested models). A nested model called once on one
//! tensor, its layers' names unique in the whole model: anything else is refused naming the nested
//! model.

use crate::keras::graph_config::{call_tensors, entry_name, inbound_nodes};
use crate::model::dialect::{
    ConfigError, Format, Res, check_keys, class_name, malformed, unsupported,
};
use crate::model::nested::{MAX_DEPTH, NestedSpec, Unit, contains, units};
use crate::model::{GraphInput, GraphSpec, ModelKind, ModelSpec, Source};
use serde_json::{Value, json};

/// What a nested model's entry said, beside the flattened config.
#[derive(Debug, Clone)]
pub(crate) struct NestedInfo {
    pub name: String,
    pub class: String,
    pub input_name: String,
    pub trainable: bool,
    pub inference: bool,
    /// Its layers' names, its output last.
    pub layers: Vec<String>,
}

/// The keys of a nested model's own config Keras writes (Sequential's and Functional's).
const MODEL_KEYS: &[&str] = &[
    "name",
    "trainable",
    "dtype",
    "layers",
    "build_input_shape",
    "input_layers",
    "output_layers",
];

fn is_model(l: &Value) -> bool {
    matches!(class_name(l), Some("Sequential" | "Functional" | "Model"))
}

/// Whether the config's layer list holds a nested model.
pub(crate) fn has_nested(layers: &[Value]) -> bool {
    layers.iter().any(is_model)
}

/// Replaces, in every `[name, node, tensor, ...]` list under `v` (tf.keras 2's calls, Keras 3's
/// `keras_history`, `output_layers`), a reference to layer `from` by `to` (name, node, tensor).
fn rewire(v: &mut Value, from: &str, to: &(String, u64, Option<u64>), depth: usize) {
    if depth > 32 {
        return;
    }
    match v {
        Value::Array(a) => {
            let hit = matches!((a.first(), a.get(1)), (Some(Value::String(n)), Some(Value::Number(_))) if n == from);
            if hit {
                a[0] = json!(to.0);
                a[1] = json!(to.1);
                if let (Some(t), Some(slot)) = (to.2, a.get_mut(2)) {
                    *slot = json!(t);
                }
                return;
            }
            for x in a {
                rewire(x, from, to, depth + 1);
            }
        }
        Value::Object(o) => {
            for x in o.values_mut() {
                rewire(x, from, to, depth + 1);
            }
        }
        _ => {}
    }
}

/// One call of a flattened layer on `src` (Keras 3's form, which both dialects' readers take).
fn call_on(src: &(String, u64, Option<u64>)) -> Value {
    json!([{"args": [{"class_name": "__keras_tensor__",
        "config": {"keras_history": [src.0, src.1, src.2.unwrap_or(0)]}}], "kwargs": {}}])
}

/// A layer entry with its name at the top, as Functional layer lists have it.
fn named_entry(l: &Value) -> Value {
    let mut e = l.clone();
    let name = entry_name(l).to_string();
    if let Some(o) = e.as_object_mut() {
        o.insert("name".into(), json!(name));
    }
    e
}

/// The nested model `entry`'s layers, flattened and wired to `src` (what it is called on), with
/// what it was and what was nested in it (its own nested models, flattened first; `depth` is its
/// level); `sequential_outer` leaves the layers without calls (an outer Sequential's list).
fn expand(
    entry: &Value,
    src: &(String, u64, Option<u64>),
    sequential_outer: bool,
    depth: usize,
) -> Res<(Vec<Value>, NestedInfo, Vec<NestedInfo>)> {
    let name = entry_name(entry).to_string();
    if depth > MAX_DEPTH {
        return unsupported(format!(
            "nested model '{name}' lies more than {MAX_DEPTH} levels of nested models deep"
        ));
    }
    let holds_nested = entry
        .pointer("/config/layers")
        .and_then(Value::as_array)
        .is_some_and(|l| has_nested(l));
    let (flattened, deeper) = if holds_nested {
        let (f, d) = flatten_at(entry, depth)?;
        (Some(f), d)
    } else {
        (None, Vec::new())
    };
    let entry = flattened.as_ref().unwrap_or(entry);
    let class = match class_name(entry) {
        Some("Sequential") => "Sequential",
        _ => "Functional",
    };
    let cfg = entry.get("config").unwrap_or(&Value::Null);
    check_keys(&format!("nested model '{name}'"), cfg, MODEL_KEYS)?;
    let Some(layers) = cfg.get("layers").and_then(Value::as_array) else {
        return malformed(format!("nested model '{name}' has no layer list"));
    };
    let trainable = cfg
        .get("trainable")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let input_entry = layers.iter().find(|l| class_name(l) == Some("InputLayer"));
    let input_name = input_entry.map_or("input_layer", entry_name).to_string();
    let mut out: Vec<Value> = Vec::new();
    if class == "Sequential" {
        let mut prev = src.clone();
        for l in layers
            .iter()
            .filter(|l| class_name(l) != Some("InputLayer"))
        {
            let mut e = named_entry(l);
            if !sequential_outer {
                e["inbound_nodes"] = call_on(&prev);
            }
            prev = (entry_name(l).to_string(), 0, Some(0));
            out.push(e);
        }
    } else {
        let ends = |k: &str| -> Res<String> {
            let v = cfg.get(k).cloned().unwrap_or(Value::Null);
            let first = match &v {
                Value::Array(a) if a.first().is_some_and(Value::is_string) => v.clone(),
                Value::Array(a) if a.len() == 1 => a[0].clone(),
                _ => {
                    return unsupported(format!(
                        "nested model '{name}' has {k} {v}; a nested model with one input and one output is supported"
                    ));
                }
            };
            first
                .get(0)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| ConfigError::Malformed(format!("nested model '{name}' {k} {v}")))
        };
        let input = ends("input_layers")?;
        let output = ends("output_layers")?;
        let mut prev = input.clone();
        for l in layers
            .iter()
            .filter(|l| class_name(l) != Some("InputLayer"))
        {
            let mut e = named_entry(l);
            if sequential_outer {
                // Inside a Sequential, a Functional model must be a chain in file order.
                let mut reads = Vec::new();
                let mut kwargs = Vec::new();
                call_tensors(
                    e.get("inbound_nodes").unwrap_or(&Value::Null),
                    &mut reads,
                    &mut kwargs,
                    0,
                )?;
                if reads.len() != 1 || reads[0].0 != prev {
                    return unsupported(format!(
                        "nested model '{name}' in a Sequential model is not a chain of its layers; only a chain is supported there"
                    ));
                }
                e.as_object_mut().map(|o| o.remove("inbound_nodes"));
            } else if let Some(nodes) = e.get_mut("inbound_nodes") {
                rewire(nodes, &input, src, 0);
            }
            prev = entry_name(l).to_string();
            out.push(e);
        }
        if out.last().map(entry_name) != Some(output.as_str()) {
            return unsupported(format!(
                "nested model '{name}': its output '{output}' is not its last layer"
            ));
        }
    }
    if out.is_empty() {
        return unsupported(format!("nested model '{name}' has no layers"));
    }
    if !trainable {
        for e in &mut out {
            if let Some(c) = e.get_mut("config").and_then(Value::as_object_mut) {
                c.insert("trainable".into(), json!(false));
            }
        }
    }
    let info = NestedInfo {
        name,
        class: class.to_string(),
        input_name,
        trainable,
        inference: false,
        layers: out.iter().map(|e| entry_name(e).to_string()).collect(),
    };
    Ok((out, info, deeper))
}

/// The call of nested model `entry` in an outer Functional model: the one tensor it reads, and
/// whether the call records `training=False`.
fn nested_call(entry: &Value) -> Res<((String, u64, Option<u64>), bool)> {
    let name = entry_name(entry);
    let nodes = match entry.get("inbound_nodes") {
        Some(Value::Array(a)) => a,
        _ => return malformed(format!("nested model '{name}' has no inbound_nodes list")),
    };
    let [node] = nodes.as_slice() else {
        return unsupported(format!(
            "nested model '{name}' is called {} times; a nested model called once is supported",
            nodes.len()
        ));
    };
    let mut reads = Vec::new();
    let mut kwargs = Vec::new();
    call_tensors(node, &mut reads, &mut kwargs, 0)?;
    let [(src, n, t)] = reads.as_slice() else {
        return unsupported(format!(
            "nested model '{name}' is called on {} tensors; a nested model with one input is supported",
            reads.len()
        ));
    };
    let mut inference = false;
    for k in &kwargs {
        for (key, v) in k.as_object().into_iter().flatten() {
            match (key.as_str(), v) {
                ("training", Value::Bool(false)) => inference = true,
                (_, Value::Null) => {}
                _ => {
                    return unsupported(format!(
                        "nested model '{name}' is called with {key}={v}; only training=False is supported"
                    ));
                }
            }
        }
    }
    Ok(((src.clone(), *n, Some(*t)), inference))
}

/// The config `root` with its nested models flattened (see the module's doc), and what they were
/// (every level, an outer model before those inside it).
pub(crate) fn flatten(root: &Value) -> Res<(Value, Vec<NestedInfo>)> {
    flatten_at(root, 0)
}

/// `flatten` of a model `depth` levels deep (0: the outer model).
fn flatten_at(root: &Value, depth: usize) -> Res<(Value, Vec<NestedInfo>)> {
    let mut root = root.clone();
    let sequential = class_name(&root) == Some("Sequential");
    let Some(layers) = root
        .pointer_mut("/config/layers")
        .and_then(Value::as_array_mut)
    else {
        return malformed("model_config has no layer list");
    };
    let mut flat: Vec<Value> = Vec::with_capacity(layers.len());
    let mut infos = Vec::new();
    let mut renames: Vec<(String, (String, u64, Option<u64>))> = Vec::new();
    for l in layers.iter() {
        if !is_model(l) {
            flat.push(l.clone());
            continue;
        }
        let (src, inference) = if sequential {
            let prev = flat
                .iter()
                .rev()
                .find(|e| class_name(e) != Some("InputLayer"))
                .map_or("", |e| entry_name(e));
            ((prev.to_string(), 0, Some(0)), false)
        } else {
            nested_call(l)?
        };
        let (inner, mut info, deeper) = expand(l, &src, sequential, depth + 1)?;
        info.inference = inference;
        // An outer Sequential without an InputLayer of its own takes the first nested model's.
        if sequential && flat.is_empty() {
            let layers = l.pointer("/config/layers").and_then(Value::as_array);
            if let Some(input) = layers
                .into_iter()
                .flatten()
                .find(|e| class_name(e) == Some("InputLayer"))
            {
                flat.push(input.clone());
            }
        }
        let out = info.layers.last().cloned().unwrap_or_default();
        renames.push((info.name.clone(), (out, 0, None)));
        flat.extend(inner);
        infos.push(info);
        infos.extend(deeper);
    }
    // Reads of a nested model's output become reads of its last layer.
    for e in flat.iter_mut() {
        if let Some(nodes) = e.get_mut("inbound_nodes") {
            for (from, to) in &renames {
                rewire(nodes, from, to, 0);
            }
        }
    }
    if let Some(outputs) = root.pointer_mut("/config/output_layers") {
        for (from, to) in &renames {
            rewire(outputs, from, to, 0);
        }
    }
    // Names must stay unique once the nested models' layers join the outer ones.
    let mut seen = std::collections::HashSet::new();
    for e in &flat {
        let n = entry_name(e);
        if !n.is_empty() && !seen.insert(n.to_string()) {
            let owner = infos.iter().find(|i| i.layers.iter().any(|x| x == n));
            return unsupported(match owner {
                Some(i) => format!(
                    "layer '{n}' of nested model '{}' has the name of another layer of the model; layer names must be unique across nested models",
                    i.name
                ),
                None => format!("two layers are named '{n}'"),
            });
        }
    }
    root["config"]["layers"] = Value::Array(flat);
    Ok((root, infos))
}

/// The nested models of `spec` (parsed from a flattened config) from what `flatten` returned:
/// each a run of layers ending in its output, and a frozen one's layers frozen.
pub(crate) fn place(spec: &mut ModelSpec, infos: &[NestedInfo]) -> Res<()> {
    let index: std::collections::HashMap<&str, usize> = spec
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| (l.name(), i))
        .collect();
    let mut placed = Vec::with_capacity(infos.len());
    for info in infos {
        let at: Vec<usize> = info
            .layers
            .iter()
            .filter_map(|n| index.get(n.as_str()).copied())
            .collect();
        let (Some(&start), Some(&end)) = (at.iter().min(), at.iter().max()) else {
            return malformed(format!("nested model '{}' has no layers", info.name));
        };
        let end = end + 1;
        if at.len() != info.layers.len()
            || end - start != at.len()
            || spec.layers[end - 1].name() != info.layers.last().map_or("", String::as_str)
        {
            return unsupported(format!(
                "nested model '{}': its layers do not run in order from its input to its output",
                info.name
            ));
        }
        placed.push(NestedSpec {
            name: info.name.clone(),
            class: info.class.clone(),
            input_name: info.input_name.clone(),
            start,
            end,
            trainable: info.trainable,
            inference: info.inference,
        });
    }
    spec.nested.extend(placed);
    // By start, an outer model before the models inside it (stable: `infos` lists it first).
    spec.nested
        .sort_by_key(|m| (m.start, std::cmp::Reverse(m.end)));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writing

/// What layer `i` reads: the graph's sources, or in a chain the layer before it (the input first).
fn reads_of(spec: &ModelSpec, i: usize) -> Vec<Source> {
    match &spec.graph {
        Some(g) => g.inbound[i].clone(),
        None if i == 0 => vec![Source::Input(0)],
        None => vec![Source::Layer(i - 1)],
    }
}

/// Nested model `m` of `spec` as a model of its own: its layers, the one tensor it reads as its
/// input (named as its InputLayer), its wiring when it is not a chain.
pub fn sub_spec(spec: &ModelSpec, m: &NestedSpec) -> ModelSpec {
    let shapes = spec.shapes().ok();
    let outside = (m.start..m.end)
        .flat_map(|i| reads_of(spec, i))
        .find(|s| !matches!(*s, Source::Layer(j) if m.holds(j)));
    let input = match (outside, &shapes, &spec.graph) {
        (Some(Source::Layer(j)), Some(sh), _) => sh.outputs[j].clone(),
        (Some(Source::Input(k)), _, Some(g)) => g.inputs[k].shape.clone(),
        _ => spec.input_shape(),
    };
    let inbound: Vec<Vec<Source>> = (m.start..m.end)
        .map(|i| {
            reads_of(spec, i)
                .into_iter()
                .map(|s| match s {
                    Source::Layer(j) if m.holds(j) => Source::Layer(j - m.start),
                    _ => Source::Input(0),
                })
                .collect()
        })
        .collect();
    let inference: Vec<bool> = match &spec.graph {
        Some(g) => (m.start..m.end).map(|i| g.in_inference(i)).collect(),
        None => Vec::new(),
    };
    let chain = !inference.contains(&true)
        && inbound.iter().enumerate().all(|(i, s)| {
            s.as_slice()
                == [if i == 0 {
                    Source::Input(0)
                } else {
                    Source::Layer(i - 1)
                }]
        });
    ModelSpec {
        input_dim: input.size(),
        layers: spec.layers[m.start..m.end].to_vec(),
        kind: if m.functional() {
            ModelKind::Functional {
                input_name: m.input_name.clone(),
            }
        } else {
            ModelKind::Sequential
        },
        dtype: spec.dtype,
        graph: (!chain).then(|| GraphSpec {
            inputs: vec![GraphInput {
                name: m.input_name.clone(),
                shape: input.clone(),
            }],
            inbound,
            inference,
        }),
        input_shape: (chain && input.rank() > 1).then_some(input),
        nested: inner_nested(spec, m),
    }
}

/// The nested models inside nested model `m` of `spec`, their runs counted from `m`'s start.
fn inner_nested(spec: &ModelSpec, m: &NestedSpec) -> Vec<NestedSpec> {
    let Some(k) = spec.nested.iter().position(|n| n == m) else {
        return Vec::new();
    };
    (0..spec.nested.len())
        .filter(|&j| contains(&spec.nested, k, j))
        .map(|j| {
            let n = &spec.nested[j];
            NestedSpec {
                start: n.start - m.start,
                end: n.end - m.start,
                ..n.clone()
            }
        })
        .collect()
}

/// How `config` writes a model's config and a layer's entry (given, so that this file and
/// `config` do not import each other).
pub(crate) struct Writers {
    pub model: fn(&ModelSpec, Format) -> Value,
    pub layer: fn(&ModelSpec, usize, Format) -> Value,
}

/// Nested model `m`'s entry in its outer model's layer list (without its call).
fn nested_entry(spec: &ModelSpec, m: &NestedSpec, format: Format, w: &Writers) -> Value {
    let sub = sub_spec(spec, m);
    let mut v = (w.model)(&sub, format);
    if format == Format::Keras3 && m.functional() {
        // Keras 3 deserialises a nested Functional model from its own module only.
        v["module"] = json!("keras.src.models.functional");
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("keras_version");
        o.remove("backend");
        if format == Format::Keras3 && !o.contains_key("build_config") {
            let mut batch = vec![Value::Null];
            batch.extend(sub.input_shape().dims().iter().map(|&d| json!(d)));
            if let Some(g) = &sub.graph {
                batch.truncate(1);
                batch.extend(g.inputs[0].shape.dims().iter().map(|&d| json!(d)));
            }
            o.insert("build_config".into(), json!({"input_shape": batch}));
        }
    }
    v["config"]["name"] = json!(m.name);
    // Its InputLayer keeps the name the file gave it.
    if let Some(input) = v
        .pointer_mut("/config/layers/0")
        .filter(|l| class_name(l) == Some("InputLayer"))
    {
        input["config"]["name"] = json!(m.input_name);
        if input.get("name").is_some() {
            input["name"] = json!(m.input_name);
        }
    }
    if format == Format::Keras3 || !m.trainable {
        v["config"]["trainable"] = json!(m.trainable);
    }
    v["name"] = json!(m.name);
    v
}

/// The name a unit of the outer model is known by: a layer's, or its nested model's.
fn unit_name<'a>(spec: &'a ModelSpec, j: usize) -> &'a str {
    spec.nested
        .iter()
        .find(|m| m.holds(j))
        .map_or(spec.layers[j].name(), |m| m.name.as_str())
}

/// The `model_config` of a model with nested models: its units (layers and nested models) in
/// Keras's form, the outer model Sequential or Functional as it was read.
pub(crate) fn nested_model_config(spec: &ModelSpec, format: Format, w: &Writers) -> Value {
    let dtype = spec.dtype.keras_name();
    let shapes = spec.shapes().ok();
    let inputs: Vec<GraphInput> = match (&spec.graph, &spec.kind) {
        (Some(g), _) => g.inputs.clone(),
        (None, ModelKind::Functional { input_name }) => vec![GraphInput {
            name: input_name.clone(),
            shape: spec.input_shape(),
        }],
        (None, ModelKind::Sequential) => vec![GraphInput {
            name: "input_layer".into(),
            shape: spec.input_shape(),
        }],
    };
    let sequential = spec.kind == ModelKind::Sequential && spec.graph.is_none();
    let mut layers = Vec::new();
    for input in &inputs {
        let mut batch = vec![Value::Null];
        batch.extend(input.shape.dims().iter().map(|&d| json!(d)));
        let mut entry = match format {
            Format::Keras3 => crate::model::dialect::k3_object(
                "keras.layers",
                "InputLayer",
                json!({"batch_shape": batch, "dtype": dtype, "sparse": false, "ragged": false, "name": input.name}),
            ),
            Format::Universal => json!({"class_name": "InputLayer", "config": {
                "batch_input_shape": batch, "dtype": dtype, "sparse": false, "ragged": false, "name": input.name}}),
        };
        if !sequential {
            entry["name"] = json!(input.name);
            entry["inbound_nodes"] = json!([]);
        }
        layers.push(entry);
    }
    let mut last = String::new();
    for u in units(spec.layers.len(), &spec.nested) {
        let (mut entry, inference, merge) = match u {
            Unit::Layer(i) => (
                (w.layer)(spec, i, format),
                spec.graph.as_ref().is_some_and(|g| g.in_inference(i)),
                crate::keras::layer_config::takes_list(&spec.layers[i]),
            ),
            Unit::Nested(k) => {
                let m = &spec.nested[k];
                (nested_entry(spec, m, format, w), m.inference, false)
            }
        };
        last = match u {
            Unit::Layer(i) => spec.layers[i].name().to_string(),
            Unit::Nested(k) => spec.nested[k].name.clone(),
        };
        if !sequential {
            let reads: Vec<(String, Vec<usize>, u64)> = match u {
                Unit::Layer(i) => reads_of(spec, i),
                Unit::Nested(k) => {
                    let m = &spec.nested[k];
                    (m.start..m.end)
                        .flat_map(|i| reads_of(spec, i))
                        .find(|s| !matches!(*s, Source::Layer(j) if m.holds(j)))
                        .into_iter()
                        .collect()
                }
            }
            .into_iter()
            .map(|s| match s {
                Source::Input(k) => (inputs[k].name.clone(), inputs[k].shape.dims().to_vec(), 0),
                Source::Layer(j) => {
                    let nested = spec.nested.iter().any(|m| m.holds(j));
                    // tf.keras 2 numbers a nested model's call on the outer tensor node 1 (node 0
                    // is the call that built it); Keras 3 numbers it 0.
                    let node = u64::from(nested && format == Format::Universal);
                    let shape = shapes
                        .as_ref()
                        .map(|sh| sh.outputs[j].dims().to_vec())
                        .unwrap_or_default();
                    (unit_name(spec, j).to_string(), shape, node)
                }
            })
            .collect();
            entry["name"] = json!(last);
            entry["inbound_nodes"] = inbound_nodes(&reads, merge, inference, dtype, format);
            if let Unit::Layer(i) = u
                && let Some(op) = crate::keras::layer_config::operation_entry(
                    &spec.layers[i],
                    &entry["inbound_nodes"],
                )
            {
                entry = op;
            }
        }
        layers.push(entry);
    }
    let input_names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    let endpoints = |names: &[&str]| crate::keras::graph_config::endpoint_list(names, format);
    match (format, sequential) {
        (Format::Keras3, true) => {
            let mut v = crate::model::dialect::k3_object(
                "keras",
                "Sequential",
                json!({"name": "sequential", "trainable": true,
                    "dtype": crate::model::dialect::k3_policy(spec.dtype), "layers": layers}),
            );
            let mut batch = vec![Value::Null];
            batch.extend(spec.input_shape().dims().iter().map(|&d| json!(d)));
            v["build_config"] = json!({"input_shape": batch});
            v
        }
        (Format::Universal, true) => {
            json!({"class_name": "Sequential", "config": {"name": "sequential", "layers": layers},
                "keras_version": format.keras_version(), "backend": "tensorflow"})
        }
        (Format::Keras3, false) => crate::model::dialect::k3_object(
            "keras",
            "Functional",
            json!({"name": "functional", "trainable": true, "layers": layers,
                "input_layers": endpoints(&input_names), "output_layers": endpoints(&[&last])}),
        ),
        (Format::Universal, false) => {
            json!({"class_name": "Functional", "config": {"name": "functional", "layers": layers,
                "input_layers": endpoints(&input_names), "output_layers": endpoints(&[&last])},
                "keras_version": format.keras_version(), "backend": "tensorflow"})
        }
    }
}
