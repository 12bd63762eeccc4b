//! Checkpoints by file name: Keras `.h5`/`.hdf5`, Keras 3 `.keras` archives and `.weights.h5` weights
//! files (see `keras`), and safetensors with the architecture in its metadata; `convert` between them.

use crate::data::DataSchema;
use crate::error::{Error, Result};
use crate::fsutil::{check_target, write_bytes_atomic};
use crate::keras::limits::{MAX_LAYERS, check_finite, check_writable};
use crate::keras::{self, CompileSettings, Format, KerasModel, archive};
use crate::model::{FloatDtype, LayerWeights, ModelSpec, var_name};
use safetensors::tensor::{Dtype, Metadata, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// The safetensors metadata key holding the `ModelSpec` as JSON.
pub const SPEC_KEY: &str = "keras_transfer.spec";
/// The safetensors metadata key holding the Keras dialect the model came from.
pub const FORMAT_KEY: &str = "keras_transfer.format";
/// The safetensors metadata key holding the learning rate of `training_config`, when known.
pub const LR_KEY: &str = "keras_transfer.learning_rate";
/// The safetensors metadata key holding the `training_config` JSON (the compile settings), when
/// compiled.
pub const TRAINING_KEY: &str = "keras_transfer.training_config";
/// The safetensors metadata key holding the optimizer's saved variables as JSON, when known.
pub const OPTIMIZER_KEY: &str = "keras_transfer.optimizer_state";
/// The safetensors metadata key holding the source file's `keras_version`.
pub const VERSION_KEY: &str = "keras_transfer.keras_version";
/// The safetensors metadata key holding the source file's `backend`.
pub const BACKEND_KEY: &str = "keras_transfer.backend";
/// The safetensors metadata key holding the data's names (`DataSchema::to_metadata_json`), when known.
pub const DATA_KEY: &str = "keras_transfer.data";

/// A model file's format, picked by its name as Keras picks it (by suffix, case-insensitively).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `.h5` / `.hdf5`: Keras's legacy HDF5 model file, in the dialect of `KerasModel::format`.
    KerasH5,
    /// `.keras`: Keras 3's zip archive.
    KerasArchive,
    /// `.weights.h5`: Keras 3's weights-only file (`model.save_weights`).
    WeightsH5,
    /// `.safetensors`: the weights, with the architecture in the metadata.
    Safetensors,
}

/// What every model-file error about an unknown name lists.
const KNOWN: &str = ".h5 or .hdf5 (Keras HDF5), .keras (Keras 3 archive), .weights.h5 (weights only) or .safetensors";

impl FileKind {
    /// The kind `path`'s name asks for, or `None` for a name this tool does not know.
    pub fn of(path: &Path) -> Option<FileKind> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".weights.h5") {
            Some(FileKind::WeightsH5)
        } else if name.ends_with(".h5") || name.ends_with(".hdf5") {
            Some(FileKind::KerasH5)
        } else if name.ends_with(".keras") {
            Some(FileKind::KerasArchive)
        } else if name.ends_with(".safetensors") {
            Some(FileKind::Safetensors)
        } else {
            None
        }
    }

    /// The kind of a model file to write, or a clear error for a name that is no model file this
    /// tool writes, or a target it must not write (see `fsutil::check_target`). Call it before any
    /// work, so that a bad `--out` fails before training.
    pub fn of_target(path: &Path) -> Result<FileKind> {
        let kind = FileKind::of(path).ok_or_else(|| {
            Error::invalid(
                "output file",
                format!("{}: the name must end in {KNOWN}", path.display()),
            )
        })?;
        check_target(path)?;
        Ok(kind)
    }
}

/// True when the path names a safetensors file (by extension).
pub fn is_safetensors(path: &Path) -> bool {
    FileKind::of(path) == Some(FileKind::Safetensors)
}

/// Loads a model from `.h5`/`.hdf5` (Keras), `.keras` (Keras 3) or `.safetensors` (this tool's
/// layout). A `.weights.h5` file has no architecture: see `load_model_with_weights`. Any other name
/// is read as Keras HDF5, whose reader names what the file is.
pub fn load_model(path: &Path) -> Result<KerasModel> {
    match FileKind::of(path) {
        Some(FileKind::Safetensors) => load_safetensors(path),
        Some(FileKind::KerasArchive) => archive::load_keras(path),
        Some(FileKind::WeightsH5) => Err(Error::NotKerasModel {
            path: path.to_path_buf(),
            reason:
                "a weights-only file (.weights.h5) has no architecture; put it into a model file \
                     of that architecture with `convert MODEL OUT --weights FILE`"
                    .into(),
        }),
        Some(FileKind::KerasH5) | None => keras::load_h5(path),
    }
}

