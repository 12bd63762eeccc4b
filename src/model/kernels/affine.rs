//! A per-channel affine map as one op: `x [R, M, C] * scale [R, 1, C] + shift [R, 1, C]`, each
//! product rounded before the sum (the bits of candle's `broadcast_mul` then `broadcast_add`), for
//! BatchNormalization over images, optionally followed by the ReLU or ReLU6 of the activation layer
//! that reads it (`Then`), with that layer's bits and gradient (candle's `relu`, whose gradient
//! passes where its input is `>= 0`; `kernels::relu6`, whose passes where `0 < y < 6`), so the
//! pair writes one tensor and keeps one, not three and two. The composed ops keep an extra full-size tensor per layer for
//! the backward pass; this one keeps only its input. Gradients: `g * scale` for the input, and the
//! sums over the rows of `g * x` and `g` for the scale and shift, summed per block of rows and then
//! over the blocks in order, so the bits do not depend on the number of threads.

use super::{by_float, cpu_values, msg, values};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, WithDType};
use num_traits::Float;
use rayon::prelude::*;

/// Rows per block of the parallel loops (fixed: the reductions' order depends on it alone).
const BLOCK: usize = 256;

/// `[R, M, C]` of the input and `[R, 1, C]` of both vectors, else an error.
fn dims(x: &Shape, a: &Shape, b: &Shape) -> Result<(usize, usize, usize)> {
    let (r, m, c) = x.dims3()?;
    if a.dims() != [r, 1, c] || b.dims() != [r, 1, c] {
        return Err(msg(
            "affine: scale and shift must be [R, 1, C] for an input [R, M, C]",
        ));
    }
    Ok((r, m, c))
}

/// What the op applies to each value of the affine map as it writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    Identity,
    /// `max(y, 0)`.
    Relu,
    /// `min(max(y, 0), 6)`.
    Relu6,
}

impl Then {
    pub(crate) fn apply<T: Float>(self, y: T) -> T {
        match self {
            Then::Identity => y,
            Then::Relu => y.max(T::zero()),
            Then::Relu6 => y.max(T::zero()).min(six()),
        }
    }

    /// The gradient at the map's output `y` from the gradient `g` at this function's output, as
    /// candle's backward pass sums it into a fresh zero gradient (so `-0` becomes `0`).
    pub(crate) fn grad<T: Float>(self, y: T, g: T) -> T {
        match self {
            Then::Identity => g,
            Then::Relu => {
                let pass = if y >= T::zero() { T::one() } else { T::zero() };
                T::zero() + g * pass
            }
            Then::Relu6 => {
                T::zero()
                    + if y > T::zero() && y < six() {
                        g
                    } else {
                        T::zero()
                    }
            }
        }
    }
}

fn six<T: Float>() -> T {
    T::from(6.0).unwrap_or_else(T::max_value)
}

fn forward<T: Float + Send + Sync>(
    d: (usize, usize, usize),
    x: &[T],
    a: &[T],
    b: &[T],
    then: Then,
) -> Vec<T> {
    let (_, m, c) = d;
    let mut out = vec![T::zero(); x.len()];
    out.par_chunks_mut((m * c).max(1))
        .enumerate()
        .for_each(|(r, or)| {
            let xr = &x[r * m * c..][..m * c];
            let (a, b) = (&a[r * c..][..c], &b[r * c..][..c]);
            or.par_chunks_mut(BLOCK * c.max(1))
                .zip(xr.par_chunks(BLOCK * c.max(1)))
                .for_each(|(o, x)| match then {
                    Then::Identity => rows::<T, Identity>(o, x, a, b, c),
                    Then::Relu => rows::<T, Relu>(o, x, a, b, c),
                    Then::Relu6 => rows::<T, Relu6>(o, x, a, b, c),
                });
        });
    out
}

#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn rows<T: Float, A: Apply>(o: &mut [T], x: &[T], a: &[T], b: &[T], c: usize) {
    for (o, x) in o.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        for (((o, &x), &a), &b) in o.iter_mut().zip(x).zip(a).zip(b) {
            *o = A::apply(x * a + b);
        }
    }
}

/// A BatchNormalization in inference (and the ReLU/ReLU6 layer after it, `then`) applied by the
/// op that writes its input, to each part of that op's output right after the part is written
/// (while it is in cache): `affine_then`'s operations on each value, so its bits. `scale` and
/// `shift` are `[R, 1, C]` (contiguous). Only for a forward pass no gradient goes through: the ops
/// that take one have no backward pass with it.
#[derive(Clone)]
pub(crate) struct Post {
    pub(crate) scale: Tensor,
    pub(crate) shift: Tensor,
    pub(crate) then: Then,
}

/// A `Post`'s values as `T`: the scale, the shift (`[R * C]` each) and `then`.
pub(crate) type PostValues<'a, T> = (&'a [T], &'a [T], Then);

impl Post {
    /// The post for `scale` and `shift` (`[R, 1, C]`).
    pub(crate) fn new(scale: &Tensor, shift: &Tensor, then: Then) -> Result<Self> {
        Ok(Post {
            scale: scale.contiguous()?,
            shift: shift.contiguous()?,
            then,
        })
    }

