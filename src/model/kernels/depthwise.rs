//! The depthwise sum as one direct loop (no tensor per tap): output channel `c * M + m` of each
//! position is `x[tap 0][c] * k[0][c][m] + x[tap 1][c] * k[1][c][m] + ...`, summed tap by tap in the
//! kernel's row-major order with a padded tap reading zero, exactly the operations (and so the bits)
//! of `depthwise::depthwise_sum` over the window's taps. Its gradient is direct too (TensorFlow's
//! `DepthwiseConv2dNativeBackpropInput/Filter` sums): the input's gradient scattered tap by tap, the
//! kernel's summed per image and then over the images in order, so the bits do not depend on the
//! number of threads. Images run in parallel on the calling rayon pool; the op keeps only its input
//! and kernel for the backward pass (no tensor per tap).

use super::affine::{Post, PostValues, rows_in_place};
use super::{by_float, cpu_values, msg, values};
use crate::model::window::{Plane, Window};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, WithDType};
use num_traits::Float;
use rayon::prelude::*;

/// A depthwise window over `[R, N, spatial..., C]`: the members, images, channels, depth
/// multiplier and the window's plane (`Window::plane`, 1-D as height 1).
#[derive(Debug, Clone, Copy)]
struct Geometry {
    r: usize,
    n: usize,
    c: usize,
    m: usize,
    plane: Plane,
}

impl Geometry {
    fn taps(&self) -> usize {
        self.plane.taps()
    }
    fn image(&self) -> usize {
        self.plane.pixels() * self.c
    }
    fn positions(&self) -> usize {
        self.plane.positions()
    }
    fn cm(&self) -> usize {
        self.c * self.m
    }
    /// Each output position of one image with each tap: (position, tap, input pixel or None
    /// where the tap reads padding), in the forward's order.
    fn visit(&self, mut f: impl FnMut(usize, usize, Option<usize>)) {
        let p = &self.plane;
        for oy in 0..p.o[0] {
            for ox in 0..p.o[1] {
                let at = oy * p.o[1] + ox;
                for ti in 0..p.k[0] {
                    let iy = p.source(0, oy, ti);
                    for tj in 0..p.k[1] {
                        let px = match (iy, p.source(1, ox, tj)) {
                            (Some(iy), Some(ix)) => Some(iy * p.i[1] + ix),
                            _ => None,
                        };
                        f(at, ti * p.k[1] + tj, px);
                    }
                }
            }
        }
    }
}

/// `depthwise_sum`'s op: `x [R, N, spatial..., C]` and `kernel [R, k..., C, M]` to
/// `[R, N * positions, C * M]`.
struct Depthwise {
    g: Geometry,
    /// Applied to each image's output once written (`affine::Post`): then the op has no gradient.
    post: Option<Post>,
}

/// The forward over every image, images in parallel (each output row is one image's own).
fn run<T: Float + Send + Sync>(
    g: Geometry,
    x: &[T],
    k: &[T],
    out: &mut [T],
    post: Option<PostValues<'_, T>>,
) {
    let per = g.positions() * g.cm();
    out.par_chunks_mut(per.max(1))
        .enumerate()
        .for_each(|(j, o)| {
            let r = j / g.n;
            let kr = &k[r * g.taps() * g.cm()..][..g.taps() * g.cm()];
            image(g, &x[j * g.image()..][..g.image()], kr, o);
            if let Some((a, b, then)) = post {
                let cm = g.cm();
                rows_in_place(o, &a[r * cm..][..cm], &b[r * cm..][..cm], then);
            }
        });
}

