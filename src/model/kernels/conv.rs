//! `Conv1D`/`Conv2D` (groups 1, more than one tap) as one op that keeps only its input for the
//! backward pass. The forward pass builds the patches matrix `[R, N * positions, taps * C]` (tap-major,
//! then channel, a padded tap reading zero: the layout of `taps_dense`'s concatenated taps) in
//! a transient buffer and runs the fused Dense op's own kernels on it (`ops::dense_forward`), so the
//! output has that path's bits. The backward pass rebuilds the patches, runs the Dense op's backward
//! kernels (`ops::dense_backward`: the kernel's and bias's gradients have that path's bits too) and
//! scatters the patches' gradient back onto the input (col2im), image by image in a fixed order
//! (images in parallel on the calling rayon pool; the same bits on any number of threads). Neither
//! the padded input, the taps nor the patches outlive the op's call.

use super::affine::{Post, PostValues};
use super::{by_float, cpu_values, msg, values};
use crate::model::fused::{Dims, Fused, Real};
use crate::model::ops;
use crate::model::window::{Plane, Window};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

/// The op: `x [R, N, spatial..., C]`, `kernel [R, taps * C, O]`, `bias [R, O]` to
/// `[R, N * positions, O]`.
struct Conv {
    plane: Plane,
    r: usize,
    n: usize,
    c: usize,
    o: usize,
    act: Fused,
    /// Applied to the output as it is written (`affine::Post`): then the op has no gradient.
    post: Option<Post>,
}

impl Conv {
    /// The Dense application on the patches.
    fn dims(&self) -> Dims {
        Dims {
            r: self.r,
            n: self.n * self.plane.positions(),
            i: self.plane.taps() * self.c,
            o: self.o,
        }
    }

    /// Values in one image of the input.
    fn image(&self) -> usize {
        self.plane.pixels() * self.c
    }

    fn check(&self, x: &Shape, k: &Shape, b: &Shape) -> Result<()> {
        let d = self.dims();
        if x.elem_count() != self.r * self.n * self.image()
            || k.dims() != [d.r, d.i, d.o]
            || b.dims() != [d.r, d.o]
        {
            return Err(msg(&format!(
                "conv kernel: input {x:?}, kernel {k:?} or bias {b:?} does not match the window"
            )));
        }
        Ok(())
    }

    /// The patches of every image (`[R * N * positions, taps * C]`), images in parallel.
    fn patches<T: Real>(&self, x: &[T]) -> Vec<T> {
        let per = self.plane.positions() * self.plane.taps() * self.c;
        let mut out = vec![T::zero(); self.r * self.n * per];
        out.par_chunks_mut(per.max(1))
            .zip(x.par_chunks(self.image().max(1)))
            .for_each(|(o, x)| gather(&self.plane, self.c, x, o));
        out
    }

    fn forward<T: Real>(
        &self,
        x: &[T],
        k: &[T],
        b: &[T],
        post: Option<PostValues<'_, T>>,
    ) -> Vec<T> {
        let d = self.dims();
        let patches = self.patches(x);
        let mut out = vec![T::zero(); d.r * d.n * d.o];
        ops::dense_forward_post(d, self.act, &patches, k, b, &mut out, post);
        out
    }

    /// The gradients of the input (when `want_dx`; else empty), kernel and bias.
    #[allow(clippy::type_complexity)]
    fn backward<T: Real>(
        &self,
        x: &[T],
        k: &[T],
        y: &[T],
        g: &[T],
        want_dx: bool,
    ) -> (Vec<T>, Vec<T>, Vec<T>) {
        let d = self.dims();
        let patches = self.patches(x);
        let (mut dk, mut db) = (vec![T::zero(); d.r * d.i * d.o], vec![T::zero(); d.r * d.o]);
        let mut dpatches = if want_dx {
            vec![T::zero(); patches.len()]
        } else {
            Vec::new()
        };
        ops::dense_backward(
            d,
            self.act,
            &patches,
            k,
            y,
            g,
            &mut dk,
            &mut db,
            &mut dpatches,
        );
        drop(patches);
        let mut dx = Vec::new();
        if want_dx {
            dx = vec![T::zero(); x.len()];
            let per = self.plane.positions() * self.plane.taps() * self.c;
            dx.par_chunks_mut(self.image().max(1))
                .zip(dpatches.par_chunks(per.max(1)))
                .for_each(|(gx, gp)| scatter(&self.plane, self.c, gp, gx));
        }
        (dx, dk, db)
    }
}

