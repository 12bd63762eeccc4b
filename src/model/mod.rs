//! The model: Keras layers described as Keras describes them (`layer` says what every layer type
//! provides, `layer_spec` lists the types, one file each: `dense`, `dropout`, `batchnorm`,
//! `layernorm`, `activation_layer`, `flatten`), their activations and seeded initialisers, the float
//! type (`dtype`), the whole architecture (`spec`), the fused candle ops the layers compute with
//! (`ops`, sharing `fused` with the GEMM kernels for wide layers in `wide`), and `Model`, the candle
//! `VarMap` holding the weights of one model or of R stacked ones (`network`; `values` turns tensors
//! into plain values and back). Graphs: `shape` (a tensor's per-sample shape), `graph` (the wiring of
//! a Functional model that is not a chain), `merge` (Add, Concatenate, ...), `nested` (a model used as
//! a layer of another, kept flattened). Pooling and shape layers: `pooling`, `global_pooling`,
//! `padding`, `cropping`, `reshape`, `permute`, `upsampling`, sharing `spatial` (their settings,
//! TensorFlow's padding rule, the windows a pooling reads). Convolutions: `conv`, `depthwise`,
//! `separable`, sharing `window`. Element-wise and normalisation layers: `rescaling`,
//! `normalization`, `relu`, `softmax`, `identity`, `embedding`, `layer_scale`, with `channels`
//! (the axis and per-channel settings they share).

pub mod activation;
pub mod activation_layer;
pub mod batchnorm;
pub mod channels;
pub mod conv;
pub mod cropping;
pub mod dense;
pub mod depthwise;
pub mod dialect;
pub mod dropout;
pub mod dtype;
pub mod embedding;
pub mod features;
pub mod flatten;
mod fused;
pub mod global_pooling;
pub mod graph;
pub mod identity;
pub mod init;
pub(crate) mod kernels;
pub mod layer;
pub mod layer_scale;
pub mod layer_spec;
pub mod layernorm;
pub mod merge;
pub mod nested;
pub mod network;
pub mod normalization;
pub mod op_layer;
pub(crate) mod ops;
pub mod padding;
pub mod permute;
pub mod pooling;
pub mod relu;
pub mod rescaling;
pub mod reshape;
pub mod separable;
pub mod shape;
pub mod softmax;
pub(crate) mod spatial;
pub mod spec;
pub mod upsampling;
pub mod values;
pub(crate) mod wide;
pub mod window;

pub use activation::Activation;
pub use activation_layer::{ActivationLayerSpec, LeakyReluSpec};
pub use batchnorm::BatchNormSpec;
pub use channels::{Axis, Factor};
pub use conv::ConvSpec;
pub use cropping::CroppingSpec;
pub use dense::{DenseSpec, Regularizer};
pub use depthwise::DepthwiseSpec;
pub use dropout::DropoutSpec;
pub use dtype::FloatDtype;
pub use embedding::EmbeddingSpec;
pub use flatten::FlattenSpec;
pub use global_pooling::GlobalPoolingSpec;
pub use graph::{GraphInput, GraphSpec, Source};
pub use identity::IdentitySpec;
pub use init::Initializer;
pub use layer::{Forward, Layer, Mode, WeightSpec};
pub use layer_scale::LayerScaleSpec;
pub use layer_spec::LayerSpec;
pub use layernorm::LayerNormSpec;
pub use merge::{MergeKind, MergeSpec};
pub use nested::NestedSpec;
pub use network::{LayerWeights, Model, var_name};
pub use normalization::NormalizationSpec;
pub use op_layer::OpSpec;
pub use padding::ZeroPaddingSpec;
pub use permute::PermuteSpec;
pub use pooling::{PoolMode, PoolingSpec};
pub use relu::ReluSpec;
pub use rescaling::RescalingSpec;
pub use reshape::ReshapeSpec;
pub use separable::SeparableSpec;
pub use shape::Shape;
pub use softmax::SoftmaxSpec;
pub use spec::{GraphShapes, ModelKind, ModelSpec, SummaryRow};
pub use upsampling::UpSamplingSpec;
pub use values::{values_of, values_tensor, values_var};
pub use wide::{on_every_core, parallel_regions};
