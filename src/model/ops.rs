//! Fused candle custom ops for the MLP's hot path: a Dense layer (matmul + bias + activation, with
//! TensorFlow's gradients) and softmax cross-entropy from logits (Keras's loss, per-batch mean).
//!
//! Both work on one model (`x [N, in]`, `w [in, out]`, `b [out]`) or on an ensemble of R models at
//! once (`x [R, N, in]`, `w [R, in, out]`, `b [R, out]`); member r of an ensemble computes exactly
//! the same float operations, in the same order, as a single model would, so batched and sequential
//! training give the same bits.
//!
//! Both ops compute in their tensors' float type, float32 or float64 (`Real`): the same code, with
//! the same operations in the same order, for either.

pub use super::fused::Fused;
pub(crate) use super::fused::{Dims, Real, activate, activation_grad};
use super::kernels::affine::{Post, PostValues, rows_in_place};
use super::wide;
use candle_core::{
    CpuStorage, CustomOp2, CustomOp3, Device, Layout, Result, Shape, Tensor, WithDType,
};
use num_traits::Zero;

fn slice<'a, T: Real>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => Err(candle_core::Error::Msg(format!(
            "{what}: the fused MLP ops need contiguous tensors"
        ))),
    }
}

/// Runs `$body` with `$T` the float type of storage `$s` (f32 or f64); other types are an error.
macro_rules! by_dtype {
    ($s:expr, $T:ident => $body:expr) => {
        match $s {
            CpuStorage::F32(_) => {
                type $T = f32;
                $body
            }
            CpuStorage::F64(_) => {
                type $T = f64;
                $body
            }
            _ => Err(msg(
                "the fused MLP ops compute in float32 or float64 only".to_string()
            )),
        }
    };
}

fn msg(m: String) -> candle_core::Error {
    candle_core::Error::Msg(m)
}

/// Layers up to this wide (inputs and outputs) take the width-specialised loops, whose float
/// operations and their order are fixed (the tutorial's and every Keras fixture's layers are this
/// narrow); wider layers take the blocked GEMM path (`wide`).
const NARROW: usize = 8;

impl Dims {
    fn is_wide(&self) -> bool {
        self.i > NARROW || self.o > NARROW
    }
}

fn dense_dims(x: &Shape, w: &Shape, b: &Shape) -> Result<Dims> {
    let d = match (x.dims(), w.dims(), b.dims()) {
        (&[n, i], &[wi, o], &[bo]) if wi == i && bo == o => Dims { r: 1, n, i, o },
        (&[r, n, i], &[wr, wi, o], &[br, bo]) if wr == r && br == r && wi == i && bo == o => {
            Dims { r, n, i, o }
        }
        (x, w, b) => {
            return Err(msg(format!(
                "dense: incompatible shapes x {x:?}, w {w:?}, b {b:?}"
            )));
        }
    };
    Ok(d)
}

/// `act(x · w + b)`, fused.
pub struct Dense(pub Fused);

/// The Dense op followed by a `Post` (a BatchNormalization in inference, and the activation after
/// it), applied as the output is written; for a forward pass no gradient goes through (the op has
/// no backward pass).
struct DensePost(Fused, Post);

impl CustomOp3 for DensePost {
    fn name(&self) -> &'static str {
        "keras-dense-post"
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
        dense_cpu_fwd(self.0, Some(&self.1), (s1, l1), (s2, l2), (s3, l3))
    }
}

/// The Dense op's forward (and `post`'s, when given) on CPU storages.
fn dense_cpu_fwd(
    act: Fused,
    post: Option<&Post>,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    (s3, l3): (&CpuStorage, &Layout),
) -> Result<(CpuStorage, Shape)> {
    let d = dense_dims(l1.shape(), l2.shape(), l3.shape())?;
    let shape = if l1.shape().rank() == 2 {
        Shape::from((d.n, d.o))
    } else {
        Shape::from((d.r, d.n, d.o))
    };
    by_dtype!(s1, T => {
        let (x, w, b) = (
            slice::<T>(s1, l1, "x")?,
            slice::<T>(s2, l2, "w")?,
            slice::<T>(s3, l3, "b")?,
        );
        let mut out = vec![T::zero(); d.r * d.n * d.o];
        match post {
            Some(p) => p.with::<T, _>(d.r, d.o, |pv| {
                dense_forward_post(d, act, x, w, b, &mut out, Some(pv))
            })?,
            None => dense_forward(d, act, x, w, b, &mut out),
        }
        Ok((T::to_cpu_storage_owned(out), shape))
    })
}

