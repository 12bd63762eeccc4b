//! CSV I/O: a user's labelled data (header row, label column by name), feature-only inputs, and
//! float tables written in the shortest round-trip form.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use std::collections::BTreeSet;
use std::path::Path;

/// How to read the label column of a labelled CSV.
#[derive(Debug, Clone, Default)]
pub struct LabelSpec<'a> {
    /// The label column's header name; `None` means the last column.
    pub column: Option<&'a str>,
    /// The known classes, in index order (e.g. from the training file or the model). A label outside
    /// them is an error. `None`: the file's own distinct labels, sorted (numerically when every label
    /// is an integer), become the classes.
    pub classes: Option<&'a [String]>,
}

/// A label as written in the file, with integers canonicalised ("01" and "1" are the same class).
fn canonical_label(raw: &str) -> String {
    let t = raw.trim();
    t.parse::<i64>()
        .map(|v| v.to_string())
        .unwrap_or_else(|_| t.to_string())
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

/// A parsed CSV: header and rows of raw fields, with their line numbers.
struct RawCsv {
    header: Vec<String>,
    rows: Vec<(u64, Vec<String>)>,
}

fn csv_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Csv {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_raw(path: &Path) -> Result<RawCsv> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(csv_err(path, "is a directory, expected a CSV file"));
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(file);
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| csv_err(path, describe_csv_error(&e)))?
        .iter()
        .map(str::to_string)
        .collect();
    if header.is_empty() || header.iter().all(|h| h.is_empty()) {
        return Err(csv_err(
            path,
            "the file is empty; expected a header row and data rows",
        ));
    }
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| csv_err(path, describe_csv_error(&e)))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        rows.push((line, rec.iter().map(str::to_string).collect()));
    }
    if rows.is_empty() {
        return Err(csv_err(path, "has a header but no data rows"));
    }
    Ok(RawCsv { header, rows })
}

fn describe_csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => format!(
            "line {}: ragged row with {len} fields, expected {expected_len} like the header",
            pos.as_ref().map(|p| p.line()).unwrap_or(0)
        ),
        csv::ErrorKind::Utf8 { pos, .. } => {
            format!(
                "line {}: not valid UTF-8 text",
                pos.as_ref().map(|p| p.line()).unwrap_or(0)
            )
        }
        _ => e.to_string(),
    }
}

fn parse_feature(path: &Path, line: u64, column: &str, raw: &str) -> Result<f64> {
    let v: f64 = raw.parse().map_err(|_| {
        csv_err(
            path,
            format!("line {line}, column '{column}': '{raw}' is not a number"),
        )
    })?;
    if !v.is_finite() {
        return Err(csv_err(
            path,
            format!("line {line}, column '{column}': {raw} is not a finite number"),
        ));
    }
    Ok(v)
}

fn label_index(header: &[String], column: Option<&str>, path: &Path) -> Result<usize> {
    match column {
        None => Ok(header.len() - 1),
        Some(name) => header.iter().position(|h| h == name).ok_or_else(|| {
            csv_err(
                path,
                format!(
                    "no label column '{name}'; the header has: {}",
                    header.join(", ")
                ),
            )
        }),
    }
}

/// Reads a labelled CSV: a header row, numeric feature columns, and one label column.
pub fn read_labelled(path: &Path, spec: &LabelSpec) -> Result<Dataset> {
    let raw = read_raw(path)?;
    let li = label_index(&raw.header, spec.column, path)?;
    if raw.header.len() < 2 {
        return Err(csv_err(
            path,
            "needs at least one feature column besides the label column",
        ));
    }
    let n_features = raw.header.len() - 1;
    let mut x = Vec::with_capacity(raw.rows.len() * n_features);
    let mut names = Vec::with_capacity(raw.rows.len());
    for (line, fields) in &raw.rows {
        for (j, field) in fields.iter().enumerate() {
            if j == li {
                if field.is_empty() {
                    return Err(csv_err(path, format!("line {line}: empty label")));
                }
                names.push(canonical_label(field));
            } else {
                x.push(parse_feature(path, *line, &raw.header[j], field)?);
            }
        }
    }
    let classes: Vec<String> = match spec.classes {
        Some(c) => c.to_vec(),
        None => sorted_classes(&names),
    };
    let mut labels = Vec::with_capacity(names.len());
    for (name, (line, _)) in names.iter().zip(&raw.rows) {
        let idx = classes.iter().position(|c| c == name).ok_or_else(|| {
            csv_err(
                path,
                format!(
                    "line {line}: label '{name}' is not among the known classes [{}]",
                    classes.join(", ")
                ),
            )
        })?;
        labels.push(idx);
    }
    let n_classes = classes.len();
    Dataset::new(x, n_features, labels, n_classes, Some(classes))
}

