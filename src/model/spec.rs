//! `ModelSpec`: a Sequential model described the way Keras describes it (an input width and a list of
//! layers), with its checks, its shapes and its `model.summary()` table.

use crate::error::{Error, Result};
use crate::model::graph::{GraphSpec, Source};
use crate::model::nested::{self, NestedSpec, Unit};
use crate::model::shape::Shape;
use crate::model::{Activation, DenseSpec, FloatDtype, Initializer, LayerSpec, WeightSpec};
use serde::{Deserialize, Deserializer, Serialize};

/// How the layers are wired in Keras: a `Sequential` model, or a `Functional` one that is a single
/// chain from its input layer (named here) to its output.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ModelKind {
    #[default]
    Sequential,
    Functional {
        input_name: String,
    },
}

/// A model that is a chain of layers: an input width and the layers in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub input_dim: usize,
    #[serde(deserialize_with = "stored_layers")]
    pub layers: Vec<LayerSpec>,
    #[serde(default)]
    pub kind: ModelKind,
    /// The float type of every weight and computation (float32 when a stored spec omits it).
    #[serde(default)]
    pub dtype: FloatDtype,
    /// The wiring of a Functional model that is not a single chain (branches, merges, several
    /// inputs); `None` for a chain, where each layer reads the one before it. `input_dim` is then
    /// the inputs' widths together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<GraphSpec>,
    /// The per-sample shape of a chain's input when it has more than one dimension (an image's
    /// `(height, width, channels)`); `None` for a flat input of `input_dim` features. A row of data
    /// holds the sample's values in row-major order, `input_dim` of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_shape: Option<Shape>,
    /// The models used as layers of this one (`base(x, training=False)`), sorted by position: each
    /// a run of `layers` (see `model::nested`); empty for a model without.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nested: Vec<NestedSpec>,
}

/// Reads layers written with their class name, or as bare Dense layers (files of version 0.1).
fn stored_layers<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<LayerSpec>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Tagged(LayerSpec),
        BareDense(DenseSpec),
    }
    Ok(Vec::<Stored>::deserialize(d)?
        .into_iter()
        .map(|s| match s {
            Stored::Tagged(l) => l,
            Stored::BareDense(d) => LayerSpec::Dense(d),
        })
        .collect())
}

pub use crate::model::shape::{MAX_UNITS, MAX_VALUES};
/// The most layers a model may have: training walks the layers' graph recursively (candle's backward
/// pass and the graph's drop), at most about 400 bytes of stack per layer, and the binary gives its
/// threads 32 MiB of stack (`main.rs`): 50,000 layers (20 MB) fit with room to spare.
pub const MAX_LAYERS: usize = 50_000;
/// The most parameters a model may have (64 Mi values: 256 MiB as float32, 512 MiB as float64).
pub const MAX_PARAMS: usize = 1 << 26;

/// The Keras auto-name of the `i`-th Dense layer: `dense`, `dense_1`, `dense_2`, ...
pub fn dense_name(i: usize) -> String {
    if i == 0 {
        "dense".to_string()
    } else {
        format!("dense_{i}")
    }
}

/// The shapes of a graph model's layers (`ModelSpec::graph_shapes`): per layer, the shapes of
/// the tensors it reads, and of its output.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphShapes {
    pub inputs: Vec<Vec<Shape>>,
    pub outputs: Vec<Shape>,
}

/// One row of `ModelSpec::summary`.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// `name (Type)`.
    pub layer: String,
    /// The layer's activation, "" for a layer without one.
    pub activation: String,
    /// `(None, width)`.
    pub output_shape: String,
    pub params: usize,
    /// Of `params`, those training changes.
    pub trainable_params: usize,
    pub trainable: bool,
}

impl ModelSpec {
    /// A classifier: `input_dim -> hidden[i] (activations[i], he_uniform) -> n_classes (softmax,
    /// glorot_uniform)`, as the tutorial builds it. `activations` has one entry, applied to every hidden
    /// layer, or one per hidden layer.
    pub fn classifier(
        input_dim: usize,
        hidden: &[usize],
        activations: &[Activation],
        n_classes: usize,
    ) -> Result<Self> {
        if !hidden.is_empty() && activations.len() != 1 && activations.len() != hidden.len() {
            return Err(Error::invalid(
                "activation",
                format!(
                    "give one activation or one per hidden layer ({}), got {}",
                    hidden.len(),
                    activations.len()
                ),
            ));
        }
        let mut layers = Vec::with_capacity(hidden.len() + 1);
        for (i, &units) in hidden.iter().enumerate() {
            let activation = activations
                .get(i)
                .or(activations.first())
                .copied()
                .unwrap_or(Activation::Relu);
            layers.push(LayerSpec::Dense(DenseSpec::new(
                dense_name(i),
                units,
                activation,
                Initializer::HeUniform,
            )));
        }
        layers.push(LayerSpec::Dense(DenseSpec::new(
            dense_name(hidden.len()),
            n_classes,
            Activation::Softmax,
            Initializer::GlorotUniform,
        )));
        let spec = ModelSpec {
            input_dim,
            layers,
            kind: ModelKind::Sequential,
            dtype: FloatDtype::Float32,
            graph: None,
            input_shape: None,
            nested: Vec::new(),
        };
        spec.validate()?;
        Ok(spec)
    }

