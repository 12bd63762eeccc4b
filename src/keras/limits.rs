//! The limits and checks every model-file reader and writer shares (`.h5`, `.keras`,
//! `.weights.h5`, `.safetensors`): what a reader accepts, a writer checks before writing.

use crate::data::DataSchema;
use crate::model::{LayerWeights, ModelSpec};

/// Most strings in one attribute array (layer or weight names).
pub const MAX_STRINGS: usize = 100_000;

/// The most bytes one string attribute may hold (`model_config`, `training_config`, a name list):
/// the `.keras` archive's limit for its JSON members.
pub const MAX_ATTRIBUTE: usize = 16 << 20;

/// The most layers a model file may declare (Keras models of this tool's layers are far smaller);
/// checked before the architecture is built, so that a file of a million layers is refused at once.
pub const MAX_LAYERS: usize = 10_000;

/// Refuses NaN or infinite weights, naming the layer and weight: the one check every reader
/// (`.h5`, `.keras`, `.weights.h5`, `.safetensors`) applies, as Keras's files never hold them
/// after a finished fit and this tool's training refuses to write them.
pub fn check_finite(spec: &ModelSpec, weights: &[LayerWeights]) -> std::result::Result<(), String> {
    let fan_ins = spec.fan_ins();
    for (i, (l, w)) in spec.layers.iter().zip(weights).enumerate() {
        for (s, values) in l.weights(fan_ins[i]).iter().zip(w) {
            if values.iter().any(|v| !v.is_finite()) {
                return Err(format!(
                    "layer '{}' weight '{}' holds NaN or infinite values",
                    l.name(),
                    s.name
                ));
            }
        }
    }
    Ok(())
}

/// Checks, before anything is written, that the text `m` carries fits what every reader of this
/// tool accepts (a writer never writes what its own reader refuses): the data's names together,
/// and the compile settings, each at most `MAX_ATTRIBUTE` bytes (16 MiB: the `.h5`
/// string attribute and `.keras` JSON member limit), at most `MAX_STRINGS` names.
pub fn check_writable(
    data: Option<&DataSchema>,
    training_config: Option<&str>,
) -> std::result::Result<(), String> {
    let mib = MAX_ATTRIBUTE >> 20;
    if let Some(d) = data {
        let bytes: usize = d
            .features
            .iter()
            .chain(&d.classes)
            .chain(&d.label)
            .map(String::len)
            .sum();
        if bytes > MAX_ATTRIBUTE {
            return Err(format!(
                "the data's feature, label and class names take {bytes} bytes, more than the limit of {mib} MiB"
            ));
        }
        let count = d.features.len().max(d.classes.len());
        if count > MAX_STRINGS {
            return Err(format!(
                "the data has {count} feature or class names, more than the limit of {MAX_STRINGS}"
            ));
        }
    }
    if let Some(tc) = training_config
        && tc.len() > MAX_ATTRIBUTE
    {
        return Err(format!(
            "its compile settings (training_config) take {} bytes, more than the limit of {mib} MiB",
            tc.len()
        ));
    }
    Ok(())
}
