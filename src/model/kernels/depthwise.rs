//! The depthwise sum as one direct loop (no tensor per tap): output channel `c * M + m` of each
//! position is `x[tap 0][c] * k[0][c][m] + x[tap 1][c] * k[1][c][m] + ...`, summed tap by tap in the
//! kernel's row-major order with a padded tap reading zero, exactly the operations (and so the bits)
//! of `depthwise::depthwise_sum` over the window's taps. Its gradient recomputes that generic path,
//! so gradients are the generic path's too.

use crate::model::window::Window;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, Var};
use num_traits::Float;

fn msg(m: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(m.to_string())
}

/// A 1-D or 2-D depthwise window over `[R, N, spatial..., C]` as a 2-D one (1-D: height 1).
#[derive(Debug, Clone, Copy)]
struct Geometry {
    r: usize,
    n: usize,
    c: usize,
    m: usize,
    /// Input height and width.
    i: [usize; 2],
    /// Output height and width.
    o: [usize; 2],
    k: [usize; 2],
    s: [usize; 2],
    d: [usize; 2],
    /// Zeros before, per axis.
    p: [usize; 2],
}

/// `depthwise_sum`'s op: `x [R, N, spatial..., C]` and `kernel [R, k..., C, M]` to
/// `[R, N * positions, C * M]`.
struct Depthwise {
    g: Geometry,
    window: Window,
    /// The generic path, for the gradient.
    generic: fn(&[Tensor], &Tensor) -> crate::error::Result<Tensor>,
}

fn contiguous<'a, T: candle_core::WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => Err(msg("the depthwise kernel needs contiguous tensors")),
    }
}

#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn run<T: Float>(g: Geometry, x: &[T], k: &[T], out: &mut [T]) {
    let (c, cm) = (g.c, g.c * g.m);
    let taps = g.k[0] * g.k[1];
    let mut row = 0;
    for r in 0..g.r {
        let kr = &k[r * taps * cm..][..taps * cm];
        for n in 0..g.n {
            let xn = &x[(r * g.n + n) * g.i[0] * g.i[1] * c..][..g.i[0] * g.i[1] * c];
            for oy in 0..g.o[0] {
                for ox in 0..g.o[1] {
                    let o = &mut out[row * cm..][..cm];
                    row += 1;
                    for ti in 0..g.k[0] {
                        let iy = (oy * g.s[0] + ti * g.d[0]).checked_sub(g.p[0]);
                        let iy = iy.filter(|&v| v < g.i[0]);
                        for tj in 0..g.k[1] {
                            let t = ti * g.k[1] + tj;
                            let kt = &kr[t * cm..][..cm];
                            let ix = (ox * g.s[1] + tj * g.d[1]).checked_sub(g.p[1]);
                            let at = match (iy, ix.filter(|&v| v < g.i[1])) {
                                (Some(iy), Some(ix)) => Some(&xn[(iy * g.i[1] + ix) * c..][..c]),
                                _ => None,
                            };
                            tap(at, kt, o, g.m, t == 0);
                        }
                    }
                }
            }
        }
    }
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
        let rows = g.n * g.o[0] * g.o[1];
        let shape = Shape::from((g.r, rows, g.c * g.m));
        let len = g.r * rows * g.c * g.m;
        let want = [
            g.r * g.n * g.i[0] * g.i[1] * g.c,
            g.r * g.k[0] * g.k[1] * g.c * g.m,
        ];
        if l1.shape().elem_count() != want[0] || l2.shape().elem_count() != want[1] {
            return Err(msg(
                "depthwise kernel: input or kernel size does not match the window",
            ));
        }
        match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let mut out = vec![0f32; len];
                run(g, contiguous(s1, l1)?, contiguous(s2, l2)?, &mut out);
                Ok((CpuStorage::F32(out), shape))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let mut out = vec![0f64; len];
                run(g, contiguous(s1, l1)?, contiguous(s2, l2)?, &mut out);
                Ok((CpuStorage::F64(out), shape))
            }
            _ => Err(msg(
                "the depthwise kernel computes in float32 or float64 only",
            )),
        }
    }

    /// The generic path's gradient: its forward recomputed on the same values, differentiated.
    fn bwd(
        &self,
        x: &Tensor,
        k: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let xv = Var::from_tensor(&x.detach())?;
        let kv = Var::from_tensor(&k.detach())?;
        let taps = self.window.tap_inputs(xv.as_tensor()).map_err(msg)?;
        let y = (self.generic)(&taps, kv.as_tensor()).map_err(msg)?;
        let grads = (y * grad.detach())?.sum_all()?.backward()?;
        Ok((
            grads.get(xv.as_tensor()).cloned(),
            grads.get(kv.as_tensor()).cloned(),
        ))
    }
}

