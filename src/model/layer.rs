//! `LayerSpec`: one Keras layer of a model, whatever its type (today: Dense), with the weights it
//! owns and how it computes; the one place that dispatches on the layer type.

use crate::error::Result;
use crate::model::{Activation, DenseSpec, Initializer};
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

/// One weight of a layer: its Keras name (`kernel`, `bias`, ...), its shape for one model, whether the
/// optimizer may change it (moving statistics are weights too, but not trainable), and how to draw
/// fresh values.
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
}

/// A layer of a Sequential model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "class_name")]
pub enum LayerSpec {
    Dense(DenseSpec),
}

/// Whether a forward pass trains (Keras's `training=True`: batch statistics, dropout) or infers.
/// Dense layers compute the same either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Inference,
    Training,
}

impl LayerSpec {
    /// Keras's class name of the layer.
    pub fn class_name(&self) -> &'static str {
        match self {
            LayerSpec::Dense(_) => "Dense",
        }
    }

    /// The layer's name, unique in its model.
    pub fn name(&self) -> &str {
        match self {
            LayerSpec::Dense(d) => &d.name,
        }
    }

    /// Renames the layer.
    pub fn set_name(&mut self, name: String) {
        match self {
            LayerSpec::Dense(d) => d.name = name,
        }
    }

    /// Keras's `trainable` flag: the one place that says whether a layer is frozen.
    pub fn trainable(&self) -> bool {
        match self {
            LayerSpec::Dense(d) => d.trainable,
        }
    }

    /// Freezes (`false`) or unfreezes the layer.
    pub fn set_trainable(&mut self, trainable: bool) {
        match self {
            LayerSpec::Dense(d) => d.trainable = trainable,
        }
    }

    /// The width of the layer's output for an input of width `input`.
    pub fn output_dim(&self, _input: usize) -> usize {
        match self {
            LayerSpec::Dense(d) => d.units,
        }
    }

    /// The activation that ends the layer (what the loss pairs with when it is the last layer).
    pub fn activation(&self) -> Activation {
        match self {
            LayerSpec::Dense(d) => d.activation,
        }
    }

    /// The layer's weights, in Keras's order, for an input of width `input`.
    pub fn weights(&self, input: usize) -> Vec<WeightSpec> {
        match self {
            LayerSpec::Dense(d) => d.weights(input),
        }
    }

    /// The layer's computation on `x [R, N, in]` with its stacked weights `params` (in `weights`'
    /// order). `logits` leaves the final activation out (for the model's last layer, whose loss
    /// starts from the logits). A frozen layer's weights enter the graph detached.
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        params: &LayerParams,
        _mode: Mode,
        logits: bool,
    ) -> Result<Tensor> {
        let p = |i: usize| -> Tensor {
            let t = params.vars[i].as_tensor();
            if self.trainable() {
                t.clone()
            } else {
                t.detach()
            }
        };
        match self {
            LayerSpec::Dense(d) => {
                let bias = match &params.zero_bias {
                    Some(z) => z.clone(),
                    None => p(1),
                };
                d.forward(x, &p(0), &bias, logits)
            }
        }
    }
}

/// A layer's stacked variables (`[R, ...]` each, in `LayerSpec::weights` order) and the constants its
/// forward pass needs (a zero bias for a Dense layer without one).
#[derive(Clone)]
pub(crate) struct LayerParams {
    pub vars: Vec<Var>,
    pub zero_bias: Option<Tensor>,
}