/// `dense` followed by `post` (see `DensePost`).
pub(crate) fn dense_post(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    act: Fused,
    post: &Post,
) -> Result<Tensor> {
    x.apply_op3(w, b, DensePost(act, post.clone()))
}

/// Runs `$f::<I, O>` with the output width `O` known at compile time for the small widths this
/// tool meets (so the inner loops unroll), and `O = 0` (width read at run time) otherwise. Every
/// instance does the same float operations in the same order.
macro_rules! by_width {
    ($I:tt, $o:expr, $f:ident($($a:expr),*)) => {
        match $o {
            1 => $f::<_, $I, 1>($($a),*),
            2 => $f::<_, $I, 2>($($a),*),
            3 => $f::<_, $I, 3>($($a),*),
            4 => $f::<_, $I, 4>($($a),*),
            5 => $f::<_, $I, 5>($($a),*),
            6 => $f::<_, $I, 6>($($a),*),
            7 => $f::<_, $I, 7>($($a),*),
            8 => $f::<_, $I, 8>($($a),*),
            _ => $f::<_, $I, 0>($($a),*),
        }
    };
}

/// `by_width!` for both the input width `I` and the output width `O`.
macro_rules! by_shape {
    ($i:expr, $o:expr, $f:ident($($a:expr),*)) => {
        match $i {
            1 => by_width!(1, $o, $f($($a),*)),
            2 => by_width!(2, $o, $f($($a),*)),
            3 => by_width!(3, $o, $f($($a),*)),
            4 => by_width!(4, $o, $f($($a),*)),
            5 => by_width!(5, $o, $f($($a),*)),
            6 => by_width!(6, $o, $f($($a),*)),
            7 => by_width!(7, $o, $f($($a),*)),
            8 => by_width!(8, $o, $f($($a),*)),
            _ => by_width!(0, $o, $f($($a),*)),
        }
    };
}

/// Forward kernel: `out[r, n, :] = act(x[r, n, :] · w[r] + b[r])`, summing over inputs in order.
fn dense_fwd<T: Real, const I: usize, const O: usize>(
    d: Dims,
    act: Fused,
    x: &[T],
    w: &[T],
    b: &[T],
    out: &mut [T],
) {
    let o = if O == 0 { d.o } else { O };
    let i = if I == 0 { d.i } else { I };
    for r in 0..d.r {
        let w = &w[r * i * o..][..i * o];
        let b = &b[r * o..][..o];
        for n in 0..d.n {
            let row = r * d.n + n;
            let xr = &x[row * i..][..i];
            let acc = &mut out[row * o..][..o];
            for (ii, &xi) in xr.iter().enumerate() {
                let wr = &w[ii * o..][..o];
                for k in 0..o {
                    acc[k] += xi * wr[k];
                }
            }
            for k in 0..o {
                acc[k] = activate(act, acc[k] + b[k]);
            }
        }
    }
}

/// Backward kernel: from the output `y` and its gradient `g`, the gradients of `w`, `b` and (when
/// `dx` is not empty) `x`, each summed over the batch rows in order.
#[allow(clippy::too_many_arguments)]
fn dense_bwd<T: Real, const I: usize, const O: usize>(
    d: Dims,
    act: Fused,
    x: &[T],
    w: &[T],
    y: &[T],
    g: &[T],
    dw: &mut [T],
    db: &mut [T],
    dx: &mut [T],
) {
    let o = if O == 0 { d.o } else { O };
    let i = if I == 0 { d.i } else { I };
    let mut dp_buf = [T::zero(); 8];
    let mut dp_vec = Vec::new();
    for r in 0..d.r {
        let dwr = &mut dw[r * i * o..][..i * o];
        let dbr = &mut db[r * o..][..o];
        let wr = &w[r * i * o..][..i * o];
        for n in 0..d.n {
            let row = r * d.n + n;
            let (yn, gn) = (&y[row * o..][..o], &g[row * o..][..o]);
            let dp: &mut [T] = if o <= 8 {
                &mut dp_buf[..o]
            } else {
                dp_vec.resize(o, T::zero());
                &mut dp_vec[..]
            };
            for k in 0..o {
                dp[k] = gn[k] * activation_grad(act, yn[k]);
            }
            let xn = &x[row * i..][..i];
            for (ii, &xi) in xn.iter().enumerate() {
                let a = &mut dwr[ii * o..][..o];
                for k in 0..o {
                    a[k] += xi * dp[k];
                }
            }
            for k in 0..o {
                dbr[k] += dp[k];
            }
            if !dx.is_empty() {
                for (ii, a) in dx[row * i..][..i].iter_mut().enumerate() {
                    let wi = &wr[ii * o..][..o];
                    let mut s = T::zero();
                    for k in 0..o {
                        s += wi[k] * dp[k];
                    }
                    *a = s;
                }
            }
        }
    }
}

