//! NumPy arrays: `.npy` files and `.npz` archives (`np.save`, `np.savez`, `np.savez_compressed`) read
//! into `f64` values in C order, every size bounded from the header before anything is allocated;
//! object arrays and pickles are refused, naming the file and the member.

use crate::data::table::{ReadSpec, Table};
use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// numpy's own bound on a header's length (`numpy.lib.format._MAX_HEADER_SIZE`).
const MAX_HEADER: usize = 10_000;
/// The most values one array may hold (2^27: 1 GiB as `f64`). An array declaring more is refused
/// from its header.
pub const MAX_ELEMENTS: usize = 1 << 27;
const MAGIC: &[u8] = b"\x93NUMPY";
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

/// The element types the reader converts exactly to `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Float,
    Signed,
    Unsigned,
    Bool,
}

/// A parsed `.npy` header: the dtype (`descr`), memory order and shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The dtype as numpy writes it, e.g. `<f4`.
    pub descr: String,
    pub kind: Kind,
    /// Bytes per element.
    pub size: usize,
    pub big_endian: bool,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
}

impl NpyHeader {
    /// The number of elements (the product of the shape), bounded by `MAX_ELEMENTS`.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the array holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An array read from a `.npy` file or an `.npz` member: its shape, its dtype as written, and its
/// values in C (row-major) order, each converted exactly to `f64`.
#[derive(Debug, Clone)]
pub struct Array {
    pub shape: Vec<usize>,
    pub descr: String,
    pub kind: Kind,
    pub values: Vec<f64>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Csv {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// `path`, or `path` member `member` of an archive, as an error's subject.
fn subject(path: &Path, member: Option<&str>) -> PathBuf {
    match member {
        Some(m) => PathBuf::from(format!("{} (member {m})", path.display())),
        None => path.to_path_buf(),
    }
}

/// Whether `path` names a NumPy file by its extension (`.npz` or `.npy`).
pub fn is_numpy_path(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("npz" | "npy")
    )
}

// ------------------------------------------------------------------------------------ header

fn parse_descr(s: &str, who: &Path) -> Result<(Kind, usize, bool)> {
    let bytes = s.as_bytes();
    let (order, rest) = match bytes.first() {
        Some(b'<' | b'>' | b'|' | b'=') => (bytes[0], &s[1..]),
        _ => (b'|', s),
    };
    let refuse = |what: &str| {
        bad(
            who,
            format!(
                "dtype '{s}' ({what}) is not supported; save the array as float32, float64, int or uint"
            ),
        )
    };
    if rest.starts_with('O') {
        return Err(bad(
            who,
            "an object array (dtype 'O', stored as a pickle) is refused: pickles can run code; save a numeric array",
        ));
    }
    let kind = match rest.chars().next() {
        Some('f') => Kind::Float,
        Some('i') => Kind::Signed,
        Some('u') => Kind::Unsigned,
        Some('b') => Kind::Bool,
        Some('c') => return Err(refuse("complex")),
        Some('U' | 'S' | 'a') => return Err(refuse("text")),
        Some('M' | 'm') => return Err(refuse("date/time")),
        Some('V') => return Err(refuse("raw bytes or records")),
        _ => return Err(refuse("unknown")),
    };
    let size: usize = rest[1..].parse().map_err(|_| refuse("unknown"))?;
    let ok = match kind {
        Kind::Float => matches!(size, 4 | 8),
        Kind::Signed | Kind::Unsigned => matches!(size, 1 | 2 | 4 | 8),
        Kind::Bool => size == 1,
    };
    if !ok {
        return Err(refuse(if kind == Kind::Float {
            "half or extended float"
        } else {
            "odd width"
        }));
    }
    Ok((kind, size, order == b'>'))
}

/// A tiny reader for the Python literal dict numpy writes as the header:
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (60, 4), }`.
struct Lit<'a> {
    s: &'a [u8],
    i: usize,
}

enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
    List,
}

impl Lit<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn string(&mut self) -> Option<String> {
        self.ws();
        let q = *self.s.get(self.i)?;
        if q != b'\'' && q != b'"' {
            return None;
        }
        let start = self.i + 1;
        let end = start + self.s[start..].iter().position(|&c| c == q)?;
        self.i = end + 1;
        String::from_utf8(self.s[start..end].to_vec()).ok()
    }
    fn value(&mut self) -> Option<Value> {
        self.ws();
        let rest = &self.s[self.i..];
        if rest.starts_with(b"True") {
            self.i += 4;
            return Some(Value::Bool(true));
        }
        if rest.starts_with(b"False") {
            self.i += 5;
            return Some(Value::Bool(false));
        }
        match rest.first()? {
            b'\'' | b'"' => self.string().map(Value::Str),
            b'[' => Some(Value::List),
            b'(' => {
                self.i += 1;
                let mut dims = Vec::new();
                loop {
                    if self.eat(b')') {
                        return Some(Value::Tuple(dims));
                    }
                    self.ws();
                    let start = self.i;
                    while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                        self.i += 1;
                    }
                    let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
                    self.ws();
                    if self.s.get(self.i) == Some(&b'L') {
                        self.i += 1; // Python 2's long suffix
                    }
                    dims.push(text.parse().ok()?);
                    if !self.eat(b',') && !matches!(self.s.get(self.i), Some(b')')) {
                        self.ws();
                        if self.s.get(self.i) != Some(&b')') {
                            return None;
                        }
                    }
                }
            }
            _ => None,
        }
    }
}

/// Parses a `.npy` header from the start of `r`: magic, version, header length (at most numpy's
/// 10,000 bytes) and the dict. Returns the header and the offset of the data.
pub fn parse_header(who: &Path, mut r: impl Read) -> Result<(NpyHeader, usize)> {
    let mut pre = [0u8; 10];
    read_full(&mut r, &mut pre, who, "the .npy header")?;
    if &pre[..6] != MAGIC {
        return Err(not_numpy(who, &pre));
    }
    let (len, offset) = match pre[6] {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as usize, 10),
        2 | 3 => {
            let mut more = [0u8; 2];
            read_full(&mut r, &mut more, who, "the .npy header")?;
            (
                u32::from_le_bytes([pre[8], pre[9], more[0], more[1]]) as usize,
                12,
            )
        }
        v => {
            return Err(bad(
                who,
                format!(".npy format version {v} is not known (1, 2 or 3 are)"),
            ));
        }
    };
    if len > MAX_HEADER {
        return Err(bad(
            who,
            format!(
                "the .npy header declares {len} bytes, more than numpy's limit of {MAX_HEADER}"
            ),
        ));
    }
    let mut dict = vec![0u8; len];
    read_full(&mut r, &mut dict, who, "the .npy header")?;
    let malformed = || {
        bad(
            who,
            "malformed .npy header (expected numpy's {'descr', 'fortran_order', 'shape'} dict)",
        )
    };
    let mut lit = Lit { s: &dict, i: 0 };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    if !lit.eat(b'{') {
        return Err(malformed());
    }
    loop {
        if lit.eat(b'}') {
            break;
        }
        let key = lit.string().ok_or_else(malformed)?;
        if !lit.eat(b':') {
            return Err(malformed());
        }
        match (key.as_str(), lit.value().ok_or_else(malformed)?) {
            ("descr", Value::Str(s)) => descr = Some(s),
            ("descr", Value::List) => {
                return Err(bad(
                    who,
                    "a record (structured) dtype is not supported; save a plain numeric array",
                ));
            }
            ("fortran_order", Value::Bool(b)) => fortran = Some(b),
            ("shape", Value::Tuple(t)) => shape = Some(t),
            _ => return Err(malformed()),
        }
        if !lit.eat(b',') && !lit.eat(b'}') {
            return Err(malformed());
        } else if lit.s.get(lit.i - 1) == Some(&b'}') {
            break;
        }
    }
    let (descr, fortran_order, shape) = match (descr, fortran, shape) {
        (Some(d), Some(f), Some(s)) => (d, f, s),
        _ => return Err(malformed()),
    };
    let (kind, size, big_endian) = parse_descr(&descr, who)?;
    let mut n: u64 = 1;
    for &d in &shape {
        n = n
            .checked_mul(d)
            .filter(|&n| n <= MAX_ELEMENTS as u64)
            .ok_or_else(|| {
                bad(
                    who,
                    format!(
                        "shape {shape:?} holds more than {MAX_ELEMENTS} values, the reader's bound"
                    ),
                )
            })?;
    }
    let shape = shape.into_iter().map(|d| d as usize).collect();
    Ok((
        NpyHeader {
            descr,
            kind,
            size,
            big_endian,
            fortran_order,
            shape,
        },
        offset + len,
    ))
}

fn not_numpy(who: &Path, head: &[u8]) -> Error {
    if head.first() == Some(&0x80) {
        bad(
            who,
            "a Python pickle, not a .npy array: pickles are refused (they can run code)",
        )
    } else {
        bad(who, "not a NumPy .npy array (no \\x93NUMPY magic)")
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8], who: &Path, what: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            bad(who, format!("truncated: the file ends inside {what}"))
        } else {
            Error::io(who, e)
        }
    })
}

// ------------------------------------------------------------------------------------ data

fn convert(h: &NpyHeader, b: &[u8]) -> Result<f64> {
    let mut a = [0u8; 8];
    a[..h.size].copy_from_slice(b);
    if h.big_endian {
        a[..h.size].reverse();
    }
    let v = match (h.kind, h.size) {
        (Kind::Float, 4) => f64::from(f32::from_le_bytes([a[0], a[1], a[2], a[3]])),
        (Kind::Float, _) => f64::from_le_bytes(a),
        (Kind::Bool, _) => f64::from(a[0] != 0),
        (Kind::Unsigned, 1) => f64::from(a[0]),
        (Kind::Unsigned, 2) => f64::from(u16::from_le_bytes([a[0], a[1]])),
        (Kind::Unsigned, 4) => f64::from(u32::from_le_bytes([a[0], a[1], a[2], a[3]])),
        (Kind::Unsigned, _) => return int_f64(u64::from_le_bytes(a) as i128),
        (Kind::Signed, 1) => f64::from(a[0] as i8),
        (Kind::Signed, 2) => f64::from(i16::from_le_bytes([a[0], a[1]])),
        (Kind::Signed, 4) => f64::from(i32::from_le_bytes([a[0], a[1], a[2], a[3]])),
        (Kind::Signed, _) => return int_f64(i64::from_le_bytes(a) as i128),
    };
    Ok(v)
}

/// A 64-bit integer as `f64`, refused when it is not exact (beyond 2^53).
fn int_f64(v: i128) -> Result<f64> {
    if v.unsigned_abs() > 1 << 53 {
        return Err(Error::Mismatch(format!(
            "integer {v} has no exact float value (beyond 2^53)"
        )));
    }
    Ok(v as f64)
}

/// Reads the data after a parsed header: exactly `len * size` bytes in chunks (memory grows with
/// the bytes actually present, never with a size a header only claims), converted to `f64` and put
/// in C order.
/// The array's values as `f64`, in C order. `sized`: the file's length was checked against the
/// header's shape, so the whole vector may be allocated at once (otherwise it grows as data comes).
fn read_data(who: &Path, h: &NpyHeader, mut r: impl Read, sized: bool) -> Result<Vec<f64>> {
    const STEP: usize = 1 << 16;
    let n = h.len();
    let mut values = Vec::with_capacity(if sized { n } else { n.min(STEP) });
    let mut buf = vec![0u8; STEP * h.size];
    let mut left = n;
    while left > 0 {
        let take = left.min(STEP);
        let bytes = &mut buf[..take * h.size];
        read_full(&mut r, bytes, who, "the array data")?;
        match (h.kind, h.size, h.big_endian) {
            // The common dtypes, converted in one pass (exact: every f32 is an f64).
            (Kind::Float, 4, false) => values.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            ),
            (Kind::Float, 8, false) => values.extend(
                bytes
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])),
            ),
            _ => {
                for chunk in bytes.chunks_exact(h.size) {
                    values.push(convert(h, chunk).map_err(|e| bad(who, e.to_string()))?);
                }
            }
        }
        left -= take;
    }
    if h.fortran_order && h.shape.len() > 1 {
        values = fortran_to_c(&values, &h.shape);
    }
    Ok(values)
}

/// The same array in C order, from its values in Fortran (column-major) order.
fn fortran_to_c(f: &[f64], shape: &[usize]) -> Vec<f64> {
    let mut fstride = vec![1usize; shape.len()];
    for k in 1..shape.len() {
        fstride[k] = fstride[k - 1] * shape[k - 1];
    }
    let mut idx = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(f.len());
    for _ in 0..f.len() {
        out.push(f[idx.iter().zip(&fstride).map(|(i, s)| i * s).sum::<usize>()]);
        for k in (0..shape.len()).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

fn read_npy_from(who: &Path, mut r: impl Read) -> Result<Array> {
    let (h, _) = parse_header(who, &mut r)?;
    let values = read_data(who, &h, &mut r, false)?;
    Ok(Array {
        shape: h.shape,
        descr: h.descr,
        kind: h.kind,
        values,
    })
}

/// Reads one `.npy` file. The data size declared by the header is checked against the file's
/// length before anything is read.
pub fn read_npy(path: &Path) -> Result<Array> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut r = std::io::BufReader::new(file);
    let (h, offset) = parse_header(path, &mut r)?;
    let need = offset as u64 + (h.len() * h.size) as u64;
    if file_len < need {
        return Err(bad(
            path,
            format!(
                "truncated: shape {:?} of {} needs {need} bytes, the file has {file_len}",
                h.shape, h.descr
            ),
        ));
    }
    let values = read_data(path, &h, &mut r, true)?;
    Ok(Array {
        shape: h.shape,
        descr: h.descr,
        kind: h.kind,
        values,
    })
}

/// Reads the members `names` (without `.npy`) of an `.npz` archive, in that order; a missing member
/// is an error that lists the archive's members.
pub fn read_npz(path: &Path, names: &[&str]) -> Result<Vec<Array>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| bad(path, format!("not a readable .npz (zip) archive: {e}")))?;
    let members: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect();
    names
        .iter()
        .map(|name| {
            let member = format!("{name}.npy");
            let who = subject(path, Some(&member));
            let entry = zip.by_name(&member).map_err(|_| {
                let mut have = members.clone();
                have.sort();
                bad(
                    path,
                    format!(
                        "no array '{name}' (np.savez(path, x=..., y=...) writes {name}.npy); the archive holds [{}]",
                        have.join(", ")
                    ),
                )
            })?;
            read_npy_from(&who, entry)
        })
        .collect()
}

/// Features and integer labels for a classifier, as `np.savez(path, x=..., y=...)` writes them (or
/// `x.npy` with `y.npy` beside it): `x` has one row per sample, `y` one integer label per row.
pub fn read_xy(path: &Path) -> Result<(Array, Array)> {
    let is_npz = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"));
    let (x, y) = if is_npz {
        sniff(path, ZIP_MAGIC, "an .npz (zip) archive")?;
        let mut v = read_npz(path, &["x", "y"])?;
        let y = v.pop().expect("two members");
        (v.pop().expect("two members"), y)
    } else {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.eq_ignore_ascii_case("x.npy") {
            return Err(bad(
                path,
                "a .npy training file must be named x.npy, with its labels in y.npy beside it",
            ));
        }
        let y_path = path.with_file_name(if name == "X.npy" { "Y.npy" } else { "y.npy" });
        (read_npy(path)?, read_npy(&y_path)?)
    };
    check_xy(path, &x, &y)?;
    Ok((x, y))
}

fn sniff(path: &Path, magic: &[u8], what: &str) -> Result<()> {
    let mut head = [0u8; 6];
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let n = f.read(&mut head).map_err(|e| Error::io(path, e))?;
    if n == 0 {
        return Err(bad(path, format!("empty file; expected {what}")));
    }
    if !head[..n].starts_with(&magic[..n.min(magic.len())]) || n < magic.len() {
        return Err(match head[0] {
            0x80 => not_numpy(path, &head),
            _ => bad(path, format!("not {what}")),
        });
    }
    Ok(())
}

fn check_xy(path: &Path, x: &Array, y: &Array) -> Result<()> {
    if x.shape.is_empty() {
        return Err(bad(
            path,
            "x is a scalar; it needs one row per sample (shape (rows, ...))",
        ));
    }
    let rows = x.shape[0];
    let y_ok = matches!(y.shape.as_slice(), [n] if *n == rows)
        || matches!(y.shape.as_slice(), [n, 1] if *n == rows);
    if !y_ok {
        return Err(bad(
            path,
            format!(
                "y has shape {:?}; it needs one integer label per row of x (shape ({rows},)), x has shape {:?}",
                y.shape, x.shape
            ),
        ));
    }
    if y.kind == Kind::Float {
        return Err(bad(
            path,
            format!("y has dtype {}; class labels must be integers", y.descr),
        ));
    }
    if let Some(i) = x.values.iter().position(|v| !v.is_finite()) {
        return Err(bad(
            path,
            format!(
                "x holds a non-finite value ({}) at flat index {i}",
                x.values[i]
            ),
        ));
    }
    Ok(())
}

/// A table from `path` (`.npz` or `.npy`) for the tabular readers: `x` must be 2-D; the features
/// are named `x0`, `x1`, ... and, when `spec.labelled`, the label is the array `y` (each label's
/// first row is kept as its line, rows counting from 1). Without `spec.labelled` only `x` is read
/// (the `.npz` member `x`, or the `.npy` file itself), for prediction, unless `spec.label` is `y`. Column settings of `spec`
/// that a CSV has and arrays have not (a label or ignored column by name, other feature names)
/// are refused.
pub fn read_table(path: &Path, spec: &ReadSpec) -> Result<Table> {
    table_from(path, spec, None)
}

/// The arrays of a NumPy input read before the reading settings are known (while a model is read
/// elsewhere): `x`, and `y` when asked for; or the error reading them gave.
pub struct Prefetched {
    with_y: bool,
    read: Result<(Array, Option<Array>)>,
}

/// Reads `path`'s arrays ahead of `read_table_prefetched`: `x`, and `y` too when `with_y` (what a
/// `ReadSpec` that is `labelled` or labels by `y` reads). `None` when `path` is not a NumPy file.
pub fn prefetch(path: &Path, with_y: bool) -> Option<Prefetched> {
    is_numpy_path(path).then(|| Prefetched {
        with_y,
        read: read_arrays(path, with_y),
    })
}

/// `read_table` over arrays `prefetch` read (with the same errors, in the same order); `pre` that
/// read a different selection than `spec` asks for is read again.
pub fn read_table_prefetched(path: &Path, spec: &ReadSpec, pre: Prefetched) -> Result<Table> {
    table_from(path, spec, Some(pre))
}

/// `x` and, when `with_y`, its labels `y`.
fn read_arrays(path: &Path, with_y: bool) -> Result<(Array, Option<Array>)> {
    if with_y {
        let (x, y) = read_xy(path)?;
        Ok((x, Some(y)))
    } else if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"))
    {
        sniff(path, ZIP_MAGIC, "an .npz (zip) archive")?;
        Ok((read_npz(path, &["x"])?.remove(0), None))
    } else {
        Ok((read_npy(path)?, None))
    }
}

fn table_from(path: &Path, spec: &ReadSpec, pre: Option<Prefetched>) -> Result<Table> {
    if let Some(label) = spec.label.filter(|l| spec.labelled && *l != "y") {
        return Err(bad(
            path,
            format!(
                "label column '{label}' given, but a NumPy file has no columns: its labels are the array y"
            ),
        ));
    }
    if let Some(col) = spec.ignore.first() {
        return Err(bad(
            path,
            format!("column '{col}' to ignore given, but a NumPy file has no columns"),
        ));
    }
    // Without `labelled`, `label: "y"` asks to carry the labels along (predict's --label y).
    let with_y = spec.labelled || spec.label == Some("y");
    let (x, y) = match pre {
        Some(p) if p.with_y == with_y => p.read?,
        _ => read_arrays(path, with_y)?,
    };
    // An N-D x holds samples of the model's N-D input: (rows, height, width, channels) for an
    // image model, read as rows of their values in row-major order.
    let width = match (x.shape.as_slice(), spec.sample_shape.as_deref()) {
        ([_, w], None) => *w,
        ([_, rest @ ..], Some(want)) if rest == want => want.iter().product(),
        (shape, Some(want)) => {
            return Err(bad(
                path,
                format!(
                    "x has shape {shape:?}; this model takes samples of shape {want:?}, so x must be (rows, {})",
                    want.iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        (shape, None) => {
            return Err(bad(
                path,
                format!(
                    "x has shape {shape:?}; a model with flat input needs a 2-D x (rows, features)"
                ),
            ));
        }
    };
    let mut label_values: Vec<(String, u64)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let label_ids = y
        .iter()
        .flat_map(|y| y.values.iter().enumerate())
        .map(|(row, v)| {
            let text = format!("{}", *v as i64);
            *index.entry(text.clone()).or_insert_with(|| {
                label_values.push((text, row as u64 + 1));
                label_values.len() as u32 - 1
            })
        })
        .collect();
    let feature_names: Vec<String> = (0..width).map(|j| format!("x{j}")).collect();
    if let Some(names) = spec.features.filter(|n| **n != feature_names) {
        return Err(bad(
            path,
            format!(
                "the features are named [{}] elsewhere (the training data or the model), but a NumPy file's {} columns have no names; give every data file as .npz",
                names.join(", "),
                feature_names.len()
            ),
        ));
    }
    Ok(Table {
        path: path.to_path_buf(),
        feature_names,
        rows: x.shape[0],
        x: x.values,
        label_name: y.map(|_| "y".to_string()),
        label_ids,
        label_values,
        notes: Vec::new(),
        means: None,
        classes: None,
        row_names: None,
        folder: None,
    })
}