/// One image's outputs `o [positions, C * M]` from its input `x [H, W, C]` and kernel `k [taps, C, M]`.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn image<T: Float>(g: Geometry, x: &[T], k: &[T], out: &mut [T]) {
    let (c, cm) = (g.c, g.cm());
    if g.m == 1 {
        // A position whose window lies inside the image reads its taps at fixed offsets from the
        // window's first pixel (no per-tap padding test); the others go tap by tap as `visit`
        // does. The same products and sums in the same order either way.
        let p = g.plane;
        let offsets: Vec<usize> = (0..p.k[0])
            .flat_map(|ti| (0..p.k[1]).map(move |tj| ti * p.d[0] * p.i[1] + tj * p.d[1]))
            .collect();
        let inside = |a: usize, o: usize| {
            let first = o * p.s[a];
            first >= p.p[a] && first + (p.k[a] - 1) * p.d[a] < p.p[a] + p.i[a]
        };
        for oy in 0..p.o[0] {
            let row_inside = inside(0, oy);
            for ox in 0..p.o[1] {
                let at = oy * p.o[1] + ox;
                let o = &mut out[at * c..][..c];
                if row_inside && inside(1, ox) {
                    let first = (oy * p.s[0] - p.p[0]) * p.i[1] + (ox * p.s[1] - p.p[1]);
                    for (t, &off) in offsets.iter().enumerate() {
                        let xs = &x[(first + off) * c..][..c];
                        tap(Some(xs), &k[t * c..][..c], o, 1, t == 0);
                    }
                    continue;
                }
                for ti in 0..p.k[0] {
                    let iy = p.source(0, oy, ti);
                    for tj in 0..p.k[1] {
                        let px = match (iy, p.source(1, ox, tj)) {
                            (Some(iy), Some(ix)) => Some(iy * p.i[1] + ix),
                            _ => None,
                        };
                        let t = ti * p.k[1] + tj;
                        tap(px.map(|q| &x[q * c..][..c]), &k[t * c..][..c], o, 1, t == 0);
                    }
                }
            }
        }
        return;
    }
    g.visit(|at, t, px| {
        let o = &mut out[at * cm..][..cm];
        let kt = &k[t * cm..][..cm];
        tap(px.map(|p| &x[p * c..][..c]), kt, o, g.m, t == 0);
    });
}

/// One tap's products into `o` (`first`: the sum starts with them).
#[inline(always)]
fn tap<T: Float>(x: Option<&[T]>, kt: &[T], o: &mut [T], m: usize, first: bool) {
    match (x, m, first) {
        (Some(x), 1, true) => {
            for ((o, &x), &k) in o.iter_mut().zip(x).zip(kt) {
                *o = x * k;
            }
        }
        (Some(x), 1, false) => {
            for ((o, &x), &k) in o.iter_mut().zip(x).zip(kt) {
                *o = *o + x * k;
            }
        }
        _ => {
            for (q, (o, &k)) in o.iter_mut().zip(kt).enumerate() {
                let v = x.map_or(T::zero(), |x| x[q / m]) * k;
                *o = if first { v } else { *o + v };
            }
        }
    }
}

/// One image's gradients: the input's `gx [H, W, C]` (zeroed by the caller) and the kernel's
/// share `gk [taps, C, M]` (zeroed), from the output's gradient `gy [positions, C * M]`.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn image_grad<T: Float>(g: Geometry, x: &[T], k: &[T], gy: &[T], gx: &mut [T], gk: &mut [T]) {
    let (c, m, cm) = (g.c, g.m, g.cm());
    g.visit(|at, t, px| {
        let Some(p) = px else { return };
        let gyo = &gy[at * cm..][..cm];
        let kt = &k[t * cm..][..cm];
        let xs = &x[p * c..][..c];
        let gxs = &mut gx[p * c..][..c];
        let gkt = &mut gk[t * cm..][..cm];
        if m == 1 {
            for (((gx, gk), (&x, &k)), &gy) in gxs
                .iter_mut()
                .zip(gkt.iter_mut())
                .zip(xs.iter().zip(kt))
                .zip(gyo)
            {
                *gx = *gx + gy * k;
                *gk = *gk + x * gy;
            }
        } else {
            for q in 0..cm {
                gxs[q / m] = gxs[q / m] + gyo[q] * kt[q];
                gkt[q] = gkt[q] + xs[q / m] * gyo[q];
            }
        }
    });
}

