//! Checkpoints by file type: Keras `model.h5` (see `keras`) and safetensors with the architecture in
//! its metadata, and `convert` between them.

use crate::data::DataSchema;
use crate::error::{Error, Result};
use crate::fsutil::write_bytes_atomic;
use crate::keras::{self, Format, KerasModel};
use crate::model::{LayerWeights, ModelSpec, var_name};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// The safetensors metadata key holding the `ModelSpec` as JSON.
pub const SPEC_KEY: &str = "keras_transfer.spec";
/// The safetensors metadata key holding the Keras dialect the model came from.
pub const FORMAT_KEY: &str = "keras_transfer.format";
/// The safetensors metadata key holding the learning rate of `training_config`, when known.
pub const LR_KEY: &str = "keras_transfer.learning_rate";
/// The safetensors metadata key holding the source file's `keras_version`.
pub const VERSION_KEY: &str = "keras_transfer.keras_version";
/// The safetensors metadata key holding the source file's `backend`.
pub const BACKEND_KEY: &str = "keras_transfer.backend";
/// The safetensors metadata key holding the data's names (`DataSchema::to_metadata_json`), when known.
pub const DATA_KEY: &str = "keras_transfer.data";

/// True when the path names a safetensors file (by extension).
pub fn is_safetensors(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
}

/// Loads a model from `.h5`/`.hdf5` (Keras) or `.safetensors` (this tool's layout).
pub fn load_model(path: &Path) -> Result<KerasModel> {
    if is_safetensors(path) {
        load_safetensors(path)
    } else {
        keras::load_h5(path)
    }
}

/// Saves a model by the target's extension: `.safetensors`, else Keras HDF5 in `m.format`. The
/// optimizer `m` names (if any) is recorded with it.
pub fn save_model(path: &Path, m: &KerasModel) -> Result<()> {
    if is_safetensors(path) {
        write_bytes_atomic(path, &to_safetensors_bytes(m)?)
    } else {
        keras::save_keras_model(path, m)
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A model as safetensors bytes: one float32 tensor per weight, `<layer>/<weight>` (a Dense kernel is
/// `(in, out)`), the architecture as JSON in the metadata, with the dialect, learning rate and Keras
/// version.
pub fn to_safetensors_bytes(m: &KerasModel) -> Result<Vec<u8>> {
    let spec = &m.spec;
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (i, (l, w)) in spec.layers.iter().zip(&m.weights).enumerate() {
        for (s, values) in l.weights(spec.fan_in(i)).iter().zip(w) {
            owned.push((
                var_name(l.name(), s.name),
                s.shape.clone(),
                f32_bytes(values),
            ));
        }
    }
    let st_err = |e: safetensors::SafeTensorError| Error::invalid("safetensors", e.to_string());
    let views = owned
        .iter()
        .map(|(n, s, d)| TensorView::new(Dtype::F32, s.clone(), d).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(st_err)?;
    let mut meta = HashMap::new();
    meta.insert(
        SPEC_KEY.to_string(),
        serde_json::to_string(spec).map_err(|e| Error::Internal(e.to_string()))?,
    );
    meta.insert(
        FORMAT_KEY.to_string(),
        format!("{:?}", m.format).to_lowercase(),
    );
    meta.insert(VERSION_KEY.to_string(), m.keras_version.clone());
    meta.insert(BACKEND_KEY.to_string(), m.backend.clone());
    if let Some(lr) = m.learning_rate {
        meta.insert(LR_KEY.to_string(), lr.to_string());
    }
    if let Some(d) = &m.data {
        meta.insert(DATA_KEY.to_string(), d.to_metadata_json().to_string());
    }
    safetensors::serialize(views, Some(meta)).map_err(st_err)
}

/// Reads a safetensors file written by `save_model`.
pub fn load_safetensors(path: &Path) -> Result<KerasModel> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::Safetensors {
            path: path.to_path_buf(),
            reason: "is not a regular file".into(),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    from_safetensors_bytes(&bytes).map_err(|reason| Error::Safetensors {
        path: path.to_path_buf(),
        reason,
    })
}

/// Parses bytes made by `to_safetensors_bytes`; the error says what is wrong.
pub fn from_safetensors_bytes(bytes: &[u8]) -> std::result::Result<KerasModel, String> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
    let md = header.metadata().clone().unwrap_or_default();
    let spec_json = md
        .get(SPEC_KEY)
        .ok_or_else(|| format!("no '{SPEC_KEY}' metadata describing the architecture"))?;
    let spec: ModelSpec =
        serde_json::from_str(spec_json).map_err(|e| format!("bad architecture metadata: {e}"))?;
    spec.validate().map_err(|e| e.to_string())?;
    let read = |name: &str, shape: &[usize]| -> std::result::Result<Vec<f32>, String> {
        let t = st.tensor(name).map_err(|_| format!("no tensor '{name}'"))?;
        if t.dtype() != Dtype::F32 || t.shape() != shape {
            return Err(format!(
                "tensor '{name}' is {:?} {:?}, expected F32 {shape:?}",
                t.dtype(),
                t.shape()
            ));
        }
        Ok(t.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    };
    let weights = spec
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            l.weights(spec.fan_in(i))
                .iter()
                .map(|s| read(&var_name(l.name(), s.name), &s.shape))
                .collect::<std::result::Result<LayerWeights, String>>()
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    let format = if md.get(FORMAT_KEY).map(String::as_str) == Some("universal") {
        Format::Universal
    } else {
        Format::Keras3
    };
    let learning_rate = match md.get(LR_KEY) {
        None => None,
        Some(s) => Some(
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or_else(|| format!("bad learning rate '{s}' in '{LR_KEY}'"))?,
        ),
    };
    let data = match md.get(DATA_KEY) {
        None => None,
        Some(s) => {
            let v: serde_json::Value =
                serde_json::from_str(s).map_err(|e| format!("bad '{DATA_KEY}' metadata: {e}"))?;
            let d = DataSchema::from_metadata_json(&v)
                .map_err(|e| format!("bad '{DATA_KEY}' metadata: {e}"))?
                .ok_or_else(|| format!("'{DATA_KEY}' metadata names no features"))?;
            d.check(spec.input_dim, spec.output_dim())
                .map_err(|e| format!("its stored data names do not fit the model: {e}"))?;
            Some(d)
        }
    };
    Ok(KerasModel {
        data,
        spec,
        weights,
        keras_version: md.get(VERSION_KEY).cloned().unwrap_or_default(),
        backend: md.get(BACKEND_KEY).cloned().unwrap_or_default(),
        format,
        learning_rate,
    })
}

/// Converts between `.h5` and `.safetensors` (either direction, by the extensions), keeping the
/// architecture, the dialect (unless `format` says otherwise) and the optimizer. A model without an
/// optimizer stays without one.
pub fn convert(input: &Path, output: &Path, format: Option<Format>) -> Result<()> {
    convert_model(&load_model(input)?, output, format)
}

/// Writes an already loaded model by the output's extension (see `convert`).
pub fn convert_model(m: &KerasModel, output: &Path, format: Option<Format>) -> Result<()> {
    let m = KerasModel {
        format: format.unwrap_or(m.format),
        ..m.clone()
    };
    save_model(output, &m)
}
