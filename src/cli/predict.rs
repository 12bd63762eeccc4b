//! `keras-transfer predict`: per row of a CSV file, a saved model's predicted class (by name) and each
//! class's probability (`p_<class>`), as CSV or JSON, with a column of the input carried through.

use crate::cli::args::{OutputFormat, PredictArgs, class_list, model_names, tell, training_means};
use crate::cli::output::emit;
use crate::cli::sandbox::load_model_while;
use anyhow::Result;
use keras_transfer::Error;
use keras_transfer::data::arrays::{prefetch, read_table_prefetched};
use keras_transfer::data::classes::known_classes;
use keras_transfer::data::classes::with_own_classes;
use keras_transfer::data::csv::{ReadSpec, check_width, read_table};
use keras_transfer::data::ingest::Missing;
use keras_transfer::fsutil::write_bytes_atomic;
use keras_transfer::train::fit::argmax;

pub fn run(a: PredictArgs) -> Result<()> {
    if let Some(out) = &a.output {
        keras_transfer::fsutil::check_target(out)?;
    }
    // A NumPy input's arrays are read while the child reads the model.
    let (m, early) = load_model_while(&a.model, || {
        prefetch(&a.input, a.label.as_deref() == Some("y"))
    });
    let m = m?;
    let model = m.to_model()?;
    let mut csv = a.csv.clone();
    csv.float64 = m.spec.dtype == keras_transfer::FloatDtype::Float64;
    csv.sample_shape = m.spec.sample_shape();
    let mut dialect = csv.dialect();
    let given = class_list(a.classes.as_deref())?;
    if dialect.missing == Missing::Drop {
        return Err(Error::invalid(
            "--missing",
            "drop would leave rows out of predict's output; use mean or zero to fill them",
        )
        .into());
    }
    let names = model_names(&a.model, m.data.as_ref());
    training_means(&a.model, names, &mut dialect)?;
    let spec = ReadSpec {
        label: a.label.as_deref(),
        features: names.map(|n| n.features.as_slice()),
        ignore: &csv.ignore,
        skip_if_present: names
            .and_then(|n| n.label.as_deref())
            .filter(|l| Some(*l) != a.label.as_deref()),
        dialect,
        sample_shape: csv.sample_shape.clone(),
        skip_bad_images: csv.skip_bad_images,
        ..ReadSpec::default()
    };
    let table = match early {
        Some(pre) => read_table_prefetched(&a.input, &spec, pre)?,
        None => read_table(&a.input, &spec)?,
    };
    let given = with_own_classes(given, table.classes.as_deref(), &a.input)?;
    tell(&table.notes);
    check_width(&table, m.spec.input_dim)?;
    let p = model.predict(&table.x)?;
    let k = m.spec.output_dim();
    let target = match m.compile() {
        Some(Ok(c)) => Some(c.loss.target()),
        _ => None,
    };
    // A regression model's outputs are its targets' values, under the targets' names.
    let numeric = target == Some(keras_transfer::Target::Numeric);
    // One sigmoid unit: the probability of the second of two classes; the class is p > 0.5.
    let binary = !numeric
        && k == 1
        && (target == Some(keras_transfer::Target::Binary)
            || m.spec.output_activation() == keras_transfer::model::Activation::Sigmoid);
    // Several sigmoid units: multi-label, each output its own yes/no (p > 0.5).
    let multi = !numeric
        && k > 1
        && (target == Some(keras_transfer::Target::Binary)
            || (target.is_none()
                && m.spec.output_activation() == keras_transfer::model::Activation::Sigmoid));
    let stored = names.map_or(&[][..], |n| n.classes.as_slice());
    let classes: Vec<String> = if numeric || multi {
        match stored.len() == k {
            true => stored.to_vec(),
            false => (0..k).map(|c| c.to_string()).collect(),
        }
    } else {
        let outputs = if binary { 2 } else { k };
        known_classes(&a.model, stored, given.as_deref(), outputs)?
            .unwrap_or_else(|| (0..outputs).map(|c| c.to_string()).collect())
    };
    // An image folder's rows are its files: the first column names each.
    let mut columns: Vec<String> = table.row_names.iter().map(|_| "file".to_string()).collect();
    columns.extend(table.label_name.iter().cloned());
    if numeric {
        columns.extend(classes.iter().map(|c| format!("predicted_{c}")));
    } else if multi {
        columns.extend(classes.iter().map(|c| format!("predicted_{c}")));
        columns.extend(classes.iter().map(|c| format!("p_{c}")));
    } else if binary {
        columns.push("predicted".into());
        columns.push(format!("p_{}", classes[1]));
    } else {
        columns.push("predicted".into());
        columns.extend(classes.iter().map(|c| format!("p_{c}")));
    }
    // Each row's values as text: the carried label (a string), the predicted class (a string),
    // then the probabilities (numbers, the shortest form of the model's dtype: float32 or
    // float64); or the regression outputs.
    let float64 = m.spec.dtype == keras_transfer::FloatDtype::Float64;
    let rows = p.chunks(k).enumerate().map(|(i, probs)| {
        let mut strings: Vec<&str> = table
            .row_names
            .as_ref()
            .and_then(|r| r.get(i))
            .map(String::as_str)
            .into_iter()
            .chain(table.label_text(i))
            .collect();
        if binary {
            strings.push(&classes[usize::from(probs[0] > 0.5)]);
        } else if multi {
            strings.extend(probs.iter().map(|&p| if p > 0.5 { "1" } else { "0" }));
        } else if !numeric {
            strings.push(&classes[argmax(probs)]);
        }
        let text = |&v: &f64| {
            if float64 {
                v.to_string()
            } else {
                (v as f32).to_string()
            }
        };
        (strings, probs.iter().map(text).collect::<Vec<_>>())
    });
    let text = match a.format {
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(&columns)?;
            for (strings, numbers) in rows {
                w.write_record(strings.iter().map(|s| s.to_string()).chain(numbers))?;
            }
            w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?
        }
        OutputFormat::Json => {
            let mut out = String::from("[\n");
            for (i, (strings, numbers)) in rows.enumerate() {
                let fields: Vec<String> = columns
                    .iter()
                    .zip(
                        strings
                            .iter()
                            .map(|s| serde_json::to_string(s).unwrap_or_default())
                            .chain(numbers),
                    )
                    .map(|(c, v)| format!("{}: {v}", serde_json::to_string(c).unwrap_or_default()))
                    .collect();
                let sep = if i + 1 < table.rows { "," } else { "" };
                out.push_str(&format!("  {{{}}}{sep}\n", fields.join(", ")));
            }
            out.push_str("]\n");
            out.into_bytes()
        }
    };
    match &a.output {
        Some(out) => write_bytes_atomic(out, &text)?,
        None => {
            for line in String::from_utf8_lossy(&text).lines() {
                emit(line)?;
            }
        }
    }
    Ok(())
}
