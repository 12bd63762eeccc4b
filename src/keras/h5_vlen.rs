//! The declared byte lengths of a variable-length string attribute, read without reading the
//! strings. libhdf5 tells a variable-length string's size only by reading it (the attribute stores a
//! descriptor per string: its length and where in the file's global heap its bytes are); a crafted
//! 40 MB string costs several times that in memory while libhdf5 reads and converts it. Here an
//! HDF5 soft conversion from variable-length strings to a private opaque type copies out each
//! descriptor's length field (the first 4 bytes, little-endian, of the on-disk form), so the heap is
//! never touched and the total can be checked against the limit before anything is read.

use hdf5::Attribute;
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5t::{
    H5T_bkg_t, H5T_cdata_t, H5T_class_t, H5T_cmd_t, H5T_pers_t, H5Tclose, H5Tcreate, H5Tget_class,
    H5Tget_size, H5Tget_tag, H5Tis_variable_str, H5Tregister, H5Tset_tag,
};
use std::ffi::{CStr, c_void};
use std::sync::OnceLock;

/// The opaque type's tag, which marks a read as this module's.
const TAG: &CStr = c"keras-transfer vlen length";

/// Bytes of each converted element: the length as a little-endian u64, then padding.
const SLOT: usize = 16;

/// Whether `id` is this module's opaque type.
fn is_ours(id: hid_t) -> bool {
    // SAFETY: a live type id; the tag string is owned by us and freed with H5free_memory.
    unsafe {
        if H5Tget_class(id) != H5T_class_t::H5T_OPAQUE || H5Tget_size(id) != SLOT {
            return false;
        }
        let tag = H5Tget_tag(id);
        if tag.is_null() {
            return false;
        }
        let same = CStr::from_ptr(tag) == TAG;
        hdf5_sys::h5::H5free_memory(tag.cast());
        same
    }
}

/// The soft conversion: accepts only a variable-length string converted to this module's opaque
/// type, and writes each element's on-disk length field as a u64.
extern "C" fn lengths(
    src_id: hid_t,
    dst_id: hid_t,
    cdata: *mut H5T_cdata_t,
    nelmts: usize,
    buf_stride: usize,
    _bkg_stride: usize,
    buf: *mut c_void,
    _bkg: *mut c_void,
    _dxpl: hid_t,
) -> i32 {
    // SAFETY: libhdf5 passes a valid cdata and, for CONV, a buffer of `nelmts` elements of
    // max(source, destination) size each (or `buf_stride` apart).
    unsafe {
        let cdata = &mut *cdata;
        match cdata.command {
            H5T_cmd_t::H5T_CONV_INIT => {
                if H5Tis_variable_str(src_id) <= 0 || !is_ours(dst_id) {
                    return -1;
                }
                cdata.need_bkg = H5T_bkg_t::H5T_BKG_NO;
                0
            }
            H5T_cmd_t::H5T_CONV_FREE => 0,
            H5T_cmd_t::H5T_CONV_CONV => {
                let src_size = H5Tget_size(src_id);
                // The on-disk form: a 4-byte length, the heap collection's address, a 4-byte index.
                if src_size < 4 || buf.is_null() {
                    return -1;
                }
                let (src_step, dst_step) = if buf_stride == 0 {
                    (src_size, SLOT)
                } else {
                    (buf_stride, buf_stride)
                };
                let base = buf.cast::<u8>();
                let lens: Vec<u32> = (0..nelmts)
                    .map(|i| {
                        let mut b = [0u8; 4];
                        std::ptr::copy_nonoverlapping(base.add(i * src_step), b.as_mut_ptr(), 4);
                        u32::from_le_bytes(b)
                    })
                    .collect();
                for (i, len) in lens.into_iter().enumerate() {
                    let mut slot = [0u8; SLOT];
                    slot[..8].copy_from_slice(&u64::from(len).to_le_bytes());
                    let n = SLOT.min(dst_step);
                    std::ptr::copy_nonoverlapping(slot.as_ptr(), base.add(i * dst_step), n);
                }
                0
            }
        }
    }
}

/// Registers the conversion once per process; false when libhdf5 refused it.
fn registered(src: hid_t, dst: hid_t) -> bool {
    static DONE: OnceLock<bool> = OnceLock::new();
    *DONE.get_or_init(|| {
        // SAFETY: live type ids and a valid C string; `lengths` has the H5T_conv_t signature.
        unsafe {
            H5Tregister(
                H5T_pers_t::H5T_PERS_SOFT,
                c"keras-transfer vlen length".as_ptr(),
                src,
                dst,
                Some(lengths),
            ) >= 0
        }
    })
}

/// The declared byte length of each string of the variable-length string attribute `attr`, read
/// from its descriptors alone; `None` when libhdf5 would not convert them (the caller then reads
/// as before).
pub(crate) fn declared_lengths(attr: &Attribute) -> Option<Vec<u64>> {
    let n = attr.size();
    hdf5::sync::sync(|| {
        // SAFETY: a live attribute id; the types made here are closed before returning; the
        // buffer holds `n` elements of SLOT bytes, as the opaque type declares.
        unsafe {
            let src = hdf5_sys::h5a::H5Aget_type(attr.id());
            if src < 0 {
                return None;
            }
            let dst = H5Tcreate(H5T_class_t::H5T_OPAQUE, SLOT);
            let ok = dst >= 0
                && H5Tset_tag(dst, TAG.as_ptr()) >= 0
                && H5Tis_variable_str(src) > 0
                && registered(src, dst);
            let mut buf = vec![0u8; n * SLOT];
            // (The hdf5 crate keeps libhdf5's error printing off.)
            let read = ok && hdf5_sys::h5a::H5Aread(attr.id(), dst, buf.as_mut_ptr().cast()) >= 0;
            H5Tclose(src);
            if dst >= 0 {
                H5Tclose(dst);
            }
            read.then(|| {
                buf.chunks_exact(SLOT)
                    .map(|c| u64::from_le_bytes(c[..8].try_into().unwrap_or([0; 8])))
                    .collect()
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdf5::types::{VarLenAscii, VarLenUnicode};

    /// Each string's declared length, scalar and 1-D, ASCII and UTF-8 (bytes, not characters),
    /// and the strings still read as they are afterwards.
    #[test]
    fn declared_lengths_are_the_strings_byte_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let f = hdf5::File::create(dir.path().join("v.h5")).unwrap();
        let texts = ["a".repeat(70_000), String::new(), "é".into()];
        let v: Vec<VarLenUnicode> = texts.iter().map(|t| t.parse().unwrap()).collect();
        let a = f
            .new_attr::<VarLenUnicode>()
            .shape(3)
            .create("list")
            .unwrap();
        a.write(&v).unwrap();
        assert_eq!(declared_lengths(&a), Some(vec![70_000, 0, 2]));
        let s = f.new_attr::<VarLenAscii>().create("one").unwrap();
        s.write_scalar(&VarLenAscii::from_ascii("hello").unwrap())
            .unwrap();
        assert_eq!(declared_lengths(&s), Some(vec![5]));
        let back: Vec<VarLenUnicode> = a.read_raw().unwrap();
        assert_eq!(back[0].as_str(), texts[0]);
        let n = f.new_attr::<f32>().create("number").unwrap();
        assert_eq!(declared_lengths(&n), None);
    }
}
