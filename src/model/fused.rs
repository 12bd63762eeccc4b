//! What the fused kernels (`ops`, and `wide` for wide layers) share: the float types they compute
//! in, the sizes of a Dense application, and the activations they apply themselves with
//! TensorFlow's gradients.

use candle_core::WithDType;

/// The float types the fused ops compute in: f32 and f64.
pub(crate) trait Real: WithDType + num_traits::Float + std::iter::Sum {}
impl Real for f32 {}
impl Real for f64 {}

/// Sizes of a (possibly batched) Dense application.
#[derive(Clone, Copy)]
pub(crate) struct Dims {
    pub(crate) r: usize,
    pub(crate) n: usize,
    pub(crate) i: usize,
    pub(crate) o: usize,
}

/// The activations the fused Dense op computes itself, each with TensorFlow's gradient. Any other
/// activation is applied after a `Linear` fused Dense with candle's own ops (`Activation::apply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fused {
    Linear,
    Relu,
    Tanh,
    Sigmoid,
}

/// The activation of `v`.
pub(crate) fn activate<T: Real>(a: Fused, v: T) -> T {
    match a {
        Fused::Relu => {
            if v > T::zero() {
                v
            } else {
                T::zero()
            }
        }
        Fused::Tanh => v.tanh(),
        Fused::Sigmoid => T::one() / (T::one() + (-v).exp()),
        Fused::Linear => v,
    }
}

/// The derivative of the activation, from its output `y` (TensorFlow's gradients: ReLU passes
/// nothing at exactly 0).
pub(crate) fn activation_grad<T: Real>(a: Fused, y: T) -> T {
    match a {
        Fused::Relu => {
            if y > T::zero() {
                T::one()
            } else {
                T::zero()
            }
        }
        Fused::Tanh => T::one() - y * y,
        Fused::Sigmoid => y * (T::one() - y),
        Fused::Linear => T::one(),
    }
}
