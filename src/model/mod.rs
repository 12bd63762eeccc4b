//! The model: Keras layers described as Keras describes them (`layer` says what every layer type
//! provides, `layer_spec` lists the types, one file each: `dense`, `dropout`, `batchnorm`,
//! `layernorm`, `activation_layer`, `flatten`), their activations and seeded initialisers, the float
//! type (`dtype`), the whole architecture (`spec`), the fused candle ops the layers compute with
//! (`ops`, sharing `fused` with the GEMM kernels for wide layers in `wide`), and `Model`, the candle
//! `VarMap` holding the weights of one model or of R stacked ones (`network`; `values` turns tensors
//! into plain values and back). Graphs: `shape` (a tensor's per-sample shape), `graph` (the wiring of
//! a Functional model that is not a chain), `merge` (Add, Concatenate, ...).

pub mod activation;
pub mod activation_layer;
pub mod batchnorm;
pub mod channels;
pub mod dense;
pub mod dialect;
pub mod dropout;
pub mod dtype;
pub mod embedding;
pub mod flatten;
mod fused;
pub mod graph;
pub mod identity;
pub mod init;
pub mod layer;
pub mod layer_scale;
pub mod layer_spec;
pub mod layernorm;
pub mod merge;
pub mod network;
pub mod normalization;
pub(crate) mod ops;
pub mod relu;
pub mod rescaling;
pub mod shape;
pub mod softmax;
pub mod spec;
pub mod values;
mod wide;

pub use activation::Activation;
pub use activation_layer::{ActivationLayerSpec, LeakyReluSpec};
pub use batchnorm::BatchNormSpec;
pub use channels::{Axis, Factor};
pub use dense::{DenseSpec, Regularizer};
pub use dropout::DropoutSpec;
pub use dtype::FloatDtype;
pub use embedding::EmbeddingSpec;
pub use flatten::FlattenSpec;
pub use graph::{GraphInput, GraphSpec, Source};
pub use identity::IdentitySpec;
pub use init::Initializer;
pub use layer::{Forward, Layer, Mode, WeightSpec};
pub use layer_scale::LayerScaleSpec;
pub use layer_spec::LayerSpec;
pub use layernorm::LayerNormSpec;
pub use merge::{MergeKind, MergeSpec};
pub use network::{LayerWeights, Model, var_name};
pub use normalization::NormalizationSpec;
pub use relu::ReluSpec;
pub use rescaling::RescalingSpec;
pub use shape::Shape;
pub use softmax::SoftmaxSpec;
pub use spec::{GraphShapes, ModelKind, ModelSpec, SummaryRow};
pub use values::{values_of, values_tensor};
pub use wide::{on_every_core, parallel_regions};