/// The Dense op's forward on slices: `out [R, N, O] = act(x [R, N, I] · w [R, I, O] + b [R, O])`
/// with `out` all zeros on entry; the width-specialised loops or the blocked GEMM (`wide`) as the
/// op picks them, so the bits are the op's.
pub(crate) fn dense_forward<T: Real>(
    d: Dims,
    act: Fused,
    x: &[T],
    w: &[T],
    b: &[T],
    out: &mut [T],
) {
    dense_forward_post(d, act, x, w, b, out, None);
}

/// `dense_forward`, then a `Post` (`[R * O]` scale and shift) on each part of `out` once written.
pub(crate) fn dense_forward_post<T: Real>(
    d: Dims,
    act: Fused,
    x: &[T],
    w: &[T],
    b: &[T],
    out: &mut [T],
    post: Option<PostValues<'_, T>>,
) {
    if d.is_wide() {
        wide::forward(d, act, x, w, b, out, post);
    } else {
        by_shape!(d.i, d.o, dense_fwd(d, act, x, w, b, out));
        if let Some((a, sh, then)) = post {
            for (r, member) in out.chunks_mut((d.n * d.o).max(1)).take(d.r).enumerate() {
                rows_in_place(member, &a[r * d.o..][..d.o], &sh[r * d.o..][..d.o], then);
            }
        }
    }
}

/// The Dense op's backward on slices: from the output `y` and its gradient `g`, the gradients of
/// `w` and `b` (zeros on entry) and, when `dx` is not empty, of `x`; the op's own kernels and bits.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dense_backward<T: Real>(
    d: Dims,
    act: Fused,
    x: &[T],
    w: &[T],
    y: &[T],
    g: &[T],
    dw: &mut [T],
    db: &mut [T],
    dx: &mut [T],
) {
    if d.is_wide() {
        wide::backward(d, act, x, w, y, g, dw, db, dx)
    } else {
        by_shape!(d.i, d.o, dense_bwd(d, act, x, w, y, g, dw, db, dx))
    }
}

/// Runs `f` on a tensor's values (of type `T`) without copying them.
fn with_values<T: Real, R>(t: &Tensor, f: impl FnOnce(&[T]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(cpu) => Ok(f(slice(cpu, layout, "tensor")?)),
        _ => Err(msg("the fused MLP ops run on the CPU".into())),
    }
}

impl CustomOp3 for Dense {
    fn name(&self) -> &'static str {
        "keras-dense"
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
        dense_cpu_fwd(self.0, None, (s1, l1), (s2, l2), (s3, l3))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        match x.dtype() {
            candle_core::DType::F64 => self.backward::<f64>(x, w, b, res, grad),
            _ => self.backward::<f32>(x, w, b, res, grad),
        }
    }
}

impl Dense {
    /// The gradients of `x`, `w` and `b` in the tensors' float type `T`.
    fn backward<T: Real>(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = dense_dims(x.shape(), w.shape(), b.shape())?;
        let mut dw = vec![T::zero(); d.r * d.i * d.o];
        let mut db = vec![T::zero(); d.r * d.o];
        let want_dx = x.track_op();
        let mut dx = if want_dx {
            vec![T::zero(); d.r * d.n * d.i]
        } else {
            Vec::new()
        };
        let grad = grad.contiguous()?;
        with_values::<T, _>(x, |xs| {
            with_values(w, |ws| {
                with_values(res, |ys| {
                    with_values(&grad, |gs| {
                        dense_backward(d, self.0, xs, ws, ys, gs, &mut dw, &mut db, &mut dx)
                    })
                })
            })
        })????;
        let dev = Device::Cpu;
        let dx = if want_dx {
            Some(Tensor::from_vec(dx, x.shape(), &dev)?)
        } else {
            None
        };
        Ok((
            dx,
            Some(Tensor::from_vec(dw, w.shape(), &dev)?),
            Some(Tensor::from_vec(db, b.shape(), &dev)?),
        ))
    }
}

