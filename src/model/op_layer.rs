//! Keras 3 operations on a tensor and a Python number (`x + 3.0`, `x * (1 / 6)` in MobileNetV3's
//! hard_sigmoid), which a Functional model records as entries of module `keras.src.ops.numpy`
//! (class `Add`, `Subtract`, `Multiply`, `Divide`) whose call's `args` hold the tensor and the
//! number. Read as a one-input layer without weights; written back the way Keras wrote it.
//! The number becomes the model's float dtype first (Keras converts it to the tensor's dtype), so
//! `x * (1 / 6)` multiplies by float32(1/6), not divides by 6.
//!
//! The same operations on two tensors (`inputs + layer(x)` in ConvNeXt's blocks) are read as a
//! two-input merge (`MergeSpec` with `op` set: `Add`, `Subtract`, `Multiply`, the shapes of one rank,
//! broadcast along dimensions of 1) and written back as Keras wrote them: module
//! `keras.src.ops.numpy`, the two tensors as the call's `args`. `Divide` on two tensors is refused.

use crate::error::Result;
use crate::model::MergeKind;
use crate::model::dialect::{ConfigError, Format, Res};
use crate::model::layer::{Common, KerasLayer, Layer, Step, named_layer, yes};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use crate::model::dialect::OPS_MODULE;

/// Which arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpKind {
    Add,
    Subtract,
    Multiply,
    Divide,
}

impl OpKind {
    /// Every operation, with Keras's class name and the class name a read config gives it here.
    pub const ALL: [(OpKind, &'static str, &'static str); 4] = [
        (OpKind::Add, "Add", "keras.src.ops.numpy.Add"),
        (OpKind::Subtract, "Subtract", "keras.src.ops.numpy.Subtract"),
        (OpKind::Multiply, "Multiply", "keras.src.ops.numpy.Multiply"),
        (OpKind::Divide, "Divide", "keras.src.ops.numpy.Divide"),
    ];

    /// Keras's class name.
    pub fn class_name(self) -> &'static str {
        Self::ALL.iter().find(|k| k.0 == self).map_or("", |k| k.1)
    }

    /// The operation of Keras's class name.
    pub fn from_class(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|k| k.1 == name).map(|k| k.0)
    }
}

fn op_class(o: &OpSpec) -> &'static str {
    o.kind.class_name()
}

/// `x <op> constant` (or `constant <op> x` when `constant_first`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpSpec {
    pub name: String,
    pub kind: OpKind,
    /// The Python number, as Keras saved it.
    pub constant: f64,
    #[serde(default)]
    pub constant_first: bool,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl Layer for OpSpec {
    named_layer!(by op_class);

    fn forward(&self, x: &Tensor, _: Step) -> Result<Tensor> {
        // Keras converts the number to the tensor's dtype, then computes in that dtype.
        let c = Tensor::new(self.constant, x.device())?.to_dtype(x.dtype())?;
        let (a, b) = if self.constant_first {
            (c.broadcast_as(x.shape())?, x.clone())
        } else {
            (x.clone(), c.broadcast_as(x.shape())?)
        };
        Ok(match self.kind {
            OpKind::Add => (a + b)?,
            OpKind::Subtract => (a - b)?,
            OpKind::Multiply => (a * b)?,
            OpKind::Divide => (a / b)?,
        })
    }

    fn config(&self, _: Format) -> Value {
        json!({})
    }

    fn keras3_module(&self) -> Option<&'static str> {
        Some(OPS_MODULE)
    }
}

impl KerasLayer for OpSpec {
    const CLASSES: &'static [&'static str] = &[
        "keras.src.ops.numpy.Add",
        "keras.src.ops.numpy.Subtract",
        "keras.src.ops.numpy.Multiply",
        "keras.src.ops.numpy.Divide",
    ];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        let kind = OpKind::ALL
            .iter()
            .find(|k| k.2 == c.class)
            .map(|k| k.0)
            .ok_or_else(|| ConfigError::Unsupported(format!("operation {}", c.class)))?;
        let constant = cfg.get("constant").and_then(Value::as_f64).ok_or_else(|| {
            ConfigError::Malformed(format!("operation '{}' has no number", c.name))
        })?;
        Ok(OpSpec {
            name: c.name.clone(),
            kind,
            constant,
            constant_first: cfg.get("constant_first").and_then(Value::as_bool) == Some(true),
            trainable: c.trainable,
        })
    }
}

/// Rewrites, in every layer list of a `model_config` (nested models' too), each Keras operation on
/// a tensor and a number into an entry this tool reads as an `OpSpec` (the number moved from the
/// call's `args` into `config`). An operation of another kind, or on other arguments, is refused
/// naming it. At most `MAX_DEPTH` levels of nesting are walked (iteratively).
pub fn ops_as_layers(root: &mut Value) -> Res<()> {
    const MAX_DEPTH: usize = 32;
    let mut stack: Vec<(&mut Value, usize)> = vec![(root, 0)];
    while let Some((v, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(ConfigError::Unsupported(format!(
                "models nested more than {MAX_DEPTH} levels deep"
            )));
        }
        let Some(layers) = v
            .pointer_mut("/config/layers")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for l in layers.iter_mut() {
            let module = l.get("module").and_then(Value::as_str).unwrap_or("");
            if module.starts_with("keras.src.ops") || legacy_h5_op(l) {
                rewrite_op(l)?;
            } else if l.pointer("/config/layers").is_some() {
                stack.push((l, depth + 1));
            }
        }
    }
    Ok(())
}

