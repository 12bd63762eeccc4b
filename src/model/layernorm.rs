//! Keras's `LayerNormalization` over the features: each row normalised by its own mean and (biased)
//! variance, then scaled by gamma and shifted by beta; the same in training and inference.

use crate::error::Result;
use crate::model::Initializer;
use crate::model::batchnorm::{gamma_beta, moments, normalize, scale_and_offset};
use crate::model::layer::{Layer, Step, WeightSpec, named_layer, yes};
use candle_core::Tensor;
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
        scale_and_offset(
            width,
            self.scale.then_some(&self.gamma_initializer),
            self.center.then_some(&self.beta_initializer),
        )
    }

    fn forward(&self, x: &Tensor, s: Step) -> Result<Tensor> {
        let (gamma, beta, _) = gamma_beta(s.w, self.scale, self.center)?;
        let last = x.rank() - 1;
        let (mean, var) = moments(x, last)?;
        normalize(x, &mean, &var, gamma.as_ref(), beta.as_ref(), self.epsilon)
    }
}
