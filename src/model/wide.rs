//! The fused Dense op's kernels for layers wider than the tutorial's: blocked GEMM (the `gemm` crate
//! candle's own matmul uses) on fixed chunks, run on every core, with the same bits on any number
//! of threads.
//!
//! Determinism: every output element is written by exactly one chunk, and the chunks are a fixed
//! function of the shapes (`ROWS` batch rows, `COLS` kernel rows), never of the thread count. Each
//! chunk is one single-threaded `gemm` call, so an element's summation order depends only on the
//! shapes; which thread runs a chunk, or whether the chunks run in parallel at all, changes nothing.
//! Nothing is reduced across chunks (the kernel gradient is split along its input rows, each summing
//! over the whole batch itself; the bias gradient is one sequential sum over the rows).
//!
//! Threads: inside a rayon pool (compare's, or a test's `ThreadPool::install`) the chunks run on
//! that pool; elsewhere on this module's own pool with one thread per core (the global rayon pool is
//! kept at one thread for candle, docs/candle-and-crates.md#threading). Chunks only go parallel when
//! a product has at least `PAR_MIN_MACS` multiply-adds; below that the join costs more than it gains.

use super::ops::{Dims, Fused, activate, activation_grad};
use rayon::prelude::*;
use std::sync::OnceLock;

/// Batch rows per chunk of the forward pass and of the input gradient.
const ROWS: usize = 64;
/// Kernel rows (inputs) per chunk of the kernel gradient.
const COLS: usize = 16;
/// Products smaller than this many multiply-adds run their chunks on the calling thread.
const PAR_MIN_MACS: usize = 1 << 18;

/// A row-major or transposed view of a matrix in a slice: element (r, c) is `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    fn row_major(data: &'a [f32], cols: usize) -> Self {
        Mat {
            data,
            rs: cols,
            cs: 1,
        }
    }
    fn transposed(data: &'a [f32], cols: usize) -> Self {
        Mat {
            data,
            rs: 1,
            cs: cols,
        }
    }
    /// Whether an `m x n` matrix fits in the slice.
    fn holds(&self, m: usize, n: usize) -> bool {
        m == 0 || n == 0 || (m - 1) * self.rs + (n - 1) * self.cs < self.data.len()
    }
}

