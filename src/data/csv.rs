//! CSV I/O: a user's labelled data (header row, columns and labels by name, any common dialect),
//! feature-only inputs, and float tables written in the shortest round-trip form. The bytes are
//! parsed by `ingest`.

use crate::data::Dataset;
use crate::data::ingest::{Dialect, Role, csv_err, parse, read_file_header};
pub use crate::data::table::{
    MAX_CLASSES, ReadSpec, Table, canonical_label, check_class_count, class_list_text,
    sorted_classes,
};
use crate::error::{Error, Result, shown};
use crate::fsutil::write_atomic;
use std::path::Path;

/// How to read the label column of a labelled CSV (the older, narrower form of `ReadSpec`).
#[derive(Debug, Clone, Default)]
pub struct LabelSpec<'a> {
    /// The label column's header name; `None` means the last column.
    pub column: Option<&'a str>,
    /// The known classes, in index order (e.g. from the training file or the model). A label outside
    /// them is an error. `None`: the file's own distinct labels, sorted (numerically when every label
    /// is an integer), become the classes.
    pub classes: Option<&'a [String]>,
}

/// Column names as an error message lists them (each `shown`, at most 12).
fn list(names: &[String]) -> String {
    let mut v: Vec<String> = names.iter().take(12).map(|n| shown(n)).collect();
    if names.len() > 12 {
        v.push(format!("... ({} columns)", names.len()));
    }
    v.join(", ")
}

/// Reads a CSV as `spec` says: dialect recognised (delimiter, BOM, CRLF, quotes, a pandas index
/// column, a trailing empty column), columns picked by name, missing values handled.
pub fn read_table(path: &Path, spec: &ReadSpec) -> Result<Table> {
    if crate::data::arrays::is_numpy_path(path) {
        return crate::data::arrays::read_table(path, spec);
    }
    if path.is_dir() {
        return crate::data::images::read_table(path, spec);
    }
    let header = read_file_header(path, &spec.dialect)?;
    let names = &header.names;
    let find = |name: &str| names.iter().position(|h| h == name);
    let mut roles = vec![None; names.len()];
    for name in spec.ignore {
        let j = find(name).ok_or_else(|| {
            csv_err(
                path,
                format!(
                    "--ignore names {}, which is not a column; the header has: {}",
                    shown(name),
                    list(names)
                ),
            )
        })?;
        roles[j] = Some(Role::Skip);
    }
    let label = match (spec.label, spec.labelled) {
        (Some(name), labelled) => match find(name) {
            Some(j) => Some(j),
            None if labelled => {
                return Err(csv_err(
                    path,
                    format!(
                        "no label column {}; the header has: {}",
                        shown(name),
                        list(names)
                    ),
                ));
            }
            None => {
                return Err(csv_err(
                    path,
                    format!(
                        "no column {} (--label); the header has: {}",
                        shown(name),
                        list(names)
                    ),
                ));
            }
        },
        (None, true) => (0..names.len()).rev().find(|&j| roles[j].is_none()),
        (None, false) => None,
    };
    if let Some(j) = label {
        if roles[j].is_some() {
            return Err(csv_err(
                path,
                format!("the label column {} is also in --ignore", shown(&names[j])),
            ));
        }
        roles[j] = Some(Role::Label);
    }
    // A multi-label model's label columns are all left out (`y0,y1,y2`).
    for name in spec.skip_if_present.into_iter().flat_map(|t| t.split(',')) {
        if let Some(j) = find(name.trim()) {
            roles[j].get_or_insert(Role::Skip);
        }
    }
    match spec.features {
        Some(wanted) => {
            for (k, name) in wanted.iter().enumerate() {
                let j = find(name).ok_or_else(|| {
                    csv_err(
                        path,
                        format!(
                            "lacks the column {} the model takes as input {}; the header has: {}",
                            shown(name),
                            k + 1,
                            list(names)
                        ),
                    )
                })?;
                match roles[j] {
                    None => roles[j] = Some(Role::Feature(k)),
                    Some(Role::Label) => {
                        return Err(csv_err(
                            path,
                            format!(
                                "{} is the label column here but one of the model's inputs",
                                shown(name)
                            ),
                        ));
                    }
                    Some(_) => {
                        return Err(csv_err(
                            path,
                            format!("--ignore names {}, one of the model's inputs", shown(name)),
                        ));
                    }
                }
            }
            let extra: Vec<&str> = (0..names.len())
                .filter(|&j| roles[j].is_none())
                .map(|j| names[j].as_str())
                .collect();
            if !extra.is_empty() {
                return Err(csv_err(
                    path,
                    format!(
                        "has column(s) {} that the model does not take; leave them out with --ignore {}",
                        extra
                            .iter()
                            .map(|e| shown(e))
                            .collect::<Vec<_>>()
                            .join(", "),
                        // The flag as the user would type it, when the names show unchanged.
                        if extra.iter().all(|e| shown(e) == format!("'{e}'")) && extra.len() <= 12 {
                            extra.join(",")
                        } else {
                            "NAME,...".to_string()
                        }
                    ),
                ));
            }
        }
        None => {
            for (k, r) in roles.iter_mut().filter(|r| r.is_none()).enumerate() {
                *r = Some(Role::Feature(k));
            }
        }
    }
    let roles: Vec<Role> = roles.into_iter().map(|r| r.unwrap_or(Role::Skip)).collect();
    let mut feature_names = vec![String::new(); roles.len()];
    let mut width = 0;
    for (j, r) in roles.iter().enumerate() {
        if let Role::Feature(k) = r {
            feature_names[*k] = names[j].clone();
            width += 1;
        }
    }
    feature_names.truncate(width);
    if width == 0 {
        return Err(csv_err(
            path,
            "needs at least one feature column besides the label column",
        ));
    }
    let parsed = parse::<f64>(path, &header, &roles, &spec.dialect)?;
    let mut notes = header.notes.clone();
    notes.extend(parsed.notes);
    Ok(Table {
        path: path.to_path_buf(),
        feature_names,
        x: parsed.x,
        rows: parsed.rows,
        label_name: label.map(|j| names[j].clone()),
        label_ids: parsed.label_ids,
        label_values: parsed.label_values,
        means: parsed.means,
        notes,
        classes: None,
        row_names: None,
        folder: None,
    })
}

