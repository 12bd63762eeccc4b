//! Keras's JSON configs: `model_config` (Sequential, a Functional chain or graph) in the Keras 3 and
//! Keras 2 dialects, and `training_config`, to and from `ModelSpec`. Each layer type's own config is
//! read and written by its file (`model::layer_spec` lists them); this file puts them together.

use crate::keras::graph_config::{endpoint_list, entry_name, functional_wiring, inbound_nodes};
use crate::keras::layer_config::{
    functional_chain, inbound_node, layer_config, layer_entry, model_dtype, parse_layer,
};
use crate::keras::nested_config;
pub use crate::model::dialect::{ConfigError, Format};
use crate::model::dialect::{Res, check_dtype, class_name, k3_object, k3_policy, malformed};
use crate::model::{GraphInput, GraphSpec, LayerSpec, ModelKind, ModelSpec, Shape, Source};
use crate::train::schedule::LearningRate;
use crate::train::{Compile, Loss, Metric, OptimizerKind, OptimizerSpec};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Writing

/// Checks that every layer of `spec` can be written in `format`; the reason when one cannot.
pub fn writable(spec: &ModelSpec, format: Format) -> std::result::Result<(), String> {
    spec.layers
        .iter()
        .try_for_each(|l| crate::keras::layer_config::writable(l, format))
}

/// Layer `i`'s entry in a model config: its class and config, and in Keras 3 the input shape it was
/// built for when it has weights.
pub(crate) fn layer_entry_of(spec: &ModelSpec, i: usize, format: Format) -> Value {
    let layer = &spec.layers[i];
    let mut entry = layer_entry(
        layer.class_name(),
        layer_config(layer, spec.dtype, format),
        format,
    );
    if let (Some(module), Format::Keras3) = (layer.layer().keras3_module(), format) {
        entry["module"] = json!(module);
        entry["registered_name"] = json!(layer.class_name());
    }
    if let Some(obj) = entry.as_object_mut()
        && format == Format::Keras3
        && !layer.weights(spec.fan_in(i)).is_empty()
    {
        let dims = layer_input_dims(spec, i);
        obj.insert(
            "build_config".into(),
            json!({"input_shape": batch_shape(&dims)}),
        );
    }
    entry
}

/// The per-sample dims of layer `i`'s (first) input.
fn layer_input_dims(spec: &ModelSpec, i: usize) -> Vec<usize> {
    spec.shapes()
        .ok()
        .and_then(|s| {
            s.inputs
                .get(i)
                .and_then(|x| x.first())
                .map(|s| s.dims().to_vec())
        })
        .unwrap_or_else(|| vec![spec.fan_in(i)])
}

/// Keras's batch shape: `[null, d1, d2, ...]`.
fn batch_shape(dims: &[usize]) -> Value {
    let mut b = vec![Value::Null];
    b.extend(dims.iter().map(|&d| json!(d)));
    Value::Array(b)
}