/// Every read of one image's patches, position by position, tap by tap: (offset in the image's
/// patches, offset in its input or `None` where the tap reads padding), `c` values each.
fn each_read(p: &Plane, c: usize, mut f: impl FnMut(usize, Option<usize>)) {
    for oy in 0..p.o[0] {
        for ox in 0..p.o[1] {
            for t in 0..p.taps() {
                let (ti, tj) = (t / p.k[1], t % p.k[1]);
                let at = ((oy * p.o[1] + ox) * p.taps() + t) * c;
                let px = match (p.source(0, oy, ti), p.source(1, ox, tj)) {
                    (Some(iy), Some(ix)) => Some((iy * p.i[1] + ix) * c),
                    _ => None,
                };
                f(at, px);
            }
        }
    }
}

/// One image's patches `out [positions, taps * C]` from its input `x [pixels, C]`.
fn gather<T: Real>(p: &Plane, c: usize, x: &[T], out: &mut [T]) {
    each_read(p, c, |at, px| match px {
        Some(px) => out[at..][..c].copy_from_slice(&x[px..][..c]),
        None => out[at..][..c].fill(T::zero()),
    });
}

/// One image's input gradient `gx [pixels, C]` (zeros on entry) from its patches' gradient
/// `gp [positions, taps * C]`: position by position, tap by tap, each added where it was read.
fn scatter<T: Real>(p: &Plane, c: usize, gp: &[T], gx: &mut [T]) {
    each_read(p, c, |at, px| {
        if let Some(px) = px {
            for (a, &v) in gx[px..][..c].iter_mut().zip(&gp[at..][..c]) {
                *a += v;
            }
        }
    });
}

impl CustomOp3 for Conv {
    fn name(&self) -> &'static str {
        "keras-conv"
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
        self.check(l1.shape(), l2.shape(), l3.shape())?;
        let d = self.dims();
        by_float!(s1.dtype(), "conv", T => {
            let v = |s, l| cpu_values::<T>(s, l, "conv");
            let (x, k, b) = (v(s1, l1)?, v(s2, l2)?, v(s3, l3)?);
            let out = match &self.post {
                Some(p) => p.with::<T, _>(d.r, d.o, |pv| self.forward::<T>(x, k, b, Some(pv)))?,
                None => self.forward::<T>(x, k, b, None),
            };
            Ok((T::to_cpu_storage_owned(out), Shape::from((d.r, d.n, d.o))))
        })
    }

    /// The gradients of the input (when it is tracked), the kernel and the bias.
    fn bwd(
        &self,
        x: &Tensor,
        k: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        if self.post.is_some() {
            return Err(msg(
                "conv: an op with a normalisation applied has no gradient",
            ));
        }
        self.check(x.shape(), k.shape(), b.shape())?;
        let grad = grad.contiguous()?;
        let (xs, xl) = x.storage_and_layout();
        let (ks, kl) = k.storage_and_layout();
        let (ys, yl) = res.storage_and_layout();
        let (gs, gl) = grad.storage_and_layout();
        let want_dx = x.track_op();
        by_float!(x.dtype(), "conv", T => {
            let v = |s, l| values::<T>(s, l, "conv");
            let (dx, dk, db) =
                self.backward::<T>(v(&xs, xl)?, v(&ks, kl)?, v(&ys, yl)?, v(&gs, gl)?, want_dx);
            let dev = x.device();
            Ok((
                if want_dx { Some(Tensor::from_vec(dx, x.shape(), dev)?) } else { None },
                Some(Tensor::from_vec(dk, k.shape(), dev)?),
                Some(Tensor::from_vec(db, b.shape(), dev)?),
            ))
        })
    }
}

