//! Crash-safe output: every file is written to a temporary file beside its target, then renamed over it.

use crate::error::{Error, Result};
use std::path::Path;

/// Writes `target` atomically. `write` receives the path of a fresh temporary file in the target's
/// directory (with the target's extension, so format-sniffing writers behave) and must fill it; the
/// temporary file is then renamed over `target`. On any error the temporary file is removed and
/// `target` is left as it was.
pub fn write_atomic<F>(target: &Path, write: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
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