/// Reads a feature-only CSV for prediction: every column is a feature except `drop` (a label column to
/// ignore). The column count must equal `width` (the model's inputs).
pub fn read_features(path: &Path, width: usize, drop: Option<&str>) -> Result<(Vec<f64>, usize)> {
    let raw = read_raw(path)?;
    let skip = match drop {
        Some(name) => Some(label_index(&raw.header, Some(name), path)?),
        None => None,
    };
    let n_cols = raw.header.len() - usize::from(skip.is_some());
    if n_cols != width {
        return Err(csv_err(
            path,
            format!(
                "has {n_cols} feature columns ({}), the model expects {width} inputs{}",
                raw.header
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| Some(*j) != skip)
                    .map(|(_, h)| h.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if skip.is_none() && n_cols > width {
                    "; use --label NAME to drop a label column"
                } else {
                    ""
                }
            ),
        ));
    }
    let mut x = Vec::with_capacity(raw.rows.len() * width);
    for (line, fields) in &raw.rows {
        for (j, field) in fields.iter().enumerate() {
            if Some(j) != skip {
                x.push(parse_feature(path, *line, &raw.header[j], field)?);
            }
        }
    }
    Ok((x, raw.rows.len()))
}

/// Writes a dataset as `x0,...,x{F-1},y` with shortest round-trip floats and integer labels.
pub fn write_dataset(path: &Path, data: &Dataset) -> Result<()> {
    let mut header: Vec<String> = (0..data.n_features).map(|j| format!("x{j}")).collect();
    header.push("y".into());
    write_atomic(path, |tmp| {
        let mut w = csv::Writer::from_path(tmp).map_err(|e| csv_err(path, e.to_string()))?;
        w.write_record(&header)
            .map_err(|e| csv_err(path, e.to_string()))?;
        for i in 0..data.len() {
            let mut rec: Vec<String> = data.row(i).iter().map(|v| format!("{v}")).collect();
            rec.push(data.class_names[data.labels[i]].clone());
            w.write_record(&rec)
                .map_err(|e| csv_err(path, e.to_string()))?;
        }
        w.flush().map_err(|e| Error::io(path, e))
    })
}

/// Writes a row-major float table with the given header, shortest round-trip form.
pub fn write_table<T: std::fmt::Display>(
    path: &Path,
    header: &[String],
    values: &[T],
) -> Result<()> {
    let width = header.len().max(1);
    write_atomic(path, |tmp| {
        let mut w = csv::Writer::from_path(tmp).map_err(|e| csv_err(path, e.to_string()))?;
        w.write_record(header)
            .map_err(|e| csv_err(path, e.to_string()))?;
        for row in values.chunks(width) {
            w.write_record(row.iter().map(|v| v.to_string()))
                .map_err(|e| csv_err(path, e.to_string()))?;
        }
        w.flush().map_err(|e| Error::io(path, e))
    })
}

/// Reads a training CSV and, when given, a test CSV with the same label column, so that both share
/// one class list: the classes of both files together, sorted (numerically when all are integers).
pub fn read_train_test(
    train: &Path,
    test: Option<&Path>,
    column: Option<&str>,
) -> Result<(Dataset, Option<Dataset>)> {
    let spec = LabelSpec {
        column,
        classes: None,
    };
    let first = read_labelled(train, &spec)?;
    let Some(test) = test else {
        return Ok((first, None));
    };
    let other = read_labelled(test, &spec)?;
    let classes = sorted_classes(first.class_names.iter().chain(&other.class_names));
    let spec = LabelSpec {
        column,
        classes: Some(&classes),
    };
    Ok((
        read_labelled(train, &spec)?,
        Some(read_labelled(test, &spec)?),
    ))
}
