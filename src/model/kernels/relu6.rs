//! TensorFlow's `Relu6` as one op: `min(max(x, 0), 6)` forward (the bits of `x.clamp(0, 6)`), and
//! TensorFlow's `Relu6Grad` backward: the gradient passes where `0 < x < 6` and is zero elsewhere,
//! the boundaries included (candle's composed `clamp` would halve it at exactly 0 and 6, and would
//! keep a full-size gradient for each constant bound until the backward pass ends). Keras 3's
//! `relu6` activation and `ReLU(max_value=6)` layer run this op on TensorFlow.

use super::{by_float, cpu_values, values};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, WithDType};
use num_traits::Float;
use rayon::prelude::*;

/// Elements per parallel chunk (each element is its own, so the bits do not depend on it).
const CHUNK: usize = 1 << 14;

fn forward<T: Float + Send + Sync>(x: &[T]) -> Vec<T> {
    let six = T::from(6.0).unwrap_or_else(T::max_value);
    let mut out = vec![T::zero(); x.len()];
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(o, x)| {
            for (o, &x) in o.iter_mut().zip(x) {
                *o = x.max(T::zero()).min(six);
            }
        });
    out
}

fn backward<T: Float + Send + Sync>(x: &[T], g: &[T]) -> Vec<T> {
    let six = T::from(6.0).unwrap_or_else(T::max_value);
    let mut out = vec![T::zero(); x.len()];
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
        .for_each(|(o, (x, g))| {
            for ((o, &x), &g) in o.iter_mut().zip(x).zip(g) {
                *o = if x > T::zero() && x < six {
                    g
                } else {
                    T::zero()
                };
            }
        });
    out
}

struct Relu6;

impl CustomOp1 for Relu6 {
    fn name(&self) -> &'static str {
        "keras-relu6"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        by_float!(s.dtype(), "relu6", T => {
            let out = forward::<T>(cpu_values(s, l, "relu6")?);
            Ok((T::to_cpu_storage_owned(out), l.shape().clone()))
        })
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let (xs, xl) = arg.storage_and_layout();
        let (gs, gl) = grad.storage_and_layout();
        by_float!(arg.dtype(), "relu6", T => {
            let g = backward::<T>(values(&xs, xl, "relu6")?, values(&gs, gl, "relu6")?);
            Ok(Some(Tensor::from_vec(g, arg.shape(), arg.device())?))
        })
    }
}

/// `min(max(x, 0), 6)` with TensorFlow's gradient.
pub(crate) fn relu6(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Relu6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn the_forward_is_clamp_and_the_gradient_is_tensorflows() {
        let xs = [-1.0f32, 0.0, 0.5, 5.999, 6.0, 7.0, f32::MIN_POSITIVE];
        let x = Var::from_slice(&xs, xs.len(), &Device::Cpu).unwrap();
        let y = relu6(x.as_tensor()).unwrap();
        let want: Vec<f32> = x.as_tensor().clamp(0f32, 6f32).unwrap().to_vec1().unwrap();
        let got: Vec<f32> = y.to_vec1().unwrap();
        assert_eq!(
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        let g = y.sum_all().unwrap().backward().unwrap();
        let gx: Vec<f32> = g.get(x.as_tensor()).unwrap().to_vec1().unwrap();
        // tf.raw_ops.Relu6Grad: features > 0 and features < 6.
        assert_eq!(gx, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]);
    }
}
