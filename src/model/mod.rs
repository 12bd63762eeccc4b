//! The model: Keras layers described as Keras describes them (`spec`, `layer`, `dense`), their
//! activations and seeded initialisers, the fused candle ops they compute with (`ops`), and `Model`,
//! the candle `VarMap` holding the weights of one model or of R stacked ones (`network`).

pub mod activation;
pub mod dense;
pub mod init;
pub mod layer;
pub mod network;
pub(crate) mod ops;
pub mod spec;

pub use activation::Activation;
pub use dense::{DenseSpec, Regularizer};
pub use init::Initializer;
pub use layer::{LayerSpec, Mode, WeightSpec};
pub use network::{LayerWeights, Model, var_name};
pub use spec::{ModelSpec, SummaryRow};
