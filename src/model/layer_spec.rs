//! `LayerSpec`: one Keras layer of a model, whatever its type: the enum that lists the types (one
//! file each, implementing `Layer`) once and dispatches to them, and the variables a layer's forward
//! pass uses (`LayerParams`).

use crate::error::Result;
use crate::model::dialect::Res;
use crate::model::kernels::affine::{Post, Then};
use crate::model::layer::{Common, Forward, KerasLayer, Layer, Mode, Step, WeightSpec};
use crate::model::shape::Shape;
use crate::model::{
    Activation, ActivationLayerSpec, BatchNormSpec, DenseSpec, DropoutSpec, FlattenSpec,
    LayerNormSpec, LeakyReluSpec, MergeSpec,
};
use crate::model::{
    EmbeddingSpec, IdentitySpec, LayerScaleSpec, NormalizationSpec, ReluSpec, RescalingSpec,
    SoftmaxSpec,
};
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The table of layer types: each line a variant and its type (one file each, implementing `Layer`
/// and `KerasLayer`). It makes the `LayerSpec` enum, its dispatch, and the lookup by Keras class name
/// that reading a config uses; adding a layer type is its file and a line here.
macro_rules! registry {
    ($($variant:ident($ty:ty),)*) => {
        /// A layer of a model, of any supported type.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "class_name")]
        pub enum LayerSpec {
            $($variant($ty),)*
        }

        impl LayerSpec {
            /// The layer as its type's `Layer`.
            pub fn layer(&self) -> &dyn Layer {
                match self {
                    $(LayerSpec::$variant(l) => l,)*
                }
            }

            /// The layer as its type's mutable `Layer`.
            pub fn layer_mut(&mut self) -> &mut dyn Layer {
                match self {
                    $(LayerSpec::$variant(l) => l,)*
                }
            }

            /// Every Keras class name a config may give a layer of this tool.
            pub fn keras_classes() -> Vec<&'static str> {
                let mut all = Vec::new();
                $(all.extend_from_slice(<$ty as KerasLayer>::CLASSES);)*
                all
            }

            /// The layer a config of class `c.class` describes; `None` for a class no type reads.
            pub(crate) fn from_keras(cfg: &Value, c: &Common) -> Option<Res<LayerSpec>> {
                $(if <$ty as KerasLayer>::CLASSES.contains(&c.class) {
                    return Some(<$ty as KerasLayer>::from_config(cfg, c).map(LayerSpec::$variant));
                })*
                None
            }
        }
    };
}

registry! {
    Dense(DenseSpec),
    Dropout(DropoutSpec),
    BatchNormalization(BatchNormSpec),
    LayerNormalization(LayerNormSpec),
    Activation(ActivationLayerSpec),
    LeakyReLU(LeakyReluSpec),
    Flatten(FlattenSpec),
    Merge(MergeSpec),
    Pooling(crate::model::PoolingSpec),
    GlobalPooling(crate::model::GlobalPoolingSpec),
    ZeroPadding(crate::model::ZeroPaddingSpec),
    Cropping(crate::model::CroppingSpec),
    Reshape(crate::model::ReshapeSpec),
    Permute(crate::model::PermuteSpec),
    UpSampling(crate::model::UpSamplingSpec),
    Conv(crate::model::ConvSpec),
    DepthwiseConv(crate::model::DepthwiseSpec),
    SeparableConv(crate::model::SeparableSpec),
    Rescaling(RescalingSpec),
    Normalization(NormalizationSpec),
    ReLU(ReluSpec),
    Softmax(SoftmaxSpec),
    Identity(IdentitySpec),
    Embedding(EmbeddingSpec),
    LayerScale(LayerScaleSpec),
    Op(crate::model::OpSpec),
}

impl LayerSpec {
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

    /// The shape of the layer's output for an input of shape `input`.
    pub fn output_shape(&self, input: &Shape) -> Result<Shape> {
        self.layer().output_shape(input)
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
    /// non-trainable weight enter the graph detached (`params.detached`), and in inference every
    /// weight does: no gradient is taken of an inference pass, and a tracked weight would make each
    /// output hold its inputs (the whole pass's activations) until the last one is dropped.
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        params: &LayerParams,
        f: &mut Forward,
        logits: bool,
    ) -> Result<Tensor> {
        let w = Self::step_weights(params, f);
        let step = Step {
            w: &w,
            vars: &params.vars,
            f,
            logits,
        };
        self.layer().forward(x, step)
    }