/// Both gradients over every image: images in parallel, then each member's kernel gradient summed
/// over its images in order (the same bits on any number of threads).
fn run_grad<T: Float + Send + Sync>(g: Geometry, x: &[T], k: &[T], gy: &[T]) -> (Vec<T>, Vec<T>) {
    let kn = g.taps() * g.cm();
    let mut gx = vec![T::zero(); g.r * g.n * g.image()];
    let mut parts = vec![T::zero(); g.r * g.n * kn];
    gx.par_chunks_mut(g.image().max(1))
        .zip(parts.par_chunks_mut(kn.max(1)))
        .enumerate()
        .for_each(|(j, (gxj, gkj))| {
            let r = j / g.n;
            image_grad(
                g,
                &x[j * g.image()..][..g.image()],
                &k[r * kn..][..kn],
                &gy[j * g.positions() * g.cm()..][..g.positions() * g.cm()],
                gxj,
                gkj,
            );
        });
    let mut gk = vec![T::zero(); g.r * kn];
    for (j, part) in parts.chunks(kn.max(1)).enumerate() {
        let r = j / g.n.max(1);
        for (a, &b) in gk[r * kn..][..kn].iter_mut().zip(part) {
            *a = *a + b;
        }
    }
    (gx, gk)
}

impl Depthwise {
    fn check(&self, l1: &Layout, l2: &Layout) -> Result<()> {
        let g = self.g;
        let want = [g.r * g.n * g.image(), g.r * g.taps() * g.cm()];
        if l1.shape().elem_count() != want[0] || l2.shape().elem_count() != want[1] {
            return Err(msg(
                "depthwise kernel: input or kernel size does not match the window",
            ));
        }
        Ok(())
    }
}

impl CustomOp2 for Depthwise {
    fn name(&self) -> &'static str {
        "keras-depthwise"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.g;
        self.check(l1, l2)?;
        let rows = g.n * g.positions();
        by_float!(s1.dtype(), "depthwise", T => {
            let mut out = vec![T::default(); g.r * rows * g.cm()];
            let v = |s, l| cpu_values::<T>(s, l, "depthwise");
            let (x, k) = (v(s1, l1)?, v(s2, l2)?);
            match &self.post {
                Some(p) => p.with::<T, _>(g.r, g.cm(), |pv| run(g, x, k, &mut out, Some(pv)))?,
                None => run(g, x, k, &mut out, None),
            }
            Ok((T::to_cpu_storage_owned(out), Shape::from((g.r, rows, g.cm()))))
        })
    }

    /// The direct gradients of the input and the kernel.
    fn bwd(
        &self,
        x: &Tensor,
        k: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        if self.post.is_some() {
            return Err(msg(
                "depthwise: an op with a normalisation applied has no gradient",
            ));
        }
        let grad = grad.contiguous()?;
        let (xs, xl) = x.storage_and_layout();
        let (ks, kl) = k.storage_and_layout();
        let (gs, gl) = grad.storage_and_layout();
        self.check(xl, kl)?;
        by_float!(x.dtype(), "depthwise", T => {
            let v = |s, l| values::<T>(s, l, "depthwise");
            let (gx, gk) = run_grad::<T>(self.g, v(&xs, xl)?, v(&ks, kl)?, v(&gs, gl)?);
            Ok((
                Some(Tensor::from_vec(gx, x.shape(), x.device())?),
                Some(Tensor::from_vec(gk, k.shape(), k.device())?),
            ))
        })
    }
}

/// The depthwise sums of `x [R, N, spatial..., C]` over `window` with `kernel [R, k..., C, M]`:
/// `[R, N * positions, C * M]`, the same values as `depthwise_sum` over the window's taps.
#[cfg(test)]
pub(crate) fn depthwise(
    x: &Tensor,
    window: &Window,
    kernel: &Tensor,
) -> crate::error::Result<Tensor> {
    depthwise_padded(x, window, kernel, None)
}