/// The `model_config` of a graph model: a Functional model with its inputs, each layer's calls and
/// its output.
fn graph_model_config(spec: &ModelSpec, g: &GraphSpec, format: Format) -> Value {
    let dtype = spec.dtype.keras_name();
    let mut layers = Vec::with_capacity(g.inputs.len() + spec.layers.len());
    for input in &g.inputs {
        let mut batch = vec![Value::Null];
        batch.extend(input.shape.dims().iter().map(|&d| json!(d)));
        let mut entry = match format {
            Format::Keras3 => k3_object(
                "keras.layers",
                "InputLayer",
                json!({"batch_shape": batch, "dtype": dtype, "sparse": false, "ragged": false, "name": input.name}),
            ),
            Format::Universal => json!({"class_name": "InputLayer", "config": {
                "batch_input_shape": batch, "dtype": dtype, "sparse": false, "ragged": false, "name": input.name}}),
        };
        entry["name"] = json!(input.name);
        entry["inbound_nodes"] = json!([]);
        layers.push(entry);
    }
    let shapes = spec.shapes().ok();
    for (i, layer) in spec.layers.iter().enumerate() {
        let mut entry = layer_entry_of(spec, i, format);
        let reads: Vec<(String, Vec<usize>, u64)> = g.inbound[i]
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let name = match *s {
                    Source::Input(j) => g.inputs[j].name.clone(),
                    Source::Layer(j) => spec.layers[j].name().to_string(),
                };
                let shape = shapes
                    .as_ref()
                    .and_then(|sh| sh.inputs[i].get(k))
                    .map(|s| s.dims().to_vec())
                    .unwrap_or_default();
                (name, shape, 0)
            })
            .collect();
        let merge = crate::keras::layer_config::takes_list(layer);
        entry["name"] = json!(layer.name());
        entry["inbound_nodes"] = inbound_nodes(&reads, merge, g.in_inference(i), dtype, format);
        if let Some(op) =
            crate::keras::layer_config::operation_entry(layer, &entry["inbound_nodes"])
        {
            layers.push(op);
            continue;
        }
        if format == Format::Keras3 && merge {
            let input_shape: Vec<Value> = reads
                .iter()
                .map(|(_, s, _)| {
                    let mut b = vec![Value::Null];
                    b.extend(s.iter().map(|&d| json!(d)));
                    Value::Array(b)
                })
                .collect();
            entry["build_config"] = json!({"input_shape": input_shape});
        }
        layers.push(entry);
    }
    let inputs: Vec<&str> = g.inputs.iter().map(|i| i.name.as_str()).collect();
    let output = spec.layers.last().map_or("", LayerSpec::name);
    let (input_layers, output_layers) = (
        endpoint_list(&inputs, format),
        endpoint_list(&[output], format),
    );
    match format {
        Format::Keras3 => k3_object(
            "keras",
            "Functional",
            json!({"name": "functional", "trainable": true, "layers": layers,
                "input_layers": input_layers, "output_layers": output_layers}),
        ),
        Format::Universal => {
            json!({"class_name": "Functional", "config": {"name": "functional", "layers": layers,
                "input_layers": input_layers, "output_layers": output_layers},
                "keras_version": format.keras_version(), "backend": "tensorflow"})
        }
    }
}