/// The depthwise sums of `x [R, N, spatial..., C]` over `window` with `kernel [R, k..., C, M]`:
/// `[R, N * positions, C * M]`, the same values as `generic` over the window's taps.
pub(crate) fn depthwise(
    x: &Tensor,
    window: &Window,
    kernel: &Tensor,
    generic: fn(&[Tensor], &Tensor) -> crate::error::Result<Tensor>,
) -> crate::error::Result<Tensor> {
    let rank = window.rank();
    let kr = kernel.rank();
    let (c, m) = (kernel.dim(kr - 2)?, kernel.dim(kr - 1)?);
    if x.rank() != rank + 3 || kr != rank + 3 || x.dim(x.rank() - 1)? != c {
        return Err(crate::error::Error::invalid(
            "shape",
            "depthwise input and kernel ranks or channels do not match",
        ));
    }
    let spatial = &x.dims()[2..2 + rank];
    let geo = window.geometry(spatial)?;
    let pick = |v: &[usize], one: usize| -> [usize; 2] {
        if rank == 1 { [one, v[0]] } else { [v[0], v[1]] }
    };
    let g = Geometry {
        r: x.dim(0)?,
        n: x.dim(1)?,
        c,
        m,
        i: pick(spatial, 1),
        o: pick(&geo.iter().map(|a| a.0).collect::<Vec<_>>(), 1),
        k: pick(&window.kernel_size, 1),
        s: pick(&window.strides, 1),
        d: pick(&window.dilation_rate, 1),
        p: pick(&geo.iter().map(|a| a.1).collect::<Vec<_>>(), 0),
    };
    if kernel.dim(0)? != g.r {
        return Err(crate::error::Error::invalid(
            "shape",
            "depthwise input and kernel have different member counts",
        ));
    }
    let op = Depthwise {
        g,
        window: window.clone(),
        generic,
    };
    Ok(x.contiguous()?.apply_op2(&kernel.contiguous()?, op)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::window::Padding;
    use candle_core::Device;

    /// The generic path (each tap a tensor, summed tap by tap), as `depthwise::depthwise_sum` does.
    fn generic(taps: &[Tensor], k: &Tensor) -> crate::error::Result<Tensor> {
        depthwise_sum(taps, k)
    }

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 * 0.37 + seed).sin() * 3.0)
            .collect()
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
            let w = Window {
                kernel_size: vec![k; rank],
                strides: vec![s; rank],
                padding: pad,
                dilation_rate: vec![d; rank],
            };
            let (r, n, c) = (2, 3, 5);
            let mut xd = vec![r, n];
            xd.extend(vec![7; rank]);
            xd.push(c);
            let mut kd = vec![r];
            kd.extend(vec![k; rank]);
            kd.extend([c, m]);
            let xn: usize = xd.iter().product();
            let kn: usize = kd.iter().product();
            let x =
                Var::from_tensor(&Tensor::from_vec(values(xn, 0.1), xd, &dev).unwrap()).unwrap();
            let kv =
                Var::from_tensor(&Tensor::from_vec(values(kn, 0.7), kd, &dev).unwrap()).unwrap();
            let fast = depthwise(x.as_tensor(), &w, kv.as_tensor(), generic).unwrap();
            let slow = generic(&w.tap_inputs(x.as_tensor()).unwrap(), kv.as_tensor()).unwrap();
            let (a, b): (Vec<f32>, Vec<f32>) = (
                fast.flatten_all().unwrap().to_vec1().unwrap(),
                slow.flatten_all().unwrap().to_vec1().unwrap(),
            );
            assert_eq!(
                fast.dims(),
                slow.dims(),
                "{rank}-D k{k} s{s} d{d} {pad:?} m{m}"
            );
            assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
            let g = Tensor::from_vec(values(a.len(), 1.3), fast.dims(), &dev).unwrap();
            let gf = (fast * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let gs = (slow * &g).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &kv] {
                let p: Vec<f32> = gf
                    .get(v.as_tensor())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                let q: Vec<f32> = gs
                    .get(v.as_tensor())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                assert!(
                    p.iter()
                        .zip(&q)
                        .all(|(p, q)| (p - q).abs() <= 1e-5 * (1.0 + q.abs()))
                );
            }
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