/// Reads a labelled CSV as a data set: `spec.classes` (or the file's own sorted labels) as classes.
/// Returns the notes of `Table::notes` with it.
pub fn read_dataset(path: &Path, spec: &ReadSpec) -> Result<(Dataset, Vec<String>)> {
    let spec = ReadSpec {
        labelled: true,
        ..spec.clone()
    };
    let t = read_table(path, &spec)?;
    let classes = match spec.classes {
        Some(c) => c.to_vec(),
        None => {
            check_class_count(&t)?;
            sorted_classes(&t.distinct_labels())
        }
    };
    let notes = t.notes.clone();
    Ok((t.into_dataset(classes, spec.unknown_label_hint)?, notes))
}

/// Reads a labelled CSV: a header row, numeric feature columns, and one label column.
pub fn read_labelled(path: &Path, spec: &LabelSpec) -> Result<Dataset> {
    let spec = ReadSpec {
        label: spec.column,
        classes: spec.classes,
        ..ReadSpec::default()
    };
    Ok(read_dataset(path, &spec)?.0)
}

/// Reads a feature-only CSV for prediction: every column is a feature except `drop` (a label column to
/// ignore). The column count must equal `width` (the model's inputs).
pub fn read_features(path: &Path, width: usize, drop: Option<&str>) -> Result<(Vec<f64>, usize)> {
    let t = read_table(
        path,
        &ReadSpec {
            label: drop,
            ..ReadSpec::default()
        },
    )?;
    check_width(&t, width)?;
    Ok((t.x, t.rows))
}

/// Reads a CSV whose every column is numeric straight into one row-major float32 array (each value
/// parsed exactly, then rounded once to float32), in parallel, with no other copy of the values:
/// the column names, the values and the row count.
pub fn read_numeric_f32(path: &Path, dialect: &Dialect) -> Result<(Vec<String>, Vec<f32>, usize)> {
    let header = read_file_header(path, dialect)?;
    let roles: Vec<Role> = (0..header.names.len()).map(Role::Feature).collect();
    let parsed = parse::<f32>(path, &header, &roles, dialect)?;
    Ok((header.names, parsed.x, parsed.rows))
}

/// Refuses a table whose feature count is not the model's input count, listing its columns.
pub fn check_width(t: &Table, width: usize) -> Result<()> {
    let n = t.feature_names.len();
    if n == width {
        return Ok(());
    }
    Err(csv_err(
        &t.path,
        format!(
            "has {n} feature columns ({}), the model expects {width} inputs{}",
            list(&t.feature_names),
            if t.label_name.is_none() && n > width {
                "; use --label NAME to drop a label column"
            } else {
                ""
            }
        ),
    ))
}

