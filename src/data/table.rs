//! The table every data reader returns (`Table`: features, label texts, notes) and what a reader is
//! asked to pick (`ReadSpec`), shared by the CSV and NumPy readers.

use crate::data::Dataset;
use crate::data::folder_rows::FolderRows;
use crate::data::ingest::{Dialect, csv_err};
use crate::error::{Error, Result, shown};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// The most classes a label column may hold: more distinct labels are refused (in linear time)
/// before any class list is built.
pub const MAX_CLASSES: usize = 10_000;

/// Which columns of a CSV to read, and how. `Default` reads the last column as labels and every
/// other column as a feature, in a detected dialect.
#[derive(Debug, Clone, Default)]
pub struct ReadSpec<'a> {
    /// The label column's name; `None`: the last column (when `labelled`).
    pub label: Option<&'a str>,
    /// Whether the file must have a label column. When false, `label` names a column to carry along
    /// (not a feature), and no column is a label by default.
    pub labelled: bool,
    /// The feature columns by name, in input order (a model's stored names): any other column that
    /// is not the label or ignored is an error. `None`: every column but the label and the ignored
    /// ones, in file order.
    pub features: Option<&'a [String]>,
    /// Columns to leave out (`--ignore`); each must exist.
    pub ignore: &'a [String],
    /// A column left out when present and not missed when absent (a model's own label column in a
    /// `predict` input).
    pub skip_if_present: Option<&'a str>,
    /// The known classes in index order (a model's): a label outside them is an error. `None`: the
    /// file's own distinct labels, sorted (numerically when every label is an integer).
    pub classes: Option<&'a [String]>,
    /// Added to the error for a label outside `classes` (e.g. how to train a new output layer).
    pub unknown_label_hint: &'a str,
    pub dialect: Dialect,
    /// The model's per-sample input shape when it has more than one dimension (an image's
    /// `[height, width, channels]`): what an image folder's files are decoded and resized to, and
    /// the shape an N-D NumPy `x` must have. `None`: the model takes flat rows.
    pub sample_shape: Option<Vec<usize>>,
    /// Leave an image that cannot be decoded out, with a line on stderr, instead of stopping.
    pub skip_bad_images: bool,
    /// Read an image folder's rows when they are used (`Table::folder`), not into `x`: what a
    /// fit or an evaluation takes, so that memory does not grow with the number of images.
    pub stream_images: bool,
}

/// A CSV read by `read_table`: the picked features and, when there is one, the label column's text
/// per row (interned).
#[derive(Debug)]
pub struct Table {
    pub path: PathBuf,
    /// The feature columns' names, in the order of `x`'s columns.
    pub feature_names: Vec<String>,
    /// Row-major features, `feature_names.len()` per row.
    pub x: Vec<f64>,
    pub rows: usize,
    /// The label column's name, when one was read.
    pub label_name: Option<String>,
    /// Per row, an index into `label_values` (empty without a label column).
    pub label_ids: Vec<u32>,
    /// The label column's distinct texts, in order of first appearance, each with its first line.
    pub label_values: Vec<(String, u64)>,
    /// Read with `--missing mean`: the feature columns' means its gaps were filled with.
    pub means: Option<Vec<f64>>,
    /// The reader's own class order, when the data carries one (an image folder's class
    /// subfolders, sorted, as Keras numbers them): it takes the place of a `--classes` list.
    pub classes: Option<Vec<String>>,
    /// What each row is, when the data names its rows (an image folder's files, relative to it).
    pub row_names: Option<Vec<String>>,
    /// An image folder read with `ReadSpec::stream_images`: its rows, decoded when read (`x` is
    /// then empty).
    pub folder: Option<Arc<FolderRows>>,
    /// What the reader recognised or did that the user should hear once (index column dropped,
    /// rows with missing values dropped, ...).
    pub notes: Vec<String>,
}

