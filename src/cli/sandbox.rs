//! Reading model files in a child process, so that a damaged file that crashes libhdf5 ends in a
//! clear error rather than in a crash of the tool. `.keras` archives go the same way: the weights
//! inside them are HDF5 too, as are `.weights.h5` files.
//!
//! libhdf5 (1.10) trusts a file's object headers: a few changed bytes have been seen to make it
//! segfault inside `H5Aiterate2`. No check short of re-implementing HDF5 rules that out, so every
//! Keras `.h5`/`.keras` the command line reads is opened by `keras-transfer __read-model FILE
//! [WEIGHTS]`, which sends the model back as safetensors bytes on its stdout, an in-memory file
//! the parent maps once the child has ended. A crash, a hang (past `limit`) or an error in the
//! child becomes one error line in the parent. The parent may do other work meanwhile
//! (`load_model_while`: `predict` reads its input arrays).

use anyhow::Result;
use keras_transfer::Error;
use keras_transfer::checkpoint::{
    from_safetensors_bytes, is_safetensors, load_model, load_model_with_weights,
    to_safetensors_bytes,
};
use keras_transfer::keras::KerasModel;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The hidden first argument that makes the binary a model reader.
pub const READ_ARG: &str = "__read-model";

/// How long a model file may take to read before the reader is stopped: 5 s, plus 1 s per 64 MiB
/// of file (a damaged file can send libhdf5 into an endless loop).
fn limit(paths: &[&Path]) -> Duration {
    let size: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    Duration::from_secs(5 + size / (64 << 20))
}

/// An error the reader process reported: its message and exit code, passed on unchanged.
#[derive(Debug)]
pub struct ReaderError {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for ReaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ReaderError {}

/// The reader process: loads `path` (with the weights of `weights`, when given) and writes it to
/// stdout as safetensors bytes.
pub fn reader_main(path: &Path, weights: Option<&Path>) -> ExitCode {
    let loaded = match weights {
        Some(w) => load_model_with_weights(path, w),
        None => load_model(path),
    };
    let result = match loaded {
        Ok(m) => to_safetensors_bytes(&m).map_err(|e| Error::Unsupported {
            path: path.to_path_buf(),
            found: e.to_string(),
        }),
        Err(e) => Err(e),
    };
    match result {
        Ok(bytes) => match std::io::stdout().lock().write_all(&bytes) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "error: {}: cannot pass the model on: {e}",
                    path.display()
                );
                ExitCode::from(1)
            }
        },
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {}", crate::cli::describe(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

