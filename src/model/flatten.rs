//! Keras's `Flatten` layer on 2-D input (`[batch, features]`), where it changes nothing.

use crate::error::Result;
use crate::model::layer::{Layer, Step, named_layer, yes};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// `Flatten()` after a flat input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlattenSpec {
    pub name: String,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl Layer for FlattenSpec {
    named_layer!("Flatten");

    fn forward(&self, x: &Tensor, _: Step) -> Result<Tensor> {
        Ok(x.clone())
    }
}
