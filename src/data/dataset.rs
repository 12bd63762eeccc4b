//! The `Dataset` type: features, integer class labels, the class count, the column and class names;
//! the tutorial's split; one-hot targets.

use crate::data::folder_rows::FolderRows;
use crate::data::schema::{DataSchema, first_duplicate};
use crate::error::{Error, Result};
use std::sync::Arc;

/// Row-major features with one class label per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Row-major features, `n_features` per row, kept as f64 (the exact values make_blobs or a CSV
    /// gave); empty when the rows are an image folder's, decoded when read (`folder`).
    pub x: Vec<f64>,
    pub n_features: usize,
    /// Class index of each row, each `< n_classes`.
    pub labels: Vec<usize>,
    pub n_classes: usize,
    /// Name of each class index (the label text in the CSV it came from; "0", "1", ... otherwise).
    pub class_names: Vec<String>,
    /// Numeric (regression) targets; `None` for class labels.
    pub targets: Option<Targets>,
    /// Name of each feature column (the CSV header's; "x0", "x1", ... otherwise, as `blobs --csv`
    /// writes them).
    pub feature_names: Vec<String>,
    /// Name of the label column ("y" unless a CSV said otherwise).
    pub label_name: String,
    /// Read with `--missing mean`: the feature columns' means (over the present values) that filled
    /// its gaps; a model trained on it keeps them for the gaps of later files.
    pub feature_means: Option<Vec<f64>>,
    /// The rows, when they are an image folder's files decoded batch by batch as they are read
    /// (`train::fit` and `evaluate` read them so) rather than held in `x`.
    pub folder: Option<Arc<FolderRows>>,
}

/// Numeric targets of a regression dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    /// Row-major, `names.len()` values per row.
    pub values: Vec<f64>,
    /// The target columns' names.
    pub names: Vec<String>,
}

