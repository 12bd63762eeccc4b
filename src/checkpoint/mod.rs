//! Checkpoints by file name: Keras `.h5`/`.hdf5`, Keras 3 `.keras` archives and `.weights.h5` weights
//! files (see `keras`), and safetensors with the architecture in its metadata; `convert` between them.

mod safetensors;

use crate::error::{Error, Result};
use crate::fsutil::{check_target, write_bytes_atomic};
use crate::keras::limits::check_writable;
use crate::keras::{self, Format, KerasModel, archive};
use std::path::Path;

pub use self::safetensors::{
    BACKEND_KEY, DATA_KEY, FORMAT_KEY, LR_KEY, MAX_HEADER, OPTIMIZER_KEY, SPEC_KEY, TRAINING_KEY,
    VERSION_KEY, from_safetensors_bytes, load_safetensors, to_safetensors_bytes,
};

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

/// Every format with the name suffixes that pick it, tried in this order (`.weights.h5` before `.h5`).
const FORMATS: &[(FileKind, &[&str])] = &[
    (FileKind::WeightsH5, &[".weights.h5"]),
    (FileKind::KerasH5, &[".h5", ".hdf5"]),
    (FileKind::KerasArchive, &[".keras"]),
    (FileKind::Safetensors, &[".safetensors"]),
];

/// What every model-file error about an unknown name lists.
const KNOWN: &str = ".h5 or .hdf5 (Keras HDF5), .keras (Keras 3 archive), .weights.h5 (weights only) or .safetensors";

impl FileKind {
    /// The kind `path`'s name asks for, or `None` for a name this tool does not know.
    pub fn of(path: &Path) -> Option<FileKind> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        FORMATS
            .iter()
            .find(|(_, suffixes)| suffixes.iter().any(|s| name.ends_with(s)))
            .map(|&(kind, _)| kind)
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
