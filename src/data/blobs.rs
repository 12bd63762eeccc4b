//! sklearn's `make_blobs`, draw for draw on numpy's legacy `RandomState`.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::rng::NumpyRandomState;

/// The parameters of `sklearn.datasets.make_blobs` with `centers` given as a count.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobsParams {
    pub n_samples: usize,
    pub centers: usize,
    pub n_features: usize,
    pub cluster_std: f64,
    pub center_box: (f64, f64),
    pub shuffle: bool,
    pub random_state: u32,
}

/// The most centers (classes) `make_blobs` draws: one class each, as wide as the widest layer.
pub const MAX_CENTERS: usize = 1 << 20;
/// The most center coordinates (centers x features) it draws: 16 Mi doubles, 128 MiB.
pub const MAX_CENTER_VALUES: usize = 1 << 24;

impl BlobsParams {
    /// The tutorial's problem: 1000 samples, 3 centers, 2 features, std 2.0, the given random_state.
    pub fn tutorial(seed: u32) -> Self {
        Self {
            n_samples: 1000,
            centers: 3,
            n_features: 2,
            cluster_std: 2.0,
            center_box: (-10.0, 10.0),
            shuffle: true,
            random_state: seed,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.n_samples == 0 {
            return Err(Error::invalid("n_samples", "must be at least 1"));
        }
        if self.centers == 0 {
            return Err(Error::invalid("centers", "must be at least 1"));
        }
        if self.n_features == 0 {
            return Err(Error::invalid("n_features", "must be at least 1"));
        }
        if !self.cluster_std.is_finite() || self.cluster_std < 0.0 {
            return Err(Error::invalid(
                "cluster_std",
                format!("must be a finite number >= 0, got {}", self.cluster_std),
            ));
        }
        let (lo, hi) = self.center_box;
        if !lo.is_finite() || !hi.is_finite() {
            return Err(Error::invalid("center_box", "bounds must be finite"));
        }
        // The centers are drawn before any sample: K x F doubles, and one class (a name and a count)
        // per center.
        if self.centers > MAX_CENTERS
            || self.centers.saturating_mul(self.n_features) > MAX_CENTER_VALUES
        {
            return Err(Error::invalid(
                "centers",
                format!(
                    "{} centers of {} features is too many (at most {MAX_CENTERS} centers and {MAX_CENTER_VALUES} center values)",
                    self.centers, self.n_features
                ),
            ));
        }
        let cells = self.n_samples.checked_mul(self.n_features);
        if cells.is_none_or(|c| c > 1 << 27) {
            return Err(Error::invalid(
                "n_samples",
                "samples x features is too large (at most 2^27 values, 1 GiB)",
            ));
        }
        Ok(())
    }
}

/// Blobs data and the centers they were drawn around.
#[derive(Debug, Clone)]
pub struct Blobs {
    pub data: Dataset,
    /// Row-major, `centers x n_features`.
    pub centers: Vec<f64>,
}

/// `make_blobs(n_samples, centers, n_features, cluster_std, center_box, shuffle, random_state, return_centers=True)`.
///
/// ```
/// use keras_transfer::data::{make_blobs, BlobsParams};
/// let b = make_blobs(&BlobsParams::tutorial(1)).unwrap();
/// // sklearn: make_blobs(1000, 3, n_features=2, cluster_std=2, random_state=1)[0][0]
/// assert_eq!(b.data.row(0), &[-4.457185543281472, 4.570025506454394]);
/// assert_eq!(b.data.labels[0], 0);
/// ```
pub fn make_blobs(p: &BlobsParams) -> Result<Blobs> {
    p.validate()?;
    let (k, f, n) = (p.centers, p.n_features, p.n_samples);
    let mut rs = NumpyRandomState::new(p.random_state);
    let centers: Vec<f64> = (0..k * f)
        .map(|_| rs.uniform(p.center_box.0, p.center_box.1))
        .collect();

    let mut x = Vec::with_capacity(n * f);
    let mut y = Vec::with_capacity(n);
    for c in 0..k {
        let count = n / k + usize::from(c < n % k);
        let center = &centers[c * f..(c + 1) * f];
        for _ in 0..count {
            x.extend(center.iter().map(|&m| rs.normal(m, p.cluster_std)));
            y.push(c);
        }
    }
    if p.shuffle {
        let idx = rs.permutation(n);
        x = idx
            .iter()
            .flat_map(|&i| x[i * f..(i + 1) * f].iter().copied())
            .collect();
        y = idx.iter().map(|&i| y[i]).collect();
    }
    let data = Dataset::new(x, f, y, k, None)?;
    Ok(Blobs { data, centers })
}