/// `act(patches · kernel + bias)` of `x [R, N, spatial..., C]` over `window` with
/// `kernel [R, k..., C, O]` and `bias [R, O]`: `[R, N * positions, O]`, the values of `taps_dense`
/// over the window's taps, without keeping the taps.
pub(crate) fn conv(
    x: &Tensor,
    window: &Window,
    kernel: &Tensor,
    bias: &Tensor,
    act: Fused,
) -> crate::error::Result<Tensor> {
    conv_post(x, window, kernel, bias, act, None)
}

/// `conv` with `post` applied to its output as it is written (a forward pass no gradient goes
/// through; see `affine::Post`).
pub(crate) fn conv_post(
    x: &Tensor,
    window: &Window,
    kernel: &Tensor,
    bias: &Tensor,
    act: Fused,
    post: Option<&Post>,
) -> crate::error::Result<Tensor> {
    let (plane, c, o) = window.plane_of(x, kernel, "conv")?;
    let op = Conv {
        plane,
        r: x.dim(0)?,
        n: x.dim(1)?,
        c,
        o,
        act,
        post: post.cloned(),
    };
    let kernel = kernel.contiguous()?.reshape((op.r, plane.taps() * c, o))?;
    Ok(x.contiguous()?
        .apply_op3(&kernel, &bias.contiguous()?, op)?)
}

/// Runs the kernel `[R, taps, cin, cout]` (reshaped to `[R, taps * cin, cout]`) over the taps of
/// the input (each `[R, N, out..., cin]`, concatenated along the channels in tap order) with
/// `bias [R, cout]`: `[R, N * positions, cout]`.
pub(crate) fn taps_dense(
    taps: &[Tensor],
    kernel: &Tensor,
    bias: &Tensor,
    act: ops::Fused,
) -> Result<Tensor> {
    taps_dense_post(taps, kernel, bias, act, None)
}

