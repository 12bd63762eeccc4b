//! `keras-transfer inspect`: a model file's format, layers, shapes and parameters.

use crate::cli::args::InspectArgs;
use crate::cli::output::{say, summary_lines};
use crate::cli::sandbox::load_model_guarded as load_model;
use anyhow::Result;
use keras_transfer::Format;
use keras_transfer::checkpoint::FileKind;
use keras_transfer::error::{escaped, shown};

pub fn run(a: InspectArgs) -> Result<()> {
    let m = load_model(&a.file)?;
    let layout = match m.format {
        Format::Keras3 => "keras3",
        Format::Universal => "keras2 (universal)",
    };
    let kind = match FileKind::of(&a.file) {
        Some(FileKind::Safetensors) => "safetensors",
        Some(FileKind::KerasArchive) => "Keras 3 archive (.keras)",
        _ => "Keras HDF5",
    };
    let version = if m.keras_version.is_empty() {
        "-".to_string()
    } else {
        m.keras_version.clone()
    };
    say!(
        "{}: {kind}, keras_version {version}, {layout} layout, {} weights",
        a.file.display(),
        m.spec.dtype.keras_name()
    );
    for line in summary_lines(&m.spec) {
        say!("{line}");
    }
    if let Some(g) = &m.spec.graph {
        say!(
            "Model inputs, fed from each row's features in this order: {}",
            escaped(&g.describe_inputs())
        );
    }
    match m.compile() {
        Some(Ok(c)) => {
            say!("Optimizer: {}", c.optimizer.describe());
            let keys: Vec<&str> = c.metrics.iter().map(|x| x.key).collect();
            let metrics = if keys.is_empty() {
                "none".to_string()
            } else {
                keys.join(", ")
            };
            say!(
                "Loss: {}, metric{}: {metrics}",
                c.loss.describe(),
                if keys.len() > 1 { "s" } else { "" }
            );
        }
        Some(Err(e)) => say!("Optimizer: compiled with {e}, which keras-transfer cannot train"),
        None => say!("Optimizer: none (the file is not compiled)"),
    }
    match &m.data {
        Some(d) => {
            // Names from the file, quoted and escaped (a crafted name holds no terminal escape).
            let list = |v: &[String]| v.iter().map(|n| shown(n)).collect::<Vec<_>>().join(", ");
            say!("Inputs: {}", list(&d.features));
            say!(
                "Label: {}; classes: {}",
                d.label.as_deref().map_or("-".to_string(), shown),
                list(&d.classes)
            );
        }
        None => say!("Data names: none (CSV columns are read by position)"),
    }
    Ok(())
}