/// `depthwise` of `x` padded first with `pads` zeros (before, after) per spatial axis, without
/// writing the padded input: a padded tap reads zero, so the sums are those over the padded
/// tensor (`0 * k` added where it holds a zero), bit for bit.
#[cfg(test)]
pub(crate) fn depthwise_padded(
    x: &Tensor,
    window: &Window,
    kernel: &Tensor,
    pads: Option<&[(usize, usize)]>,
) -> crate::error::Result<Tensor> {
    depthwise_post(x, window, kernel, pads, None)
}

/// `depthwise_padded` with `post` applied to each image's output as it is written (a forward
/// pass no gradient goes through; see `affine::Post`).
pub(crate) fn depthwise_post(
    x: &Tensor,
    window: &Window,
    kernel: &Tensor,
    pads: Option<&[(usize, usize)]>,
    post: Option<&Post>,
) -> crate::error::Result<Tensor> {
    let (plane, c, m) = window.padded_plane_of(x, kernel, "depthwise", pads)?;
    let g = Geometry {
        r: x.dim(0)?,
        n: x.dim(1)?,
        c,
        m,
        plane,
    };
    if kernel.dim(0)? != g.r {
        return Err(crate::error::Error::invalid(
            "shape",
            "depthwise input and kernel have different member counts",
        ));
    }
    Ok(x.contiguous()?.apply_op2(
        &kernel.contiguous()?,
        Depthwise {
            g,
            post: post.cloned(),
        },
    )?)
}

#[cfg(test)]
mod tests {
    use super::super::test_values::{assert_same_gradient, bits, values};
    use super::*;
    use crate::model::window::Padding;
    use candle_core::{Device, Var};

    /// A window of `rank` axes (kernel `k`, stride `s`, dilation `d`, `pad`), the dims of an input
    /// of `r` members, `n` images of `side` per axis and `c` channels, and of its kernel with
    /// multiplier `m`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn case(
        rank: usize,
        k: usize,
        s: usize,
        d: usize,
        pad: Padding,
        m: usize,
        (r, n, c): (usize, usize, usize),
        side: usize,
    ) -> (Window, Vec<usize>, Vec<usize>) {
        let w = Window {
            kernel_size: vec![k; rank],
            strides: vec![s; rank],
            padding: pad,
            dilation_rate: vec![d; rank],
        };
        let mut xd = vec![r, n];
        xd.extend(vec![side; rank]);
        xd.push(c);
        let mut kd = vec![r];
        kd.extend(vec![k; rank]);
        kd.extend([c, m]);
        (w, xd, kd)
    }

    /// The generic path (each tap a tensor, summed tap by tap), as `depthwise::depthwise_sum` does.
    fn generic(taps: &[Tensor], k: &Tensor) -> crate::error::Result<Tensor> {
        depthwise_sum(taps, k)
    }

    #[test]
    fn direct_kernel_gives_the_generic_paths_bits_and_gradients() {
        let dev = Device::Cpu;
        for (rank, k, s, d, pad, m) in [
            (2, 3, 1, 1, Padding::Same, 1),
            (2, 3, 2, 1, Padding::Same, 1),
            (2, 2, 1, 2, Padding::Valid, 2),
            (2, 3, 2, 2, Padding::Same, 3),
            (1, 3, 1, 2, Padding::Causal, 2),
            (1, 4, 3, 1, Padding::Same, 1),
        ] {
            let (w, xd, kd) = case(rank, k, s, d, pad, m, (2, 3, 5), 7);
            let xn: usize = xd.iter().product();
            let kn: usize = kd.iter().product();
            let x =
                Var::from_tensor(&Tensor::from_vec(values(xn, 0.1), xd, &dev).unwrap()).unwrap();
            let kv =
                Var::from_tensor(&Tensor::from_vec(values(kn, 0.7), kd, &dev).unwrap()).unwrap();
            let fast = depthwise(x.as_tensor(), &w, kv.as_tensor()).unwrap();
            let slow = generic(&w.tap_inputs(x.as_tensor()).unwrap(), kv.as_tensor()).unwrap();
            assert_eq!(
                fast.dims(),
                slow.dims(),
                "{rank}-D k{k} s{s} d{d} {pad:?} m{m}"
            );
            assert_eq!(
                bits(&fast),
                bits(&slow),
                "{rank}-D k{k} s{s} d{d} {pad:?} m{m}"
            );
            let g = Tensor::from_vec(values(fast.elem_count(), 1.3), fast.dims(), &dev).unwrap();
            let gf = (fast * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let gs = (slow * &g).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &kv] {
                assert_same_gradient(&gf, &gs, v, 1e-5);
            }
        }
    }
}

