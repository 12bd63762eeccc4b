//! Keras's `LayerNormalization` over the features: each row normalised by its own mean and (biased)
//! variance, then scaled by gamma and shifted by beta; the same in training and inference.

use crate::error::Result;
use crate::model::Initializer;
use crate::model::batchnorm::{moments, normalize};
use crate::model::layer::{Forward, Layer, WeightSpec, named_layer, yes};
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

/// `LayerNormalization(axis=-1, epsilon, center, scale)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerNormSpec {
    pub name: String,
    pub epsilon: f64,
    pub center: bool,
    pub scale: bool,
    pub beta_initializer: Initializer,
    pub gamma_initializer: Initializer,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl Layer for LayerNormSpec {
    named_layer!("LayerNormalization");

    /// gamma (with `scale`), then beta (with `center`).
    fn weights(&self, width: usize) -> Vec<WeightSpec> {
        let mut w = Vec::with_capacity(2);
        if self.scale {
            w.push(WeightSpec::vector(
                "gamma",
                width,
                true,
                &self.gamma_initializer,
            ));
        }
        if self.center {
            w.push(WeightSpec::vector(
                "beta",
                width,
                true,
                &self.beta_initializer,
            ));
        }
        w
    }

    fn forward(
        &self,
        x: &Tensor,
        w: &[Tensor],
        _vars: &[Var],
        _f: &mut Forward,
        _logits: bool,
    ) -> Result<Tensor> {
        let mut params = w.iter().map(|t| t.unsqueeze(1));
        let gamma = self.scale.then(|| params.next()).flatten().transpose()?;
        let beta = self.center.then(|| params.next()).flatten().transpose()?;
        let last = x.rank() - 1;
        let (mean, var) = moments(x, last)?;
        normalize(x, &mean, &var, gamma.as_ref(), beta.as_ref(), self.epsilon)
    }
}
