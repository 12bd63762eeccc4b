//! The biased variance of `x [R, M, C]` over its rows about a given (detached) mean `[R, 1, C]`, as
//! one op: `sum_m (x - mean)^2 * (1 / M)`, each channel summed over the rows in order (the bits of
//! candle's `broadcast_sub`, `sqr`, `mean_keepdim`), TensorFlow's `moments` with the mean's gradient
//! stopped. The composed ops keep two full-size tensors per layer for the backward pass; this one
//! keeps only its input. Gradient: `(x - mean) * (g / M) * 2` for the input, none for the mean.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use num_traits::Float;

fn msg(m: &str) -> candle_core::Error {
    candle_core::Error::Msg(m.to_string())
}

fn contiguous<'a, T: candle_core::WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => Err(msg("variance: a tensor is not contiguous")),
    }
}

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
        let shape = l2.shape().clone();
        match s1 {
            CpuStorage::F32(_) => Ok((
                CpuStorage::F32(forward::<f32>(d, contiguous(s1, l1)?, contiguous(s2, l2)?)),
                shape,
            )),
            CpuStorage::F64(_) => Ok((
                CpuStorage::F64(forward::<f64>(d, contiguous(s1, l1)?, contiguous(s2, l2)?)),
                shape,
            )),
            _ => Err(msg("variance computes in float32 or float64 only")),
        }
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
        let (
            candle_core::Storage::Cpu(xc),
            candle_core::Storage::Cpu(mc),
            candle_core::Storage::Cpu(gc),
        ) = (&*xs, &*ms, &*gs)
        else {
            return Err(msg("variance runs on the CPU only"));
        };
        let gx = match xc {
            CpuStorage::F32(_) => Tensor::from_vec(
                backward::<f32>(
                    d,
                    contiguous(xc, xl)?,
                    contiguous(mc, ml)?,
                    contiguous(gc, gl)?,
                ),
                x.shape(),
                x.device(),
            )?,
            CpuStorage::F64(_) => Tensor::from_vec(
                backward::<f64>(
                    d,
                    contiguous(xc, xl)?,
                    contiguous(mc, ml)?,
                    contiguous(gc, gl)?,
                ),
                x.shape(),
                x.device(),
            )?,
            _ => return Err(msg("variance computes in float32 or float64 only")),
        };
        Ok((Some(gx), None))
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
    use super::*;
    use candle_core::{Device, Var};

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 * 0.37 + seed).sin() * 3.0)
            .collect()
    }

    #[test]
    fn the_op_gives_the_composed_bits_and_gradient() {
        let dev = Device::Cpu;
        let (r, m, c) = (2, 300, 5);
        let x = Var::from_vec(values(r * m * c, 0.1), (r, m, c), &dev).unwrap();
        let mean = x.as_tensor().mean_keepdim(1).unwrap();
        let fast = variance(x.as_tensor(), &mean).unwrap();
        let slow = x
            .as_tensor()
            .broadcast_sub(&mean.detach())
            .unwrap()
            .sqr()
            .unwrap()
            .mean_keepdim(1)
            .unwrap();
        let bits = |t: &Tensor| -> Vec<u32> {
            let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            v.iter().map(|v| v.to_bits()).collect()
        };
        assert_eq!(bits(&fast), bits(&slow));
        let g = Tensor::from_vec(values(r * c, 1.3), (r, 1, c), &dev).unwrap();
        let gf = (fast * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let gs = (slow * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let p: Vec<f32> = gf
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let q: Vec<f32> = gs
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(
            p.iter()
                .zip(&q)
                .all(|(p, q)| (p - q).abs() <= 1e-6 * (1.0 + q.abs()))
        );
    }
}