    /// Runs `f` on the scale's and shift's values as `T`, for an output of `r` members of `c`
    /// channels (an error when they have another size).
    pub(crate) fn with<T: WithDType, R>(
        &self,
        r: usize,
        c: usize,
        f: impl FnOnce(PostValues<'_, T>) -> R,
    ) -> Result<R> {
        if self.scale.elem_count() != r * c || self.shift.elem_count() != r * c {
            return Err(msg(
                "affine: scale and shift do not match the output's channels",
            ));
        }
        let (sa, la) = self.scale.storage_and_layout();
        let (sb, lb) = self.shift.storage_and_layout();
        let a = values::<T>(&sa, la, "affine")?;
        let b = values::<T>(&sb, lb, "affine")?;
        Ok(f((a, b, self.then)))
    }
}

/// `o = then(o * a + b)` for each row of `a.len()` values of `o`, in place: `rows`'s operations
/// on values already written.
pub(crate) fn rows_in_place<T: Float>(o: &mut [T], a: &[T], b: &[T], then: Then) {
    match then {
        Then::Identity => rows_mut::<T, Identity>(o, a, b),
        Then::Relu => rows_mut::<T, Relu>(o, a, b),
        Then::Relu6 => rows_mut::<T, Relu6>(o, a, b),
    }
}

#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn rows_mut<T: Float, A: Apply>(o: &mut [T], a: &[T], b: &[T]) {
    for o in o.chunks_exact_mut(a.len().max(1)) {
        for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
            *o = A::apply(*o * a + b);
        }
    }
}

/// `Then`'s functions as types, so that each gets a loop of its own.
trait Apply {
    fn apply<T: Float>(y: T) -> T;
}
struct Identity;
struct Relu;
struct Relu6;
impl Apply for Identity {
    fn apply<T: Float>(y: T) -> T {
        Then::Identity.apply(y)
    }
}
impl Apply for Relu {
    fn apply<T: Float>(y: T) -> T {
        Then::Relu.apply(y)
    }
}
impl Apply for Relu6 {
    fn apply<T: Float>(y: T) -> T {
        Then::Relu6.apply(y)
    }
}

#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
#[allow(clippy::too_many_arguments)]
fn rows_grad<T: Float>(
    gx: &mut [T],
    ga: &mut [T],
    gb: &mut [T],
    x: &[T],
    g: &[T],
    (a, b): (&[T], &[T]),
    c: usize,
    then: Then,
) {
    for ((gx, x), g) in gx
        .chunks_exact_mut(c)
        .zip(x.chunks_exact(c))
        .zip(g.chunks_exact(c))
    {
        for (q, ((gx, &x), &g)) in gx.iter_mut().zip(x).zip(g).enumerate() {
            let g = then.grad(x * a[q] + b[q], g);
            *gx = g * a[q];
            ga[q] = ga[q] + g * x;
            gb[q] = gb[q] + g;
        }
    }
}

type Grads<T> = (Vec<T>, Vec<T>, Vec<T>);

fn backward<T: Float + Send + Sync>(
    d: (usize, usize, usize),
    x: &[T],
    (a, b): (&[T], &[T]),
    g: &[T],
    then: Then,
) -> Grads<T> {
    let (r, m, c) = d;
    let blocks = m.div_ceil(BLOCK);
    let mut gx = vec![T::zero(); x.len()];
    let mut parts = vec![T::zero(); r * blocks * 2 * c];
    // Each block stays within one member: blocks are cut per member.
    gx.par_chunks_mut(m * c.max(1))
        .zip(parts.par_chunks_mut(blocks * 2 * c.max(1)))
        .enumerate()
        .for_each(|(rr, (gxr, pr))| {
            let (xr, gr, ar, br) = (
                &x[rr * m * c..][..m * c],
                &g[rr * m * c..][..m * c],
                &a[rr * c..][..c],
                &b[rr * c..][..c],
            );
            gxr.par_chunks_mut(BLOCK * c.max(1))
                .zip(pr.par_chunks_mut(2 * c.max(1)))
                .enumerate()
                .for_each(|(k, (gxb, p))| {
                    let (ga, gb) = p.split_at_mut(c);
                    let at = k * BLOCK * c;
                    let len = gxb.len();
                    let (xb, gb_) = (&xr[at..at + len], &gr[at..at + len]);
                    rows_grad(gxb, ga, gb, xb, gb_, (ar, br), c, then);
                });
        });
    let (mut ga, mut gb) = (vec![T::zero(); r * c], vec![T::zero(); r * c]);
    for rr in 0..r {
        for k in 0..blocks {
            let p = &parts[(rr * blocks + k) * 2 * c..][..2 * c];
            for q in 0..c {
                ga[rr * c + q] = ga[rr * c + q] + p[q];
                gb[rr * c + q] = gb[rr * c + q] + p[c + q];
            }
        }
    }
    (gx, ga, gb)
}

struct Affine(Then);