/// `taps_dense` with `post` applied to its output as it is written (see `affine::Post`).
pub(crate) fn taps_dense_post(
    taps: &[Tensor],
    kernel: &Tensor,
    bias: &Tensor,
    act: ops::Fused,
    post: Option<&Post>,
) -> Result<Tensor> {
    let r = kernel.dim(0)?;
    let cout = kernel.dim(kernel.rank() - 1)?;
    let patches = Tensor::cat(taps, taps[0].rank() - 1)?;
    let k = patches.dim(patches.rank() - 1)?;
    let patches = patches.reshape((r, (), k))?;
    let kernel = kernel.contiguous()?.reshape((r, k, cout))?;
    match post {
        Some(p) => ops::dense_post(&patches, &kernel, &bias.contiguous()?, act, p),
        None => ops::dense(&patches, &kernel, &bias.contiguous()?, act),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::window::Padding;
    use candle_core::{DType, Device, Var};

    fn values(n: usize, seed: f64) -> Vec<f64> {
        (0..n).map(|i| (i as f64 * 0.37 + seed).sin()).collect()
    }

    fn var(shape: &[usize], seed: f64, dtype: DType) -> Var {
        let n = shape.iter().product();
        let t = Tensor::from_vec(values(n, seed), shape, &Device::Cpu).unwrap();
        Var::from_tensor(&t.to_dtype(dtype).unwrap()).unwrap()
    }

    fn as_f64(t: &Tensor) -> Vec<f64> {
        t.flatten_all()
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    /// Windows of both ranks: (rank, kernel, strides, dilation, padding, channels in, filters).
    /// Channels and filters cover both the Dense op's narrow loops and its GEMM path.
    type Case = (usize, [usize; 2], usize, usize, Padding, usize, usize);
    const CASES: &[Case] = &[
        (2, [3, 3], 1, 1, Padding::Same, 4, 6),
        (2, [3, 3], 2, 1, Padding::Same, 3, 5),
        (2, [2, 3], 1, 2, Padding::Valid, 2, 3),
        (2, [3, 2], 2, 1, Padding::Valid, 1, 2),
        (2, [7, 7], 2, 1, Padding::Same, 3, 16),
        (1, [1, 3], 1, 2, Padding::Causal, 5, 4),
        (1, [1, 4], 3, 1, Padding::Same, 2, 7),
        (1, [1, 2], 1, 1, Padding::Valid, 1, 1),
    ];

    fn window(rank: usize, k: [usize; 2], s: usize, d: usize, padding: Padding) -> Window {
        Window {
            kernel_size: if rank == 1 { vec![k[1]] } else { k.to_vec() },
            strides: vec![s; rank],
            padding,
            dilation_rate: vec![d; rank],
        }
    }

    #[test]
    fn direct_conv_gives_the_taps_paths_bits_and_gradients() {
        for dtype in [DType::F32, DType::F64] {
            for (at, &(rank, k, s, d, pad, c, o)) in CASES.iter().enumerate() {
                let w = window(rank, k, s, d, pad);
                let (r, n) = (2, 3);
                let mut xd = vec![r, n];
                xd.extend(vec![9; rank]);
                xd.push(c);
                let mut kd = vec![r];
                kd.extend(&w.kernel_size);
                kd.extend([c, o]);
                let x = var(&xd, 0.1 + at as f64, dtype);
                let kv = var(&kd, 0.7, dtype);
                let b = var(&[r, o], 0.3, dtype);
                let what = format!("{dtype:?} {rank}-D k{k:?} s{s} d{d} {pad:?} {c}->{o}");
                for act in [Fused::Linear, Fused::Relu] {
                    let fast = conv(x.as_tensor(), &w, kv.as_tensor(), b.as_tensor(), act).unwrap();
                    let taps = w.tap_inputs(x.as_tensor()).unwrap();
                    let slow = taps_dense(&taps, kv.as_tensor(), b.as_tensor(), act).unwrap();
                    assert_eq!(fast.dims(), slow.dims(), "{what}");
                    let (p, q) = (as_f64(&fast), as_f64(&slow));
                    assert!(
                        p.iter().zip(&q).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{what}"
                    );
                    let g = var(fast.dims(), 1.3, dtype);
                    let gf = (&fast * g.as_tensor()).unwrap().sum_all().unwrap();
                    let gs = (&slow * g.as_tensor()).unwrap().sum_all().unwrap();
                    let (gf, gs) = (gf.backward().unwrap(), gs.backward().unwrap());
                    for (name, v, tol) in [("x", &x, 1e-5), ("kernel", &kv, 0.0), ("bias", &b, 0.0)]
                    {
                        let p = as_f64(gf.get(v.as_tensor()).unwrap());
                        let q = as_f64(gs.get(v.as_tensor()).unwrap());
                        let worst = p
                            .iter()
                            .zip(&q)
                            .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                            .fold(0.0, f64::max);
                        assert!(
                            worst <= tol,
                            "{what} {act:?}: gradient of {name} off by {worst}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn input_gradient_has_the_same_bits_on_one_and_two_threads() {
        let w = window(2, [3, 3], 1, 1, Padding::Same);
        let grads = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let x = var(&[1, 4, 12, 12, 24], 0.2, DType::F32);
                let kv = var(&[1, 3, 3, 24, 32], 0.5, DType::F32);
                let b = var(&[1, 32], 0.9, DType::F32);
                let y = conv(
                    x.as_tensor(),
                    &w,
                    kv.as_tensor(),
                    b.as_tensor(),
                    Fused::Relu,
                )
                .unwrap();
                let g = var(y.dims(), 1.1, DType::F32);
                let gs = (&y * g.as_tensor())
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                [&x, &kv, &b].map(|v| as_f64(gs.get(v.as_tensor()).unwrap()))
            })
        };
        let (one, two) = (grads(1), grads(2));
        for (a, b) in one.iter().zip(&two) {
            assert!(a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits()));
        }
    }
}