/// The `model_config` JSON of a model in the given dialect: Sequential, or Functional for a chain
/// that came from a Functional model, or for a graph.
pub fn model_config(spec: &ModelSpec, format: Format) -> Value {
    if !spec.nested.is_empty() {
        let w = nested_config::Writers {
            model: model_config,
            layer: layer_entry_of,
        };
        return nested_config::nested_model_config(spec, format, &w);
    }
    if let Some(g) = &spec.graph {
        return graph_model_config(spec, g, format);
    }
    let batch = batch_shape(spec.input_shape().dims());
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
            json!({"batch_shape": batch, "dtype": spec.dtype.keras_name(), "sparse": false, "ragged": false, "name": input_name}),
        ),
        Format::Universal => json!({"class_name": "InputLayer", "config": {
            "batch_input_shape": batch, "dtype": spec.dtype.keras_name(), "sparse": false, "ragged": false, "name": input_name}}),
    };
    if functional.is_some() {
        input["name"] = json!(input_name);
        input["inbound_nodes"] = json!([]);
    }
    layers.push(input);
    let mut previous = input_name.to_string();
    for (i, layer) in spec.layers.iter().enumerate() {
        let mut entry = layer_entry_of(spec, i, format);
        if let Some(obj) = entry.as_object_mut()
            && functional.is_some()
        {
            obj.insert("name".into(), json!(layer.name()));
            obj.insert(
                "inbound_nodes".into(),
                inbound_node(&previous, &layer_input_dims(spec, i), spec.dtype, format),
            );
        }
        previous = layer.name().to_string();
        layers.push(entry);
    }
    match (format, functional) {
        (Format::Keras3, None) => {
            let mut v = k3_object(
                "keras",
                "Sequential",
                json!({"name": "sequential", "trainable": true, "dtype": k3_policy(spec.dtype), "layers": layers}),
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

/// The optimizer's own hyper-parameters, as its Keras `get_config()` lists them.
fn optimizer_params(o: &OptimizerSpec) -> Value {
    o.kind.params()
}

/// The `optimizer_config` of a `training_config`: `{"class_name", "config"}` with every setting.
pub fn optimizer_config(o: &OptimizerSpec, format: Format) -> Value {
    let keras3 = format == Format::Keras3;
    let mut cfg = if keras3 {
        json!({
            "name": o.name.clone().unwrap_or_else(|| o.keras_class().to_string()),
            "learning_rate": o.learning_rate.to_json(true), "weight_decay": o.weight_decay,
            "clipnorm": o.clipnorm, "global_clipnorm": o.global_clipnorm, "clipvalue": o.clipvalue,
            "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null,
            "loss_scale_factor": null, "gradient_accumulation_steps": null})
    } else {
        let mut c = json!({"learning_rate": o.learning_rate.to_json(false)});
        if let Some(name) = &o.name {
            c["name"] = json!(name);
        }
        for (k, v) in [
            ("weight_decay", o.weight_decay),
            ("clipnorm", o.clipnorm),
            ("global_clipnorm", o.global_clipnorm),
            ("clipvalue", o.clipvalue),
        ] {
            if let Some(v) = v {
                c[k] = json!(v);
            }
        }
        c
    };
    // A plain SGD keeps the minimal Keras-2 config it always had; anything else lists its settings.
    if (keras3 || !o.is_plain_sgd())
        && let (Some(c), Value::Object(p)) = (cfg.as_object_mut(), optimizer_params(o))
    {
        c.extend(p);
    }
    json!({"class_name": o.keras_class(), "config": cfg})
}

/// The `training_config` JSON: the loss, the metric, and the optimizer with its settings.
pub fn training_config(c: &Compile, format: Format) -> Value {
    let keras3 = format == Format::Keras3;
    let metrics: Vec<&str> = c.metrics.iter().map(|m| m.key).collect();
    let mut v = json!({
        "loss": c.loss.to_json(false),
        "metrics": metrics,
        "loss_weights": null,
        "optimizer_config": optimizer_config(&c.optimizer, format),
    });
    if keras3 {
        v["weighted_metrics"] = Value::Null;
        v["run_eagerly"] = json!(false);
        v["steps_per_execution"] = json!(1);
        v["jit_compile"] = json!(false);
    }
    v
}

/// Reads an `optimizer_config` (Keras 3 or tf.keras 2); the error names the setting this tool cannot
/// apply exactly.
/// The config keys Keras (3, and tf.keras 2) writes or accepts for an optimizer of `kind`: those of
/// every optimizer, then the class's own. Keras refuses any other ("Argument(s) not recognized").
fn optimizer_keys(kind: &OptimizerKind) -> Vec<&'static str> {
    let mut keys = vec![
        "name",
        "learning_rate",
        "lr",
        "weight_decay",
        "clipnorm",
        "global_clipnorm",
        "clipvalue",
        "use_ema",
        "ema_momentum",
        "ema_overwrite_frequency",
        "loss_scale_factor",
        "gradient_accumulation_steps",
        "jit_compile",
        "is_legacy_optimizer",
        "decay",
    ];
    keys.extend_from_slice(kind.keys());
    keys
}

/// Refuses a key of `cfg` (a JSON object) not in `known`, naming it and `what` it configures:
/// Keras raises on an unknown argument, and this tool never ignores a setting silently.
pub(crate) fn unknown_keys(
    cfg: &Value,
    known: &[&str],
    what: &str,
) -> std::result::Result<(), String> {
    match cfg.as_object() {
        Some(o) => match o.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(format!(
                "{what} has the unknown setting '{k}' (Keras: \"Argument(s) not recognized\")"
            )),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

pub fn parse_optimizer(v: &Value) -> std::result::Result<OptimizerSpec, String> {
    let class = class_name(v).ok_or_else(|| format!("optimizer {v} has no class_name"))?;
    let class = class.strip_prefix("Custom>").unwrap_or(class);
    let empty = json!({});
    let cfg = v.get("config").unwrap_or(&empty);
    let mut o = OptimizerSpec::named(class).map_err(|_| {
        format!("optimizer {class} (supported: SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, Nadam, Lion, Ftrl)")
    })?;
    let set = |k: &str| cfg.get(k).filter(|x| !x.is_null());
    unknown_keys(cfg, &optimizer_keys(&o.kind), &format!("optimizer {class}"))?;
    if cfg.get("is_legacy_optimizer").and_then(Value::as_bool) == Some(true) {
        return Err(format!(
            "optimizer {class} is_legacy_optimizer=True (tf.keras 2's optimizer_v2)"
        ));
    }
    if cfg.get("use_ema").and_then(Value::as_bool) == Some(true) {
        return Err(format!("optimizer {class} use_ema=True"));
    }
    for k in ["loss_scale_factor", "gradient_accumulation_steps"] {
        if let Some(x) = set(k) {
            return Err(format!("optimizer {class} {k}={x}"));
        }
    }
    if let Some(d) = set("decay").and_then(Value::as_f64)
        && d != 0.0
    {
        return Err(format!("optimizer {class} legacy decay={d}"));
    }
    if let Some(lr) = set("learning_rate").or_else(|| set("lr")) {
        o.learning_rate = LearningRate::from_json(lr)?;
    }
    let opt_num = |k: &str| -> std::result::Result<Option<f64>, String> {
        match set(k) {
            None => Ok(None),
            Some(x) => x
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("optimizer {class} {k}={x} is not a number")),
        }
    };
    o.clipnorm = opt_num("clipnorm")?;
    o.global_clipnorm = opt_num("global_clipnorm")?;
    o.clipvalue = opt_num("clipvalue")?;
    if let Some(wd) = opt_num("weight_decay")? {
        o.weight_decay = Some(wd);
    }
    o.name = cfg.get("name").and_then(Value::as_str).map(str::to_string);
    o.kind.set_params(&|k| cfg.get(k).cloned());
    o.validate()
        .map_err(|e| format!("optimizer {class}: {e}"))?;
    Ok(o)
}

/// Reads a `training_config` string: optimizer, loss and metric. Anything this tool cannot train
/// exactly as Keras would is an error naming the setting.
pub fn parse_training_config(text: &str) -> std::result::Result<Compile, String> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("training_config is not JSON ({e})"))?;
    let optimizer = parse_optimizer(
        v.get("optimizer_config")
            .ok_or("training_config has no optimizer_config")?,
    )?;
    let loss = match v.get("loss") {
        None | Some(Value::Null) => return Err("training_config has no loss".into()),
        Some(l) => Loss::from_json(l)?,
    };
    for k in ["loss_weights", "weighted_metrics"] {
        if let Some(x) = v.get(k).filter(|x| !x.is_null()) {
            return Err(format!("compile {k}={x}"));
        }
    }
    let metrics: Vec<Metric> = match v.get("metrics") {
        None | Some(Value::Null) => Vec::new(),
        // tf.keras 2 nests one list per output: `[[...]]` for a single-output model.
        Some(Value::Array(a)) => match a.as_slice() {
            [Value::Array(inner)] => inner,
            _ => a,
        }
        .iter()
        .map(Metric::from_json)
        .collect::<std::result::Result<_, _>>()?,
        Some(other) => return Err(format!("metrics {other}")),
    };
    if let Some(d) = metrics
        .iter()
        .enumerate()
        .find(|(i, m)| metrics[..*i].iter().any(|o| o.key == m.key))
    {
        return Err(format!("two metrics named '{}'", d.1.key));
    }
    Ok(Compile {
        optimizer,
        loss,
        metrics,
    })
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

/// The per-sample shape from a `[null, d1, ...]` batch shape (every dimension known and positive).
fn input_shape(shape: &Value, what: &str) -> Res<Shape> {
    let dims = shape
        .as_array()
        .ok_or_else(|| ConfigError::Malformed(format!("{what} is not a list")))?;
    let known: Vec<Option<u64>> = dims.iter().map(Value::as_u64).collect();
    match Shape::from_batch_shape(&known) {
        Some(s)
            if s.dims()
                .iter()
                .all(|&d| d <= crate::model::shape::MAX_VALUES) =>
        {
            Ok(s)
        }
        _ if dims.len() < 2 => malformed(format!("{what} {shape} has no feature dimension")),
        _ => Err(ConfigError::Unsupported(format!(
            "input of shape {shape} (every dimension after the batch must be a known positive size)"
        ))),
    }
}

type GraphParts<'a> = (Vec<&'a Value>, Vec<Vec<Source>>, Vec<bool>);

/// The per-sample shape of an InputLayer entry's input (its dtype checked, a sparse one refused).
fn input_layer_shape(l: &Value) -> Res<Shape> {
    let lc = l.get("config").unwrap_or(&Value::Null);
    check_dtype("InputLayer", lc)?;
    if lc.get("sparse").and_then(Value::as_bool) == Some(true) {
        return Err(ConfigError::Unsupported("a sparse InputLayer".into()));
    }
    if let Some(s) = lc.get("batch_shape") {
        input_shape(s, "InputLayer batch_shape")
    } else if let Some(s) = lc.get("batch_input_shape") {
        input_shape(s, "InputLayer batch_input_shape")
    } else {
        malformed("InputLayer has no batch_shape or batch_input_shape")
    }
}

/// Parses a `model_config` string (either dialect) into a `ModelSpec`; nested models are read
/// flattened (`nested_config`).
pub fn parse_model_config(text: &str) -> Res<ParsedConfig> {
    let mut root: Value = serde_json::from_str(text)
        .map_err(|e| ConfigError::Malformed(format!("model_config is not JSON ({e})")))?;
    crate::model::op_layer::ops_as_layers(&mut root)?;
    let nested = root
        .pointer("/config/layers")
        .and_then(Value::as_array)
        .is_some_and(|l| nested_config::has_nested(l));
    if !nested {
        return parse_root(&root);
    }
    let (flat, infos) = nested_config::flatten(&root)?;
    let mut parsed = parse_root(&flat)?;
    nested_config::place(&mut parsed.spec, &infos)?;
    if class_name(&root) == Some("Sequential") {
        parsed.spec.kind = ModelKind::Sequential;
    }
    parsed
        .spec
        .validate()
        .map_err(|e| ConfigError::Malformed(e.to_string()))?;
    Ok(parsed)
}

/// Parses a `model_config` (without nested models) into a `ModelSpec`.
fn parse_root(root: &Value) -> Res<ParsedConfig> {
    let class = class_name(root)
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
    // A Functional model that is not a chain: its inputs (all but the first go here) and wiring.
    let mut graph: Option<GraphParts> = None;
    let (input_layer, chain, kind): (Option<&Value>, Vec<&Value>, ModelKind) = match class {
        "Sequential" => {
            let input = layers.iter().find(|l| class_name(l) == Some("InputLayer"));
            let rest = layers
                .iter()
                .filter(|l| class_name(l) != Some("InputLayer"))
                .collect();
            (input, rest, ModelKind::Sequential)
        }
        "Functional" | "Model"
            if cfg.get("input_layers").is_some() && !functional_wiring(cfg, layers)?.is_chain() =>
        {
            let w = functional_wiring(cfg, layers)?;
            let input = w.inputs[0];
            let input_name = entry_name(input).to_string();
            graph = Some((w.inputs.clone(), w.inbound, w.inference));
            (Some(input), w.layers, ModelKind::Functional { input_name })
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
    // Keras 3 saves an operation on tensors (`x + 3.0`, `x * (1/6)` in MobileNetV3's hard_sigmoid)
    // as an entry of module `keras.src.ops...` whose class name may be a merge layer's (`Add`).
    if let Some(op) = chain.iter().find(|l| {
        l.get("module")
            .and_then(Value::as_str)
            .is_some_and(|m| m.starts_with("keras.src.ops"))
    }) {
        return Err(ConfigError::Unsupported(format!(
            "operation {} '{}' ({}): a Keras operation on tensors used in a Functional model, not a layer",
            class_name(op).unwrap_or("?"),
            entry_name(op),
            op.get("module").and_then(Value::as_str).unwrap_or("?")
        )));
    }
    let known = LayerSpec::keras_classes();
    if let Some(other) = chain
        .iter()
        .filter_map(|l| class_name(l))
        .find(|c| !known.contains(c))
    {
        return Err(ConfigError::Unsupported(format!(
            "layer {other} (supported: {})",
            known.join(", ")
        )));
    }
    let dtype = {
        let mut all: Vec<(&str, &Value)> = Vec::with_capacity(chain.len() + 1);
        if let Some(l) = input_layer {
            all.push(("InputLayer", l.get("config").unwrap_or(&Value::Null)));
        }
        for l in graph.iter().flat_map(|g| g.0.iter().skip(1)) {
            all.push(("InputLayer", l.get("config").unwrap_or(&Value::Null)));
        }
        for l in &chain {
            all.push((
                class_name(l).unwrap_or("?"),
                l.get("config").unwrap_or(&Value::Null),
            ));
        }
        model_dtype(&all)?
    };
    let mut input: Option<Shape> = None;
    if let Some(l) = input_layer {
        input = Some(input_layer_shape(l)?);
    }
    let graph = match graph {
        None => None,
        Some((inputs, inbound, inference)) => {
            let mut spec_inputs = Vec::with_capacity(inputs.len());
            for l in &inputs {
                spec_inputs.push(GraphInput {
                    name: entry_name(l).to_string(),
                    shape: input_layer_shape(l)?,
                });
            }
            let g = GraphSpec {
                inputs: spec_inputs,
                inbound,
                inference,
            };
            input = Some(Shape::flat(g.input_width()));
            Some(g)
        }
    };
    let mut parsed = Vec::with_capacity(chain.len());
    for (i, layer) in chain.iter().enumerate() {
        let lc = layer.get("config").unwrap_or(&Value::Null);
        if let (0, None, Some(s)) = (
            i,
            &input,
            lc.get("batch_input_shape")
                .or_else(|| lc.get("batch_shape")),
        ) {
            input = Some(input_shape(s, "batch_input_shape of the first layer")?);
        }
        let default_name = crate::model::spec::dense_name(i);
        parsed.push(match class_name(layer) {
            Some(other) => parse_layer(other, lc, default_name, keras2)?,
            None => return malformed("a layer without class_name"),
        });
    }
    if parsed.is_empty() {
        return Err(ConfigError::Unsupported("a model with no layers".into()));
    }
    let input = match input {
        Some(d) => d,
        None => {
            let shape = cfg
                .get("build_input_shape")
                .or_else(|| root.pointer("/build_config/input_shape"));
            match shape {
                Some(s) => input_shape(s, "build_input_shape")?,
                None => return malformed("model_config gives the model no input shape"),
            }
        }
    };
    let spec = ModelSpec {
        input_dim: input.size(),
        input_shape: (graph.is_none() && input.rank() > 1).then_some(input),
        layers: parsed,
        kind,
        dtype,
        graph,
        nested: Vec::new(),
    };
    spec.validate()
        .map_err(|e| ConfigError::Malformed(e.to_string()))?;
    Ok(ParsedConfig {
        spec,
        keras3_dialect,
    })
}

/// The constant learning rate in a `training_config` exactly as the file writes it (the Python
/// double a float64 model's optimizer keeps); a schedule's initial rate as `training_lr` gives it.
pub fn training_lr_exact(text: &str) -> Option<f64> {
    let v: Value = serde_json::from_str(text).ok()?;
    match v
        .pointer("/optimizer_config/config/learning_rate")?
        .as_f64()
    {
        Some(lr) => Some(lr),
        None => training_lr(text),
    }
}

/// The initial learning rate in a `training_config`, when there is one.
pub fn training_lr(text: &str) -> Option<f64> {
    let v: Value = serde_json::from_str(text).ok()?;
    let lr = v.pointer("/optimizer_config/config/learning_rate")?;
    LearningRate::from_json(lr)
        .ok()
        .map(|l| f64::from(l.initial()))
}
