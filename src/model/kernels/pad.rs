//! Zero padding as one op: the input copied into the middle of a zeroed output, each run of its
//! last, unpadded axes copied whole (candle's `pad_with_zeros` concatenates zeros and the input
//! axis by axis, a full copy per axis). The gradient is the output gradient's middle, copied back;
//! the op keeps nothing for the backward pass but the shapes.

use super::{by_float, cpu_values, values};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, WithDType};

struct Pad {
    /// Zeros before and after, per axis of the input (0, 0 for an axis not padded).
    pads: Vec<(usize, usize)>,
}

impl Pad {
    fn out_dims(&self, dims: &[usize]) -> Vec<usize> {
        dims.iter()
            .zip(&self.pads)
            .map(|(d, (b, a))| d + b + a)
            .collect()
    }

    /// Calls `f(input offset, output offset, run)` for every run of the input's values that
    /// stays contiguous in the output, in order.
    fn runs(&self, dims: &[usize], mut f: impl FnMut(usize, usize, usize)) {
        let out = self.out_dims(dims);
        // The axes after the last padded one are copied as one run.
        let last = self.pads.iter().rposition(|&(b, a)| b + a > 0).unwrap_or(0);
        let run: usize = dims[last + 1..].iter().product();
        let outer = &dims[..=last];
        let mut strides = vec![run; outer.len()];
        for a in (0..outer.len().saturating_sub(1)).rev() {
            strides[a] = strides[a + 1] * out[a + 1];
        }
        let count: usize = outer.iter().product();
        let mut idx = vec![0usize; outer.len()];
        for k in 0..count {
            let at: usize = idx
                .iter()
                .zip(&self.pads)
                .zip(&strides)
                .map(|((i, (b, _)), s)| (i + b) * s)
                .sum();
            f(k * run, at, run);
            for a in (0..outer.len()).rev() {
                idx[a] += 1;
                if idx[a] < outer[a] {
                    break;
                }
                idx[a] = 0;
            }
        }
    }
}

impl CustomOp1 for Pad {
    fn name(&self) -> &'static str {
        "keras-zero-padding"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let dims = l.dims();
        let out = self.out_dims(dims);
        by_float!(s.dtype(), "zero padding", T => {
            let x = cpu_values::<T>(s, l, "zero padding")?;
            let mut y = vec![T::default(); out.iter().product()];
            self.runs(dims, |i, o, n| y[o..o + n].copy_from_slice(&x[i..i + n]));
            Ok((T::to_cpu_storage_owned(y), Shape::from(out)))
        })
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let (gs, gl) = grad.storage_and_layout();
        by_float!(arg.dtype(), "zero padding", T => {
            let g = values::<T>(&gs, gl, "zero padding")?;
            let mut gx = vec![T::default(); arg.elem_count()];
            self.runs(arg.dims(), |i, o, n| gx[i..i + n].copy_from_slice(&g[o..o + n]));
            Ok(Some(Tensor::from_vec(gx, arg.shape(), arg.device())?))
        })
    }
}

/// `x` with `pads[a]` zeros before and after along each axis `a` (as many pairs as `x` has axes).
pub(crate) fn pad(x: &Tensor, pads: Vec<(usize, usize)>) -> Result<Tensor> {
    if pads.len() != x.rank() {
        return Err(candle_core::Error::Msg(
            "zero padding: one (before, after) pair per axis".into(),
        ));
    }
    x.contiguous()?.apply_op1(Pad { pads })
}

#[cfg(test)]
mod tests {
    use super::super::test_values::{assert_same_gradient, bits, values};
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn the_op_gives_candle_s_padding_and_gradient() {
        let dev = Device::Cpu;
        let dims = [1, 2, 5, 4, 3];
        let n: usize = dims.iter().product();
        for pads in [
            vec![(0, 0), (0, 0), (1, 2), (0, 1), (0, 0)],
            vec![(0, 0), (0, 0), (0, 0), (2, 0), (0, 0)],
            vec![(0, 0), (0, 0), (3, 3), (0, 0), (0, 0)],
        ] {
            let x = Var::from_vec(values(n, 0.3), &dims[..], &dev).unwrap();
            let fast = pad(x.as_tensor(), pads.clone()).unwrap();
            let mut slow = x.as_tensor().clone();
            for (a, &(b, e)) in pads.iter().enumerate() {
                slow = slow.pad_with_zeros(a, b, e).unwrap();
            }
            assert_eq!(fast.dims(), slow.dims());
            assert_eq!(bits(&fast), bits(&slow), "{pads:?}");
            let g = Tensor::from_vec(values(fast.elem_count(), 1.1), fast.dims(), &dev).unwrap();
            let gf = (fast * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let gs = (slow * &g).unwrap().sum_all().unwrap().backward().unwrap();
            assert_same_gradient(&gf, &gs, &x, 0.0);
        }
    }
}