impl Table {
    /// The label text of row `i` (as written, trimmed), when a label column was read.
    pub fn label_text(&self, i: usize) -> Option<&str> {
        self.label_ids
            .get(i)
            .map(|&id| self.label_values[id as usize].0.as_str())
    }

    /// The distinct labels, canonicalised (integers in their plain form).
    pub fn distinct_labels(&self) -> Vec<String> {
        self.label_values
            .iter()
            .map(|(v, _)| canonical_label(v))
            .collect()
    }

    /// The labelled data set, with `classes` as the class list (each row's label must be one of
    /// them; `hint` is added to the error for one that is not).
    pub fn into_dataset(self, classes: Vec<String>, hint: &str) -> Result<Dataset> {
        let label_name = self.label_name.clone().ok_or_else(|| {
            Error::Internal(format!(
                "{}: read without a label column",
                self.path.display()
            ))
        })?;
        let by_name: HashMap<&str, usize> = classes
            .iter()
            .enumerate()
            .map(|(k, c)| (c.as_str(), k))
            .collect();
        let index = self
            .label_values
            .iter()
            .map(|(v, line)| {
                let name = canonical_label(v);
                by_name.get(name.as_str()).copied().ok_or_else(|| {
                    csv_err(
                        &self.path,
                        format!(
                            "line {line}: label {} is not among {}{hint}",
                            shown(&name),
                            class_list_text(&classes)
                        ),
                    )
                })
            })
            .collect::<Result<Vec<usize>>>()?;
        let labels = self
            .label_ids
            .iter()
            .map(|&id| index[id as usize])
            .collect();
        let n_classes = classes.len();
        let d = match self.folder {
            Some(rows) => Dataset::from_folder(rows, labels, n_classes, Some(classes))?,
            None => Dataset::new(
                self.x,
                self.feature_names.len(),
                labels,
                n_classes,
                Some(classes),
            )?,
        };
        let mut d = d.with_names(self.feature_names, &label_name)?;
        d.feature_means = self.means;
        Ok(d)
    }
}

/// A label as written in the file, with integers canonicalised: "01", "1" and "1.0" are the class
/// "1" (numpy reads all three as the number 1, which `to_categorical` takes as index 1).
pub fn canonical_label(raw: &str) -> String {
    let t = raw.trim();
    if let Ok(v) = t.parse::<i64>() {
        return v.to_string();
    }
    match t.parse::<f64>() {
        Ok(v) if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 => (v as i64).to_string(),
        _ => t.to_string(),
    }
}

/// Refuses a table whose label column holds more than `MAX_CLASSES` distinct labels.
pub fn check_class_count(t: &Table) -> Result<()> {
    let distinct = t.label_values.len();
    if distinct <= MAX_CLASSES {
        return Ok(());
    }
    let numeric = t.label_values.iter().all(|(v, _)| v.parse::<f64>().is_ok());
    Err(csv_err(
        &t.path,
        format!(
            "the label column holds {distinct} distinct labels, more than the {MAX_CLASSES} classes keras-transfer takes{}",
            if numeric {
                " (numeric targets? use --loss mse)"
            } else {
                ""
            }
        ),
    ))
}

/// The class list as an error message shows it: the names when there are a few, else their count.
pub fn class_list_text(classes: &[String]) -> String {
    if classes.len() <= 12 {
        let names: Vec<String> = classes.iter().map(|c| shown(c)).collect();
        format!("the known classes [{}]", names.join(", "))
    } else {
        format!("the {} known classes", classes.len())
    }
}

/// Sorted distinct labels: numerically when all are integers, else as strings.
pub fn sorted_classes<'a>(labels: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let set: BTreeSet<&String> = labels.into_iter().collect();
    let mut v: Vec<String> = set.into_iter().cloned().collect();
    if v.iter().all(|s| s.parse::<i64>().is_ok()) {
        v.sort_by_key(|s| s.parse::<i64>().unwrap_or(0));
    }
    v
}
