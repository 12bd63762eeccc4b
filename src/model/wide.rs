//! The fused Dense op's kernels for layers wider than the tutorial's: blocked GEMM (the `gemm` crate
//! candle's own matmul uses) on fixed chunks, run on every core, with the same bits on any number
//! of threads.
//!
//! Determinism: every output element is written by exactly one chunk, and the chunks are a fixed
//! function of the shapes (`span`: about `CHUNK_MACS` multiply-adds each), never of the thread count. Each
//! chunk is one single-threaded `gemm` call, so an element's summation order depends only on the
//! shapes; which thread runs a chunk, or whether the chunks run in parallel at all, changes nothing.
//! Nothing is reduced across chunks (the kernel gradient is split along its input rows, each summing
//! over the whole batch itself; the bias gradient is one sequential sum over the rows).
//!
//! Threads: inside a rayon pool (compare's, or a test's `ThreadPool::install`) the chunks run on
//! that pool; elsewhere on this module's own pool with one thread per core (the global rayon pool is
//! kept at one thread for candle, docs/candle-and-crates.md#threading). Chunks only go parallel when
//! a region (a forward product, or a layer's two backward products) has at least `PAR_MIN_MACS`
//! multiply-adds: on this project's 2-core machines a smaller region loses more to handing work to
//! the other core than it gains (`wide_timing` below measures it).

use super::fused::{Dims, Fused, Real, activate, activation_grad};
use super::kernels::affine::{PostValues, rows_in_place};
use rayon::prelude::*;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// About this many multiply-adds per chunk: a product is cut into `ceil(macs / CHUNK_MACS)` chunks,
/// so small ones stay one `gemm` call (every chunk repacks the operand it shares with the others).
const CHUNK_MACS: usize = 1 << 20;
/// Regions with fewer multiply-adds run their chunks on the calling thread. Measured with
/// `cargo test --release --lib wide_timing -- --ignored --nocapture` (serial against parallel per
/// shape): at batch 256, 64-wide layers (1-2M multiply-adds a region) ran slower split across the
/// two cores than on one; 128-wide and wider ran faster split.
const PAR_MIN_MACS: usize = 1 << 22;
/// Chunks hold a multiple of this many rows (the GEMM micro-kernel's height).
const GRANULE: usize = 16;

/// Rows per chunk when `len` rows of a product of `macs` multiply-adds are cut into chunks of about
/// `per` multiply-adds: a function of the shapes only.
fn span(len: usize, macs: usize, per: usize) -> usize {
    let parts = macs.div_ceil(per).max(1);
    len.div_ceil(parts).next_multiple_of(GRANULE).max(1)
}

/// A row-major or transposed view of a matrix in a slice: element (r, c) is `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
struct Mat<'a, T> {
    data: &'a [T],
    rs: usize,
    cs: usize,
}

