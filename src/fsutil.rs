//! Crash-safe output: every file is written to a temporary file beside its target, then renamed over it;
//! and only where a user expects a file: never over a device, FIFO or folder, never into a missing folder.

use crate::error::{Error, Result};
use std::path::Path;

/// Checks that `target` can take a new regular file: it names a file (not `.` or `x/`), its folder
/// exists and is a folder, and it is absent or a regular file (a device such as `/dev/null`, a FIFO
/// or a folder would be replaced by the rename, so it is refused). Call it before any work.
pub fn check_target(target: &Path) -> Result<()> {
    let shown = target.display();
    let bad = |reason: String| Err(Error::invalid("output file", reason));
    let text = target.as_os_str().to_string_lossy();
    if target.file_name().is_none() || text.ends_with('/') {
        return bad(format!("{shown} names no file"));
    }
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return bad(format!("{shown}: {} is not a folder", dir.display())),
        Err(_) => {
            return bad(format!(
                "{shown}: the folder {} does not exist",
                dir.display()
            ));
        }
    }
    match std::fs::metadata(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::output(target, e)),
        Ok(m) if m.is_dir() => bad(format!("{shown} is a folder, expected a file name")),
        Ok(m) if !m.is_file() => bad(format!(
            "{shown} exists and is not a regular file (a device or FIFO); refusing to replace it"
        )),
        Ok(_) => Ok(()),
    }
}

/// Writes `target` atomically. `write` receives the path of a fresh temporary file in the target's
/// directory (with the target's extension, so format-sniffing writers behave) and must fill it; the
/// temporary file is then renamed over `target`. A target that `check_target` refuses is refused
/// before anything is written. On any error the temporary file is removed and
/// `target` is left as it was.
pub fn write_atomic<F>(target: &Path, write: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
    check_target(target)?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = target.file_name().ok_or_else(|| {
        Error::invalid("output path", format!("{} names no file", target.display()))
    })?;
    let suffix = target
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    // The mode the result gets: an existing target's own (a private 0600 model stays private);
    // for a new file, what `open(..., 0666)` gives under the process's umask, as any other tool's
    // output would. The temporary file is created with that umask-filtered 0666 so it is known.
    #[cfg(unix)]
    let existing_mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(target)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777)
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(&suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    // Created and registered under the pending list's lock: a signal's clean-up, which takes the
    // lock, sees every temporary file that exists.
    let (tmp, pending) = {
        let mut list = PENDING.lock().unwrap_or_else(|p| p.into_inner());
        let tmp = builder
            .tempfile_in(dir)
            .map_err(|e| Error::output(target, e))?
            .into_temp_path();
        list.push(tmp.to_path_buf());
        let pending = Pending(tmp.to_path_buf());
        (tmp, pending)
    };
    // The temporary file is removed (on failure) or renamed before it leaves the pending list.
    let result = (move || -> Result<()> {
        #[cfg(unix)]
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            match existing_mode {
                Some(m) => m,
                None => {
                    std::fs::metadata(&tmp)
                        .map_err(|e| Error::output(target, e))?
                        .permissions()
                        .mode()
                        & 0o7777
                }
            }
        };
        match write(&tmp) {
            Err(e @ Error::Output { .. }) => return Err(e),
            Err(e) => return Err(environment_cause(target, &tmp).unwrap_or(e)),
            Ok(()) => {}
        }
        // A writer may have replaced the file it was given: the mode is set on what is there now.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
                .map_err(|e| Error::output(target, e))?;
        }
        // On disk before the rename, so that even a power cut leaves the old file or the whole new one.
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::output(target, e))?;
        tmp.persist(target)
            .map_err(|e| Error::output(target, e.error))?;
        Ok(())
    })();
    drop(pending);
    result
}

/// When a writer failed with an error of its own (an HDF5, CSV or PNG library's, which does not keep
/// the operating system's reason): whether the file system refuses to grow `tmp` (disk full, quota,
/// file size limit, read-only). Probes by appending a block to the temporary file, which is removed
/// anyway; `None` when the probe succeeds (the writer's own error stands).
fn environment_cause(target: &Path, tmp: &Path) -> Option<Error> {
    use std::io::Write;
    let probe = std::fs::OpenOptions::new()
        .append(true)
        .open(tmp)
        .and_then(|mut f| {
            f.write_all(&[0u8; 65536])?;
            f.sync_all()
        });
    match probe {
        Err(e) if is_environment(&e) => Some(Error::output(target, e)),
        _ => None,
    }
}

/// Whether an I/O error comes from the machine rather than the input: no space, quota exceeded, a
/// file size limit, a read-only file system, no permission.
pub fn is_environment(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::StorageFull
            | K::QuotaExceeded
            | K::FileTooLarge
            | K::ReadOnlyFilesystem
            | K::PermissionDenied
    )
}

/// Temporary files being written, removed by `remove_pending` when the process is interrupted.
static PENDING: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

/// A temporary file's place in `PENDING`, for as long as it may be left behind.
struct Pending(std::path::PathBuf);

impl Drop for Pending {
    fn drop(&mut self) {
        if let Ok(mut p) = PENDING.lock()
            && let Some(i) = p.iter().position(|x| *x == self.0)
        {
            p.swap_remove(i);
        }
    }
}

/// Removes every temporary file still being written (for a signal handler: SIGINT, SIGTERM). Targets
/// are untouched: they hold the old file or, once renamed, the whole new one.
///
/// The list stays locked afterwards, for good: no temporary file can be created after the clean-up
/// (a writer waits on the lock), so the caller must end the process next.
pub fn remove_pending() {
    let list = PENDING.lock().unwrap_or_else(|p| p.into_inner());
    for p in list.iter() {
        let _ = std::fs::remove_file(p);
    }
    std::mem::forget(list);
}

/// Writes `bytes` to `target` atomically.
pub fn write_bytes_atomic(target: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(target, |tmp| {
        std::fs::write(tmp, bytes).map_err(|e| Error::output(target, e))
    })
}