/// Loads the architecture and compile settings of `model` and the weights of `weights`, a Keras 3
/// `.weights.h5` file (as `model.load_weights` does).
pub fn load_model_with_weights(model: &Path, weights: &Path) -> Result<KerasModel> {
    if FileKind::of(weights) != Some(FileKind::WeightsH5) {
        return Err(Error::invalid(
            "weights",
            format!(
                "{}: expected a Keras 3 weights file named *.weights.h5",
                weights.display()
            ),
        ));
    }
    archive::load_weights_h5(weights, &load_model(model)?)
}

/// Saves a model by the target's name (`FileKind`): Keras HDF5 in `m.format`, a Keras 3 `.keras`
/// archive, a `.weights.h5` weights file, or safetensors. The optimizer `m` names (if any) is
/// recorded with it. Any other name, or a target `fsutil::check_target` refuses, is an error and
/// nothing is written.
pub fn save_model(path: &Path, m: &KerasModel) -> Result<()> {
    let kind = FileKind::of_target(path)?;
    let unwritable = |found: String| Error::Unsupported {
        path: path.to_path_buf(),
        found,
    };
    check_writable(m.data.as_ref(), m.training_config_for(m.format).as_deref())
        .map_err(unwritable)?;
    match kind {
        FileKind::Safetensors => write_bytes_atomic(
            path,
            &to_safetensors_bytes(m).map_err(|e| unwritable(e.to_string()))?,
        ),
        FileKind::KerasArchive => archive::save_keras(path, m),
        FileKind::WeightsH5 => archive::save_weights_h5(path, m),
        FileKind::KerasH5 => keras::save_h5(path, m),
    }
}