    /// The tutorial's model: 2 -> Dense(5, relu) -> Dense(5, relu) -> Dense(3, softmax).
    pub fn tutorial() -> Self {
        Self::classifier(2, &[5, 5], &[Activation::Relu], 3).expect("the tutorial model is valid")
    }

    /// Checks widths and names: at least one layer, every width in 1..=MAX_UNITS, unique layer names,
    /// at most MAX_PARAMS parameters.
    pub fn validate(&self) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::invalid("model", "has no layers"));
        }
        if self.layers.len() > MAX_LAYERS {
            return Err(Error::invalid(
                "model",
                format!(
                    "has {} layers, more than this tool's limit of {MAX_LAYERS}",
                    self.layers.len()
                ),
            ));
        }
        if self.input_dim == 0 || self.input_dim > MAX_UNITS {
            return Err(Error::invalid(
                "model",
                format!("input width {} is outside 1..={MAX_UNITS}", self.input_dim),
            ));
        }
        if let Some(g) = &self.graph {
            let names: Vec<&str> = self.layers.iter().map(LayerSpec::name).collect();
            g.check(&names)?;
            if g.input_width() != self.input_dim {
                return Err(Error::invalid(
                    "model",
                    format!(
                        "the inputs' widths add up to {}, not the model's {}",
                        g.input_width(),
                        self.input_dim
                    ),
                ));
            }
        }
        if !self.nested.is_empty() {
            let names: Vec<&str> = self.layers.iter().map(LayerSpec::name).collect();
            nested::check(
                &self.nested,
                &names,
                self.graph.as_ref().map(|g| g.inbound.as_slice()),
            )?;
        }
        if let Some(s) = &self.input_shape
            && (s.size() != self.input_dim || s.rank() < 2)
        {
            return Err(Error::invalid(
                "model",
                format!("input shape {s} does not hold {} values", self.input_dim),
            ));
        }
        let shapes = self.shapes()?;
        if let Some(last) = shapes.outputs.last()
            && last.rank() != 1
        {
            return Err(Error::invalid(
                "model",
                format!(
                    "the output has shape {last}; only flat outputs (None, k) are supported (end the model with Flatten, a global pooling or Dense on flat input)"
                ),
            ));
        }
        for (i, l) in self.layers.iter().enumerate() {
            let out = &shapes.outputs[i];
            let units = out.last();
            if out.dims().iter().any(|&d| d == 0) || units > MAX_UNITS || out.size() > MAX_VALUES {
                return Err(Error::invalid(
                    "model",
                    format!(
                        "layer '{}' has an output of shape {out}: its units (the last dimension) must be in 1..={MAX_UNITS}, every dimension at least 1, a sample at most {MAX_VALUES} values",
                        l.name()
                    ),
                ));
            }
            let name = l.name();
            if name.is_empty()
                || name.contains('/')
                || self.layers[..i].iter().any(|o| o.name() == name)
            {
                return Err(Error::invalid(
                    "model",
                    format!("layer name '{name}' is empty, holds '/', or is repeated"),
                ));
            }
        }
        let total: usize = self
            .layers
            .iter()
            .zip(&shapes.inputs)
            .map(|(l, ins)| {
                let fan_in = ins.first().map_or(0, Shape::last);
                l.weights(fan_in).iter().map(WeightSpec::len).sum::<usize>()
            })
            .sum();
        if total > MAX_PARAMS {
            return Err(Error::invalid(
                "model",
                format!("{total} parameters is more than this tool's limit of {MAX_PARAMS}"),
            ));
        }
        Ok(())
    }

    /// The per-sample shape of the model's input (of a chain; a graph's inputs have their own).
    pub fn input_shape(&self) -> Shape {
        self.input_shape
            .clone()
            .unwrap_or_else(|| Shape::flat(self.input_dim))
    }

    /// The per-sample shape of the model's one input when it has more than one dimension (an
    /// image's `[height, width, channels]`); `None` for flat rows or several inputs.
    pub fn sample_shape(&self) -> Option<Vec<usize>> {
        let shape = match &self.graph {
            None => self.input_shape(),
            Some(g) if g.inputs.len() == 1 => g.inputs[0].shape.clone(),
            Some(_) => return None,
        };
        (shape.rank() > 1).then(|| shape.dims().to_vec())
    }

    /// The model's one input as an image, `[height, width, channels]` (channels 1, 3 or 4), when
    /// it takes one: what an image folder is decoded and resized to.
    pub fn image_input(&self) -> Option<[usize; 3]> {
        match self.sample_shape()?.as_slice() {
            &[h, w, c] if matches!(c, 1 | 3 | 4) => Some([h, w, c]),
            _ => None,
        }
    }

    /// The last dimension of layer `i`'s (first) input: the width its weights are built for (0 for
    /// a model whose shapes do not fit, which `validate` refuses). `fan_in(layers.len())` is the
    /// width of the model's output.
    pub fn fan_in(&self, i: usize) -> usize {
        self.fan_ins_upto(i + 1).pop().unwrap_or(0)
    }

    /// `fan_in(i)` of every layer `i` (and, last, of the output: `fan_in(layers.len())`), from one
    /// pass over the shapes: a loop over the layers asks this once, not `fan_in` per layer (each
    /// of which walks the whole graph).
    pub fn fan_ins(&self) -> Vec<usize> {
        self.fan_ins_upto(self.layers.len() + 1)
    }

    /// `fan_in(i)` for `i` in `0..upto`.
    fn fan_ins_upto(&self, upto: usize) -> Vec<usize> {
        if self.graph.is_none() && self.input_shape.is_none() {
            // A flat chain: every layer keeps its input flat, so the widths fold cheaply.
            let mut out = Vec::with_capacity(upto);
            let mut w = Some(Shape::flat(self.input_dim));
            for i in 0..upto {
                out.push(w.as_ref().map_or(0, Shape::last));
                w = match (w, self.layers.get(i)) {
                    (Some(s), Some(l)) => l.output_shape(&s).ok(),
                    (s, None) => s,
                    (None, _) => None,
                };
            }
            return out;
        }
        let Ok(s) = self.shapes() else {
            return vec![0; upto];
        };
        (0..upto)
            .map(|i| match s.inputs.get(i) {
                Some(ins) => ins.first().map_or(0, Shape::last),
                None => s.outputs.last().map_or(0, Shape::last),
            })
            .collect()
    }

    /// The last dimension of layer `i`'s output.
    pub fn output_width(&self, i: usize) -> usize {
        self.output_shape(i).last()
    }

    /// The shape of layer `i`'s output (empty for a model whose shapes do not fit).
    pub fn output_shape(&self, i: usize) -> Shape {
        self.shapes()
            .ok()
            .and_then(|s| s.outputs.get(i).cloned())
            .unwrap_or(Shape(Vec::new()))
    }

    /// The width of the model's output.
    pub fn output_dim(&self) -> usize {
        self.fan_in(self.layers.len())
    }

    /// The shapes layer by layer, of a chain or a graph: what each reads and what it gives; an
    /// error naming the layer whose input does not fit it (a merge of different shapes, a layer
    /// called on several tensors that is not a merge, a shape the layer cannot take).
    pub fn shapes(&self) -> Result<GraphShapes> {
        let mut out = GraphShapes {
            inputs: Vec::with_capacity(self.layers.len()),
            outputs: Vec::with_capacity(self.layers.len()),
        };
        for (i, l) in self.layers.iter().enumerate() {
            let ins: Vec<Shape> = match &self.graph {
                None => vec![match i {
                    0 => self.input_shape(),
                    _ => out.outputs[i - 1].clone(),
                }],
                Some(g) => g.inbound[i]
                    .iter()
                    .map(|s| match *s {
                        Source::Input(k) => g.inputs[k].shape.clone(),
                        Source::Layer(j) => out.outputs[j].clone(),
                    })
                    .collect(),
            };
            let misfit = |e: Error| {
                Error::invalid(
                    "model",
                    format!("layer '{}' ({}): {}", l.name(), l.class_name(), e.detail()),
                )
            };
            let shape = match (l, ins.as_slice()) {
                (LayerSpec::Merge(m), _) => m.merged_shape(&ins)?,
                (_, [one]) => l.output_shape(one).map_err(misfit)?,
                (_, many) => {
                    return Err(Error::invalid(
                        "model",
                        format!(
                            "layer '{}' ({}) is called on {} tensors; only merge layers take several",
                            l.name(),
                            l.class_name(),
                            many.len()
                        ),
                    ));
                }
            };
            out.inputs.push(ins);
            out.outputs.push(shape);
        }
        Ok(out)
    }

    /// The activation of the output layer (what the loss pairs with); linear when the last layer has
    /// none.
    pub fn output_activation(&self) -> Activation {
        self.layers
            .last()
            .and_then(LayerSpec::activation)
            .unwrap_or(Activation::Linear)
    }

    /// Parameter count of layer `i` (all its weights, trainable or not).
    pub fn param_count(&self, i: usize) -> usize {
        self.layers[i]
            .weights(self.fan_in(i))
            .iter()
            .map(|w| w.len())
            .sum()
    }

    /// The parameters of layer `i` that training changes: its trainable weights, when the layer is
    /// not frozen.
    pub fn trainable_count(&self, i: usize) -> usize {
        let l = &self.layers[i];
        if !l.trainable() {
            return 0;
        }
        l.weights(self.fan_in(i))
            .iter()
            .filter(|w| w.trainable)
            .map(|w| w.len())
            .sum()
    }

    /// A fresh layer name that no layer uses yet (`dense_N` for the smallest free N).
    pub fn fresh_name(&self) -> String {
        (0..)
            .map(dense_name)
            .find(|n| self.layers.iter().all(|l| l.name() != n))
            .unwrap_or_default()
    }

    /// Freezes exactly the layers whose 0-based positions are in `frozen`, and unfreezes the others.
    pub fn freeze_only(&mut self, frozen: &[usize]) -> Result<()> {
        let n = self.layers.len();
        if let Some(&bad) = frozen.iter().find(|&&i| i >= n) {
            return Err(Error::invalid(
                "freeze",
                format!("layer {} does not exist; the model has {n} layers", bad + 1),
            ));
        }
        for (i, l) in self.layers.iter_mut().enumerate() {
            l.set_trainable(!frozen.contains(&i));
        }
        self.sync_nested_trainable();
        Ok(())
    }

    /// A nested model is trainable when any layer in it is (Keras: a frozen nested model freezes
    /// every layer in it, so one of its layers that trains makes it trainable again).
    pub fn sync_nested_trainable(&mut self) {
        for m in &mut self.nested {
            m.trainable = self.layers[m.start..m.end.min(self.layers.len())]
                .iter()
                .any(LayerSpec::trainable);
        }
    }

    /// The rows of Keras's `model.summary()`: one per layer, with its output shape, parameter count
    /// and trainable flag; a nested model is one row (`base (Sequential)`) with its layers' counts.
    pub fn summary(&self) -> Vec<SummaryRow> {
        nested::units(self.layers.len(), &self.nested)
            .into_iter()
            .map(|u| match u {
                Unit::Layer(i) => {
                    let l = &self.layers[i];
                    SummaryRow {
                        layer: format!("{} ({})", l.name(), l.class_name()),
                        activation: l
                            .activation()
                            .map(|a| a.keras_name().to_string())
                            .unwrap_or_default(),
                        output_shape: self.output_shape(i).to_string(),
                        params: self.param_count(i),
                        trainable_params: self.trainable_count(i),
                        trainable: l.trainable(),
                    }
                }
                Unit::Nested(k) => {
                    let m = &self.nested[k];
                    SummaryRow {
                        layer: format!("{} ({})", m.name, m.class),
                        activation: String::new(),
                        output_shape: self.output_shape(m.end - 1).to_string(),
                        params: (m.start..m.end).map(|i| self.param_count(i)).sum(),
                        trainable_params: (m.start..m.end).map(|i| self.trainable_count(i)).sum(),
                        trainable: m.trainable,
                    }
                }
            })
            .collect()
    }

    /// `(total, trainable)` parameter counts, as Keras's `model.summary()` gives them.
    pub fn param_totals(&self) -> (usize, usize) {
        self.summary()
            .iter()
            .fold((0, 0), |(t, tr), r| (t + r.params, tr + r.trainable_params))
    }
}

impl ModelSpec {
    /// The weights of nested model `k` in the order Keras's legacy `.h5` lists them for it
    /// (`layer.trainable_weights + layer.non_trainable_weights`): `(layer, weight)` pairs, first
    /// those training changes (of a trainable layer in a trainable nested model), then the others,
    /// each part in layer order.
    pub fn nested_weight_order(&self, k: usize) -> Vec<(usize, usize)> {
        let m = &self.nested[k];
        let mut trains = Vec::new();
        let mut stays = Vec::new();
        let fan_ins = self.fan_ins();
        for i in m.start..m.end {
            let l = &self.layers[i];
            for (j, w) in l.weights(fan_ins[i]).iter().enumerate() {
                if m.trainable && l.trainable() && w.trainable {
                    trains.push((i, j));
                } else {
                    stays.push((i, j));
                }
            }
        }
        trains.extend(stays);
        trains
    }

    /// The units of Keras's `model.layers` (InputLayers aside): layers and nested models.
    pub fn units(&self) -> Vec<Unit> {
        nested::units(self.layers.len(), &self.nested)
    }
}
