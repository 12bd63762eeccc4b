//! Only what is inside an HDF5 file is read: every group and dataset is reached through hard links
//! checked one path component at a time (a soft or external link is refused, never followed), and
//! a dataset whose values live outside the file (external raw storage, a virtual dataset) is refused
//! before any value is read. Keras never writes any of these; a crafted file could use them to read
//! any file on the machine into the weights.

use crate::error::Error;
use crate::error::Result;
use crate::model::dialect::ConfigError;
use hdf5::dataset::Layout;
use hdf5::{Dataset, Group};
use std::ffi::CString;
use std::path::Path;

/// Whether the link `name` (one component) exists in `loc`; an error names it (`full`, within
/// `what`) when it is not a hard link. The link itself is inspected, never followed.
fn hard_link(ctx: &Ctx, loc: &Group, name: &str, full: &str, what: &str) -> Result<bool> {
    let c = CString::new(name)
        .map_err(|_| ctx.not_keras(format!("{what}: '{full}' holds a NUL byte")))?;
    let kind = hdf5::sync::sync(|| {
        // SAFETY: a live group id and a valid C string; the info struct is written by libhdf5.
        let exists =
            unsafe { hdf5_sys::h5l::H5Lexists(loc.id(), c.as_ptr(), hdf5_sys::h5p::H5P_DEFAULT) };
        if exists <= 0 {
            return None;
        }
        let mut info = hdf5_sys::h5l::H5L_info1_t::default();
        #[allow(deprecated)]
        // SAFETY: as above; `info` is a properly sized, writable struct.
        let rc = unsafe {
            hdf5_sys::h5l::H5Lget_info1(loc.id(), c.as_ptr(), &mut info, hdf5_sys::h5p::H5P_DEFAULT)
        };
        Some((rc, info.type_))
    });
    match kind {
        None => Ok(false),
        Some((rc, _)) if rc < 0 => Err(ctx.not_keras(format!(
            "{what}: cannot inspect the link '{full}'"
        ))),
        Some((_, hdf5_sys::h5l::H5L_type_t::H5L_TYPE_HARD)) => Ok(true),
        Some((_, hdf5_sys::h5l::H5L_type_t::H5L_TYPE_SOFT)) => Err(ctx.unsupported(format!(
            "{what}: '{full}' is a soft link; only objects stored in the file itself are read"
        ))),
        Some(_) => Err(ctx.unsupported(format!(
            "{what}: '{full}' is an external link (to another file); only objects stored in the file itself are read"
        ))),
    }
}

/// Whether `path` (`/`-separated, relative to `loc`) exists, every component of it a hard link
/// (an error names the first that is not, within `what`).
pub(crate) fn exists(ctx: &Ctx, loc: &Group, path: &str, what: &str) -> Result<bool> {
    let mut cur = loc.clone();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (k, p) in parts.iter().enumerate() {
        let full = parts[..=k].join("/");
        if !hard_link(ctx, &cur, p, &full, what)? {
            return Ok(false);
        }
        if k + 1 < parts.len() {
            cur = match cur.group(p) {
                Ok(g) => g,
                Err(_) => return Ok(false),
            };
        }
    }
    Ok(true)
}

/// The group at `path` under `loc`, reached through hard links only; `None` when absent.
pub(crate) fn group(ctx: &Ctx, loc: &Group, path: &str) -> Result<Option<Group>> {
    if !exists(ctx, loc, path, &format!("group '{path}'"))? {
        return Ok(None);
    }
    loc.group(path)
        .map(Some)
        .map_err(|_| ctx.not_keras(format!("'{path}' is not a group")))
}

/// The dataset at `path` under `loc`, reached through hard links only and with its values stored
/// in the file itself; `None` when absent. `what` names it in errors.
pub(crate) fn dataset(ctx: &Ctx, loc: &Group, path: &str, what: &str) -> Result<Option<Dataset>> {
    if !exists(ctx, loc, path, what)? {
        return Ok(None);
    }
    let ds = loc
        .dataset(path)
        .map_err(|_| ctx.not_keras(format!("{what} is not a dataset")))?;
    let dcpl = ds
        .dcpl()
        .map_err(|e| ctx.hdf5(&format!("{what} storage"), e))?;
    let storage = |e| ctx.hdf5(&format!("{what} storage"), e);
    if dcpl.get_layout().map_err(storage)? == Layout::Virtual {
        return Err(ctx.unsupported(format!(
            "{what} is a virtual dataset (its values come from other datasets or files); only values stored in the file itself are read"
        )));
    }
    if !dcpl.get_external().map_err(storage)?.is_empty() {
        return Err(ctx.unsupported(format!(
            "{what} keeps its values in an external file; only values stored in the file itself are read"
        )));
    }
    Ok(Some(ds))
}

/// The file a read is about, for its error messages.
pub(crate) struct Ctx<'a> {
    pub(crate) path: &'a Path,
}

impl Ctx<'_> {
    pub(crate) fn not_keras(&self, reason: impl Into<String>) -> Error {
        Error::NotKerasModel {
            path: self.path.to_path_buf(),
            reason: reason.into(),
        }
    }
    pub(crate) fn unsupported(&self, found: impl Into<String>) -> Error {
        Error::Unsupported {
            path: self.path.to_path_buf(),
            found: found.into(),
        }
    }
    pub(crate) fn hdf5(&self, what: &str, e: hdf5::Error) -> Error {
        let msg = e.to_string();
        let msg = msg.lines().next().unwrap_or("").trim().to_string();
        Error::Hdf5 {
            path: self.path.to_path_buf(),
            reason: format!("{what}: {msg} (the file may be truncated or damaged)"),
        }
    }
    pub(crate) fn config_error(&self, e: ConfigError) -> Error {
        match e {
            ConfigError::Malformed(m) => self.not_keras(m),
            ConfigError::Unsupported(m) => self.unsupported(m),
        }
    }
}