/// The little-endian bytes of `v` in `dtype`, and the safetensors dtype they are.
fn value_bytes(v: &[f64], dtype: FloatDtype) -> (Dtype, Vec<u8>) {
    match dtype {
        FloatDtype::Float32 => (
            Dtype::F32,
            v.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect(),
        ),
        FloatDtype::Float64 => (Dtype::F64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
    }
}

/// A model as safetensors bytes: one tensor per weight in the model's dtype (F32 or F64),
/// `<layer>/<weight>` (a Dense kernel is `(in, out)`), the architecture (its dtype included) as JSON
/// in the metadata, with the dialect, learning rate and Keras version.
pub fn to_safetensors_bytes(m: &KerasModel) -> Result<Vec<u8>> {
    let spec = &m.spec;
    let mut owned: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> = Vec::new();
    for (i, (l, w)) in spec.layers.iter().zip(&m.weights).enumerate() {
        for (s, values) in l.weights(spec.fan_in(i)).iter().zip(w) {
            let (dtype, bytes) = value_bytes(values, spec.dtype);
            owned.push((var_name(l.name(), s.name), s.shape.clone(), dtype, bytes));
        }
    }
    let st_err = |e: safetensors::SafeTensorError| match e {
        safetensors::SafeTensorError::HeaderTooLarge => Error::invalid(
            "safetensors",
            format!(
                "the model's metadata (architecture, compile settings, optimizer state, data names) takes more than the safetensors header limit of {MAX_HEADER} bytes"
            ),
        ),
        e => Error::invalid("safetensors", e.to_string()),
    };
    let views = owned
        .iter()
        .map(|(n, s, t, d)| TensorView::new(*t, s.clone(), d).map(|v| (n.clone(), v)))
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
    if let Some(tc) = m.training_config_for(m.format) {
        meta.insert(TRAINING_KEY.to_string(), tc);
    }
    if let Some(state) = &m.optimizer_state {
        let v = match state {
            // A float32 model's values as float32 numbers (their shortest float32 text), a
            // float64 model's as doubles.
            Ok(s) if spec.dtype == FloatDtype::Float32 => {
                let variables: Vec<(&String, Vec<f32>)> = s
                    .variables
                    .iter()
                    .map(|(n, v)| (n, v.iter().map(|&x| x as f32).collect()))
                    .collect();
                serde_json::json!({"iterations": s.iterations,
                "learning_rate": s.learning_rate.map(|x| x as f32), "variables": variables})
            }
            Ok(s) => {
                serde_json::json!({"iterations": s.iterations, "learning_rate": s.learning_rate,
                "variables": s.variables})
            }
            Err(e) => serde_json::json!({"unreadable": e}),
        };
        meta.insert(OPTIMIZER_KEY.to_string(), v.to_string());
    }
    if let Some(d) = &m.data {
        meta.insert(DATA_KEY.to_string(), d.to_metadata_json().to_string());
    }
    safetensors::serialize(views, Some(meta)).map_err(st_err)
}

/// The architecture in `SPEC_KEY` metadata, its layer count checked before it is parsed further.
fn parse_spec(json: &str) -> std::result::Result<ModelSpec, String> {
    #[derive(serde::Deserialize)]
    struct Count {
        layers: Vec<serde::de::IgnoredAny>,
    }
    let count: Count =
        serde_json::from_str(json).map_err(|e| format!("bad architecture metadata: {e}"))?;
    if count.layers.len() > MAX_LAYERS {
        return Err(format!(
            "its architecture declares {} layers, more than this tool's limit of {MAX_LAYERS}",
            count.layers.len()
        ));
    }
    let spec: ModelSpec =
        serde_json::from_str(json).map_err(|e| format!("bad architecture metadata: {e}"))?;
    spec.validate().map_err(|e| e.to_string())?;
    Ok(spec)
}

/// The longest safetensors header read or written: the safetensors crate's own limit
/// (`MAX_HEADER_SIZE`, 100 MB), so that this tool never writes a file it cannot read back.
pub const MAX_HEADER: u64 = 100_000_000;

/// Reads a safetensors file written by `save_model`: the 8-byte length and the header first (bounded
/// by `MAX_HEADER`, checked against the file's size), then only the tensors the architecture names,
/// each checked before it is read.
pub fn load_safetensors(path: &Path) -> Result<KerasModel> {
    use std::io::{Read, Seek, SeekFrom};
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let bad = |reason: String| Error::Safetensors {
        path: path.to_path_buf(),
        reason,
    };
    if !meta.is_file() {
        return Err(bad("is not a regular file".into()));
    }
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|_| bad("shorter than the 8-byte header length".into()))?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER {
        return Err(bad(format!(
            "its header declares {n} bytes, more than the limit of {MAX_HEADER}"
        )));
    }
    if 8 + n > meta.len() {
        return Err(bad(format!(
            "its header declares {n} bytes, but the file holds {}",
            meta.len()
        )));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header)
        .map_err(|e| Error::io(path, e))?;
    let read = |file: &mut std::fs::File, at: u64, len: usize| -> std::io::Result<Vec<u8>> {
        file.seek(SeekFrom::Start(8 + n + at))?;
        let mut buf = vec![0u8; len];
        file.read_exact(&mut buf)?;
        Ok(buf)
    };
    from_safetensors_parts(&header, meta.len() - 8 - n, |at, len| {
        read(&mut file, at, len).map_err(|e| format!("reading its tensors: {e}"))
    })
    .map_err(bad)
}

/// Parses bytes made by `to_safetensors_bytes`; the error says what is wrong.
pub fn from_safetensors_bytes(bytes: &[u8]) -> std::result::Result<KerasModel, String> {
    let n = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .ok_or("shorter than the 8-byte header length")?;
    if n > MAX_HEADER || 8 + n > bytes.len() as u64 {
        return Err(format!(
            "its header declares {n} bytes (the limit is {MAX_HEADER}), the buffer holds {}",
            bytes.len()
        ));
    }
    let data = &bytes[8 + n as usize..];
    from_safetensors_parts(&bytes[8..8 + n as usize], data.len() as u64, |at, len| {
        Ok(data[at as usize..at as usize + len].to_vec())
    })
}

