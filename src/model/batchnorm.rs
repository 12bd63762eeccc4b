//! Keras's `BatchNormalization` over the features of 2-D input: gamma, beta and the moving mean and
//! variance; training mode normalises with the batch's mean and (biased) variance and moves the
//! moving statistics by `momentum`, as Keras 3 does; a frozen layer always runs in inference mode.

use crate::error::Result;
use crate::model::Initializer;
use crate::model::layer::{Forward, Layer, Mode, WeightSpec, named_layer, yes};
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

/// `BatchNormalization(axis=-1, momentum, epsilon, center, scale, ...)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchNormSpec {
    pub name: String,
    pub momentum: f64,
    pub epsilon: f64,
    /// Whether the layer has `beta` (an offset).
    pub center: bool,
    /// Whether the layer has `gamma` (a scale).
    pub scale: bool,
    pub beta_initializer: Initializer,
    pub gamma_initializer: Initializer,
    pub moving_mean_initializer: Initializer,
    pub moving_variance_initializer: Initializer,
    #[serde(default = "yes")]
    pub trainable: bool,
}

impl BatchNormSpec {
    /// Keras's defaults: momentum 0.99, epsilon 0.001, center and scale.
    pub fn new(name: impl Into<String>) -> Self {
        BatchNormSpec {
            name: name.into(),
            momentum: 0.99,
            epsilon: 1e-3,
            center: true,
            scale: true,
            beta_initializer: Initializer::Zeros,
            gamma_initializer: Initializer::Ones,
            moving_mean_initializer: Initializer::Zeros,
            moving_variance_initializer: Initializer::Ones,
            trainable: true,
        }
    }
}

/// `x * inv + (beta - mean * inv)` with `inv = gamma / sqrt(var + epsilon)` (TensorFlow's
/// `batch_normalization`), for statistics and parameters that broadcast against `x`.
pub(crate) fn normalize(
    x: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    epsilon: f64,
) -> Result<Tensor> {
    let mut inv = (var + epsilon)?.sqrt()?.recip()?;
    if let Some(g) = gamma {
        inv = inv.broadcast_mul(g)?;
    }
    let mut res = mean.broadcast_mul(&inv)?.neg()?;
    if let Some(b) = beta {
        res = res.broadcast_add(b)?;
    }
    Ok(x.broadcast_mul(&inv)?.broadcast_add(&res)?)
}

/// The mean and the biased variance of `x` over `dim` (TensorFlow's `moments`: the variance's
/// gradient does not flow through the mean).
pub(crate) fn moments(x: &Tensor, dim: usize) -> Result<(Tensor, Tensor)> {
    let mean = x.mean_keepdim(dim)?;
    let var = x.broadcast_sub(&mean.detach())?.sqr()?.mean_keepdim(dim)?;
    Ok((mean, var))
}

impl Layer for BatchNormSpec {
    named_layer!("BatchNormalization");

    /// gamma (with `scale`), beta (with `center`), then the non-trainable moving mean and variance.
    fn weights(&self, width: usize) -> Vec<WeightSpec> {
        let mut w = Vec::with_capacity(4);
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
        w.push(WeightSpec::vector(
            "moving_mean",
            width,
            false,
            &self.moving_mean_initializer,
        ));
        w.push(WeightSpec::vector(
            "moving_variance",
            width,
            false,
            &self.moving_variance_initializer,
        ));
        w
    }

    fn forward(
        &self,
        x: &Tensor,
        w: &[Tensor],
        vars: &[Var],
        f: &mut Forward,
        _logits: bool,
    ) -> Result<Tensor> {
        let mut i = 0;
        let mut next = || {
            i += 1;
            w[i - 1].unsqueeze(1)
        };
        let gamma = self.scale.then(&mut next).transpose()?;
        let beta = self.center.then(&mut next).transpose()?;
        let (moving_mean, moving_var) = (next()?, next()?);
        let (mean, var) = if f.mode == Mode::Training && self.trainable {
            let (mean, var) = moments(x, 1)?;
            let m = vars.len() - 2;
            let update = |moving: &Tensor, batch: &Tensor| -> Result<Tensor> {
                Ok(
                    ((moving * self.momentum)? + (batch.detach() * (1.0 - self.momentum))?)?
                        .squeeze(1)?,
                )
            };
            vars[m].set(&update(&moving_mean, &mean)?)?;
            vars[m + 1].set(&update(&moving_var, &var)?)?;
            (mean, var)
        } else {
            (moving_mean, moving_var)
        };
        normalize(x, &mean, &var, gamma.as_ref(), beta.as_ref(), self.epsilon)
    }
}