impl Dataset {
    /// Builds a dataset, checking that the shapes agree and every value is finite.
    /// `class_names` defaults to "0", "1", ...
    pub fn new(
        x: Vec<f64>,
        n_features: usize,
        labels: Vec<usize>,
        n_classes: usize,
        class_names: Option<Vec<String>>,
    ) -> Result<Self> {
        if n_features == 0 || x.len() != labels.len() * n_features {
            return Err(Error::Mismatch(format!(
                "dataset has {} values for {} rows of {} features",
                x.len(),
                labels.len(),
                n_features
            )));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::Mismatch(format!(
                "dataset row {} holds a non-finite value {}",
                i / n_features,
                x[i]
            )));
        }
        if let Some(&l) = labels.iter().find(|&&l| l >= n_classes) {
            return Err(Error::Mismatch(format!(
                "label {l} is out of range for {n_classes} classes"
            )));
        }
        let class_names =
            class_names.unwrap_or_else(|| (0..n_classes).map(|c| c.to_string()).collect());
        if class_names.len() != n_classes {
            return Err(Error::Mismatch(format!(
                "{} class names for {n_classes} classes",
                class_names.len()
            )));
        }
        Ok(Self {
            x,
            n_features,
            labels,
            n_classes,
            class_names,
            targets: None,
            feature_names: (0..n_features).map(|j| format!("x{j}")).collect(),
            label_name: "y".to_string(),
            feature_means: None,
            folder: None,
        })
    }

    /// A dataset whose rows are the images of `rows`, decoded when read (nothing held in `x`), one
    /// class label per image; `class_names` defaults to "0", "1", ...
    pub fn from_folder(
        rows: Arc<FolderRows>,
        labels: Vec<usize>,
        n_classes: usize,
        class_names: Option<Vec<String>>,
    ) -> Result<Self> {
        if rows.len() != labels.len() || rows.width() == 0 {
            return Err(Error::Mismatch(format!(
                "{} images of {} values for {} labels",
                rows.len(),
                rows.width(),
                labels.len()
            )));
        }
        // The class checks of `new`, on one placeholder row per label (no pixel is held).
        let checked = Self::new(vec![0.0; labels.len()], 1, labels, n_classes, class_names)?;
        let n_features = rows.width();
        Ok(Self {
            x: Vec::new(),
            n_features,
            feature_names: (0..n_features).map(|j| format!("x{j}")).collect(),
            folder: Some(rows),
            ..checked
        })
    }

    /// A regression dataset: `targets` row-major, `names.len()` values per row (each named by its
    /// column). Its `labels` are all 0 and its single "class" is unused.
    pub fn regression(
        x: Vec<f64>,
        n_features: usize,
        targets: Vec<f64>,
        names: Vec<String>,
    ) -> Result<Self> {
        let t = names.len();
        if t == 0 || !targets.len().is_multiple_of(t) {
            return Err(Error::Mismatch(format!(
                "{} target values are not rows of {t} targets",
                targets.len()
            )));
        }
        if let Some(i) = targets.iter().position(|v| !v.is_finite()) {
            return Err(Error::Mismatch(format!(
                "target of row {} is not a finite number",
                i / t
            )));
        }
        let n = targets.len() / t;
        // The target columns stand where classes stand: one name per output.
        let mut d = Self::new(x, n_features, vec![0; n], t, Some(names.clone()))?;
        d.targets = Some(Targets {
            values: targets,
            names,
        });
        Ok(d)
    }

    /// Number of numeric targets per row (0 for a classification dataset).
    pub fn n_targets(&self) -> usize {
        self.targets.as_ref().map_or(0, |t| t.names.len())
    }

    /// The same data with these feature and label column names (one per feature, all different).
    pub fn with_names(self, feature_names: Vec<String>, label_name: &str) -> Result<Self> {
        if feature_names.len() != self.n_features {
            return Err(Error::Mismatch(format!(
                "{} feature names for {} features",
                feature_names.len(),
                self.n_features
            )));
        }
        if let Some(d) = first_duplicate(&feature_names) {
            return Err(Error::Mismatch(format!(
                "the feature name {} appears twice",
                crate::error::shown(d)
            )));
        }
        Ok(Self {
            feature_names,
            label_name: label_name.to_string(),
            ..self
        })
    }

    /// The names a model trained on this data keeps: features, label column, classes.
    pub fn schema(&self) -> DataSchema {
        DataSchema {
            features: self.feature_names.clone(),
            label: Some(self.label_name.clone()),
            classes: self.class_names.clone(),
            means: self.feature_means.clone().unwrap_or_default(),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the dataset has no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The features of row `i`, for rows held in memory (an image folder's rows are read through
    /// `folder`; for them this is empty).
    pub fn row(&self, i: usize) -> &[f64] {
        if self.folder.is_some() {
            return &[];
        }
        &self.x[i * self.n_features..(i + 1) * self.n_features]
    }

    /// Rows `0..at` and `at..len`: the tutorial's split is `split_at(500)`.
    pub fn split_at(&self, at: usize) -> Result<(Dataset, Dataset)> {
        if at == 0 || at >= self.len() {
            return Err(Error::invalid(
                "split",
                format!(
                    "the split point {at} must leave rows on both sides of {} rows",
                    self.len()
                ),
            ));
        }
        let part = |lo: usize, hi: usize| Dataset {
            x: match self.folder {
                Some(_) => Vec::new(),
                None => self.x[lo * self.n_features..hi * self.n_features].to_vec(),
            },
            n_features: self.n_features,
            labels: self.labels[lo..hi].to_vec(),
            n_classes: self.n_classes,
            class_names: self.class_names.clone(),
            targets: self.targets.as_ref().map(|t| {
                let k = t.names.len();
                Targets {
                    values: t.values[lo * k..hi * k].to_vec(),
                    names: t.names.clone(),
                }
            }),
            feature_names: self.feature_names.clone(),
            label_name: self.label_name.clone(),
            feature_means: self.feature_means.clone(),
            folder: self.folder.as_ref().map(|f| Arc::new(f.part(lo, hi))),
        };
        Ok((part(0, at), part(at, self.len())))
    }

    /// Features cast to float32, as Keras casts its inputs: the rows held in `x` (an image
    /// folder's rows are read through `folder`, `FolderRows::gather`).
    pub fn features_f32(&self) -> Vec<f32> {
        self.x.iter().map(|&v| v as f32).collect()
    }

    /// One-hot targets (`to_categorical`), float32, row-major `len x n_classes`.
    ///
    /// ```
    /// use keras_transfer::data::Dataset;
    /// let d = Dataset::new(vec![0.5, 1.5, 2.5], 1, vec![2, 0, 1], 3, None).unwrap();
    /// assert_eq!(d.one_hot_f32(), vec![0., 0., 1., 1., 0., 0., 0., 1., 0.]);
    /// ```
    pub fn one_hot_f32(&self) -> Vec<f32> {
        let mut t = vec![0f32; self.len() * self.n_classes];
        for (i, &l) in self.labels.iter().enumerate() {
            t[i * self.n_classes + l] = 1.0;
        }
        t
    }

    /// Number of rows of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.n_classes];
        for &l in &self.labels {
            c[l] += 1;
        }
        c
    }
}
