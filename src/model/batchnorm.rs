//! Keras's `BatchNormalization` over the features of 2-D input: gamma, beta and the moving mean and
//! variance; training mode normalises with the batch's mean and (biased) variance and moves the
//! moving statistics by `momentum`, as Keras 3 does; a frozen layer always runs in inference mode.

use crate::error::Result;
use crate::model::Initializer;
use crate::model::layer::{Layer, Mode, Step, WeightSpec, named_layer, yes};
use candle_core::Tensor;
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

/// gamma (with `scale`), then beta (with `center`): the trainable weights of both normalisations.
pub(crate) fn scale_and_offset(
    width: usize,
    scale: Option<&Initializer>,
    center: Option<&Initializer>,
) -> Vec<WeightSpec> {
    let gamma = scale.map(|i| WeightSpec::vector("gamma", width, true, i));
    let beta = center.map(|i| WeightSpec::vector("beta", width, true, i));
    gamma.into_iter().chain(beta).collect()
}

/// The stacked gamma and beta among a normalisation's weights (as `scale_and_offset` lists them),
/// shaped `[R, 1, width]` to broadcast over rows, and how many weights they took.
pub(crate) fn gamma_beta(
    w: &[Tensor],
    scale: bool,
    center: bool,
) -> Result<(Option<Tensor>, Option<Tensor>, usize)> {
    let mut i = 0;
    let mut take = |on: bool| -> Result<Option<Tensor>> {
        if !on {
            return Ok(None);
        }
        i += 1;
        Ok(Some(w[i - 1].unsqueeze(1)?))
    };
    let gamma = take(scale)?;
    let beta = take(center)?;
    Ok((gamma, beta, i))
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
        let mut w = scale_and_offset(
            width,
            self.scale.then_some(&self.gamma_initializer),
            self.center.then_some(&self.beta_initializer),
        );
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

    fn forward(&self, x: &Tensor, s: Step) -> Result<Tensor> {
        let (gamma, beta, i) = gamma_beta(s.w, self.scale, self.center)?;
        let (moving_mean, moving_var) = (s.w[i].unsqueeze(1)?, s.w[i + 1].unsqueeze(1)?);
        let (mean, var) = if s.f.mode == Mode::Training && self.trainable {
            let (mean, var) = moments(x, 1)?;
            let m = s.vars.len() - 2;
            let update = |moving: &Tensor, batch: &Tensor| -> Result<Tensor> {
                Ok(
                    ((moving * self.momentum)? + (batch.detach() * (1.0 - self.momentum))?)?
                        .squeeze(1)?,
                )
            };
            s.vars[m].set(&update(&moving_mean, &mean)?)?;
            s.vars[m + 1].set(&update(&moving_var, &var)?)?;
            (mean, var)
        } else {
            (moving_mean, moving_var)
        };
        normalize(x, &mean, &var, gamma.as_ref(), beta.as_ref(), self.epsilon)
    }
}
