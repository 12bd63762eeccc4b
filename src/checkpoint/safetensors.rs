//! The safetensors format: one tensor per weight, the architecture, compile settings, optimizer
//! state and data names in the metadata; read header-first, every size bounded before it is read.

use crate::data::DataSchema;
use crate::error::{Error, Result};
use crate::keras::limits::{MAX_LAYERS, check_finite};
use crate::keras::{CompileSettings, Format, KerasModel};
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
/// The safetensors metadata key holding the optimizer's iterations, learning rate and variable
/// names as JSON, when known (files written before the values became tensors hold them here too).
pub const OPTIMIZER_KEY: &str = "keras_transfer.optimizer_state";
/// The prefix of the tensors holding the optimizer's variables (`<prefix>/0`, `/1`, ... in the
/// order the `OPTIMIZER_KEY` metadata names them).
pub const OPTIMIZER_TENSOR: &str = "keras_transfer.optimizer";
/// The safetensors metadata key holding the source file's `keras_version`.
pub const VERSION_KEY: &str = "keras_transfer.keras_version";
/// The safetensors metadata key holding the source file's `backend`.
pub const BACKEND_KEY: &str = "keras_transfer.backend";
/// The safetensors metadata key holding the data's names (`DataSchema::to_metadata_json`), when known.
pub const DATA_KEY: &str = "keras_transfer.data";

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
    let fan_ins = spec.fan_ins();
    for (i, (l, w)) in spec.layers.iter().zip(&m.weights).enumerate() {
        for (s, values) in l.weights(fan_ins[i]).iter().zip(w) {
            let (dtype, bytes) = value_bytes(values, spec.dtype);
            owned.push((var_name(l.name(), s.name), s.shape.clone(), dtype, bytes));
        }
    }
    if let Some(Ok(state)) = &m.optimizer_state {
        for (i, (_, values)) in state.variables.iter().enumerate() {
            let (dtype, bytes) = value_bytes(values, spec.dtype);
            owned.push((
                format!("{OPTIMIZER_TENSOR}/{i}"),
                vec![values.len()],
                dtype,
                bytes,
            ));
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
        // The variables' values are tensors `OPTIMIZER_TENSOR/<i>` in the model's dtype (a
        // ResNet50's Adam slots as JSON text would pass the header limit); the metadata names them.
        let v = match state {
            Ok(s) => {
                let lr = match spec.dtype {
                    FloatDtype::Float32 => s.learning_rate.map(|x| f64::from(x as f32)),
                    FloatDtype::Float64 => s.learning_rate,
                };
                let names: Vec<&String> = s.variables.iter().map(|(n, _)| n).collect();
                serde_json::json!({"iterations": s.iterations, "learning_rate": lr, "names": names})
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
    let fan_ins = spec.fan_ins();
    let weights = spec
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            l.weights(fan_ins[i])
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
    let sizes: Vec<usize> = weights.iter().flatten().map(Vec::len).collect();
    let optimizer_state = md
        .get(OPTIMIZER_KEY)
        .map(|s| {
            optimizer_state_json(
                s,
                &mut |i, sizes: &[usize]| {
                    let name = format!("{OPTIMIZER_TENSOR}/{i}");
                    let t = header
                        .info(&name)
                        .ok_or_else(|| format!("no tensor '{name}'"))?;
                    // Each variable is as large as one of the model's weights (a slot) or a scalar.
                    match t.shape.as_slice() {
                        [len] if *len == 1 || sizes.contains(len) => read(&name, &[*len]),
                        shape => Err(format!(
                            "optimizer tensor '{name}' is {shape:?}, not the size of a weight"
                        )),
                    }
                },
                &sizes,
            )
        })
        .transpose()?;
    Ok(KerasModel {
        data,
        spec,
        weights,
        keras_version: md.get(VERSION_KEY).cloned().unwrap_or_default(),
        backend: md.get(BACKEND_KEY).cloned().unwrap_or_default(),
        format,
        learning_rate,
        compile_settings: md.get(TRAINING_KEY).cloned().map(CompileSettings::parse),
        optimizer_state,
    })
}

/// The optimizer state as `to_safetensors_bytes` writes it.
/// `tensor(i, sizes)` reads variable `i`'s values (its tensor), `sizes` the model's weights' sizes.
type ReadTensor<'a> = dyn FnMut(usize, &[usize]) -> std::result::Result<Vec<f64>, String> + 'a;

fn optimizer_state_json(
    s: &str,
    tensor: &mut ReadTensor,
    sizes: &[usize],
) -> std::result::Result<std::result::Result<crate::train::OptimizerState, String>, String> {
    let v: serde_json::Value =
        serde_json::from_str(s).map_err(|e| format!("bad '{OPTIMIZER_KEY}' metadata: {e}"))?;
    if let Some(e) = v.get("unreadable").and_then(|e| e.as_str()) {
        return Ok(Err(e.to_string()));
    }
    let bad = || format!("bad '{OPTIMIZER_KEY}' metadata");
    if let Some(names) = v.get("names").and_then(|n| n.as_array()) {
        // At most a few slots per weight, and the step count and schedule scalars.
        if names.len() > 4 * sizes.len() + 16 {
            return Err(format!(
                "'{OPTIMIZER_KEY}' names {} variables for {} weights",
                names.len(),
                sizes.len()
            ));
        }
        let variables = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let name = n.as_str().ok_or_else(bad)?.to_string();
                Ok((name, tensor(i, sizes)?))
            })
            .collect::<std::result::Result<Vec<_>, String>>()?;
        return Ok(Ok(crate::train::OptimizerState {
            iterations: v["iterations"].as_u64().ok_or_else(bad)?,
            learning_rate: v["learning_rate"].as_f64(),
            variables,
        }));
    }
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
