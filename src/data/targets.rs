//! Numeric (regression) targets: the label column of a CSV read by the one CSV reader
//! (`csv::read_table`, with its dialect, `--ignore`, `--missing` and column names) taken as numbers,
//! and the check that refuses to guess whether a numeric label column holds classes or values.

use crate::data::Dataset;
use crate::data::csv::{ReadSpec, Table, read_train_test_tables};
use crate::error::{Error, Result, shown};
use std::path::Path;

/// A numeric label column with more distinct values than this is not taken for classes without
/// being told.
pub const MAX_GUESSED_CLASSES: usize = 20;

/// A table's label column as numeric targets: every value a finite number (and, for a float32 model,
/// one float32 holds), else refused naming its line.
pub fn table_targets(t: Table, float64: bool) -> Result<Dataset> {
    let name = t.label_name.clone().ok_or_else(|| {
        Error::Internal(format!(
            "{}: read without a target column",
            t.path.display()
        ))
    })?;
    let values = t
        .label_values
        .iter()
        .map(|(text, line)| {
            text.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && (float64 || (*v as f32).is_finite()))
                .ok_or_else(|| Error::Csv {
                    path: t.path.clone(),
                    reason: format!(
                        "line {line}, column {}: the target {} is not a finite number{}",
                        shown(&name),
                        shown(text),
                        if float64 { "" } else { " that float32 holds" }
                    ),
                })
        })
        .collect::<Result<Vec<f64>>>()?;
    let y = t.label_ids.iter().map(|&id| values[id as usize]).collect();
    let width = t.feature_names.len();
    // The model keeps the CSV's column names, as for class labels.
    let mut d = Dataset::regression(t.x, width, y, vec![name.clone()])?
        .with_names(t.feature_names, &name)?;
    d.feature_means = t.means;
    Ok(d)
}

/// Reads a regression training set and, when given, a test set with the same columns, as `spec`
/// says (label column, `--ignore`, dialect, missing values, the model's feature names): features and
/// the numeric target column. Returns the notes of both files.
pub fn read_regression_with(
    train: &Path,
    test: Option<&Path>,
    spec: &ReadSpec,
) -> Result<(Dataset, Option<Dataset>, Vec<String>)> {
    let t = read_train_test_tables(train, test, spec)?;
    let float64 = spec.dialect.float64;
    Ok((
        table_targets(t.train, float64)?,
        t.test.map(|o| table_targets(o, float64)).transpose()?,
        t.notes,
    ))
}

/// Reads a regression data set: features and the numeric target column (`column`, default the
/// last), in a detected dialect.
pub fn read_regression(path: &Path, column: Option<&str>) -> Result<Dataset> {
    let spec = ReadSpec {
        label: column,
        ..ReadSpec::default()
    };
    Ok(read_regression_with(path, None, &spec)?.0)
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
            "loss",
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

/// The label columns `--label` names: one name, or several separated by commas (several sigmoid
/// outputs with binary cross-entropy, the multi-label recipe, or several regression targets).
pub fn label_columns(text: &str) -> Vec<String> {
    text.split(',').map(|s| s.trim().to_string()).collect()
}

/// Whether `--label` names several columns.
pub fn several_labels(text: Option<&str>) -> bool {
    text.is_some_and(|t| t.contains(','))
}

/// Reads a training set and, when given, a test set with the same columns, taking the label
/// `columns` as numeric targets (one value per column per row, `columns.len()` per row) and the
/// rest, less `spec.ignore`, as features (by the model's names, `spec.features`, when it has them).
/// A gap in a label column is refused naming its line: `--missing` other than the default is refused,
/// since it would fill labels too.
pub fn read_target_columns_with(
    train: &Path,
    test: Option<&Path>,
    spec: &ReadSpec,
    columns: &[String],
) -> Result<(Dataset, Option<Dataset>, Vec<String>)> {
    if spec.dialect.missing != crate::data::ingest::Missing::Error {
        return Err(Error::invalid(
            "missing",
            "fills gaps in every column, the label columns too; with several label columns, fill the gaps in the file itself",
        ));
    }
    if let Some(c) = crate::data::schema::first_duplicate(columns) {
        return Err(Error::invalid(
            "label",
            format!("names the column {} twice", shown(c)),
        ));
    }
    let whole = ReadSpec {
        label: None,
        labelled: false,
        features: None,
        skip_if_present: None,
        ..spec.clone()
    };
    let mut notes = Vec::new();
    let mut read = |path: &Path, features: Option<&[String]>| -> Result<Dataset> {
        let t = crate::data::csv::read_table(path, &whole)?;
        notes.extend(t.notes.iter().map(|n| format!("{}: {n}", path.display())));
        split_targets(t, columns, features)
    };
    let first = read(train, spec.features)?;
    let second = match test {
        Some(p) => Some(read(p, Some(&first.feature_names))?),
        None => None,
    };
    Ok((first, second, notes))
}

/// A table read without a label column as a dataset whose `columns` are its targets and whose
/// other columns are its features, in the order `features` names them (or the file's).
fn split_targets(t: Table, columns: &[String], features: Option<&[String]>) -> Result<Dataset> {
    let bad = |reason: String| Error::Csv {
        path: t.path.clone(),
        reason,
    };
    let names = &t.feature_names;
    let at = |name: &str| names.iter().position(|n| n == name);
    let targets: Vec<usize> = columns
        .iter()
        .map(|c| {
            at(c).ok_or_else(|| {
                bad(format!(
                    "no label column {} (--label); the columns read are: {}",
                    shown(c),
                    names
                        .iter()
                        .map(|n| shown(n))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
        })
        .collect::<Result<_>>()?;
    let inputs: Vec<usize> = match features {
        Some(f) => {
            let picked = f
                .iter()
                .enumerate()
                .map(|(k, name)| match at(name) {
                    Some(j) if !targets.contains(&j) => Ok(j),
                    Some(_) => Err(bad(format!(
                        "{} is a label column here but the model's input {}",
                        shown(name),
                        k + 1
                    ))),
                    None => Err(bad(format!(
                        "lacks the column {} the model takes as input {}",
                        shown(name),
                        k + 1
                    ))),
                })
                .collect::<Result<Vec<usize>>>()?;
            if let Some(j) = (0..names.len()).find(|j| !targets.contains(j) && !picked.contains(j))
            {
                return Err(bad(format!(
                    "has the column {}, which is neither one of the model's inputs nor a label column (--ignore NAME leaves it out)",
                    shown(&names[j])
                )));
            }
            picked
        }
        None => (0..names.len()).filter(|j| !targets.contains(j)).collect(),
    };
    if inputs.is_empty() {
        return Err(bad(
            "needs at least one feature column besides the label columns".into(),
        ));
    }
    let w = names.len();
    let pick = |cols: &[usize]| -> Vec<f64> {
        t.x.chunks(w)
            .flat_map(|row| cols.iter().map(move |&j| row[j]))
            .collect()
    };
    let (x, y) = (pick(&inputs), pick(&targets));
    let feature_names: Vec<String> = inputs.iter().map(|&j| names[j].clone()).collect();
    let mut d = Dataset::regression(x, inputs.len(), y, columns.to_vec())?
        .with_names(feature_names, &columns.join(","))?;
    d.feature_means = t.means;
    Ok(d)
}
