//! Losses: each knows its forward pass on a batch of logits (one mean loss per stacked member) and the
//! output activation it pairs with. Today: Keras's categorical cross-entropy.

use crate::error::Result;
use crate::model::Activation;
use crate::model::ops;
use candle_core::{D, Tensor};

/// A Keras loss, by its Keras name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Loss {
    /// `categorical_crossentropy` on one-hot targets. After a softmax output Keras computes it from the
    /// logits (no clipping); after any other output, from the outputs normalised to sum to one and
    /// clipped to `[1e-7, 1 - 1e-7]`.
    #[default]
    CategoricalCrossentropy,
}

impl Loss {
    /// Keras's name of the loss.
    pub fn keras_name(self) -> &'static str {
        match self {
            Loss::CategoricalCrossentropy => "categorical_crossentropy",
        }
    }

    /// The output activation the loss is meant for.
    pub fn pairs_with(self) -> Activation {
        match self {
            Loss::CategoricalCrossentropy => Activation::Softmax,
        }
    }

    /// The mean loss of each member's batch: `logits [R, N, K]` (the last layer's pre-activation
    /// output, `output` its activation) and one-hot `targets [R, N, K]` give `[R]`.
    pub fn batch_losses(
        self,
        logits: &Tensor,
        output: Activation,
        targets: &Tensor,
    ) -> Result<Tensor> {
        match self {
            Loss::CategoricalCrossentropy if output == Activation::Softmax => {
                Ok(ops::softmax_xent(logits, targets)?)
            }
            Loss::CategoricalCrossentropy => {
                let out = output.apply(logits)?;
                let p = out.broadcast_div(&out.sum_keepdim(D::Minus1)?)?;
                let log_p = p.clamp(1e-7f32, 1.0 - 1e-7f32)?.log()?;
                Ok((targets * log_p)?
                    .sum(D::Minus1)?
                    .neg()?
                    .mean_keepdim(D::Minus1)?
                    .squeeze(D::Minus1)?)
            }
        }
    }
}
