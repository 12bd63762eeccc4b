//! Fused candle custom ops for the MLP's hot path: a Dense layer (matmul + bias + activation, with
//! TensorFlow's gradients) and softmax cross-entropy from logits (Keras's loss, per-batch mean).
//!
//! Both work on one model (`x [N, in]`, `w [in, out]`, `b [out]`) or on an ensemble of R models at
//! once (`x [R, N, in]`, `w [R, in, out]`, `b [R, out]`); member r of an ensemble computes exactly
//! the same float operations, in the same order, as a single model would, so batched and sequential
//! training give the same bits.

use crate::model::Activation;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Device, Layout, Result, Shape, Tensor};

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => Err(candle_core::Error::Msg(format!("{what}: the fused MLP ops need contiguous float32 tensors"))),
    }
}

fn msg(m: String) -> candle_core::Error {
    candle_core::Error::Msg(m)
}

/// Sizes of a (possibly batched) Dense application.
#[derive(Clone, Copy)]
struct Dims {
    r: usize,
    n: usize,
    i: usize,
    o: usize,
}

fn dense_dims(x: &Shape, w: &Shape, b: &Shape) -> Result<Dims> {
    let d = match (x.dims(), w.dims(), b.dims()) {
        (&[n, i], &[wi, o], &[bo]) if wi == i && bo == o => Dims { r: 1, n, i, o },
        (&[r, n, i], &[wr, wi, o], &[br, bo]) if wr == r && br == r && wi == i && bo == o => Dims { r, n, i, o },
        (x, w, b) => return Err(msg(format!("dense: incompatible shapes x {x:?}, w {w:?}, b {b:?}"))),
    };
    Ok(d)
}

/// `act(x · w + b)`, fused.
pub struct Dense(pub Activation);

fn activate(a: Activation, v: f32) -> f32 {
    match a {
        Activation::Relu => {
            if v > 0.0 {
                v
            } else {
                0.0
            }
        }
        Activation::Tanh => v.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
        // Softmax needs the whole row: the caller applies it to the returned logits.
        Activation::Linear | Activation::Softmax => v,
    }
}

/// The derivative of the activation, from its output `y` (TensorFlow's gradients: ReLU passes
/// nothing at exactly 0).
fn activation_grad(a: Activation, y: f32) -> f32 {
    match a {
        Activation::Relu => {
            if y > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::Tanh => 1.0 - y * y,
        Activation::Sigmoid => y * (1.0 - y),
        Activation::Linear | Activation::Softmax => 1.0,
    }
}

impl CustomOp3 for Dense {
    fn name(&self) -> &'static str {
        "keras-dense"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = dense_dims(l1.shape(), l2.shape(), l3.shape())?;
        let (x, w, b) = (slice(s1, l1, "x")?, slice(s2, l2, "w")?, slice(s3, l3, "b")?);
        let mut out = vec![0f32; d.r * d.n * d.o];
        for r in 0..d.r {
            let w = &w[r * d.i * d.o..(r + 1) * d.i * d.o];
            let b = &b[r * d.o..(r + 1) * d.o];
            for n in 0..d.n {
                let xr = &x[(r * d.n + n) * d.i..(r * d.n + n + 1) * d.i];
                let acc = &mut out[(r * d.n + n) * d.o..(r * d.n + n + 1) * d.o];
                for (i, &xi) in xr.iter().enumerate() {
                    for (a, &wio) in acc.iter_mut().zip(&w[i * d.o..(i + 1) * d.o]) {
                        *a += xi * wio;
                    }
                }
                for (a, &bo) in acc.iter_mut().zip(b) {
                    *a = activate(self.0, *a + bo);
                }
            }
        }
        let shape = if l1.shape().rank() == 2 { Shape::from((d.n, d.o)) } else { Shape::from((d.r, d.n, d.o)) };
        Ok((CpuStorage::F32(out), shape))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, b: &Tensor, res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = dense_dims(x.shape(), w.shape(), b.shape())?;
        let xs = x.flatten_all()?.to_vec1::<f32>()?;
        let ws = w.flatten_all()?.to_vec1::<f32>()?;
        let ys = res.flatten_all()?.to_vec1::<f32>()?;
        let gs = grad.flatten_all()?.to_vec1::<f32>()?;
        // The gradient at the pre-activation.
        let dp: Vec<f32> = gs.iter().zip(&ys).map(|(&g, &y)| g * activation_grad(self.0, y)).collect();
        let mut dw = vec![0f32; d.r * d.i * d.o];
        let mut db = vec![0f32; d.r * d.o];
        let want_dx = x.track_op();
        let mut dx = if want_dx { vec![0f32; d.r * d.n * d.i] } else { Vec::new() };
        for r in 0..d.r {
            let dwr = &mut dw[r * d.i * d.o..(r + 1) * d.i * d.o];
            let dbr = &mut db[r * d.o..(r + 1) * d.o];
            let wr = &ws[r * d.i * d.o..(r + 1) * d.i * d.o];
            for n in 0..d.n {
                let row = r * d.n + n;
                let dpn = &dp[row * d.o..(row + 1) * d.o];
                let xn = &xs[row * d.i..(row + 1) * d.i];
                for (i, &xi) in xn.iter().enumerate() {
                    for (a, &g) in dwr[i * d.o..(i + 1) * d.o].iter_mut().zip(dpn) {
                        *a += xi * g;
                    }
                }
                for (a, &g) in dbr.iter_mut().zip(dpn) {
                    *a += g;
                }
                if want_dx {
                    for (i, a) in dx[row * d.i..(row + 1) * d.i].iter_mut().enumerate() {
                        let mut s = 0f32;
                        for (&wio, &g) in wr[i * d.o..(i + 1) * d.o].iter().zip(dpn) {
                            s += wio * g;
                        }
                        *a = s;
                    }
                }
            }
        }
        let dev = Device::Cpu;
        let dx = if want_dx { Some(Tensor::from_vec(dx, x.shape(), &dev)?) } else { None };
        Ok((dx, Some(Tensor::from_vec(dw, w.shape(), &dev)?), Some(Tensor::from_vec(db, b.shape(), &dev)?)))
    }
}

