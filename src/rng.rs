//! numpy's legacy `RandomState` on MT19937: the exact draws sklearn's `make_blobs` makes.
//!
//! The bit generator is `rand_mt::Mt` (`Mt::new(seed)` is numpy's `init_genrand`); on top of it sit the
//! legacy layers numpy keeps for `RandomState`: the 53-bit double, the polar Gaussian with its one
//! cached value, `uniform`, and the masked rejection draw that `shuffle` uses.

use rand_mt::Mt;

/// A re-implementation of `numpy.random.RandomState(seed)` for the draws this project needs.
///
/// ```
/// use keras_transfer::rng::NumpyRandomState;
/// let mut rs = NumpyRandomState::new(0);
/// // numpy: np.random.RandomState(0).random_sample() == 0.5488135039273248
/// assert_eq!(rs.random_sample(), 0.5488135039273248);
/// ```
#[derive(Clone)]
pub struct NumpyRandomState {
    mt: Mt,
    /// The second value of the last polar-method pair, returned by the next `gauss` call.
    gauss_cache: Option<f64>,
}

impl NumpyRandomState {
    /// `RandomState(seed)` for an integer seed (numpy accepts 0..=2^32-1).
    pub fn new(seed: u32) -> Self {
        Self {
            mt: Mt::new(seed),
            gauss_cache: None,
        }
    }

    /// One raw 32-bit draw.
    pub fn next_u32(&mut self) -> u32 {
        self.mt.next_u32()
    }

    /// `random_sample()`: a double in [0, 1) built from two 32-bit draws (27 + 26 bits).
    pub fn random_sample(&mut self) -> f64 {
        let a = self.next_u32() >> 5;
        let b = self.next_u32() >> 6;
        (a as f64 * 67108864.0 + b as f64) / 9007199254740992.0
    }

    /// `uniform(low, high)`: `low + (high - low) * random_sample()`.
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.random_sample()
    }

    /// The legacy standard normal (`RandomState.standard_normal`): Marsaglia's polar method, which
    /// makes two values per accepted pair and caches the second for the next call.
    pub fn gauss(&mut self) -> f64 {
        if let Some(v) = self.gauss_cache.take() {
            return v;
        }
        loop {
            let x1 = 2.0 * self.random_sample() - 1.0;
            let x2 = 2.0 * self.random_sample() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.gauss_cache = Some(f * x1);
                return f * x2;
            }
        }
    }

    /// `normal(loc, scale)`: `loc + scale * gauss()`.
    pub fn normal(&mut self, loc: f64, scale: f64) -> f64 {
        loc + scale * self.gauss()
    }

    /// A uniform integer in `0..=max` by masked rejection, as numpy's legacy `random_interval`
    /// (the draw behind `shuffle`).
    pub fn bounded(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for shift in [1, 2, 4, 8, 16, 32] {
            mask |= mask >> shift;
        }
        if max <= u32::MAX as u64 {
            loop {
                let v = (self.next_u32() as u64) & mask;
                if v <= max {
                    return v;
                }
            }
        }
        loop {
            let v = self.mt.next_u64() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `shuffle(x)` for a 1-D sequence: Fisher-Yates from the end, as numpy's legacy shuffle.
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.bounded(i as u64) as usize;
            x.swap(i, j);
        }
    }

    /// `permutation(n)`: a shuffled `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        self.shuffle(&mut idx);
        idx
    }
}