/// Builds the model from a safetensors header and a reader of `(offset, length)` in its data
/// section of `data_len` bytes (the header's tensors must end exactly there).
fn from_safetensors_parts(
    header: &[u8],
    data_len: u64,
    mut data: impl FnMut(u64, usize) -> std::result::Result<Vec<u8>, String>,
) -> std::result::Result<KerasModel, String> {
    let header: Metadata =
        serde_json::from_slice(header).map_err(|e| format!("invalid header: {e}"))?;
    if header.data_len() as u64 != data_len {
        return Err(format!(
            "its tensors take {} bytes, but {data_len} bytes follow its header",
            header.data_len()
        ));
    }
    let md = header.metadata().clone().unwrap_or_default();
    let spec_json = md
        .get(SPEC_KEY)
        .ok_or_else(|| format!("no '{SPEC_KEY}' metadata describing the architecture"))?;
    let spec = parse_spec(spec_json)?;
    let want = value_bytes(&[], spec.dtype).0;
    let mut read = |name: &str, shape: &[usize]| -> std::result::Result<Vec<f64>, String> {
        let t = header
            .info(name)
            .ok_or_else(|| format!("no tensor '{name}'"))?;
        if t.dtype != want || t.shape != shape {
            return Err(format!(
                "tensor '{name}' is {:?} {:?}, expected {want:?} {shape:?} (the architecture's dtype is {})",
                t.dtype,
                t.shape,
                spec.dtype.keras_name()
            ));
        }
        let (start, end) = t.data_offsets;
        let bytes = data(start as u64, end - start)?;
        Ok(match want {
            Dtype::F64 => bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("chunks of 8")))
                .collect(),
            _ => bytes
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        })
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
    check_finite(&spec, &weights)?;
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
                // 0 is a valid rate (a warm-up schedule starts there); negative or non-finite is not.
                .filter(|v| v.is_finite() && *v >= 0.0)
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
        compile_settings: md.get(TRAINING_KEY).cloned().map(CompileSettings::parse),
        optimizer_state: md
            .get(OPTIMIZER_KEY)
            .map(|s| optimizer_state_json(s))
            .transpose()?,
    })
}

/// The optimizer state as `to_safetensors_bytes` writes it.
fn optimizer_state_json(
    s: &str,
) -> std::result::Result<std::result::Result<crate::train::OptimizerState, String>, String> {
    let v: serde_json::Value =
        serde_json::from_str(s).map_err(|e| format!("bad '{OPTIMIZER_KEY}' metadata: {e}"))?;
    if let Some(e) = v.get("unreadable").and_then(|e| e.as_str()) {
        return Ok(Err(e.to_string()));
    }
    let bad = || format!("bad '{OPTIMIZER_KEY}' metadata");
    let variables = v["variables"]
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|p| {
            let name = p[0].as_str()?.to_string();
            let values = p[1]
                .as_array()?
                .iter()
                .map(|x| x.as_f64())
                .collect::<Option<Vec<f64>>>()?;
            Some((name, values))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(bad)?;
    Ok(Ok(crate::train::OptimizerState {
        iterations: v["iterations"].as_u64().ok_or_else(bad)?,
        learning_rate: v["learning_rate"].as_f64(),
        variables,
    }))
}

/// Why the optimizer state of `m` will not be in `output` written in `format` (by `convert_model`),
/// when `m` has a state that the target cannot hold; `None` when it is kept, or there is none to
/// keep. `.h5` (Keras 3 dialect), `.keras`, `.weights.h5` and `.safetensors` hold a state of
/// Keras 3's layout.
pub fn optimizer_state_lost(
    m: &KerasModel,
    output: &Path,
    format: Option<Format>,
) -> Option<String> {
    let state = match &m.optimizer_state {
        None => return None,
        Some(Ok(s)) if s.variables.is_empty() && s.iterations == 0 => return None,
        Some(Ok(s)) => s,
        Some(Err(e)) => return Some(format!("the input's state is not readable ({e})")),
    };
    match FileKind::of(output)? {
        FileKind::Safetensors => None,
        FileKind::KerasH5 if format.unwrap_or(m.format) == Format::Universal => Some(format!(
            "the universal dialect holds none (tf.keras 2's layout differs; {} steps dropped)",
            state.iterations
        )),
        FileKind::KerasArchive | FileKind::WeightsH5 | FileKind::KerasH5 => {
            keras::h5::archived_state(m).err()
        }
    }
}

/// Converts between `.h5`, `.keras`, `.weights.h5` and `.safetensors` (any direction, by the file
/// names), keeping the architecture, the dialect of an `.h5` (unless `format` says otherwise) and the
/// optimizer. A model without an
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
