//! The model: Keras layers described as Keras describes them (`layer` lists the types, one file each:
//! `dense`, `dropout`, `batchnorm`, `layernorm`, `activation_layer`, `flatten`), their activations
//! and seeded initialisers, the whole architecture (`spec`), the fused candle ops the layers compute
//! with (`ops`, with GEMM kernels for wide layers in `wide`), and `Model`, the candle `VarMap` holding
//! the weights of one model or of R stacked ones (`network`).

pub mod activation;
pub mod activation_layer;
pub mod batchnorm;
pub mod dense;
pub mod dropout;
pub mod flatten;
pub mod init;
pub mod layer;
pub mod layernorm;
pub mod network;
pub(crate) mod ops;
pub mod spec;
mod wide;

pub use activation::Activation;
pub use activation_layer::{ActivationLayerSpec, LeakyReluSpec};
pub use batchnorm::BatchNormSpec;
pub use dense::{DenseSpec, Regularizer};
pub use dropout::DropoutSpec;
pub use flatten::FlattenSpec;
pub use init::Initializer;
pub use layer::{Forward, Layer, LayerSpec, Mode, WeightSpec};
pub use layernorm::LayerNormSpec;
pub use network::{LayerWeights, Model, values_of, values_tensor, var_name};
pub use spec::{FloatDtype, ModelKind, ModelSpec, SummaryRow};
pub use wide::{on_every_core, parallel_regions};