/// `act(x · w + b)` for one model (`x [N, in]`) or an ensemble (`x [R, N, in]`).
pub fn dense(x: &Tensor, w: &Tensor, b: &Tensor, act: Fused) -> Result<Tensor> {
    x.apply_op3(w, b, Dense(act))
}

/// Softmax cross-entropy from logits, averaged over each model's batch: `[N, K]` logits and one-hot
/// targets give `[1]`; `[R, N, K]` give `[R]`, one mean loss per member.
///
/// The forward pass keeps the softmax it computed, so the backward pass needs no second `exp`.
#[derive(Default)]
pub struct SoftmaxXent {
    /// The softmax of the forward pass, as f64 (exact for float32 values too).
    /// The forward pass's softmax, in the logits' float type (`None` once taken).
    probs: std::sync::Mutex<Option<CpuStorage>>,
}

fn xent_dims(l: &Shape, t: &Shape) -> Result<(usize, usize, usize)> {
    if l != t {
        return Err(msg(format!(
            "softmax cross-entropy: logits {l:?} and targets {t:?} differ"
        )));
    }
    match l.dims() {
        &[n, k] => Ok((1, n, k)),
        &[r, n, k] => Ok((r, n, k)),
        other => Err(msg(format!(
            "softmax cross-entropy: logits of shape {other:?}"
        ))),
    }
}

/// The row's maximum and the sum of `exp(l - max)`.
fn row_stats<T: Real>(row: &[T]) -> (T, T) {
    let m = row
        .iter()
        .copied()
        .fold(T::neg_infinity(), <T as num_traits::Float>::max);
    (m, row.iter().map(|&v| (v - m).exp()).sum())
}

impl CustomOp2 for SoftmaxXent {
    fn name(&self) -> &'static str {
        "keras-softmax-xent"
    }

    fn cpu_fwd(
        &self,
        logits: &CpuStorage,
        logits_layout: &Layout,
        targets: &CpuStorage,
        targets_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (r, n, k) = xent_dims(logits_layout.shape(), targets_layout.shape())?;
        by_dtype!(logits, T => {
            let l = slice::<T>(logits, logits_layout, "logits")?;
            let t = slice::<T>(targets, targets_layout, "targets")?;
            let (out, probs) = xent_forward(r, n, k, l, t);
            if let Ok(mut cache) = self.probs.lock() {
                *cache = Some(T::to_cpu_storage_owned(probs));
            }
            Ok((T::to_cpu_storage_owned(out), Shape::from(r)))
        })
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        match logits.dtype() {
            candle_core::DType::F64 => self.backward::<f64>(logits, targets, grad),
            _ => self.backward::<f32>(logits, targets, grad),
        }
    }
}

/// The per-member mean losses and the softmax of every row, in `T`.
fn xent_forward<T: Real>(r: usize, n: usize, k: usize, l: &[T], t: &[T]) -> (Vec<T>, Vec<T>) {
    let mut out = vec![T::zero(); r];
    let mut probs = vec![T::zero(); r * n * k];
    for (m, o) in out.iter_mut().enumerate() {
        let mut total = T::zero();
        for row in m * n..(m + 1) * n {
            let lr = &l[row * k..(row + 1) * k];
            let p = &mut probs[row * k..(row + 1) * k];
            let mx = lr
                .iter()
                .copied()
                .fold(T::neg_infinity(), <T as num_traits::Float>::max);
            for (pk, &lk) in p.iter_mut().zip(lr) {
                *pk = (lk - mx).exp();
            }
            let s: T = p.iter().copied().sum();
            let log_s = s.ln();
            total += t[row * k..(row + 1) * k]
                .iter()
                .zip(lr)
                .map(|(&tk, &lk)| tk * (log_s - (lk - mx)))
                .sum::<T>();
            for pk in p.iter_mut() {
                *pk /= s;
            }
        }
        *o = total / <T as WithDType>::from_f64(n as f64);
    }
    (out, probs)
}

