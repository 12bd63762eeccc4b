//! Keras's `Flatten` layer on 2-D input (`[batch, features]`), where it changes nothing.

use crate::error::Result;
use crate::model::layer::{Forward, Layer, named_layer, yes};
use candle_core::{Tensor, Var};
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

    fn forward(
        &self,
        x: &Tensor,
        _w: &[Tensor],
        _vars: &[Var],
        _f: &mut Forward,
        _logits: bool,
    ) -> Result<Tensor> {
        Ok(x.clone())
    }
}
