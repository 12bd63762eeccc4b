//! `ModelSpec`: a Sequential model described the way Keras describes it (an input width and a list of
//! layers), with its checks, its shapes and its `model.summary()` table.

use crate::error::{Error, Result};
use crate::model::graph::{GraphSpec, Source};
use crate::model::shape::Shape;
use crate::model::{Activation, DenseSpec, FloatDtype, Initializer, LayerSpec};
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

/// The largest width of a layer this tool accepts (guards allocations against absurd configs).
pub const MAX_UNITS: usize = 1 << 20;
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
                "--activation",
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
            self.graph_shapes()?;
        }
        for (i, l) in self.layers.iter().enumerate() {
            let units = self.output_width(i);
            if units == 0 || units > MAX_UNITS {
                return Err(Error::invalid(
                    "model",
                    format!(
                        "layer '{}' has {units} units, outside 1..={MAX_UNITS}",
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
        let total: usize = (0..self.layers.len()).map(|i| self.param_count(i)).sum();
        if total > MAX_PARAMS {
            return Err(Error::invalid(
                "model",
                format!("{total} parameters is more than this tool's limit of {MAX_PARAMS}"),
            ));
        }
        Ok(())
    }

    /// The input width of layer `i` (in a graph, of its first input; 0 for a graph whose shapes do
    /// not fit, which `validate` refuses).
    pub fn fan_in(&self, i: usize) -> usize {
        match &self.graph {
            None => self.layers[..i]
                .iter()
                .fold(self.input_dim, |w, l| l.output_dim(w)),
            Some(g) if i == self.layers.len() => self.output_dim_of_graph(g),
            Some(_) => self
                .graph_shapes()
                .ok()
                .and_then(|s| s.inputs.get(i).and_then(|x| x.first()).map(Shape::last))
                .unwrap_or(0),
        }
    }

    fn output_dim_of_graph(&self, _g: &GraphSpec) -> usize {
        self.graph_shapes()
            .ok()
            .and_then(|s| s.outputs.last().map(Shape::last))
            .unwrap_or(0)
    }

    /// The width of layer `i`'s output.
    pub fn output_width(&self, i: usize) -> usize {
        match &self.graph {
            None => self.layers[i].output_dim(self.fan_in(i)),
            Some(_) => self
                .graph_shapes()
                .ok()
                .and_then(|s| s.outputs.get(i).map(Shape::last))
                .unwrap_or(0),
        }
    }

    /// The shape of layer `i`'s output.
    pub fn output_shape(&self, i: usize) -> Shape {
        Shape::flat(self.output_width(i))
    }

    /// The width of the model's output.
    pub fn output_dim(&self) -> usize {
        self.fan_in(self.layers.len())
    }

    /// A graph's shapes, layer by layer: what each reads and what it gives; an error naming the
    /// layer whose inputs do not fit (a merge of different shapes, a layer called on several
    /// tensors that is not a merge, a layer given an N-D tensor).
    pub fn graph_shapes(&self) -> Result<GraphShapes> {
        let Some(g) = &self.graph else {
            return Err(Error::Internal("graph_shapes of a chain".into()));
        };
        let mut out = GraphShapes {
            inputs: Vec::with_capacity(self.layers.len()),
            outputs: Vec::with_capacity(self.layers.len()),
        };
        for (i, l) in self.layers.iter().enumerate() {
            let ins: Vec<Shape> = g.inbound[i]
                .iter()
                .map(|s| match *s {
                    Source::Input(k) => g.inputs[k].shape.clone(),
                    Source::Layer(j) => out.outputs[j].clone(),
                })
                .collect();
            let shape = match l {
                LayerSpec::Merge(m) => m.output_shape(&ins)?,
                _ => match ins.as_slice() {
                    [one] => match one.width() {
                        Some(w) => Shape::flat(l.output_dim(w)),
                        None => {
                            return Err(Error::invalid(
                                "model",
                                format!(
                                    "layer '{}' ({}) gets an input of shape {one}; only flat inputs are supported",
                                    l.name(),
                                    l.class_name()
                                ),
                            ));
                        }
                    },
                    many => {
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
                },
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
                "--freeze",
                format!("layer {} does not exist; the model has {n} layers", bad + 1),
            ));
        }
        for (i, l) in self.layers.iter_mut().enumerate() {
            l.set_trainable(!frozen.contains(&i));
        }
        Ok(())
    }

    /// The rows of Keras's `model.summary()`: one per layer, with its output shape, parameter count
    /// and trainable flag.
    pub fn summary(&self) -> Vec<SummaryRow> {
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| SummaryRow {
                layer: format!("{} ({})", l.name(), l.class_name()),
                activation: l
                    .activation()
                    .map(|a| a.keras_name().to_string())
                    .unwrap_or_default(),
                output_shape: self.output_shape(i).to_string(),
                params: self.param_count(i),
                trainable_params: self.trainable_count(i),
                trainable: l.trainable(),
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