impl SoftmaxXent {
    /// The gradient of the logits in the tensors' float type `T`.
    fn backward<T: Real>(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (r, n, k) = xent_dims(logits.shape(), targets.shape())?;
        let g = grad.flatten_all()?.to_vec1::<T>()?;
        let mut dl = vec![T::zero(); r * n * k];
        let cached = self
            .probs
            .lock()
            .ok()
            .and_then(|mut p| p.take())
            .and_then(|c| T::cpu_storage_data(c).ok())
            .unwrap_or_default();
        let probs: Vec<T> = if cached.len() == dl.len() {
            cached
        } else {
            // A second backward pass over the same graph: recompute what the forward pass kept.
            with_values(logits, |l| softmax_rows(l, k))?
        };
        if g.len() != r {
            return Err(msg(format!(
                "softmax cross-entropy: {} gradients for {r} models",
                g.len()
            )));
        }
        with_values(targets, |t| xent_grad_from(n, k, &probs, t, &g, &mut dl))?;
        Ok((
            Some(Tensor::from_vec(dl, logits.shape(), &Device::Cpu)?),
            None,
        ))
    }
}

/// The softmax of each `k`-wide row, computed as the forward pass computes it.
fn softmax_rows<T: Real>(l: &[T], k: usize) -> Vec<T> {
    let mut p = vec![T::zero(); l.len()];
    for (pr, lr) in p.chunks_mut(k).zip(l.chunks(k)) {
        let (mx, s) = row_stats(lr);
        for (pk, &lk) in pr.iter_mut().zip(lr) {
            *pk = (lk - mx).exp() / s;
        }
    }
    p
}

/// `(p - t) * g / n` per row from the forward pass's softmax `p`.
fn xent_grad_from<T: Real>(n: usize, k: usize, p: &[T], t: &[T], g: &[T], dl: &mut [T]) {
    for (m, &gm) in g.iter().enumerate() {
        let scale = gm * (T::one() / <T as WithDType>::from_f64(n as f64));
        let range = m * n * k..(m + 1) * n * k;
        for ((d, &pk), &tk) in dl[range.clone()]
            .iter_mut()
            .zip(&p[range.clone()])
            .zip(&t[range])
        {
            *d = (pk - tk) * scale;
        }
    }
}

/// Mean softmax cross-entropy per model (see `SoftmaxXent`).
pub fn softmax_xent(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    logits.apply_op2(targets, SoftmaxXent::default())
}

#[cfg(test)]
mod tests {
    //! Each fused op against the plain candle composition it replaces: forward values and the
    //! gradients of every input, for one model (rank 2) and for stacked members (rank 3).
    use super::*;
    use crate::rng::NumpyRandomState;
    use candle_core::{D, Var};

