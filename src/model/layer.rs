//! `LayerSpec`: one Keras layer of a model, whatever its type, with the weights it owns and how it
//! computes. Each layer type lives in a file of its own and implements `Layer`; this file lists the
//! types once (the enum) and dispatches to them.

use crate::error::Result;
use crate::model::{
    Activation, ActivationLayerSpec, BatchNormSpec, DenseSpec, DropoutSpec, FlattenSpec,
    Initializer, LayerNormSpec, LeakyReluSpec,
};
use crate::rng::NumpyRandomState;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

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
    /// The width of the output for an input of width `input`.
    fn output_dim(&self, input: usize) -> usize {
        input
    }
    /// The activation that ends the layer, when it has one.
    fn activation(&self) -> Option<Activation> {
        None
    }
    /// The layer's weights in Keras's order (trainable first, then non-trainable), for an input of
    /// width `input`.
    fn weights(&self, _input: usize) -> Vec<WeightSpec> {
        Vec::new()
    }
    /// The layer on `x [R, N, in]`, with its stacked weights `w` (`[R, ...]` each, in `weights`
    /// order; a frozen layer's arrive detached) and, in training, `vars` to update non-trainable
    /// state in place. `logits` leaves the final activation out (the model's last layer, whose loss
    /// starts from the logits).
    fn forward(
        &self,
        x: &Tensor,
        w: &[Tensor],
        vars: &[Var],
        f: &mut Forward,
        logits: bool,
    ) -> Result<Tensor>;
}

/// A layer of a model, of any supported type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "class_name")]
pub enum LayerSpec {
    Dense(DenseSpec),
    Dropout(DropoutSpec),
    BatchNormalization(BatchNormSpec),
    LayerNormalization(LayerNormSpec),
    Activation(ActivationLayerSpec),
    LeakyReLU(LeakyReluSpec),
    Flatten(FlattenSpec),
}

/// Runs `$body` with `$l` bound to the layer of whatever type.
macro_rules! each {
    ($self:expr, $l:ident => $body:expr) => {
        match $self {
            LayerSpec::Dense($l) => $body,
            LayerSpec::Dropout($l) => $body,
            LayerSpec::BatchNormalization($l) => $body,
            LayerSpec::LayerNormalization($l) => $body,
            LayerSpec::Activation($l) => $body,
            LayerSpec::LeakyReLU($l) => $body,
            LayerSpec::Flatten($l) => $body,
        }
    };
}

impl LayerSpec {
    /// The layer as its type's `Layer`.
    pub fn layer(&self) -> &dyn Layer {
        each!(self, l => l)
    }

    /// The layer as its type's mutable `Layer`.
    pub fn layer_mut(&mut self) -> &mut dyn Layer {
        each!(self, l => l)
    }

    /// Keras's class name of the layer.
    pub fn class_name(&self) -> &'static str {
        self.layer().class_name()
    }

    /// The layer's name, unique in its model.
    pub fn name(&self) -> &str {
        self.layer().name()
    }

    /// Renames the layer.
    pub fn set_name(&mut self, name: String) {
        self.layer_mut().set_name(name)
    }

    /// Keras's `trainable` flag: the one place that says whether a layer is frozen.
    pub fn trainable(&self) -> bool {
        self.layer().trainable()
    }

    /// Freezes (`false`) or unfreezes the layer.
    pub fn set_trainable(&mut self, trainable: bool) {
        self.layer_mut().set_trainable(trainable)
    }

    /// The width of the layer's output for an input of width `input`.
    pub fn output_dim(&self, input: usize) -> usize {
        self.layer().output_dim(input)
    }

    /// The activation that ends the layer, when it has one.
    pub fn activation(&self) -> Option<Activation> {
        self.layer().activation()
    }

    /// The layer's weights, in Keras's order, for an input of width `input`.
    pub fn weights(&self, input: usize) -> Vec<WeightSpec> {
        self.layer().weights(input)
    }

    /// The layer's computation (see `Layer::forward`); a frozen layer's weights and every
    /// non-trainable weight enter the graph detached (`params.detached`).
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        params: &LayerParams,
        f: &mut Forward,
        logits: bool,
    ) -> Result<Tensor> {
        let w: Vec<Tensor> = params
            .vars
            .iter()
            .zip(&params.detached)
            .map(|(v, &d)| {
                if d {
                    v.as_tensor().detach()
                } else {
                    v.as_tensor().clone()
                }
            })
            .chain(params.consts.iter().cloned())
            .collect();
        self.layer().forward(x, &w, &params.vars, f, logits)
    }
}

/// A layer's stacked variables (`[R, ...]` each, in `LayerSpec::weights` order) and the constants its
/// forward pass needs after them (a zero bias for a Dense layer without one).
#[derive(Clone)]
pub(crate) struct LayerParams {
    pub vars: Vec<Var>,
    /// Per variable: whether it enters the graph detached (a frozen layer's, a non-trainable one).
    pub detached: Vec<bool>,
    pub consts: Vec<Tensor>,
}

/// Implements the name and trainable-flag accessors of `Layer` for a spec with `name` and
/// `trainable` fields.
macro_rules! named_layer {
    ($class:literal) => {
        fn class_name(&self) -> &'static str {
            $class
        }
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
}
pub(crate) use named_layer;

/// Serde default for `trainable` fields.
pub(crate) fn yes() -> bool {
    true
}