/// Whether entry `l` is an operation as Keras 3's legacy `.h5` writer records it: without its
/// module (`{"class_name": "Add", "config": {"name": "add"}}`), called on the tensor and the number
/// or the two tensors themselves (`args: [x, y]`). A merge layer's entry differs on both counts: its
/// config holds `trainable` and `dtype`, its call a list (`args: [[x, y]]`, tf.keras 2's lists).
fn legacy_h5_op(l: &Value) -> bool {
    let class = l.get("class_name").and_then(Value::as_str).unwrap_or("");
    let only_name = l
        .get("config")
        .and_then(Value::as_object)
        .is_some_and(|c| c.keys().all(|k| k == "name"));
    let args = l.pointer("/inbound_nodes/0/args").and_then(Value::as_array);
    let flat_call = args.is_some_and(|a| {
        a.len() == 2
            && a.iter().all(|v| {
                v.is_number()
                    || v.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__")
            })
    });
    l.get("module").is_none() && OpKind::from_class(class).is_some() && only_name && flat_call
}

fn rewrite_op(l: &mut Value) -> Res<()> {
    let class = l
        .get("class_name")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    let name = l
        .get("name")
        .or_else(|| l.pointer("/config/name"))
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    // Keras 3's legacy .h5 writer leaves the module out (`legacy_h5_op`).
    let module = l
        .get("module")
        .and_then(Value::as_str)
        .unwrap_or(OPS_MODULE)
        .to_string();
    let refuse = |why: &str| {
        Err(ConfigError::Unsupported(format!(
            "operation {class} '{name}' ({module}){why}; supported: Add, Subtract, Multiply, Divide (keras.src.ops.numpy) on a tensor and a number, Add, Subtract, Multiply on two tensors"
        )))
    };
    if OpKind::from_class(&class).is_none() || module != OPS_MODULE {
        return refuse("");
    }
    let args = match l.pointer("/inbound_nodes/0/args").and_then(Value::as_array) {
        Some(a) if l["inbound_nodes"].as_array().map(Vec::len) == Some(1) => a.clone(),
        _ => return refuse(" called other than once"),
    };
    if l.pointer("/inbound_nodes/0/kwargs")
        .and_then(Value::as_object)
        .is_some_and(|k| !k.is_empty())
    {
        return refuse(" called with keyword arguments");
    }
    let is_tensor =
        |v: &Value| v.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__");
    let (tensor, constant, first) = match args.as_slice() {
        [t, Value::Number(c)] if is_tensor(t) => (t.clone(), c.clone(), false),
        [Value::Number(c), t] if is_tensor(t) => (t.clone(), c.clone(), true),
        [a, b] if is_tensor(a) && is_tensor(b) => {
            let merge = MergeKind::from_class(&class);
            if !merge.is_some_and(|k| MergeKind::ON_TWO_TENSORS.contains(&k)) {
                return refuse(" on two tensors");
            }
            *l = json!({
                "class_name": format!("{OPS_MODULE}.{class}(tensors)"),
                "name": name,
                "config": {"name": name},
                "inbound_nodes": [{"args": [a, b], "kwargs": {}}],
            });
            return Ok(());
        }
        _ => return refuse(" on other arguments than a tensor and a number or two tensors"),
    };
    *l = json!({
        "class_name": format!("{OPS_MODULE}.{class}"),
        "name": name,
        "config": {"name": name, "constant": constant, "constant_first": first},
        "inbound_nodes": [{"args": [tensor], "kwargs": {}}],
    });
    Ok(())
}

/// The entry Keras 3 writes for operation `op` called on the tensor(s) of a `[{"args": [...]}]`
/// inbound-node list made for a one-input layer: the number put back beside the tensor.
pub fn op_entry(op: &OpSpec, mut inbound_nodes: Value) -> Value {
    if let Some(args) = inbound_nodes
        .pointer_mut("/0/args")
        .and_then(Value::as_array_mut)
    {
        let c = number(op.constant);
        if op.constant_first {
            args.insert(0, c);
        } else {
            args.push(c);
        }
    }
    ops_entry(op.kind.class_name(), &op.name, inbound_nodes)
}

/// An operation's entry as Keras 3 writes it: module, class (also its registered name), name.
pub fn ops_entry(class: &str, name: &str, inbound_nodes: Value) -> Value {
    json!({
        "module": OPS_MODULE,
        "class_name": class,
        "config": {"name": name},
        "registered_name": class,
        "name": name,
        "inbound_nodes": inbound_nodes,
    })
}

/// A number as JSON: a float always (Python's `3.0`), so Keras reads back a float.
fn number(c: f64) -> Value {
    json!(c)
}