#[cfg(test)]
mod padded_tests {
    use super::super::test_values::{bits, values};
    use super::*;
    use crate::model::window::Padding;
    use candle_core::Device;

    #[test]
    fn padding_read_in_place_gives_the_padded_tensors_bits() {
        let dev = Device::Cpu;
        // MobileNetV2's stride-2 pad ((0, 1), (0, 1)) and others, before valid and same windows.
        for (rank, k, s, pad, pads, m) in [
            (2, 3, 2, Padding::Valid, vec![(0, 1), (0, 1)], 1),
            (2, 3, 1, Padding::Valid, vec![(1, 1), (1, 1)], 1),
            (2, 3, 2, Padding::Same, vec![(2, 0), (1, 3)], 2),
            (2, 4, 1, Padding::Valid, vec![(3, 0), (0, 0)], 1),
            (1, 3, 2, Padding::Valid, vec![(1, 2)], 1),
        ] {
            let (w, xd, kd) = super::tests::case(rank, k, s, 1, pad, m, (1, 2, 37), 6);
            let xn: usize = xd.iter().product();
            let kn: usize = kd.iter().product();
            let x = Tensor::from_vec(values(xn, 0.3), xd, &dev).unwrap();
            let kernel = Tensor::from_vec(values(kn, -0.9), kd, &dev).unwrap();
            let mut all = vec![(0, 0); x.rank()];
            all[2..2 + rank].copy_from_slice(&pads);
            let padded = super::super::pad::pad(&x, all).unwrap();
            let want = depthwise(&padded, &w, &kernel).unwrap();
            let got = depthwise_padded(&x, &w, &kernel, Some(&pads)).unwrap();
            let case = format!("{rank}-D k{k} s{s} {pad:?} {pads:?} m{m}");
            assert_eq!(got.dims(), want.dims(), "{case}");
            assert_eq!(bits(&got), bits(&want), "{case}");
        }
    }
}

/// The depthwise sums over the taps (each `[R, N, out..., C]`) with `kernel [R, k..., C, M]`:
/// `[R, N * positions, C * M]`, summed tap by tap in the kernel's order.
pub(crate) fn depthwise_sum(taps: &[Tensor], kernel: &Tensor) -> crate::error::Result<Tensor> {
    let r = kernel.dim(0)?;
    let rank = kernel.rank();
    let (c, m) = (kernel.dim(rank - 2)?, kernel.dim(rank - 1)?);
    let k = kernel.reshape((r, taps.len(), c, m))?;
    let mut acc: Option<Tensor> = None;
    for (i, t) in taps.iter().enumerate() {
        let t = t.contiguous()?.reshape((r, (), c, 1))?;
        let term = t.broadcast_mul(&k.narrow(1, i, 1)?)?;
        acc = Some(match acc {
            Some(a) => (a + term)?,
            None => term,
        });
    }
    // A kernel read from a file has at least one tap (its sizes are checked); a stored spec that
    // says otherwise is refused, not a panic.
    let acc = acc.ok_or_else(|| {
        crate::error::Error::invalid("kernel_size", "a depthwise kernel with no taps")
    })?;
    Ok(acc.reshape((r, (), c * m))?)
}