/// A thread that collects a pipe; a small stack of its own (it only copies bytes), not the large
/// one the binary gives threads that may train.
fn reader_thread(
    mut r: impl Read + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<Vec<u8>>> {
    std::thread::Builder::new()
        .name("model-reader-pipe".into())
        .stack_size(256 << 10)
        .spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
}

/// Loads a model file; Keras `.h5` and `.keras` files are read in a child process (see the module
/// docs).
pub fn load_model_guarded(path: &Path) -> Result<KerasModel> {
    load_with_weights_guarded(path, None)
}

/// Loads a model file, with its weights taken from a `.weights.h5` file when `weights` is given, in a
/// child process unless both are safetensors-free of HDF5 (see the module docs).
pub fn load_with_weights_guarded(path: &Path, weights: Option<&Path>) -> Result<KerasModel> {
    start(path, weights)?.wait()
}

/// Loads a model file (as `load_model_guarded`) while `meanwhile` runs in this process: the child
/// reads the model on one core while this one does work that does not need the model (reading
/// the input data). The model's error, when there is one, is still the one to report first.
pub fn load_model_while<R>(path: &Path, meanwhile: impl FnOnce() -> R) -> (Result<KerasModel>, R) {
    match start(path, None) {
        Ok(pending) => {
            let r = meanwhile();
            (pending.wait(), r)
        }
        Err(e) => (Err(e), meanwhile()),
    }
}

/// A model being read: by a child process, or (a safetensors file) in this one when asked for.
enum Pending<'a> {
    Here(&'a Path),
    Child {
        path: &'a Path,
        weights: Option<&'a Path>,
        child: std::process::Child,
        out: std::fs::File,
        err: std::thread::JoinHandle<Vec<u8>>,
        start: Instant,
    },
}

/// An anonymous in-memory file (`memfd_create`) for the reader's output: the child writes the
/// model into it with no pipe to drain as it goes (a pipe passes 64 KiB per round trip between
/// the processes: ResNet50's 95 MB took 0.15 s longer that way), and this process maps it once
/// the child has ended.
fn memory_file() -> Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: a valid C string; the returned descriptor is checked, then owned by the `File`.
    let fd = unsafe { libc::memfd_create(c"keras-transfer-model".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(anyhow::anyhow!(
            "cannot make a memory file for the model reader: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Starts reading a model: spawns the reader child for an HDF5-based file.
fn start<'a>(path: &'a Path, weights: Option<&'a Path>) -> Result<Pending<'a>> {
    if is_safetensors(path) && weights.is_none() {
        return Ok(Pending::Here(path));
    }
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg(READ_ARG).arg(path);
    if let Some(w) = weights {
        cmd.arg(w);
    }
    let out = memory_file()?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::piped())
        .spawn()?;
    let err = reader_thread(
        child
            .stderr
            .take()
            .ok_or_else(|| anyhow::anyhow!("no pipe from the model reader"))?,
    )?;
    Ok(Pending::Child {
        path,
        weights,
        child,
        out,
        err,
        start: Instant::now(),
    })
}

impl Pending<'_> {
    /// The model, once read; the child's failure as one error.
    fn wait(self) -> Result<KerasModel> {
        let (path, weights, mut child, out, err, start) = match self {
            Pending::Here(path) => return Ok(load_model(path)?),
            Pending::Child {
                path,
                weights,
                child,
                out,
                err,
                start,
            } => (path, weights, child, out, err, start),
        };
        wait_child(path, weights, &mut child, out, err, start)
    }
}

/// Waits for the reader child (stopping it past `limit`) and turns what it sent into the model or
/// one error.
fn wait_child(
    path: &Path,
    weights: Option<&Path>,
    child: &mut std::process::Child,
    out: std::fs::File,
    err: std::thread::JoinHandle<Vec<u8>>,
    start: Instant,
) -> Result<KerasModel> {
    let limit = limit(
        &[Some(path), weights]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
    );
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    let hdf5 = |reason: String| Error::Hdf5 {
        path: path.to_path_buf(),
        reason,
    };
    let Some(status) = status else {
        return Err(hdf5(format!(
            "libhdf5 was still reading it after {} s; the file is damaged",
            limit.as_secs()
        ))
        .into());
    };
    match status.code() {
        Some(0) => {
            let bad = |e: String| hdf5(format!("the model reader passed on a bad model: {e}"));
            if out.metadata()?.len() == 0 {
                return Err(bad("nothing".into()).into());
            }
            // SAFETY: the memory file is this process's alone (the child that wrote it has
            // ended, and nothing else holds it), so nothing changes it while it is mapped.
            let bytes = unsafe { memmap2::Mmap::map(&out) }?;
            Ok(from_safetensors_bytes(&bytes).map_err(|e| bad(e.to_string()))?)
        }
        Some(code) => {
            let line = stderr
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("the model reader failed");
            Err(ReaderError {
                code: code.min(99) as u8,
                message: line.trim_start_matches("error: ").to_string(),
            }
            .into())
        }
        None => {
            use std::os::unix::process::ExitStatusExt;
            let signal = status.signal().unwrap_or(0);
            Err(hdf5(format!(
                "libhdf5 crashed reading it (signal {signal}); the file is damaged"
            ))
            .into())
        }
    }
}
