//! Summary statistics of repeated scores and whether two configurations really differ (Welch's t-test).

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Mean, population standard deviation (numpy's `std`, as the tutorial prints), min, median, max.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Summary {
    /// Summarises `scores` (at least one).
    pub fn of(scores: &[f64]) -> Summary {
        let n = scores.len();
        let mean = scores.iter().sum::<f64>() / n as f64;
        let var = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n as f64;
        let mut sorted = scores.to_vec();
        sorted.sort_by(f64::total_cmp);
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Summary {
            n,
            mean,
            std: var.sqrt(),
            min: sorted[0],
            median,
            max: sorted[n - 1],
        }
    }
}

/// Welch's two-sample t-test of mean(a) - mean(b).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    /// mean(a) - mean(b).
    pub diff: f64,
    /// The 95% confidence interval of the difference.
    pub ci95: (f64, f64),
    /// Two-sided p-value (0 or 1 when both samples have no spread).
    pub p: f64,
    pub t: f64,
    pub df: f64,
}

/// Welch's t-test (unequal variances) with sample variances; needs two or more scores on each side.
pub fn welch(a: &[f64], b: &[f64]) -> Option<Welch> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let stats = |x: &[f64]| {
        let n = x.len() as f64;
        let m = x.iter().sum::<f64>() / n;
        let v = x.iter().map(|s| (s - m).powi(2)).sum::<f64>() / (n - 1.0);
        (n, m, v)
    };
    let (na, ma, va) = stats(a);
    let (nb, mb, vb) = stats(b);
    let diff = ma - mb;
    let (qa, qb) = (va / na, vb / nb);
    let se = (qa + qb).sqrt();
    if se == 0.0 {
        let p = if diff == 0.0 { 1.0 } else { 0.0 };
        return Some(Welch {
            diff,
            ci95: (diff, diff),
            p,
            t: f64::INFINITY * diff.signum(),
            df: f64::INFINITY,
        });
    }
    let df = (qa + qb).powi(2) / (qa * qa / (na - 1.0) + qb * qb / (nb - 1.0));
    let t = diff / se;
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let p = 2.0 * (1.0 - dist.cdf(t.abs()));
    let q = dist.inverse_cdf(0.975);
    Some(Welch {
        diff,
        ci95: (diff - q * se, diff + q * se),
        p,
        t,
        df,
    })
}

impl Welch {
    /// One line a person understands, e.g.
    /// `+0.026 (95% CI +0.003 to +0.049), p = 0.03: a real improvement`.
    pub fn verdict(&self) -> String {
        let what = if self.p >= 0.05 {
            "no real difference (p >= 0.05; could be chance)"
        } else if self.diff > 0.0 {
            "a real improvement (p < 0.05)"
        } else {
            "really worse (p < 0.05)"
        };
        format!(
            "{:+.3} (95% CI {:+.3} to {:+.3}), Welch p = {}: {what}",
            self.diff,
            self.ci95.0,
            self.ci95.1,
            fmt_p(self.p)
        )
    }
}

fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".to_string()
    } else {
        format!("{p:.3}")
    }
}
