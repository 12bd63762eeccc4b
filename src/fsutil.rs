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
        Err(e) => Err(Error::io(target, e)),
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
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(&suffix)
        .tempfile_in(dir)
        .map_err(|e| Error::io(target, e))?
        .into_temp_path();
    write(&tmp)?;
    // Temporary files are created private (0600); the result is an ordinary file like any other.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(target, e))?;
    }
    // On disk before the rename, so that even a power cut leaves the old file or the whole new one.
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(target, e))?;
    tmp.persist(target)
        .map_err(|e| Error::io(target, e.error))?;
    Ok(())
}

/// Writes `bytes` to `target` atomically.
pub fn write_bytes_atomic(target: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(target, |tmp| {
        std::fs::write(tmp, bytes).map_err(|e| Error::io(target, e))
    })
}