    fn random(rng: &mut NumpyRandomState, shape: &[usize]) -> Var {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.uniform(-1.5, 1.5) as f32).collect();
        Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap()).unwrap()
    }

    /// The largest absolute difference, in f64 (exact for float32 and float64 tensors).
    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_dtype(candle_core::DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    /// The gradients of `sum(out * g)`: every output element weighted differently.
    fn weighted_grads(out: &Tensor, g: &Var) -> candle_core::backprop::GradStore {
        (out * g.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
    }

    /// `act(x · w + b)` with candle's own ops.
    fn reference_dense(x: &Tensor, w: &Tensor, b: &Tensor, act: Fused) -> Tensor {
        let b = if x.rank() == 3 {
            b.unsqueeze(1).unwrap()
        } else {
            b.clone()
        };
        let h = x.matmul(w).unwrap().broadcast_add(&b).unwrap();
        match act {
            Fused::Linear => h,
            Fused::Relu => h.relu().unwrap(),
            Fused::Tanh => h.tanh().unwrap(),
            Fused::Sigmoid => candle_nn::ops::sigmoid(&h).unwrap(),
        }
    }

    #[test]
    fn fused_dense_matches_the_candle_composition_forward_and_backward() {
        let mut rng = NumpyRandomState::new(11);
        for act in [Fused::Linear, Fused::Relu, Fused::Tanh, Fused::Sigmoid] {
            // Narrow (the width-specialised loops) and wide (the GEMM chunks; several chunks of rows
            // and of kernel rows, a partial last one).
            for (r, n, i, o) in [
                (0, 7, 3, 5),
                (3, 4, 9, 2),
                (2, 33, 12, 10),
                (0, 150, 37, 20),
                (2, 70, 20, 64),
            ] {
                let (xs, ws, bs): (Vec<usize>, Vec<usize>, Vec<usize>) = if r == 0 {
                    (vec![n, i], vec![i, o], vec![o])
                } else {
                    (vec![r, n, i], vec![r, i, o], vec![r, o])
                };
                let (x, w, b) = (
                    random(&mut rng, &xs),
                    random(&mut rng, &ws),
                    random(&mut rng, &bs),
                );
                // A fixed upstream gradient, so every output element matters differently.
                let g = random(&mut rng, &[xs[..xs.len() - 1].to_vec(), vec![o]].concat());
                let fused = dense(x.as_tensor(), w.as_tensor(), b.as_tensor(), act).unwrap();
                let plain = reference_dense(x.as_tensor(), w.as_tensor(), b.as_tensor(), act);
                assert!(max_diff(&fused, &plain) < 1e-5, "{act:?} forward");
                let (gf, gp) = (weighted_grads(&fused, &g), weighted_grads(&plain, &g));
                for (name, v) in [("x", &x), ("w", &w), ("b", &b)] {
                    let d = max_diff(gf.get(v).unwrap(), gp.get(v).unwrap());
                    assert!(d < 1e-4, "{act:?} r={r}: gradient of {name} differs by {d}");
                }
            }
        }
    }

    #[test]
    fn fused_softmax_cross_entropy_matches_the_candle_composition() {
        let mut rng = NumpyRandomState::new(12);
        for shape in [vec![9, 4], vec![3, 6, 5]] {
            let logits = random(&mut rng, &shape);
            let k = *shape.last().unwrap();
            let rows: usize = shape[..shape.len() - 1].iter().product();
            let mut t = vec![0f32; rows * k];
            for row in 0..rows {
                t[row * k + (row * 7 + 3) % k] = 1.0;
            }
            let t = Tensor::from_vec(t, shape.as_slice(), &Device::Cpu).unwrap();
            let fused = softmax_xent(logits.as_tensor(), &t).unwrap();
            let log_p = candle_nn::ops::log_softmax(logits.as_tensor(), D::Minus1).unwrap();
            let per_row = (&t * log_p).unwrap().sum(D::Minus1).unwrap().neg().unwrap();
            let plain = per_row.mean(D::Minus1).unwrap().flatten_all().unwrap();
            assert!(max_diff(&fused, &plain) < 1e-6, "forward {shape:?}");
            // Different weights per member, so a mix-up between members would show.
            let wts: Vec<f32> = (0..fused.dim(0).unwrap()).map(|m| 1.0 + m as f32).collect();
            let wts = Tensor::from_vec(wts, fused.dim(0).unwrap(), &Device::Cpu).unwrap();
            let gf = (&fused * &wts)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let gp = (&plain * &wts)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let d = max_diff(gf.get(&logits).unwrap(), gp.get(&logits).unwrap());
            assert!(d < 1e-6, "gradient {shape:?} differs by {d}");
        }
    }

    /// The cross-over between the width-specialised loops and the GEMM path, forward plus backward
    /// of one square layer: `cargo test --release crossover -- --ignored --nocapture`.
    #[test]
    #[ignore = "a timing, not a check"]
    fn crossover() {
        let time = |f: &mut dyn FnMut()| {
            let t = std::time::Instant::now();
            let mut reps = 0;
            while t.elapsed().as_secs_f64() < 0.2 {
                f();
                reps += 1;
            }
            t.elapsed().as_secs_f64() / reps as f64 * 1e6
        };
        println!("| batch | width | loops (us) | gemm (us) |");
        for n in [32, 256] {
            for w in [4, 8, 12, 16, 32, 64] {
                let d = Dims {
                    r: 1,
                    n,
                    i: w,
                    o: w,
                };
                let x = vec![0.5f32; n * w];
                let wt = vec![0.25f32; w * w];
                let (mut out, mut dw, mut db, mut dx) = (
                    vec![0f32; n * w],
                    vec![0f32; w * w],
                    vec![0f32; w],
                    vec![0f32; n * w],
                );
                let mut loops = || {
                    out.fill(0.0);
                    by_shape!(w, w, dense_fwd(d, Fused::Relu, &x, &wt, &wt[..w], &mut out));
                    by_shape!(
                        w,
                        w,
                        dense_bwd(d, Fused::Relu, &x, &wt, &out, &x, &mut dw, &mut db, &mut dx)
                    );
                };
                let a = time(&mut loops);
                let mut gemm = || {
                    wide::forward(d, Fused::Relu, &x, &wt, &wt[..w], &mut out, None);
                    wide::backward(d, Fused::Relu, &x, &wt, &out, &x, &mut dw, &mut db, &mut dx);
                };
                let b = time(&mut gemm);
                println!("| {n} | {w} | {a:.2} | {b:.2} |");
            }
        }
    }

    /// The same ops in float64 (a float64 model's): forward and gradients against candle's own
    /// float64 composition, to float64 precision; narrow and wide layers.
    #[test]
    fn fused_ops_compute_in_float64_too() {
        let mut rng = NumpyRandomState::new(14);
        let f64var = |rng: &mut NumpyRandomState, shape: &[usize]| {
            let n: usize = shape.iter().product();
            let v: Vec<f64> = (0..n).map(|_| rng.uniform(-1.5, 1.5)).collect();
            Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap()).unwrap()
        };
        let diff = max_diff;
        for act in [Fused::Linear, Fused::Relu, Fused::Tanh, Fused::Sigmoid] {
            for (r, n, i, o) in [(2, 7, 3, 5), (2, 40, 20, 12)] {
                let (x, w, b) = (
                    f64var(&mut rng, &[r, n, i]),
                    f64var(&mut rng, &[r, i, o]),
                    f64var(&mut rng, &[r, o]),
                );
                let g = f64var(&mut rng, &[r, n, o]);
                let fused = dense(x.as_tensor(), w.as_tensor(), b.as_tensor(), act).unwrap();
                assert_eq!(fused.dtype(), candle_core::DType::F64);
                let plain = reference_dense(x.as_tensor(), w.as_tensor(), b.as_tensor(), act);
                assert!(diff(&fused, &plain) < 1e-13, "{act:?} forward");
                let (gf, gp) = (weighted_grads(&fused, &g), weighted_grads(&plain, &g));
                for v in [&x, &w, &b] {
                    let d = diff(gf.get(v).unwrap(), gp.get(v).unwrap());
                    assert!(d < 1e-12, "{act:?}: gradient differs by {d}");
                }
            }
        }
        let logits = f64var(&mut rng, &[3, 6, 4]);
        let mut t = vec![0f64; 72];
        for row in 0..18 {
            t[row * 4 + (row * 5 + 1) % 4] = 1.0;
        }
        let t = Tensor::from_vec(t, (3, 6, 4), &Device::Cpu).unwrap();
        let fused = softmax_xent(logits.as_tensor(), &t).unwrap();
        let log_p = candle_nn::ops::log_softmax(logits.as_tensor(), D::Minus1).unwrap();
        let plain = (&t * log_p)
            .unwrap()
            .sum(D::Minus1)
            .unwrap()
            .neg()
            .unwrap()
            .mean(D::Minus1)
            .unwrap();
        assert!(
            diff(&fused, &plain) < 1e-14,
            "softmax cross-entropy forward"
        );
        let gf = fused.sum_all().unwrap().backward().unwrap();
        let gp = plain.sum_all().unwrap().backward().unwrap();
        assert!(diff(gf.get(&logits).unwrap(), gp.get(&logits).unwrap()) < 1e-14);
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let mut rng = NumpyRandomState::new(13);
        let (x, w, b) = (
            random(&mut rng, &[4, 3]),
            random(&mut rng, &[2, 5]),
            random(&mut rng, &[5]),
        );
        assert!(dense(x.as_tensor(), w.as_tensor(), b.as_tensor(), Fused::Relu).is_err());
        let l = random(&mut rng, &[4, 3]);
        let t = random(&mut rng, &[4, 2]);
        assert!(softmax_xent(l.as_tensor(), t.as_tensor()).is_err());
    }
}
