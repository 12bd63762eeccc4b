//! Keras's `BatchNormalization` over the last axis (the features, or the channels) of input of any
//! rank (its `axis` -1 or the last one, as Keras Applications write it): gamma, beta and the moving mean and
//! variance; training mode normalises with the batch's mean and (biased) variance and moves the
//! moving statistics by `momentum`, as Keras 3 does; a frozen layer always runs in inference mode.

use crate::error::Result;
use crate::model::Initializer;
use crate::model::channels::Axis;
use crate::model::dialect::{
    Format, Res, check_keys, flag, initializer_json, number, parse_initializer,
};
use crate::model::kernels::affine::{Post, Then};
use crate::model::layer::{Common, KerasLayer, Layer, Mode, Step, WeightSpec, named_layer, yes};
use crate::model::shape::Shape;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `BatchNormalization(axis=-1, momentum, epsilon, center, scale, ...)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchNormSpec {
    pub name: String,
    /// The channel axis as the file gave it (`-1`, `3`, `[3]`): it must be the input's last.
    #[serde(default)]
    pub axis: Axis,
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
    /// Whether the layer runs as the per-channel affine kernel (`kernels::affine`) on input of
    /// `rank`: over images (with the moving statistics or, training, the batch's).
    pub(crate) fn is_affine(rank: usize) -> bool {
        rank > 3
    }

    /// The layer's output with `then` applied to it (`Then::Identity`: the layer alone). `then`
    /// other than `Identity` only where `is_affine`: the affine kernel applies it as it writes
    /// each value, with the bits (and gradients) of the activation layer run after this one.
    pub(crate) fn forward_then(&self, x: &Tensor, s: Step, then: Then) -> Result<Tensor> {
        let shape = x.shape().clone();
        if then != Then::Identity && !Self::is_affine(shape.rank()) {
            return Err(crate::error::Error::Internal(format!(
                "{}: an activation fused into a BatchNormalization that is not affine",
                self.name
            )));
        }
        let x = &rows(x)?;
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
        if Self::is_affine(shape.rank()) {
            // Over images: the same numbers as one op that keeps only its input for the backward
            // pass (the composed ops keep a second full-size tensor per layer).
            let (inv, res) = scale_shift(&mean, &var, gamma.as_ref(), beta.as_ref(), self.epsilon)?;
            return Ok(
                crate::model::kernels::affine::affine_then(x, &inv, &res, then)?.reshape(shape)?,
            );
        }
        Ok(
            normalize(x, &mean, &var, gamma.as_ref(), beta.as_ref(), self.epsilon)?
                .reshape(shape)?,
        )
    }

    /// This layer (and `then` after it) as a `Post` for the op that writes its input, for an
    /// input of rank `rank`: where it normalises with its moving statistics (inference, or not
    /// trainable) as the affine kernel, and no gradient reaches its weights. The same scale and
    /// shift `forward_then` computes, so the same bits. `None` otherwise.
    pub(crate) fn inference_post(&self, rank: usize, s: Step, then: Then) -> Result<Option<Post>> {
        if !Self::is_affine(rank)
            || (s.f.mode == Mode::Training && self.trainable)
            || s.w.iter().any(Tensor::track_op)
        {
            return Ok(None);
        }
        let (gamma, beta, i) = gamma_beta(s.w, self.scale, self.center)?;
        let (mean, var) = (s.w[i].unsqueeze(1)?, s.w[i + 1].unsqueeze(1)?);
        let (inv, res) = scale_shift(&mean, &var, gamma.as_ref(), beta.as_ref(), self.epsilon)?;
        Ok(Some(Post::new(&inv, &res, then)?))
    }

    /// Keras's defaults: momentum 0.99, epsilon 0.001, center and scale.
    pub fn new(name: impl Into<String>) -> Self {
        BatchNormSpec {
            name: name.into(),
            axis: Axis::default(),
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
    let (inv, res) = scale_shift(mean, var, gamma, beta, epsilon)?;
    Ok(x.broadcast_mul(&inv)?.broadcast_add(&res)?)
}

/// The scale `gamma / sqrt(var + epsilon)` and shift `beta - mean * scale` that `normalize`
/// applies.
fn scale_shift(
    mean: &Tensor,
    var: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    epsilon: f64,
) -> Result<(Tensor, Tensor)> {
    let mut inv = (var + epsilon)?.sqrt()?.recip()?;
    if let Some(g) = gamma {
        inv = inv.broadcast_mul(g)?;
    }
    let mut res = mean.broadcast_mul(&inv)?.neg()?;
    if let Some(b) = beta {
        res = res.broadcast_add(b)?;
    }
    Ok((inv, res))
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
    if dim == 1 && x.rank() == 3 && x.dim(1)? > 0 {
        // One op with the composed ops' numbers that keeps no full-size temporaries.
        let var = crate::model::kernels::variance::variance(x, &mean)?;
        return Ok((mean, var));
    }
    let var = x.broadcast_sub(&mean.detach())?.sqr()?.mean_keepdim(dim)?;
    Ok((mean, var))
}

impl Layer for BatchNormSpec {
    named_layer!("BatchNormalization");

    fn output_shape(&self, input: &Shape) -> Result<Shape> {
        self.axis.check(input)?;
        Ok(input.clone())
    }

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
        self.forward_then(x, s, Then::Identity)
    }

    fn config(&self, format: Format) -> Value {
        let mut v = json!({
            "axis": self.axis.json(), "momentum": self.momentum, "epsilon": self.epsilon, "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializer_json(&self.beta_initializer, format),
            "gamma_initializer": initializer_json(&self.gamma_initializer, format),
            "moving_mean_initializer": initializer_json(&self.moving_mean_initializer, format),
            "moving_variance_initializer": initializer_json(&self.moving_variance_initializer, format),
            "beta_regularizer": null, "gamma_regularizer": null,
            "beta_constraint": null, "gamma_constraint": null,
        });
        if format == Format::Keras3 {
            v["synchronized"] = json!(false);
            v["renorm"] = json!(false);
            v["renorm_clipping"] = Value::Null;
            v["renorm_momentum"] = json!(0.99);
        }
        v
    }
}

impl KerasLayer for BatchNormSpec {
    const CLASSES: &'static [&'static str] = &["BatchNormalization"];

    fn from_config(cfg: &Value, c: &Common) -> Res<Self> {
        let class = c.class;
        check_keys(
            class,
            cfg,
            &[
                "axis",
                "momentum",
                "epsilon",
                "center",
                "scale",
                "beta_initializer",
                "gamma_initializer",
                "moving_mean_initializer",
                "moving_variance_initializer",
                "synchronized",
                "renorm_momentum",
            ],
        )?;
        // tf.keras 2 writes `[3]`; Keras 3's BatchNormalization takes only the integer, which
        // tf.keras 2 reads too: one axis is kept as the integer.
        let axis = match Axis::channel(class, cfg)? {
            Axis::List(a) if a.len() == 1 => Axis::One(a[0]),
            a => a,
        };
        let init = |key: &str, d: Initializer| parse_initializer(cfg.get(key), d);
        Ok(BatchNormSpec {
            name: c.name.clone(),
            axis,
            momentum: number(class, cfg, "momentum", 0.99)?,
            epsilon: number(class, cfg, "epsilon", 1e-3)?,
            center: flag(cfg, "center", true),
            scale: flag(cfg, "scale", true),
            beta_initializer: init("beta_initializer", Initializer::Zeros)?,
            gamma_initializer: init("gamma_initializer", Initializer::Ones)?,
            moving_mean_initializer: init("moving_mean_initializer", Initializer::Zeros)?,
            moving_variance_initializer: init("moving_variance_initializer", Initializer::Ones)?,
            trainable: c.trainable,
        })
    }
}

/// `x [R, N, ..., C]` as `[R, M, C]`: the rows a per-channel statistic runs over.
pub(crate) fn rows(x: &Tensor) -> Result<Tensor> {
    if x.rank() == 3 {
        return Ok(x.clone());
    }
    let (r, c) = (x.dim(0)?, x.dim(x.rank() - 1)?);
    Ok(x.reshape((r, (), c))?)
}