/// `dst[m, n] = a[m, k] · b[k, n]`, `dst` row-major with `n` columns, on the calling thread.
fn matmul(m: usize, n: usize, k: usize, dst: &mut [f32], a: Mat, b: Mat) {
    assert!(
        dst.len() >= m * n && a.holds(m, k) && b.holds(k, n),
        "wide dense: a product outside its buffers"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        dst[..m * n].fill(0.0);
        return;
    }
    // SAFETY: the assert above keeps every index gemm reads or writes inside the slices; `dst` does
    // not overlap the inputs (it is borrowed mutably).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// This module's pool: one thread per core (`None` when it cannot be built; then chunks run on the
/// calling thread).
fn own_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("keras-transfer-dense-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// The fixed chunks of `buf` (`members` matrices of `rows x width`, row-major): each member's rows in
/// runs of `per` (the last one shorter), as (member, first row, the chunk's values).
fn chunks(
    buf: &mut [f32],
    members: usize,
    rows: usize,
    per: usize,
    width: usize,
) -> Vec<(usize, usize, &mut [f32])> {
    let mut jobs = Vec::new();
    for (r, member) in buf.chunks_mut(rows * width).take(members).enumerate() {
        for (c, chunk) in member.chunks_mut(per * width).enumerate() {
            jobs.push((r, c * per, chunk));
        }
    }
    jobs
}

/// Runs `f` on every job: in parallel when the work is large enough (see the module docs).
fn run<T: Send>(jobs: Vec<T>, macs: usize, f: impl Fn(T) + Sync + Send) {
    if macs < PAR_MIN_MACS || jobs.len() < 2 {
        jobs.into_iter().for_each(f);
    } else if rayon::current_thread_index().is_some() {
        jobs.into_par_iter().for_each(f);
    } else if let Some(pool) = own_pool() {
        pool.install(|| jobs.into_par_iter().for_each(f));
    } else {
        jobs.into_iter().for_each(f);
    }
}

/// `row[k] = act(row[k] + b[k])` for every row of `chunk` (`act` known at compile time, so the loop
/// vectorises).
#[inline(always)]
fn add_bias(chunk: &mut [f32], b: &[f32], act: impl Fn(f32) -> f32) {
    for row in chunk.chunks_exact_mut(b.len()) {
        for (v, &bk) in row.iter_mut().zip(b) {
            *v = act(*v + bk);
        }
    }
}

/// `g[k] * act'(y[k])`, elementwise.
#[inline(always)]
fn times_grad(y: &[f32], g: &[f32], grad: impl Fn(f32) -> f32) -> Vec<f32> {
    y.iter().zip(g).map(|(&yk, &gk)| gk * grad(yk)).collect()
}

/// `out[r, n, :] = act(x[r, n, :] · w[r] + b[r])`.
pub(crate) fn forward(d: Dims, act: Fused, x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]) {
    let (i, o) = (d.i, d.o);
    run(
        chunks(out, d.r, d.n, ROWS, o),
        d.r * d.n * i * o,
        |(r, start, chunk)| {
            let rows = chunk.len() / o;
            let x0 = (r * d.n + start) * i;
            matmul(
                rows,
                o,
                i,
                chunk,
                Mat::row_major(&x[x0..x0 + rows * i], i),
                Mat::row_major(&w[r * i * o..(r + 1) * i * o], o),
            );
            let br = &b[r * o..(r + 1) * o];
            match act {
                Fused::Linear => add_bias(chunk, br, |v| activate(Fused::Linear, v)),
                Fused::Relu => add_bias(chunk, br, |v| activate(Fused::Relu, v)),
                Fused::Tanh => add_bias(chunk, br, |v| activate(Fused::Tanh, v)),
                Fused::Sigmoid => add_bias(chunk, br, |v| activate(Fused::Sigmoid, v)),
            }
        },
    );
}

/// From the output `y` and its gradient `g`: the gradients of `w`, `b` and (when `dx` is not empty)
/// `x`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    d: Dims,
    act: Fused,
    x: &[f32],
    w: &[f32],
    y: &[f32],
    g: &[f32],
    dw: &mut [f32],
    db: &mut [f32],
    dx: &mut [f32],
) {
    let (i, o) = (d.i, d.o);
    // The pre-activation gradient, and the bias gradient summed over the rows in order.
    let dp = match act {
        Fused::Linear => times_grad(y, g, |v| activation_grad(Fused::Linear, v)),
        Fused::Relu => times_grad(y, g, |v| activation_grad(Fused::Relu, v)),
        Fused::Tanh => times_grad(y, g, |v| activation_grad(Fused::Tanh, v)),
        Fused::Sigmoid => times_grad(y, g, |v| activation_grad(Fused::Sigmoid, v)),
    };
    for (dbr, dpr) in db.chunks_mut(o).zip(dp.chunks(d.n * o)) {
        for row in dpr.chunks(o) {
            for (a, &v) in dbr.iter_mut().zip(row) {
                *a += v;
            }
        }
    }
    let macs = d.r * d.n * i * o;
    // dw[r][ii, :] = sum over rows n of x[r, n, ii] * dp[r, n, :], COLS kernel rows per chunk.
    run(chunks(dw, d.r, i, COLS, o), macs, |(r, first, chunk)| {
        let cols = chunk.len() / o;
        let xr = &x[r * d.n * i..(r + 1) * d.n * i];
        matmul(
            cols,
            o,
            d.n,
            chunk,
            Mat::transposed(&xr[first..], i),
            Mat::row_major(&dp[r * d.n * o..(r + 1) * d.n * o], o),
        );
    });
    if dx.is_empty() {
        return;
    }
    // dx[r, n, :] = dp[r, n, :] · w[r]ᵀ, ROWS batch rows per chunk.
    run(chunks(dx, d.r, d.n, ROWS, i), macs, |(r, start, chunk)| {
        let rows = chunk.len() / i;
        let p0 = (r * d.n + start) * o;
        matmul(
            rows,
            i,
            o,
            chunk,
            Mat::row_major(&dp[p0..p0 + rows * o], o),
            Mat::transposed(&w[r * i * o..(r + 1) * i * o], o),
        );
    });
}