/// Writes a dataset as `x0,...,x{F-1},y` with shortest round-trip floats and integer labels.
pub fn write_dataset(path: &Path, data: &Dataset) -> Result<()> {
    let mut header = data.feature_names.clone();
    header.push(data.label_name.clone());
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
/// one class list: the training file's classes, sorted (numerically when all are integers).
pub fn read_train_test(
    train: &Path,
    test: Option<&Path>,
    column: Option<&str>,
) -> Result<(Dataset, Option<Dataset>)> {
    let spec = ReadSpec {
        label: column,
        ..ReadSpec::default()
    };
    let (train, test, _) = read_train_test_with(train, test, &spec)?;
    Ok((train, test))
}

/// A training table and, when given, a test table read with the same columns: what
/// `read_train_test_tables` gives, before the class list is settled.
#[derive(Debug)]
pub struct TrainTest {
    pub train: Table,
    pub test: Option<Table>,
    /// The notes of both files, each naming its file.
    pub notes: Vec<String>,
}

/// Reads a training CSV and, when given, a test CSV whose features are picked by the training file's
/// column names (or `spec.features`), in any order, and whose label column is the training file's.
pub fn read_train_test_tables(
    train: &Path,
    test: Option<&Path>,
    spec: &ReadSpec,
) -> Result<TrainTest> {
    let spec = ReadSpec {
        labelled: true,
        ..spec.clone()
    };
    let first = read_table(train, &spec)?;
    let mut notes: Vec<String> = first
        .notes
        .iter()
        .map(|n| format!("{}: {n}", train.display()))
        .collect();
    let other = match test {
        Some(test) => {
            // Gaps in the test file are filled with the training file's means, as a model's
            // inputs are at predict time.
            let mut dialect = spec.dialect.clone();
            if first.means.is_some() {
                dialect.means = first.means.clone();
            }
            let t = read_table(
                test,
                &ReadSpec {
                    features: Some(&first.feature_names),
                    label: first.label_name.as_deref(),
                    dialect,
                    ..spec.clone()
                },
            )?;
            notes.extend(t.notes.iter().map(|n| format!("{}: {n}", test.display())));
            Some(t)
        }
        None => None,
    };
    Ok(TrainTest {
        train: first,
        test: other,
        notes,
    })
}

impl TrainTest {
    /// The data sets, with `classes` as the class list (`hint` added to the error for a label outside
    /// it), or, when `None`, the training file's own distinct labels, sorted (numerically when all are
    /// integers): a training file with a single class, or more than `MAX_CLASSES`, is refused, and so
    /// is a test label the training file lacks (its output would never be trained).
    pub fn into_datasets(
        self,
        classes: Option<Vec<String>>,
        hint: &str,
    ) -> Result<(Dataset, Option<Dataset>, Vec<String>)> {
        let (classes, test_hint) = match classes.or_else(|| self.train.classes.clone()) {
            Some(c) => (c, hint),
            None => (
                own_classes(&self.train)?,
                "; every class must occur in the training data (a class only in the test file would never be trained)",
            ),
        };
        let train = self.train.into_dataset(classes.clone(), hint)?;
        let test = self
            .test
            .map(|o| o.into_dataset(classes, test_hint))
            .transpose()?;
        Ok((train, test, self.notes))
    }
}

/// A training table's own classes: its distinct labels sorted (at least two, at most `MAX_CLASSES`).
pub fn own_classes(t: &Table) -> Result<Vec<String>> {
    check_class_count(t)?;
    let own = sorted_classes(&t.distinct_labels());
    if own.len() < 2 {
        return Err(csv_err(
            &t.path,
            format!(
                "every row has the label {} in column {}; a classifier needs at least two classes",
                shown(own.first().map_or("", String::as_str)),
                shown(t.label_name.as_deref().unwrap_or("?"))
            ),
        ));
    }
    Ok(own)
}

/// `read_train_test` with every setting of `ReadSpec` (see `read_train_test_tables` and
/// `TrainTest::into_datasets`, given `spec.classes`).
pub fn read_train_test_with(
    train: &Path,
    test: Option<&Path>,
    spec: &ReadSpec,
) -> Result<(Dataset, Option<Dataset>, Vec<String>)> {
    read_train_test_tables(train, test, spec)?.into_datasets(
        spec.classes.map(<[String]>::to_vec),
        spec.unknown_label_hint,
    )
}
