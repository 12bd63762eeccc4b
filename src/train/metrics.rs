//! Metrics as Keras names and computes them: `accuracy` (categorical or binary by the loss, as
//! Keras resolves it), `binary_accuracy`, `categorical_accuracy`, `mae`, `mse` and their long names.
//! Each is a per-row value summed over a batch; the history keeps their running mean.

use crate::train::loss::{Loss, Target};

/// How a metric is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Keras's `accuracy` (or `acc`), resolved as Keras resolves it when the metric is built, by the
    /// shapes and not by the loss: binary accuracy for one output unit, else categorical accuracy
    /// (arg-max of the target row against arg-max of the output), even for several sigmoid units
    /// under binary cross-entropy (the multi-label recipe).
    Accuracy,
    /// The arg-max output is the true class.
    CategoricalAccuracy,
    /// The sigmoid output, thresholded at 0.5, equals the 0/1 label.
    BinaryAccuracy,
    /// Mean absolute error of a row.
    MeanAbsoluteError,
    /// Mean squared error of a row.
    MeanSquaredError,
}

/// A compiled metric: how it is computed and the key Keras records it under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub kind: MetricKind,
    /// The history key (the name the metric was compiled with).
    pub key: &'static str,
}

impl Metric {
    /// The tutorial's `accuracy` on a softmax classifier.
    pub const ACCURACY: Metric = Metric {
        kind: MetricKind::CategoricalAccuracy,
        key: "accuracy",
    };

    /// The metric `name` as `compile(metrics=[name])` names it (`accuracy` resolved later, by shapes); `None` when this
    /// tool does not compute it.
    pub fn named(name: &str) -> Option<Self> {
        let (kind, key) = match name {
            "accuracy" | "acc" => (
                MetricKind::Accuracy,
                if name == "acc" { "acc" } else { "accuracy" },
            ),
            "categorical_accuracy" => (MetricKind::CategoricalAccuracy, "categorical_accuracy"),
            "sparse_categorical_accuracy" => (
                MetricKind::CategoricalAccuracy,
                "sparse_categorical_accuracy",
            ),
            "binary_accuracy" => (MetricKind::BinaryAccuracy, "binary_accuracy"),
            "mae" => (MetricKind::MeanAbsoluteError, "mae"),
            "mean_absolute_error" => (MetricKind::MeanAbsoluteError, "mean_absolute_error"),
            "mse" => (MetricKind::MeanSquaredError, "mse"),
            "mean_squared_error" => (MetricKind::MeanSquaredError, "mean_squared_error"),
            _ => return None,
        };
        Some(Metric { kind, key })
    }

