//! The model: Keras layers described as Keras describes them (`spec`, `layer`, `dense`), their
//! activations and seeded initialisers, the fused candle ops they compute with (`ops`, with GEMM kernels for wide layers in `wide`), and `Model`,
//! the candle `VarMap` holding the weights of one model or of R stacked ones (`network`).

pub mod activation;
pub mod dense;
pub mod init;
pub mod layer;
pub mod network;
pub(crate) mod ops;
pub mod spec;
mod wide;

pub use activation::Activation;
pub use dense::DenseSpec;
pub use init::Initializer;
pub use layer::{LayerSpec, Mode, WeightSpec};
pub use network::{LayerWeights, Model, var_name};
pub use spec::{ModelSpec, SummaryRow};
