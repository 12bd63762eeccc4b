//! `Layer`: what every Keras layer type provides (its name, trainable flag, weights, output width and
//! forward pass), with the weights' description (`WeightSpec`) and what a forward pass gets (`Forward`,
//! `Step`). Each layer type lives in a file of its own and implements `Layer`; `layer_spec` lists the
//! types once.

use crate::error::Result;
use crate::model::dialect::{Format, Res};
use crate::model::shape::Shape;
use crate::model::{Activation, Initializer};
use crate::rng::NumpyRandomState;
use candle_core::{Tensor, Var};
use serde_json::Value;

/// One weight of a layer: its Keras name (`kernel`, `bias`, `gamma`, `moving_mean`, ...), its shape for
/// one model, whether the optimizer may change it (moving statistics are weights too, but not
/// trainable), and how to draw fresh values.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightSpec {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub trainable: bool,
    pub initializer: Initializer,
    /// `(fan_in, fan_out)` for the variance-scaling initializers.
    pub fans: (usize, usize),
}

impl WeightSpec {
    /// Number of values of one model's copy.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True for a weight with no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A one-dimensional weight of `width` values (biases, normalisation parameters).
    pub fn vector(name: &'static str, width: usize, trainable: bool, init: &Initializer) -> Self {
        WeightSpec {
            name,
            shape: vec![width],
            trainable,
            initializer: init.clone(),
            fans: (width, width),
        }
    }
}

/// Whether a forward pass trains (Keras's `training=True`: batch statistics, dropout) or infers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Inference,
    Training,
}

/// What a forward pass needs beyond its input: the mode and, when training, one random stream per
/// stacked member for dropout masks.
pub struct Forward<'a> {
    pub mode: Mode,
    pub rngs: Option<&'a mut [NumpyRandomState]>,
}

impl Forward<'_> {
    /// An inference pass.
    pub fn inference() -> Forward<'static> {
        Forward {
            mode: Mode::Inference,
            rngs: None,
        }
    }
}

/// What every layer type provides.
pub trait Layer {
    /// Keras's class name.
    fn class_name(&self) -> &'static str;
    /// The layer's name, unique in its model.
    fn name(&self) -> &str;
    fn set_name(&mut self, name: String);
    /// Keras's `trainable` flag.
    fn trainable(&self) -> bool;
    fn set_trainable(&mut self, trainable: bool);
    /// The shape of one sample of the output for one of the input (an error naming what does not
    /// fit: a shape the layer cannot take, an axis outside it). The default keeps the shape.
    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        Ok(input.clone())
    }
    /// The activation that ends the layer, when it has one.
    fn activation(&self) -> Option<Activation> {
        None
    }
    /// The layer's weights in Keras's order (trainable first, then non-trainable), for an input
    /// whose last dimension (its features, or its channels) is `input`.
    fn weights(&self, _input: usize) -> Vec<WeightSpec> {
        Vec::new()
    }
    /// The layer on `x [R, N, ...]`: R stacked members, N samples of the input shape (see `Step`
    /// for what else it gets).
    fn forward(&self, x: &Tensor, s: Step) -> Result<Tensor>;
    /// The layer's own keys of its Keras config in `format`'s dialect; the caller puts the keys
    /// every layer shares (`name`, `trainable`, `dtype`) before them.
    fn config(&self, format: Format) -> Value;
    /// Whether the weight called `weight` holds integers in Keras's files (Normalization's `count`,
    /// an int64 scalar): read as numbers, written back as int64.
    fn integer_weight(&self, _weight: &str) -> bool {
        false
    }
    /// The Keras 3 module of a layer class outside `keras.layers` (ConvNeXt's `LayerScale`), which
    /// a Keras 3 file names together with its `registered_name`.
    fn keras3_module(&self) -> Option<&'static str> {
        None
    }
}

/// The settings every layer config shares, read before the layer's own.
pub struct Common<'a> {
    /// The Keras class name the config is for (one of the type's `CLASSES`).
    pub class: &'a str,
    pub name: String,
    pub trainable: bool,
    /// Whether the file is in tf.keras 2's dialect (some names mean other things there).
    pub keras2: bool,
}

/// A layer type as Keras files hold it: the class names it reads and how it reads its config.
/// Each type's file implements it; `layer_spec`'s table lists the types.
pub trait KerasLayer: Layer + Sized {
    /// Keras's class names this type reads (a family may have several: `Conv1D`, `Conv2D`).
    const CLASSES: &'static [&'static str];
    /// The layer from its config: every key understood or refused naming it (`dialect::check_keys`).
    fn from_config(cfg: &Value, c: &Common) -> Res<Self>;
}

/// What a layer's forward pass gets besides its input.
pub struct Step<'a, 'b> {
    /// The stacked weights (`[R, ...]` each, in `weights` order; a frozen layer's and non-trainable
    /// ones arrive detached), then the layer's constants.
    pub w: &'a [Tensor],
    /// The variables themselves, for layers that update non-trainable state in training.
    pub vars: &'a [Var],
    pub f: &'a mut Forward<'b>,
    /// Leave the final activation out (the model's last layer, whose loss starts from the logits).
    pub logits: bool,
}

/// Implements the name and trainable-flag accessors of `Layer` for a spec with `name` and
/// `trainable` fields.
macro_rules! named_layer {
    (@fields) => {
        fn name(&self) -> &str {
            &self.name
        }
        fn set_name(&mut self, name: String) {
            self.name = name;
        }
        fn trainable(&self) -> bool {
            self.trainable
        }
        fn set_trainable(&mut self, trainable: bool) {
            self.trainable = trainable;
        }
    };
    // The class name given by a function of the layer (a layer type of several Keras classes).
    (by $class:path) => {
        fn class_name(&self) -> &'static str {
            $class(self)
        }
        named_layer!(@fields);
    };
    ($class:literal) => {
        fn class_name(&self) -> &'static str {
            $class
        }
        named_layer!(@fields);
    };
}
pub(crate) use named_layer;

/// Serde default for `trainable` fields.
pub(crate) fn yes() -> bool {
    true
}
