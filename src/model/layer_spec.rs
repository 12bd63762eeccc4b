//! `LayerSpec`: one Keras layer of a model, whatever its type: the enum that lists the types (one
//! file each, implementing `Layer`) once and dispatches to them, and the variables a layer's forward
//! pass uses (`LayerParams`).

use crate::error::Result;
use crate::model::layer::{Forward, Layer, Step, WeightSpec};
use crate::model::{
    Activation, ActivationLayerSpec, BatchNormSpec, DenseSpec, DropoutSpec, FlattenSpec,
    LayerNormSpec, LeakyReluSpec, MergeSpec,
};
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

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
    Merge(MergeSpec),
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
            LayerSpec::Merge($l) => $body,
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
        let step = Step {
            w: &w,
            vars: &params.vars,
            f,
            logits,
        };
        self.layer().forward(x, step)
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