    /// The elementwise function of an activation layer (`ReLU` without a threshold, a slope or a
    /// ceiling other than 6; `Activation` relu or relu6) that a BatchNormalization before it can
    /// apply as it writes (`BatchNormSpec::forward_then`); `None` for any other layer.
    pub(crate) fn fusable_activation(&self) -> Option<Then> {
        match self {
            LayerSpec::ReLU(r) if r.negative_slope == 0.0 && r.threshold == 0.0 => {
                match r.max_value {
                    None => Some(Then::Relu),
                    Some(m) if m == 6.0 => Some(Then::Relu6),
                    Some(_) => None,
                }
            }
            LayerSpec::Activation(a) => match a.activation {
                crate::model::Activation::Relu => Some(Then::Relu),
                crate::model::Activation::Relu6 => Some(Then::Relu6),
                _ => None,
            },
            _ => None,
        }
    }

    /// This layer's output with `then` applied (see `fusable_activation`), for a
    /// BatchNormalization that runs as the affine kernel on `xs[0]` and for an `Add` of two
    /// inputs of one shape; `None` for any other layer or input.
    pub(crate) fn forward_then(
        &self,
        xs: &[Tensor],
        params: &LayerParams,
        f: &mut Forward,
        then: Then,
    ) -> Result<Option<Tensor>> {
        match self {
            LayerSpec::BatchNormalization(bn)
                if crate::model::BatchNormSpec::is_affine(xs[0].rank()) =>
            {
                let w = Self::step_weights(params, f);
                let step = Step {
                    w: &w,
                    vars: &params.vars,
                    f,
                    logits: false,
                };
                Ok(Some(bn.forward_then(&xs[0], step, then)?))
            }
            LayerSpec::Merge(m)
                if m.kind == crate::model::merge::MergeKind::Add
                    && xs.len() == 2
                    && xs[0].shape() == xs[1].shape()
                    && xs[0].dtype() == xs[1].dtype()
                    && xs[0].dtype().is_float() =>
            {
                Ok(Some(crate::model::kernels::add::add_then(
                    &xs[0], &xs[1], then,
                )?))
            }
            _ => Ok(None),
        }
    }

    /// The weights a layer's step sees (see `forward`).
    /// This layer's output from `x` padded first by `pads` zeros (the ZeroPadding layer before
    /// it, whose output is never written; a DepthwiseConv only), with `post` (the
    /// BatchNormalization after it, and the activation after that: `batchnorm_post`) applied as
    /// it is written (a Conv or a DepthwiseConv): the values of the layers run one by one, bit for
    /// bit. Only where no gradient flows through this layer (the ops have no backward pass with a
    /// `post`, and a padded depthwise kernel's gradient could differ from the padded path's in the
    /// sign of a zero). `None` for any other layer or case.
    pub(crate) fn forward_chain(
        &self,
        x: &Tensor,
        params: &LayerParams,
        f: &mut Forward,
        pads: Option<&[(usize, usize)]>,
        post: Option<&Post>,
    ) -> Result<Option<Tensor>> {
        let w = Self::step_weights(params, f);
        if x.track_op() || w.iter().any(Tensor::track_op) {
            return Ok(None);
        }
        let step = Step {
            w: &w,
            vars: &params.vars,
            f,
            logits: false,
        };
        match (self, pads, post) {
            (LayerSpec::DepthwiseConv(d), _, _) => d.forward_chain(x, step, pads, post),
            (LayerSpec::Conv(c), None, Some(p)) => c.forward_post(x, step, p),
            _ => Ok(None),
        }
    }

    /// A BatchNormalization over an input of rank `rank`, and `then` after it, as a `Post` for the
    /// op that writes its input (`BatchNormSpec::inference_post`); `None` for any other layer or
    /// where it does not normalise with fixed statistics.
    pub(crate) fn batchnorm_post(
        &self,
        rank: usize,
        params: &LayerParams,
        f: &mut Forward,
        then: Then,
    ) -> Result<Option<Post>> {
        let LayerSpec::BatchNormalization(bn) = self else {
            return Ok(None);
        };
        let w = Self::step_weights(params, f);
        let step = Step {
            w: &w,
            vars: &params.vars,
            f,
            logits: false,
        };
        bn.inference_post(rank, step, then)
    }

    fn step_weights(params: &LayerParams, f: &Forward) -> Vec<Tensor> {
        params
            .vars
            .iter()
            .zip(&params.detached)
            .map(|(v, &d)| {
                if d || f.mode == Mode::Inference {
                    v.as_tensor().detach()
                } else {
                    v.as_tensor().clone()
                }
            })
            .chain(params.consts.iter().cloned())
            .collect()
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
