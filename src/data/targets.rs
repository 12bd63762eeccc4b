//! Numeric (regression) targets from a CSV file: a header row, the target column by name (default:
//! the last), every other column a feature. Kept apart from the class-label reader, and the check
//! that refuses to guess whether a numeric label column holds classes or values.

use crate::data::Dataset;
use crate::error::{Error, Result};
use std::path::Path;

/// A numeric label column with more distinct values than this is not taken for classes without
/// being told.
pub const MAX_GUESSED_CLASSES: usize = 20;

fn csv_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Csv {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The header, the label column's index and every row's cells.
fn read_cells(path: &Path, column: Option<&str>) -> Result<(Vec<String>, usize, Vec<Vec<String>>)> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| csv_error(path, e.to_string()))?;
    let header: Vec<String> = r
        .headers()
        .map_err(|e| csv_error(path, e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    if header.len() < 2 {
        return Err(csv_error(
            path,
            "needs at least one feature column and a target column",
        ));
    }
    let at = match column {
        Some(c) => header.iter().position(|h| h == c).ok_or_else(|| {
            csv_error(
                path,
                format!("no column '{c}' (columns: {})", header.join(", ")),
            )
        })?,
        None => header.len() - 1,
    };
    let mut rows = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| csv_error(path, format!("line {}: {e}", i + 2)))?;
        rows.push(rec.iter().map(str::to_string).collect());
    }
    if rows.is_empty() {
        return Err(csv_error(path, "has no data rows"));
    }
    Ok((header, at, rows))
}

/// Reads a regression data set: features and the numeric target column.
pub fn read_regression(path: &Path, column: Option<&str>) -> Result<Dataset> {
    let (header, at, rows) = read_cells(path, column)?;
    let mut x = Vec::with_capacity(rows.len() * (header.len() - 1));
    let mut y = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        for (j, cell) in row.iter().enumerate() {
            let v: f64 = cell
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| {
                    csv_error(
                        path,
                        format!(
                            "line {}, column '{}': '{cell}' is not a finite number",
                            i + 2,
                            header[j]
                        ),
                    )
                })?;
            if j == at { y.push(v) } else { x.push(v) }
        }
    }
    let features: Vec<String> = header
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != at)
        .map(|(_, h)| h.clone())
        .collect();
    // The model keeps the CSV's column names, as for class labels.
    Dataset::regression(x, header.len() - 1, y, vec![header[at].clone()])?
        .with_names(features, &header[at])
}

/// Refuses to guess: when the classes read from `path` are all numbers and more than
/// `MAX_GUESSED_CLASSES` of them (or any not an integer), the caller must say whether the column is
/// a regression target or class labels.
pub fn check_label_is_categorical(path: &Path, data: &Dataset) -> Result<()> {
    let values: Option<Vec<f64>> = data.class_names.iter().map(|c| c.parse().ok()).collect();
    let Some(values) = values else { return Ok(()) };
    // A label 'inf' or 'nan' is bad data (exit 3), not a question of which loss to use.
    if let Some(bad) = data
        .class_names
        .iter()
        .zip(&values)
        .find(|(_, v)| !v.is_finite())
    {
        return Err(Error::Csv {
            path: path.to_path_buf(),
            reason: format!(
                "the label column holds '{}', which is not a finite number",
                bad.0
            ),
        });
    }
    let fractional = values.iter().any(|v| v.fract() != 0.0);
    if fractional || values.len() > MAX_GUESSED_CLASSES {
        return Err(Error::invalid(
            "--loss",
            format!(
                "{}: the label column holds {} distinct numeric values{}; say what it is: --loss mse|mae|huber for a regression target, or --loss categorical_crossentropy for classes",
                path.display(),
                values.len(),
                if fractional {
                    ", some not integers"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(())
}