/// `act(x · w + b)` for one model (`x [N, in]`) or an ensemble (`x [R, N, in]`).
pub fn dense(x: &Tensor, w: &Tensor, b: &Tensor, act: Activation) -> Result<Tensor> {
    x.apply_op3(w, b, Dense(act))
}

/// Softmax cross-entropy from logits, averaged over each model's batch: `[N, K]` logits and one-hot
/// targets give `[1]`; `[R, N, K]` give `[R]`, one mean loss per member.
pub struct SoftmaxXent;

fn xent_dims(l: &Shape, t: &Shape) -> Result<(usize, usize, usize)> {
    if l != t {
        return Err(msg(format!("softmax cross-entropy: logits {l:?} and targets {t:?} differ")));
    }
    match l.dims() {
        &[n, k] => Ok((1, n, k)),
        &[r, n, k] => Ok((r, n, k)),
        other => Err(msg(format!("softmax cross-entropy: logits of shape {other:?}"))),
    }
}

/// The row's maximum and the sum of `exp(l - max)`.
fn row_stats(row: &[f32]) -> (f32, f32) {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (m, row.iter().map(|&v| (v - m).exp()).sum())
}

impl CustomOp2 for SoftmaxXent {
    fn name(&self) -> &'static str {
        "keras-softmax-xent"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (r, n, k) = xent_dims(l1.shape(), l2.shape())?;
        let (l, t) = (slice(s1, l1, "logits")?, slice(s2, l2, "targets")?);
        let mut out = vec![0f32; r];
        for (m, o) in out.iter_mut().enumerate() {
            let mut total = 0f32;
            for row in m * n..(m + 1) * n {
                let lr = &l[row * k..(row + 1) * k];
                let (mx, s) = row_stats(lr);
                let log_s = s.ln();
                total += t[row * k..(row + 1) * k].iter().zip(lr).map(|(&tk, &lk)| tk * (log_s - (lk - mx))).sum::<f32>();
            }
            *o = total / n as f32;
        }
        Ok((CpuStorage::F32(out), Shape::from(r)))
    }

    fn bwd(&self, logits: &Tensor, targets: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (r, n, k) = xent_dims(logits.shape(), targets.shape())?;
        let l = logits.flatten_all()?.to_vec1::<f32>()?;
        let t = targets.flatten_all()?.to_vec1::<f32>()?;
        let g = grad.flatten_all()?.to_vec1::<f32>()?;
        let mut dl = vec![0f32; r * n * k];
        for m in 0..r {
            let scale = g[m] * (1.0 / n as f32);
            for row in m * n..(m + 1) * n {
                let lr = &l[row * k..(row + 1) * k];
                let (mx, s) = row_stats(lr);
                for ((d, &lk), &tk) in dl[row * k..(row + 1) * k].iter_mut().zip(lr).zip(&t[row * k..(row + 1) * k]) {
                    *d = ((lk - mx).exp() / s - tk) * scale;
                }
            }
        }
        Ok((Some(Tensor::from_vec(dl, logits.shape(), &Device::Cpu)?), None))
    }
}

/// Mean softmax cross-entropy per model (see `SoftmaxXent`).
pub fn softmax_xent(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    logits.apply_op2(targets, SoftmaxXent)
}