    /// A compiled metric as a `training_config` or `compile_config` lists it: a name
    /// (`"accuracy"`), tf.keras 2's `MeanMetricWrapper` (its `fn` computes, its `name` is the key), or
    /// a metric object (`{"class_name": "MeanSquaredError", "config": {...}}`). A setting this tool
    /// does not know, a name other than the metric's own, or a metric it does not compute is an
    /// error naming it, as Keras raises on an unknown argument.
    pub fn from_json(v: &serde_json::Value) -> std::result::Result<Self, String> {
        use serde_json::Value;
        let unsupported = |name: &str| {
            format!(
                "metric '{name}' (supported: accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, mae, mse)"
            )
        };
        if let Some(name) = v.as_str() {
            return Metric::named(name).ok_or_else(|| unsupported(name));
        }
        let class = v
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("metric {v} has no class_name"))?;
        let cfg = v.get("config").unwrap_or(&Value::Null);
        if !(cfg.is_object() || cfg.is_null()) {
            return Err(format!(
                "metric {class} has the config {cfg}, expected an object"
            ));
        }
        // The function the metric computes, its own name, and the settings Keras writes for it.
        let (function, own, known): (&str, &str, &[&str]) = match class {
            "MeanMetricWrapper" => (
                cfg.get("fn")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("metric MeanMetricWrapper {cfg} names no fn"))?,
                "",
                &["name", "dtype", "fn"],
            ),
            "CategoricalAccuracy" => (
                "categorical_accuracy",
                "categorical_accuracy",
                &["name", "dtype"],
            ),
            "SparseCategoricalAccuracy" => (
                "sparse_categorical_accuracy",
                "sparse_categorical_accuracy",
                &["name", "dtype"],
            ),
            "BinaryAccuracy" => (
                "binary_accuracy",
                "binary_accuracy",
                &["name", "dtype", "threshold"],
            ),
            "MeanAbsoluteError" => ("mae", "mean_absolute_error", &["name", "dtype"]),
            "MeanSquaredError" => ("mse", "mean_squared_error", &["name", "dtype"]),
            other => return Err(unsupported(other)),
        };
        if let Some(k) = cfg
            .as_object()
            .and_then(|o| o.keys().find(|k| !known.contains(&k.as_str())))
        {
            return Err(format!(
                "metric {class} has the unknown setting '{k}' (Keras: \"Argument(s) not recognized\")"
            ));
        }
        if let Some(t) = cfg.get("threshold").filter(|t| !t.is_null())
            && t.as_f64() != Some(0.5)
        {
            return Err(format!(
                "metric {class} threshold={t} (only 0.5 is supported)"
            ));
        }
        match cfg.get("dtype") {
            None | Some(Value::Null) => {}
            Some(Value::String(d)) if d == "float32" || d == "float64" => {}
            Some(d) => return Err(format!("metric {class} dtype={d} (float32 or float64)")),
        }
        let kind = Metric::named(function)
            .ok_or_else(|| unsupported(function))?
            .kind;
        let key = match cfg.get("name") {
            None | Some(Value::Null) if !own.is_empty() => own,
            Some(Value::String(name)) => match Metric::named(name) {
                // A wrapper named after a metric function reports under that name (tf.keras 2's
                // `accuracy` wrapping `categorical_accuracy`); an object under its own name.
                Some(m) if own.is_empty() || name == own => m.key,
                _ => {
                    return Err(format!(
                        "metric {class} named '{name}' (keras-transfer reports a metric under its own name only: {})",
                        if own.is_empty() { function } else { own }
                    ));
                }
            },
            _ => return Err(format!("metric {class} has no name")),
        };
        Ok(Metric { kind, key })
    }

    /// The metric a fresh model compiled with `loss` reports: accuracy for classification, MAE for
    /// regression.
    pub fn default_for(loss: Loss) -> Self {
        match loss.target() {
            Target::Numeric => Metric {
                kind: MetricKind::MeanAbsoluteError,
                key: "mae",
            },
            _ => Metric::named("accuracy").unwrap_or(Metric::ACCURACY),
        }
    }

    /// The metric's value of each row of one member's batch: `outputs` (after the output
    /// activation; the logits for categorical accuracy, which has the same arg-max) and `targets`
    /// row-major with `k` values per row, `labels` the rows' class indices.
    pub(crate) fn row_values(
        self,
        outputs: &[f32],
        targets: &[f32],
        labels: impl Iterator<Item = usize>,
        k: usize,
    ) -> Vec<f32> {
        let hit = |b: bool| if b { 1.0 } else { 0.0 };
        // The mean over each row's outputs of `f(output, target)`, as Keras's per-sample metric
        // functions take the mean over the last axis.
        let row_mean = |f: &dyn Fn(f32, f32) -> f32| -> Vec<f32> {
            outputs
                .chunks(k)
                .zip(targets.chunks(k))
                .map(|(o, t)| o.iter().zip(t).map(|(&a, &b)| f(a, b)).sum::<f32>() / k as f32)
                .collect()
        };
        // Keras's binary_accuracy: (p > 0.5) == target.
        let binary = || row_mean(&|p, t| hit(f32::from(u8::from(p > 0.5)) == t));
        match self.kind {
            MetricKind::Accuracy if k == 1 => binary(),
            // Keras's categorical_accuracy: argmax(y_true) == argmax(y_pred); a one-hot target
            // row's arg-max is its class, a multi-hot row's its first 1 (0 for a row of zeros).
            MetricKind::Accuracy => outputs
                .chunks(k)
                .zip(targets.chunks(k))
                .map(|(o, t)| hit(argmax(o) == argmax(t)))
                .collect(),
            MetricKind::CategoricalAccuracy => outputs
                .chunks(k)
                .zip(labels)
                .map(|(row, l)| hit(argmax(row) == l))
                .collect(),
            MetricKind::BinaryAccuracy => binary(),
            MetricKind::MeanAbsoluteError => row_mean(&|a, b| (a - b).abs()),
            MetricKind::MeanSquaredError => row_mean(&|a, b| (a - b) * (a - b)),
        }
    }
}

/// The index of the first largest value (numpy's and TensorFlow's `argmax`).
pub fn argmax<T: PartialOrd + Copy>(row: &[T]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}