impl<'a, T> Mat<'a, T> {
    fn row_major(data: &'a [T], cols: usize) -> Self {
        Mat {
            data,
            rs: cols,
            cs: 1,
        }
    }
    fn transposed(data: &'a [T], cols: usize) -> Self {
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
fn matmul<T: Real>(m: usize, n: usize, k: usize, dst: &mut [T], a: Mat<T>, b: Mat<T>) {
    assert!(
        dst.len() >= m * n && a.holds(m, k) && b.holds(k, n),
        "wide dense: a product outside its buffers"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        dst[..m * n].fill(T::zero());
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
            T::zero(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// This module's pool: one thread per core (`None` when it cannot be built; then chunks run on the
/// calling thread).
pub(crate) fn own_pool() -> Option<&'static rayon::ThreadPool> {
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
fn chunks<T>(
    buf: &mut [T],
    members: usize,
    rows: usize,
    per: usize,
    width: usize,
) -> Vec<(usize, usize, &mut [T])> {
    let mut jobs = Vec::new();
    for (r, member) in buf.chunks_mut(rows * width).take(members).enumerate() {
        for (c, chunk) in member.chunks_mut(per * width).enumerate() {
            jobs.push((r, c * per, chunk));
        }
    }
    jobs
}

/// How many regions have been split across two or more workers since the process started.
static PARALLEL_REGIONS: AtomicU64 = AtomicU64::new(0);

/// How many regions (a forward product, or a layer's two backward products) the wide kernels have
/// split across two or more workers in this process: tests read it to prove the parallel path ran.
pub fn parallel_regions() -> u64 {
    PARALLEL_REGIONS.load(Ordering::Relaxed)
}

fn count_split(workers: usize) {
    if workers > 1 {
        PARALLEL_REGIONS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs `f` on every job: in parallel when the work is large enough (see the module docs).
fn run<T: Send>(jobs: Vec<T>, macs: usize, f: impl Fn(T) + Sync + Send) {
    if macs < PAR_MIN_MACS || jobs.len() < 2 {
        jobs.into_iter().for_each(f);
    } else if rayon::current_thread_index().is_some() {
        count_split(rayon::current_num_threads());
        jobs.into_par_iter().for_each(f);
    } else if let Some(pool) = own_pool() {
        count_split(pool.current_num_threads());
        pool.install(|| jobs.into_par_iter().for_each(f));
    } else {
        jobs.into_iter().for_each(f);
    }
}

/// `row[k] = act(row[k] + b[k])` for every row of `chunk` (`act` known at compile time, so the loop
/// vectorises).
#[inline(always)]
fn add_bias<T: Real>(chunk: &mut [T], b: &[T], act: impl Fn(T) -> T) {
    for row in chunk.chunks_exact_mut(b.len()) {
        for (v, &bk) in row.iter_mut().zip(b) {
            *v = act(*v + bk);
        }
    }
}

// The elementwise loops below are compiled for AVX-512 and AVX2 as well as the baseline and
// picked at run time (`multiversion`). Each element's operations are the same scalar ones in every
// version (Rust never fuses a multiply and an add on its own), so the bits do not depend on which
// version runs; only the number of lanes does.

/// `act(chunk + b)` row by row, in place.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn bias_and_activation<T: Real>(chunk: &mut [T], b: &[T], act: Fused) {
    match act {
        Fused::Linear => add_bias(chunk, b, |v| activate(Fused::Linear, v)),
        Fused::Relu => add_bias(chunk, b, |v| activate(Fused::Relu, v)),
        Fused::Tanh => add_bias(chunk, b, |v| activate(Fused::Tanh, v)),
        Fused::Sigmoid => add_bias(chunk, b, |v| activate(Fused::Sigmoid, v)),
    }
}

/// `dp[k] = g[k] * act'(y[k])`, elementwise.
#[inline(always)]
fn times_grad<T: Real>(y: &[T], g: &[T], dp: &mut [T], grad: impl Fn(T) -> T) {
    for ((d, &yk), &gk) in dp.iter_mut().zip(y).zip(g) {
        *d = gk * grad(yk);
    }
}

/// The pre-activation gradient `dp` from the output `y` and its gradient `g`, and the bias
/// gradient `db` (`o` values per member): each member's `n` rows of `dp` summed in order.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn pre_activation_grad<T: Real>(
    act: Fused,
    y: &[T],
    g: &[T],
    dp: &mut [T],
    db: &mut [T],
    n: usize,
    o: usize,
) {
    match act {
        Fused::Linear => times_grad(y, g, dp, |v| activation_grad(Fused::Linear, v)),
        Fused::Relu => times_grad(y, g, dp, |v| activation_grad(Fused::Relu, v)),
        Fused::Tanh => times_grad(y, g, dp, |v| activation_grad(Fused::Tanh, v)),
        Fused::Sigmoid => times_grad(y, g, dp, |v| activation_grad(Fused::Sigmoid, v)),
    }
    for (dbr, dpr) in db.chunks_mut(o).zip(dp.chunks(n * o)) {
        for row in dpr.chunks(o) {
            for (a, &v) in dbr.iter_mut().zip(row) {
                *a += v;
            }
        }
    }
}

/// `out[r, n, :] = act(x[r, n, :] · w[r] + b[r])`.
///
/// With `post`, each chunk of rows gets the `Post` (`[R * O]` scale and shift) right after its
/// bias and activation, while it is in cache.
pub(crate) fn forward<T: Real>(
    d: Dims,
    act: Fused,
    x: &[T],
    w: &[T],
    b: &[T],
    out: &mut [T],
    post: Option<PostValues<'_, T>>,
) {
    let (i, o) = (d.i, d.o);
    run(
        chunks(out, d.r, d.n, span(d.n, d.n * i * o, CHUNK_MACS), o),
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
            bias_and_activation(chunk, &b[r * o..(r + 1) * o], act);
            if let Some((a, sh, then)) = post {
                rows_in_place(chunk, &a[r * o..][..o], &sh[r * o..][..o], then);
            }
        },
    );
}

/// From the output `y` and its gradient `g`: the gradients of `w`, `b` and (when `dx` is not empty)
/// `x`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Real>(
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
    let (i, o) = (d.i, d.o);
    let mut dp = vec![T::zero(); y.len()];
    pre_activation_grad(act, y, g, &mut dp, db, d.n, o);
    // One region for both products (each joined region costs more than a small product gains from
    // a second core): the kernel gradient in chunks of its input rows, the input gradient in chunks
    // of batch rows, each about CHUNK_MACS multiply-adds.
    let macs = d.n * i * o;
    let mut jobs: Vec<Grad<T>> = chunks(dw, d.r, i, span(i, macs, CHUNK_MACS), o)
        .into_iter()
        .map(|(r, first, chunk)| Grad::Kernel(r, first, chunk))
        .collect();
    let with_dx = !dx.is_empty();
    if with_dx {
        jobs.extend(
            chunks(dx, d.r, d.n, span(d.n, macs, CHUNK_MACS), i)
                .into_iter()
                .map(|(r, start, chunk)| Grad::Input(r, start, chunk)),
        );
    }
    let region = d.r * macs * if with_dx { 2 } else { 1 };
    run(jobs, region, |job| match job {
        // dw[r][ii, :] = sum over rows n of x[r, n, ii] * dp[r, n, :].
        Grad::Kernel(r, first, chunk) => {
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
        }
        // dx[r, n, :] = dp[r, n, :] · w[r]ᵀ.
        Grad::Input(r, start, chunk) => {
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
        }
    });
}

/// One chunk of the backward pass: (member, first kernel row or batch row, the chunk's values).
enum Grad<'a, T> {
    Kernel(usize, usize, &'a mut [T]),
    Input(usize, usize, &'a mut [T]),
}

/// Runs `f` with the calling thread as one of the workers of this module's pool (unless it already
/// runs in a rayon pool), so that the pool's idle workers never compete with it for a core.
pub fn on_every_core<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match own_pool() {
        Some(pool) if rayon::current_thread_index().is_none() => pool.install(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where splitting a product across the cores starts to pay: times the forward and backward
    /// pass of one Dense layer per shape on one thread and on this module's pool (best of 5).
    /// Run with `cargo test --release --lib wide_timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn wide_timing() {
        let serial = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool");
        let Some(par) = own_pool() else { return };
        let shapes = [
            (256, 20, 64),
            (256, 64, 64),
            (256, 64, 3),
            (32, 64, 64),
            (64, 128, 128),
            (256, 128, 128),
            (32, 256, 256),
            (256, 256, 256),
        ];
        for (n, i, o) in shapes {
            let d = Dims { r: 1, n, i, o };
            let x: Vec<f32> = (0..n * i).map(|v| (v % 7) as f32 * 0.1).collect();
            let w: Vec<f32> = (0..i * o).map(|v| (v % 5) as f32 * 0.1).collect();
            let b = vec![0.1f32; o];
            let mut out = vec![0f32; n * o];
            let (mut dw, mut db, mut dx) = (vec![0f32; i * o], vec![0f32; o], vec![0f32; n * i]);
            let reps = (1usize << 32).div_ceil(n * i * o * 4).clamp(50, 5000);
            let mut best = [f64::MAX; 4];
            for _ in 0..5 {
                for (p, pool) in [&serial, par].into_iter().enumerate() {
                    let (f, bw) = pool.install(|| {
                        let t = std::time::Instant::now();
                        for _ in 0..reps {
                            forward(d, Fused::Relu, &x, &w, &b, &mut out, None);
                        }
                        let f = t.elapsed().as_secs_f64();
                        let y = out.clone();
                        let t = std::time::Instant::now();
                        for _ in 0..reps {
                            backward(d, Fused::Relu, &x, &w, &y, &y, &mut dw, &mut db, &mut dx);
                        }
                        (f, t.elapsed().as_secs_f64())
                    });
                    best[p] = best[p].min(f * 1e6 / reps as f64);
                    best[2 + p] = best[2 + p].min(bw * 1e6 / reps as f64);
                }
            }
            eprintln!(
                "n {n} x {i} -> {o} ({} MACs): forward {:.1} us on one thread, {:.1} on the pool; \
                 backward {:.1} / {:.1}",
                n * i * o,
                best[0],
                best[1],
                best[2],
                best[3]
            );
        }
    }
}
