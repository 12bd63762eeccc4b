//! What Keras's base `Optimizer` does around every optimizer's own step, as one wrapper (the way
//! burn and candle-nn compose gradient clipping and weight decay with an optimizer): the gradients
//! clipped first (`clipnorm`, else `global_clipnorm`, else `clipvalue`: Keras's
//! `_clip_gradients`), then each variable decayed (`w -= w * weight_decay * lr`:
//! `_apply_weight_decay`) before the optimizer's update. Stacked members stay independent: every
//! norm is taken per member.

use super::rule::f;
use crate::model::ops::Real;
use num_traits::Float;

/// The clipping and weight decay of an optimizer's spec.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Wrapper {
    pub clipnorm: Option<f64>,
    pub global_clipnorm: Option<f64>,
    pub clipvalue: Option<f64>,
    pub weight_decay: Option<f64>,
}

impl Wrapper {
    /// Keras's `_clip_gradients`, per member (`members` equal chunks of each gradient).
    pub(crate) fn clip<T: Real>(&self, grads: &mut [Vec<T>], members: usize) {
        if let Some(c) = self.clipnorm {
            let c: T = f(c);
            for g in grads.iter_mut() {
                let per = g.len() / members;
                for chunk in g.chunks_mut(per.max(1)) {
                    let l2sum: T = chunk.iter().map(|&v| v * v).sum();
                    let l2norm = if l2sum > T::zero() {
                        l2sum.sqrt()
                    } else {
                        l2sum
                    };
                    let denom = Float::max(l2norm, c);
                    for v in chunk.iter_mut() {
                        *v = *v * c / denom;
                    }
                }
            }
        } else if let Some(c) = self.global_clipnorm {
            let c: T = f(c);
            for m in 0..members {
                let sq: T = grads
                    .iter()
                    .map(|g| {
                        let per = g.len() / members;
                        g[m * per..(m + 1) * per].iter().map(|&v| v * v).sum::<T>()
                    })
                    .sum();
                let norm = sq.sqrt();
                // Keras adds `norm - norm` so that an infinite or NaN norm makes the scale NaN.
                let scale = if norm.is_finite() {
                    c * Float::min(T::one() / norm, T::one() / c)
                } else {
                    T::nan()
                };
                for g in grads.iter_mut() {
                    let per = g.len() / members;
                    for v in &mut g[m * per..(m + 1) * per] {
                        *v *= scale;
                    }
                }
            }
        } else if let Some(c) = self.clipvalue {
            let c: T = f(c);
            for v in grads.iter_mut().flatten() {
                *v = num_traits::clamp(*v, -c, c);
            }
        }
    }

    /// Keras's `_apply_weight_decay` on one variable's values at learning rate `lr`.
    pub(crate) fn decay<T: Real>(&self, w: &mut [T], lr: T) {
        if let Some(wd) = self.weight_decay {
            let wd: T = f(wd);
            for x in w.iter_mut() {
                *x -= *x * wd * lr;
            }
        }
    }
}
