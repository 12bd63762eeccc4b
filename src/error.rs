//! The library's error type: one variant per thing a caller can act on, each printing as one line.

use std::path::PathBuf;

/// Everything keras-transfer's library can fail with. Each variant's `Display` is a single line that
/// names the file or flag concerned and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed at the operating-system level.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// Writing an output failed at the operating-system level: disk full, quota, file size limit,
    /// read-only file system, no permission (the machine's state, not the input's).
    #[error("{path}: cannot write: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A CSV file is malformed (ragged row, non-numeric value, NaN, unknown column...).
    #[error("{path}: {reason}")]
    Csv { path: PathBuf, reason: String },

    /// A file is not a Keras model file this tool can read.
    #[error("{path}: not a Keras model file: {reason}")]
    NotKerasModel { path: PathBuf, reason: String },

    /// A Keras model file uses something this tool does not support (a layer type, a functional model...).
    #[error("{path}: unsupported model: {found}")]
    Unsupported { path: PathBuf, found: String },

    /// A stored weight disagrees with the architecture in the file's config.
    #[error(
        "{path}: layer '{layer}' weight '{weight}': the config expects shape {expected:?}, the file holds {found:?}"
    )]
    ShapeMismatch {
        path: PathBuf,
        layer: String,
        weight: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    /// The HDF5 library reported a failure.
    #[error("{path}: HDF5 error: {reason}")]
    Hdf5 { path: PathBuf, reason: String },

    /// A safetensors file is malformed or lacks what this tool needs.
    #[error("{path}: not a keras-transfer safetensors file: {reason}")]
    Safetensors { path: PathBuf, reason: String },

    /// An argument (a flag or a library parameter) is out of range or contradicts another.
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },

    /// Data and model disagree (input width, class count...).
    #[error("{0}")]
    Mismatch(String),

    /// The loss became NaN or infinite during training (Keras's TerminateOnNaN rule).
    #[error(
        "training diverged at epoch {epoch}: the loss became {loss} (not finite); try a smaller --lr"
    )]
    Diverged { epoch: usize, loss: f32 },

    /// A plot could not be drawn or written.
    #[error("{path}: cannot draw the plot: {reason}")]
    Plot { path: PathBuf, reason: String },

    /// An error inside candle's tensor code.
    #[error("tensor error: {0}")]
    Candle(Box<candle_core::Error>),

    /// Something that cannot happen on any input went wrong (a bug, or a poisoned lock after a panic).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Candle(Box::new(e))
    }
}

/// The library's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The process exit code for this error: 2 for a bad flag or parameter, 3 for bad input data or
    /// files, 4 when training diverged, 5 when the machine refused to take an output (disk full, quota,
    /// file size limit, read-only file system, permission), 1 for anything else (internal errors).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Invalid { .. } => 2,
            Error::Io { .. }
            | Error::Csv { .. }
            | Error::NotKerasModel { .. }
            | Error::Unsupported { .. }
            | Error::ShapeMismatch { .. }
            | Error::Hdf5 { .. }
            | Error::Safetensors { .. }
            | Error::Mismatch(_) => 3,
            Error::Diverged { .. } => 4,
            Error::Output { .. } => 5,
            Error::Plot { .. } | Error::Candle(_) | Error::Internal(_) => 1,
        }
    }

    /// An `Invalid` error for the flag or parameter `what`.
    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// What went wrong without the parameter's name (an `Invalid` error's reason; any other
    /// error's whole message), for a caller that names the parameter itself.
    pub fn detail(&self) -> String {
        match self {
            Error::Invalid { reason, .. } => reason.clone(),
            other => other.to_string(),
        }
    }

    /// An `Output` error: writing `path` failed.
    pub fn output(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Output {
            path: path.into(),
            source,
        }
    }

    /// An `Io` error for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// How many characters of a user's value `shown` keeps.
const SHOWN_CHARS: usize = 40;

/// A value from the user's data (a field, a label, a column or header name) as an error message
/// shows it: in single quotes, control characters escaped (no ESC sequence reaches the terminal),
/// and cut to its first 40 characters with an ellipsis and its full length when longer, so a message
/// stays one short line whatever the data holds.
///
/// ```
/// use keras_transfer::error::shown;
/// assert_eq!(shown("setosa"), "'setosa'");
/// assert_eq!(shown("a\x1b[31mb"), "'a\\u{1b}[31mb'");
/// assert_eq!(shown(&"x".repeat(100)), format!("'{}...' (100 characters)", "x".repeat(40)));
/// ```
pub fn shown(text: &str) -> String {
    let mut out = String::from("'");
    for (count, c) in text.chars().enumerate() {
        if count == SHOWN_CHARS {
            let total = text.chars().count();
            out.push_str(&format!("...' ({total} characters)"));
            return out;
        }
        push_escaped(&mut out, c);
    }
    out.push('\'');
    out
}

/// `c`, or its escape (`\n`, `\u{1b}`) when it is a control character.
fn push_escaped(out: &mut String, c: char) {
    if c.is_control() {
        out.extend(c.escape_default());
    } else {
        out.push(c);
    }
}

/// `text` whole and unquoted, its control characters escaped as `shown` escapes them: a name
/// printed where quotes would not fit (a layer in a summary table) never reaches the terminal raw.
///
/// ```
/// use keras_transfer::error::escaped;
/// assert_eq!(escaped("dense\x1b]0;x\x07"), "dense\\u{1b}]0;x\\u{7}");
/// ```
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    text.chars().for_each(|c| push_escaped(&mut out, c));
    out
}
