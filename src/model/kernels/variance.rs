//! The biased variance of `x [R, M, C]` over its rows about a given (detached) mean `[R, 1, C]`, as
//! one op: `sum_m (x - mean)^2 * (1 / M)`, each channel summed over the rows in order (the bits of
//! candle's `broadcast_sub`, `sqr`, `mean_keepdim`), TensorFlow's `moments` with the mean's gradient
//! stopped. The composed ops keep two full-size tensors per layer for the backward pass; this one
//! keeps only its input. Gradient: `(x - mean) * (g / M) * 2` for the input, none for the mean.

use super::{by_float, cpu_values, msg, values};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, WithDType};
use num_traits::Float;

fn dims(x: &Shape, mean: &Shape) -> Result<(usize, usize, usize)> {
    let (r, m, c) = x.dims3()?;
    if mean.dims() != [r, 1, c] || m == 0 {
        return Err(msg(
            "variance: the mean must be [R, 1, C] for an input [R, M, C], M > 0",
        ));
    }
    Ok((r, m, c))
}

/// `1 / M` in `T`, as candle's `mean_keepdim` scales (an f64 reciprocal cast to `T`).
fn scale<T: Float>(m: usize) -> T {
    T::from(1f64 / m as f64).unwrap_or_else(T::zero)
}

#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn forward<T: Float>(d: (usize, usize, usize), x: &[T], mean: &[T]) -> Vec<T> {
    let (r, m, c) = d;
    let mut out = vec![T::zero(); r * c];
    for rr in 0..r {
        let (acc, mu) = (&mut out[rr * c..][..c], &mean[rr * c..][..c]);
        for row in x[rr * m * c..][..m * c].chunks_exact(c) {
            for ((a, &x), &mu) in acc.iter_mut().zip(row).zip(mu) {
                let d = x - mu;
                *a = *a + d * d;
            }
        }
        for a in acc.iter_mut() {
            *a = *a * scale::<T>(m);
        }
    }
    out
}

#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn backward<T: Float>(d: (usize, usize, usize), x: &[T], mean: &[T], g: &[T]) -> Vec<T> {
    let (r, m, c) = d;
    let two = T::one() + T::one();
    let mut gx = vec![T::zero(); x.len()];
    for rr in 0..r {
        let gs: Vec<T> = g[rr * c..][..c]
            .iter()
            .map(|&g| g * scale::<T>(m))
            .collect();
        let mu = &mean[rr * c..][..c];
        let rows = gx[rr * m * c..][..m * c].chunks_exact_mut(c);
        for (o, xr) in rows.zip(x[rr * m * c..][..m * c].chunks_exact(c)) {
            for (((o, &x), &mu), &gs) in o.iter_mut().zip(xr).zip(mu).zip(&gs) {
                *o = (x - mu) * gs * two;
            }
        }
    }
    gx
}

struct Variance;

impl CustomOp2 for Variance {
    fn name(&self) -> &'static str {
        "keras-variance"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = dims(l1.shape(), l2.shape())?;
        by_float!(s1.dtype(), "variance", T => {
            let (x, mean) = (cpu_values(s1, l1, "variance")?, cpu_values(s2, l2, "variance")?);
            Ok((T::to_cpu_storage_owned(forward::<T>(d, x, mean)), l2.shape().clone()))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        mean: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let d = dims(x.shape(), mean.shape())?;
        let grad = grad.contiguous()?;
        let (xs, xl) = x.storage_and_layout();
        let (ms, ml) = mean.storage_and_layout();
        let (gs, gl) = grad.storage_and_layout();
        by_float!(x.dtype(), "variance", T => {
            let v = |s, l| values::<T>(s, l, "variance");
            let gx = backward::<T>(d, v(&xs, xl)?, v(&ms, ml)?, v(&gs, gl)?);
            Ok((Some(Tensor::from_vec(gx, x.shape(), x.device())?), None))
        })
    }
}

/// The biased variance of `x [R, M, C]` over its rows about `mean [R, 1, C]` (whose gradient is
/// stopped), `[R, 1, C]`.
pub(crate) fn variance(x: &Tensor, mean: &Tensor) -> Result<Tensor> {
    x.contiguous()?
        .apply_op2(&mean.detach().contiguous()?, Variance)
}

#[cfg(test)]
mod tests {
    use super::super::test_values::{assert_same_gradient, bits, values};
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn the_op_gives_the_composed_bits_and_gradient() {
        let dev = Device::Cpu;
        let (r, m, c) = (2, 300, 5);
        let x = Var::from_vec(values(r * m * c, 0.1), (r, m, c), &dev).unwrap();
        let mean = x.as_tensor().mean_keepdim(1).unwrap();
        let fast = variance(x.as_tensor(), &mean).unwrap();
        let slow = x.as_tensor().broadcast_sub(&mean.detach()).unwrap();
        let slow = slow.sqr().unwrap().mean_keepdim(1).unwrap();
        assert_eq!(bits(&fast), bits(&slow));
        let g = Tensor::from_vec(values(r * c, 1.3), (r, 1, c), &dev).unwrap();
        let gf = (fast * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let gs = (slow * &g).unwrap().sum_all().unwrap().backward().unwrap();
        assert_same_gradient(&gf, &gs, &x, 1e-6);
    }
}
