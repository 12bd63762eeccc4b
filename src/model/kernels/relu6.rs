//! TensorFlow's `Relu6` as one op: `min(max(x, 0), 6)` forward (the bits of `x.clamp(0, 6)`), and
//! TensorFlow's `Relu6Grad` backward: the gradient passes where `0 < x < 6` and is zero elsewhere,
//! the boundaries included (candle's composed `clamp` would halve it at exactly 0 and 6, and would
//! keep a full-size gradient for each constant bound until the backward pass ends). Keras 3's
//! `relu6` activation and `ReLU(max_value=6)` layer run this op on TensorFlow.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use num_traits::Float;
use rayon::prelude::*;

/// Elements per parallel chunk (each element is its own, so the bits do not depend on it).
const CHUNK: usize = 1 << 14;

fn msg(m: &str) -> candle_core::Error {
    candle_core::Error::Msg(m.to_string())
}

fn contiguous<'a, T: candle_core::WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => Err(msg("relu6: the input is not contiguous")),
    }
}

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
        let shape = l.shape().clone();
        match s {
            CpuStorage::F32(_) => Ok((CpuStorage::F32(forward::<f32>(contiguous(s, l)?)), shape)),
            CpuStorage::F64(_) => Ok((CpuStorage::F64(forward::<f64>(contiguous(s, l)?)), shape)),
            _ => Err(msg("relu6 computes in float32 or float64 only")),
        }
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let (xs, xl) = arg.storage_and_layout();
        let (gs, gl) = grad.storage_and_layout();
        let (candle_core::Storage::Cpu(x), candle_core::Storage::Cpu(g)) = (&*xs, &*gs) else {
            return Err(msg("relu6 runs on the CPU only"));
        };
        let out = match x {
            CpuStorage::F32(_) => Tensor::from_vec(
                backward::<f32>(contiguous(x, xl)?, contiguous(g, gl)?),
                arg.shape(),
                arg.device(),
            )?,
            CpuStorage::F64(_) => Tensor::from_vec(
                backward::<f64>(contiguous(x, xl)?, contiguous(g, gl)?),
                arg.shape(),
                arg.device(),
            )?,
            _ => return Err(msg("relu6 computes in float32 or float64 only")),
        };
        Ok(Some(out))
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
