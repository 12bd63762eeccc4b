//! The model: a Keras-like description of a Sequential stack of Dense layers (`spec`), its seeded
//! initialisers (`init`), and the candle `VarMap` network that computes it (`mlp`).

pub mod init;
pub mod mlp;
pub mod ops;
pub mod spec;

pub use init::Initializer;
pub use mlp::Mlp;
pub use spec::{Activation, DenseSpec, MlpSpec};