impl CustomOp3 for Affine {
    fn name(&self) -> &'static str {
        "keras-channel-affine"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = dims(l1.shape(), l2.shape(), l3.shape())?;
        by_float!(s1.dtype(), "affine", T => {
            let v = |s, l| cpu_values::<T>(s, l, "affine");
            let out = forward::<T>(d, v(s1, l1)?, v(s2, l2)?, v(s3, l3)?, self.0);
            Ok((T::to_cpu_storage_owned(out), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = dims(x.shape(), a.shape(), b.shape())?;
        let grad = grad.contiguous()?;
        let (xs, xl) = x.storage_and_layout();
        let (as_, al) = a.storage_and_layout();
        let (bs, bl) = b.storage_and_layout();
        let (gs, gl) = grad.storage_and_layout();
        by_float!(x.dtype(), "affine", T => {
            let v = |s, l| values::<T>(s, l, "affine");
            let ab = (v(&as_, al)?, v(&bs, bl)?);
            let (gx, ga, gb) = backward::<T>(d, v(&xs, xl)?, ab, v(&gs, gl)?, self.0);
            let dev = x.device();
            Ok((
                Some(Tensor::from_vec(gx, x.shape(), dev)?),
                Some(Tensor::from_vec(ga, a.shape(), dev)?),
                Some(Tensor::from_vec(gb, b.shape(), dev)?),
            ))
        })
    }
}

/// `x [R, M, C] * scale [R, 1, C] + shift [R, 1, C]`.
#[cfg(test)]
fn affine(x: &Tensor, scale: &Tensor, shift: &Tensor) -> Result<Tensor> {
    affine_then(x, scale, shift, Then::Identity)
}

/// `then` of `x [R, M, C] * scale [R, 1, C] + shift [R, 1, C]`.
pub(crate) fn affine_then(
    x: &Tensor,
    scale: &Tensor,
    shift: &Tensor,
    then: Then,
) -> Result<Tensor> {
    x.contiguous()?
        .apply_op3(&scale.contiguous()?, &shift.contiguous()?, Affine(then))
}

#[cfg(test)]
mod tests {
    use super::super::test_values::{assert_fused_pair, assert_same_gradient, bits, values};
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn the_op_gives_the_composed_bits_and_gradients() {
        let dev = Device::Cpu;
        let (r, m, c) = (2, 700, 5);
        let x = Var::from_vec(values(r * m * c, 0.1), (r, m, c), &dev).unwrap();
        let a = Var::from_vec(values(r * c, 0.7), (r, 1, c), &dev).unwrap();
        let b = Var::from_vec(values(r * c, 1.9), (r, 1, c), &dev).unwrap();
        let fast = affine(x.as_tensor(), a.as_tensor(), b.as_tensor()).unwrap();
        let slow = x.as_tensor().broadcast_mul(a.as_tensor()).unwrap();
        let slow = slow.broadcast_add(b.as_tensor()).unwrap();
        assert_eq!(bits(&fast), bits(&slow));
        let g = Tensor::from_vec(values(r * m * c, 1.3), (r, m, c), &dev).unwrap();
        let gf = (fast * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let gs = (slow * &g).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &a, &b] {
            assert_same_gradient(&gf, &gs, v, 1e-4);
        }
    }

    /// The map then ReLU or ReLU6 gives the bits and gradients of the map followed by candle's
    /// `relu` or by `kernels::relu6`, with values around 0 and 6 (and exactly at them).
    #[test]
    fn an_activation_applied_as_it_writes_has_the_layer_s_bits_and_gradients() {
        let dev = Device::Cpu;
        let (r, m, c) = (2, 600, 5);
        // Values in about -8..8, some of them landing exactly on 0 and 6 after the map.
        let mut xv = values(r * m * c, 0.1);
        for (i, v) in xv.iter_mut().enumerate() {
            *v = match i % 7 {
                0 => 0.0,
                1 => 6.0,
                _ => *v * 16.0,
            };
        }
        let x = Var::from_vec(xv, (r, m, c), &dev).unwrap();
        // Channel 0 maps each value to itself (so 0 and 6 reach the activation exactly); the
        // others scale and shift.
        let av: Vec<f32> = (0..r * c)
            .map(|i| {
                if i % c == 0 {
                    1.0
                } else {
                    0.5 + i as f32 * 0.3
                }
            })
            .collect();
        let bv: Vec<f32> = (0..r * c)
            .map(|i| {
                if i % c == 0 {
                    0.0
                } else {
                    (i as f32 - 4.0) * 0.7
                }
            })
            .collect();
        let a = Var::from_vec(av, (r, 1, c), &dev).unwrap();
        let b = Var::from_vec(bv, (r, 1, c), &dev).unwrap();
        let g = Tensor::from_vec(values(r * m * c, 1.3), (r, m, c), &dev).unwrap();
        for then in [Then::Relu, Then::Relu6] {
            let fast = affine_then(x.as_tensor(), a.as_tensor(), b.as_tensor(), then).unwrap();
            let y = affine(x.as_tensor(), a.as_tensor(), b.as_tensor()).unwrap();
            assert_fused_pair(then, fast, &y, &g, &[&x, &a, &b]);
        }
    }
}
