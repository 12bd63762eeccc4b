//! The classes a model's outputs stand for: the names the model file stores, else the user's list
//! (`--classes a,b,c` or `--classes @FILE`), else, for integer labels, the output indices; text
//! labels on a model that stores no class names are refused rather than numbered in some order.

use crate::data::csv::{MAX_CLASSES, Table, canonical_label};
use crate::error::{Error, Result, shown};
use std::path::Path;

/// The longest class-list file `--classes @FILE` reads, in bytes.
pub const MAX_CLASS_FILE_BYTES: u64 = 16 << 20;

/// Reads a class list as the user gives it: names separated by commas, or `@FILE` for a text file
/// with one name per line (blank lines skipped). Names are trimmed; an empty or repeated name, or
/// more than `MAX_CLASSES` names, is refused.
pub fn parse_class_list(text: &str) -> Result<Vec<String>> {
    let bad = |reason: String| Error::invalid("classes", reason);
    let names: Vec<String> = match text.strip_prefix('@') {
        Some(file) => {
            let path = Path::new(file);
            let size = std::fs::metadata(path)
                .map_err(|e| Error::io(path, e))?
                .len();
            if size > MAX_CLASS_FILE_BYTES {
                return Err(bad(format!(
                    "{file} is {size} bytes, more than the {MAX_CLASS_FILE_BYTES} a class list may take"
                )));
            }
            let body = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            body.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        }
        None => text.split(',').map(|s| s.trim().to_string()).collect(),
    };
    if names.len() > MAX_CLASSES {
        return Err(bad(format!(
            "{} classes, more than the {MAX_CLASSES} keras-transfer takes",
            names.len()
        )));
    }
    if names.len() < 2 || names.iter().any(String::is_empty) {
        return Err(bad(format!(
            "expected two or more class names, comma-separated or one per line in @FILE, got {}",
            shown(text)
        )));
    }
    let canonical: Vec<String> = names.iter().map(|n| canonical_label(n)).collect();
    if let Some(d) = crate::data::schema::first_duplicate(&canonical) {
        return Err(bad(format!("the class {} is listed twice", shown(d))));
    }
    Ok(canonical)
}

/// The class names of a model's `outputs` outputs (2 for one sigmoid unit) when they are known: the
/// model's stored ones (`stored`, empty when none), or the user's (`given`), which must agree with the
/// stored ones and have one name per output. `None`: neither is known.
pub fn known_classes(
    model: &Path,
    stored: &[String],
    given: Option<&[String]>,
    outputs: usize,
) -> Result<Option<Vec<String>>> {
    match given {
        Some(g) if !stored.is_empty() && g != stored => Err(Error::invalid(
            "classes",
            format!(
                "{} stores its classes ({}); --classes gives {} in another order or other names",
                model.display(),
                short_list(stored),
                short_list(g)
            ),
        )),
        Some(g) if g.len() != outputs => Err(Error::invalid(
            "classes",
            format!(
                "lists {} classes, {} has {outputs} outputs",
                g.len(),
                model.display()
            ),
        )),
        Some(g) => Ok(Some(g.to_vec())),
        None if !stored.is_empty() => Ok(Some(stored.to_vec())),
        None => Ok(None),
    }
}

/// The classes that labelled data `table` is scored against on a model of `outputs` outputs (2 for
/// one sigmoid unit): the known ones (`known_classes`), else the output indices "0".."outputs-1" when
/// every label is an integer (written `1` or `1.0`). A label that is a number but no integer is refused
/// naming its line; text labels without known classes are refused, asking for `--classes`.
pub fn classes_for_labels(
    table: &Table,
    model: &Path,
    stored: &[String],
    given: Option<&[String]>,
    outputs: usize,
) -> Result<Vec<String>> {
    if let Some(c) = known_classes(model, stored, given, outputs)? {
        return Ok(c);
    }
    for (text, line) in &table.label_values {
        let label = canonical_label(text);
        if label.parse::<i64>().is_ok() {
            continue;
        }
        if label.parse::<f64>().is_ok() {
            return Err(Error::Csv {
                path: table.path.clone(),
                reason: format!(
                    "line {line}: the label {} is not an integer, and {} stores no class names, so labels are its output indices 0..{}",
                    shown(text),
                    model.display(),
                    outputs.saturating_sub(1)
                ),
            });
        }
        return Err(Error::invalid(
            "classes",
            format!(
                "{} has text labels ({} on line {line}) and {} stores no class names: give the class of each of its {outputs} outputs in order with --classes a,b,c or --classes @FILE (one per line)",
                table.path.display(),
                shown(text),
                model.display()
            ),
        ));
    }
    Ok((0..outputs).map(|k| k.to_string()).collect())
}

/// A few names of a class list, for a message.
fn short_list(names: &[String]) -> String {
    let mut v: Vec<String> = names.iter().take(6).map(|n| shown(n)).collect();
    if names.len() > 6 {
        v.push(format!("... {} in all", names.len()));
    }
    v.join(", ")
}

/// The class order: the user's (`classes`) or the data's own (an image folder's subfolders); both
/// given, they must name the same classes (Keras's `class_names` only reorders the subfolders).
pub fn with_own_classes(
    given: Option<Vec<String>>,
    own: Option<&[String]>,
    path: &Path,
) -> Result<Option<Vec<String>>> {
    Ok(match (given, own) {
        (Some(g), Some(own)) => {
            let (mut a, mut b) = (g.clone(), own.to_vec());
            a.sort();
            b.sort();
            if a != b {
                return Err(Error::invalid(
                    "classes",
                    format!(
                        "lists [{}], but {} has the class subfolders [{}]; the classes may only reorder them",
                        g.join(", "),
                        path.display(),
                        own.join(", ")
                    ),
                ));
            }
            Some(g)
        }
        (g, own) => g.or_else(|| own.map(<[String]>::to_vec)),
    })
}
