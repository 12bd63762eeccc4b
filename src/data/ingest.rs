//! Parsing a CSV file's bytes into one float array: the dialect (delimiter, BOM, CRLF, quotes, a pandas
//! index column, a trailing empty column), the header, the columns picked by the caller, missing
//! values, and label texts interned per distinct value. Files without quotes are split by hand and
//! parsed on every core, each thread writing its rows straight into the one output array; files with
//! quotes go through the `csv` crate.

mod quoted;

use crate::error::{Error, Result, shown};
use std::collections::HashMap;
use std::path::Path;

/// A float type the parser writes: every value is parsed from its decimal text to `f64` exactly
/// (correctly rounded), then rounded once to the target type, as numpy's `loadtxt(...).astype(float32)`
/// and Keras's float32 cast do.
pub trait Element: Copy + Send + Sync + Default + 'static {
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
}

impl Element for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
}

impl Element for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

/// What to do with a missing value (an empty field or one of pandas' default NA markers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Missing {
    /// Refuse the file, naming the line and column (the default).
    #[default]
    Error,
    /// Leave out every row with a missing value.
    Drop,
    /// Fill a missing feature with its column's mean over the rows that have it (float64).
    Mean,
    /// Fill a missing feature with 0.
    Zero,
}

/// How to read a file: its delimiter (`None`: detected from the header among `,` `;` tab `|`), what
/// to do with missing values, and whether values beyond float32's range are taken.
#[derive(Debug, Clone, Default)]
pub struct Dialect {
    pub delimiter: Option<u8>,
    pub missing: Missing,
    /// The values feed a float64 model: any finite double is taken. When false (a float32 model, the
    /// default), a value that float32 cannot hold (beyond ±3.4028235e38, which Keras's cast would
    /// turn into an infinity) is refused, naming its line and column.
    pub float64: bool,
    /// With `Missing::Mean`: the column means to fill with, in feature order (a model's training
    /// data's, so that a row gets the same values whatever file it is in). `None`: the file's own.
    pub means: Option<Vec<f64>>,
}

/// The longest line (the header or a data row) read, in bytes: a longer one is refused, naming it.
pub const MAX_LINE_BYTES: usize = 8 << 20;

/// The longest field (a feature value or a label) read, in bytes: a longer one is refused, naming
/// its line and column.
pub const MAX_FIELD_BYTES: usize = 1024;

/// The error for a NUL byte at `at` in `text`, whose first line is `first_line`: CSV text has none
/// (a binary or sparse file).
fn nul_error(path: &Path, text: &[u8], at: usize, first_line: u64) -> Error {
    let line = first_line + memchr::memchr_iter(b'\n', &text[..at]).count() as u64;
    csv_err(
        path,
        format!("line {line} holds a NUL byte: not CSV text (a binary or sparse file?)"),
    )
}

/// The error for line `line` when it is longer than `MAX_LINE_BYTES`.
fn long_line_error(path: &Path, line: u64) -> Error {
    csv_err(
        path,
        format!(
            "line {line} is longer than {MAX_LINE_BYTES} bytes, the longest line keras-transfer reads"
        ),
    )
}

/// The markers pandas' `read_csv` takes for a missing value by default, besides the empty field.
pub const NA_MARKERS: &[&str] = &[
    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
    "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// A finite decimal number read from its text, correctly rounded to the nearest double (the value
/// `str::parse::<f64>` gives, by the Eisel-Lemire algorithm of the `fast-float2` crate, straight from
/// the bytes); `None` for anything else, infinities and NaN included (the caller then tells a
/// missing value from a bad one).
pub fn fast_f64(s: &[u8]) -> Option<f64> {
    fast_float2::parse::<f64, _>(s)
        .ok()
        .filter(|v| v.is_finite())
}

fn is_missing(field: &[u8]) -> bool {
    field.is_empty() || NA_MARKERS.iter().any(|m| m.as_bytes() == field)
}

/// A file's header after its dialect was recognised.
#[derive(Debug, Clone)]
pub struct Header {
    /// Column names, without a pandas index column or a trailing unnamed column.
    pub names: Vec<String>,
    pub delimiter: u8,
    /// Raw fields per row (including a dropped index or trailing column).
    raw_width: usize,
    /// Raw position of `names[0]` (1 when an index column was dropped).
    offset: usize,
    /// Byte offset where the data rows start, and the 1-based line number of the first one.
    data_start: usize,
    first_line: u64,
    /// What was recognised and dropped, one line each, to tell the user once.
    pub notes: Vec<String>,
}

/// The role of a raw column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Feature `j` of the output rows.
    Feature(usize),
    Label,
    Skip,
}

/// A parsed table: the picked features (row-major, `width` per row) and, when a label column was
/// picked, each row's label as an index into `label_values` (distinct trimmed texts, in order of
/// first appearance, each with the line it first appears on).
#[derive(Debug)]
pub struct Parsed<T> {
    pub x: Vec<T>,
    pub width: usize,
    pub rows: usize,
    pub label_ids: Vec<u32>,
    pub label_values: Vec<(String, u64)>,
    /// With `Missing::Mean`: the column means the gaps were (or would be) filled with.
    pub means: Option<Vec<f64>>,
    /// What was done that the user should hear of (rows dropped, values filled).
    pub notes: Vec<String>,
}

pub(crate) fn csv_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Csv {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads the whole file (refusing a directory or a FIFO by name).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(csv_err(path, "is a directory, expected a CSV file"));
    }
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// The delimiter among `,` `;` tab `|` that occurs most often (outside quotes) in the header line;
/// a comma when none does (a one-column file).
fn sniff_delimiter(line: &[u8]) -> u8 {
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for &b in line {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(i) = CANDIDATES.iter().position(|&c| c == b) {
            counts[i] += 1;
        }
    }
    let best = (0..4).max_by_key(|&i| (counts[i], 4 - i)).unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        CANDIDATES[best]
    }
}

/// Where the first line ends (after its `\n`), counting quoted newlines as inside the line.
fn end_of_first_record(bytes: &[u8]) -> usize {
    let mut quoted = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => return i + 1,
            _ => {}
        }
    }
    bytes.len()
}

fn describe_csv_error(e: &csv::Error, first_line: u64) -> String {
    let line =
        |p: &Option<csv::Position>| p.as_ref().map(|p| p.line()).unwrap_or(0) + first_line - 1;
    match e.kind() {
        csv::ErrorKind::Utf8 { pos, .. } => format!("line {}: not valid UTF-8 text", line(pos)),
        _ => e.to_string(),
    }
}

/// Reads the header of the file at `path` (see `read_header`), reading only the file's start.
pub fn read_file_header(path: &Path, dialect: &Dialect) -> Result<Header> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(csv_err(path, "is a directory, expected a CSV file"));
    }
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = Vec::new();
    let mut want = 1 << 16;
    loop {
        let eof = fill(path, &mut file, &mut buf, want)?;
        if let Some(at) = memchr::memchr(0, &buf) {
            return Err(nul_error(path, &buf, at, 1));
        }
        let lead = buf
            .iter()
            .position(|b| !matches!(b, b'\n' | b'\r' | 0xEF | 0xBB | 0xBF));
        if eof || lead.is_some_and(|l| end_of_first_record(&buf[l..]) < buf.len() - l) {
            return read_header(path, &buf, dialect);
        }
        if buf.len() > MAX_LINE_BYTES {
            return Err(long_line_error(path, 1));
        }
        want *= 2;
    }
}

/// Recognises the dialect and reads the header: BOM, delimiter, a pandas index column (an unnamed
/// first column), a trailing unnamed column; refuses unnamed or duplicate columns.
pub fn read_header(path: &Path, bytes: &[u8], dialect: &Dialect) -> Result<Header> {
    let bom = if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let body = &bytes[bom..];
    // Blank lines before the header are skipped, as the csv crate and pandas do.
    let lead = body
        .iter()
        .position(|b| !matches!(b, b'\n' | b'\r'))
        .unwrap_or(body.len());
    let blank_lines = body[..lead].iter().filter(|&&b| b == b'\n').count() as u64;
    let rest = &body[lead..];
    if rest.is_empty() {
        return Err(csv_err(
            path,
            "the file is empty; expected a header row and data rows",
        ));
    }
    let end = end_of_first_record(rest);
    if end > MAX_LINE_BYTES {
        return Err(long_line_error(path, 1 + blank_lines));
    }
    let delimiter = dialect
        .delimiter
        .unwrap_or_else(|| sniff_delimiter(&rest[..end]));
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .from_reader(&rest[..end]);
    let mut rec = csv::StringRecord::new();
    rdr.read_record(&mut rec)
        .map_err(|e| csv_err(path, describe_csv_error(&e, 1 + blank_lines)))?;
    let mut names: Vec<String> = rec.iter().map(|s| s.trim().to_string()).collect();
    let raw_width = names.len();
    let mut notes = Vec::new();
    let mut offset = 0;
    if names.len() > 1 && names[0].is_empty() {
        names.remove(0);
        offset = 1;
        notes.push(
            "the first column has no name: taken as a pandas index column and left out".to_string(),
        );
    }
    if names.len() > 1 && names.last().is_some_and(String::is_empty) {
        names.pop();
        notes.push("the last column has no name and is left out (a trailing delimiter)".into());
    }
    if names.iter().all(String::is_empty) {
        return Err(csv_err(
            path,
            "the file is empty; expected a header row and data rows",
        ));
    }
    if let Some(j) = names.iter().position(String::is_empty) {
        return Err(csv_err(
            path,
            format!("column {} of the header has no name", j + 1 + offset),
        ));
    }
    if let Some(j) = names.iter().position(|n| n.len() > MAX_FIELD_BYTES) {
        return Err(csv_err(
            path,
            format!(
                "column {} of the header is a name of {} bytes, longer than {MAX_FIELD_BYTES} bytes (the longest name keras-transfer reads)",
                j + 1 + offset,
                names[j].len()
            ),
        ));
    }
    if let Some(d) = crate::data::schema::first_duplicate(&names) {
        return Err(csv_err(
            path,
            format!(
                "two columns are named {}; column names must differ",
                shown(d)
            ),
        ));
    }
    let header_lines = rest[..end].iter().filter(|&&b| b == b'\n').count() as u64;
    Ok(Header {
        names,
        delimiter,
        raw_width,
        offset,
        data_start: bom + lead + end,
        first_line: 1 + blank_lines + header_lines.max(1),
        notes,
    })
}

impl Header {
    /// The raw column roles for `roles` given per named column.
    fn raw_roles(&self, roles: &[Role]) -> Vec<Role> {
        let mut raw = vec![Role::Skip; self.raw_width];
        raw[self.offset..self.offset + roles.len()].copy_from_slice(roles);
        raw
    }
}

/// Interns label texts: each distinct text gets an id, in order of first appearance.
#[derive(Default)]
struct Interner {
    ids: HashMap<Box<[u8]>, u32>,
    values: Vec<(String, u64)>,
}

impl Interner {
    fn id(&mut self, text: &[u8], line: u64) -> std::result::Result<u32, String> {
        if let Some(&id) = self.ids.get(text) {
            return Ok(id);
        }
        let s = std::str::from_utf8(text)
            .map_err(|_| format!("line {line}: the label is not valid UTF-8 text"))?;
        let id = self.values.len() as u32;
        self.values.push((s.to_string(), line));
        self.ids.insert(text.into(), id);
        Ok(id)
    }
}

/// One thread's share of the rows, written into its own slice of the output.
struct Chunk<'a, T> {
    roles: &'a [Role],
    names: &'a [String],
    offset: usize,
    width: usize,
    missing: Missing,
    float64: bool,
    has_label: bool,
    out: &'a mut [T],
    rows: usize,
    dropped: usize,
    filled: usize,
    labels: Vec<u32>,
    interner: Interner,
}

fn trim(mut f: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = f {
        f = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = f {
        f = rest;
    }
    f
}

impl<T: Element> Chunk<'_, T> {
    /// The raw column's name as messages show it.
    fn column(&self, raw: usize) -> String {
        shown(&self.names[raw - self.offset])
    }

    /// Refuses a field longer than `MAX_FIELD_BYTES`.
    fn check_length(&self, line: u64, j: usize, field: &[u8]) -> std::result::Result<(), String> {
        if field.len() <= MAX_FIELD_BYTES {
            return Ok(());
        }
        Err(format!(
            "line {line}, column {}: a field of {} bytes, longer than {MAX_FIELD_BYTES} bytes (the longest {} keras-transfer reads)",
            self.column(j),
            field.len(),
            if self.roles[j] == Role::Label {
                "label"
            } else {
                "value"
            }
        ))
    }

    /// A parsed value, refused when a float32 model cannot hold it (Keras's cast would make it
    /// infinite).
    fn in_range(
        &self,
        line: u64,
        j: usize,
        field: &[u8],
        v: f64,
    ) -> std::result::Result<f64, String> {
        if self.float64 || (v as f32).is_finite() {
            return Ok(v);
        }
        Err(format!(
            "line {line}, column {}: {} is beyond float32's range (±3.4028235e38), which the float32 model computes in",
            self.column(j),
            shown(&String::from_utf8_lossy(field))
        ))
    }

    /// Takes one row's fields. A row with one field more than the header whose last field is empty
    /// (a trailing delimiter on data rows only) is accepted.
    fn row<'f>(
        &mut self,
        line: u64,
        fields: impl Iterator<Item = &'f [u8]>,
    ) -> std::result::Result<(), String> {
        let raw_width = self.roles.len();
        let ragged = |n: usize| {
            format!("line {line}: ragged row with {n} fields, expected {raw_width} like the header")
        };
        let base = self.rows * self.width;
        let mut missing_at = None;
        let mut label = None;
        let mut n_fields = 0;
        for (j, field) in fields.enumerate() {
            n_fields = j + 1;
            let field = trim(field);
            let Some(&role) = self.roles.get(j) else {
                if j > raw_width || !field.is_empty() {
                    return Err(ragged(n_fields + usize::from(j == raw_width)));
                }
                continue;
            };
            match role {
                Role::Skip => {}
                Role::Label => {
                    self.check_length(line, j, field)?;
                    if is_missing(field) {
                        missing_at.get_or_insert(j);
                    } else {
                        label = Some(self.interner.id(field, line)?);
                    }
                }
                Role::Feature(k) => {
                    if let Some(v) = fast_f64(field) {
                        self.out[base + k] = T::from_f64(self.in_range(line, j, field, v)?);
                        continue;
                    }
                    self.check_length(line, j, field)?;
                    if is_missing(field) {
                        missing_at.get_or_insert(j);
                        self.out[base + k] = T::from_f64(f64::NAN);
                        continue;
                    }
                    let v = std::str::from_utf8(field)
                        .ok()
                        .and_then(|s| s.parse::<f64>().ok())
                        .ok_or_else(|| {
                            let text = String::from_utf8_lossy(field);
                            format!(
                                "line {line}, column {}: {} is not a number{}",
                                self.column(j),
                                shown(&text),
                                if text.contains(',') {
                                    " (decimal commas are not read: write a point)"
                                } else {
                                    ""
                                }
                            )
                        })?;
                    if !v.is_finite() {
                        return Err(format!(
                            "line {line}, column {}: {} is not a finite number",
                            self.column(j),
                            shown(&String::from_utf8_lossy(field))
                        ));
                    }
                    self.out[base + k] = T::from_f64(self.in_range(line, j, field, v)?);
                }
            }
        }
        if n_fields < raw_width {
            return Err(ragged(n_fields));
        }
        if let Some(j) = missing_at {
            let is_label = self.roles[j] == Role::Label;
            match self.missing {
                Missing::Drop => {
                    self.dropped += 1;
                    return Ok(());
                }
                Missing::Error if !is_label => {
                    return Err(format!(
                        "line {line}, column {}: missing value; use --missing drop|mean|zero to leave out or fill such rows",
                        self.column(j)
                    ));
                }
                _ if is_label => {
                    return Err(format!(
                        "line {line}: empty label in column {}{}",
                        self.column(j),
                        if self.missing == Missing::Error {
                            "; use --missing drop to leave out such rows"
                        } else {
                            ""
                        }
                    ));
                }
                Missing::Zero => {
                    for v in &mut self.out[base..base + self.width] {
                        if v.to_f64().is_nan() {
                            *v = T::from_f64(0.0);
                            self.filled += 1;
                        }
                    }
                }
                _ => self.filled += 1, // Mean: filled once the means are known.
            }
        }
        if self.has_label {
            self.labels.push(label.unwrap_or(0));
        }
        self.rows += 1;
        Ok(())
    }

    /// Splits unquoted text by hand: lines at `\n` (a `\r` before it is trimmed), fields at the
    /// delimiter; blank lines are skipped.
    fn plain(
        &mut self,
        text: &[u8],
        first_line: u64,
        delimiter: u8,
    ) -> std::result::Result<(), String> {
        let mut start = 0;
        for (i, end) in memchr::memchr_iter(b'\n', text)
            .chain((text.last() != Some(&b'\n')).then_some(text.len()))
            .enumerate()
        {
            let line = &text[start..end];
            start = end + 1;
            if line.len() > MAX_LINE_BYTES {
                return Err(format!(
                    "line {} is longer than {MAX_LINE_BYTES} bytes, the longest line keras-transfer reads",
                    first_line + i as u64
                ));
            }
            if line.is_empty() || line == b"\r" {
                continue;
            }
            self.row(first_line + i as u64, line.split(|&b| b == delimiter))?;
        }
        Ok(())
    }
}

/// Threads the unquoted parse uses: one per core (at most 8), one for small files.
fn threads_for(len: usize) -> usize {
    if len < (1 << 20) {
        return 1;
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8)
}

/// Bytes read per block and thread: the file is read block by block, never held whole.
const BLOCK_PER_THREAD: usize = 4 << 20;

/// What the column roles and settings of one read are, shared by every chunk.
struct Plan<'a> {
    raw_roles: Vec<Role>,
    header: &'a Header,
    width: usize,
    has_label: bool,
    missing: Missing,
    float64: bool,
}

/// The rows gathered so far, block after block.
struct Gathered<T> {
    x: Vec<T>,
    rows: usize,
    dropped: usize,
    filled: usize,
    label_ids: Vec<u32>,
    label_values: Vec<(String, u64)>,
    global: HashMap<String, u32>,
}

impl<T> Gathered<T> {
    fn new() -> Self {
        Gathered {
            x: Vec::new(),
            rows: 0,
            dropped: 0,
            filled: 0,
            label_ids: Vec::new(),
            label_values: Vec::new(),
            global: HashMap::new(),
        }
    }
}

impl<T: Element> Gathered<T> {
    /// Takes the rows the chunks parsed into `x` from `start` on (chunk k's `capacity[k]` rows
    /// apart): moves them together after the rows gathered so far and merges their label texts.
    fn absorb(
        &mut self,
        path: &Path,
        width: usize,
        start: usize,
        results: Vec<ChunkResult>,
        capacity: &[usize],
    ) -> Result<()> {
        let mut from = start / width.max(1);
        for (r, cap) in results.into_iter().zip(capacity) {
            let (n, d, f, ids, values) = r.map_err(|reason| csv_err(path, reason))?;
            self.x
                .copy_within(from * width..(from + n) * width, self.rows * width);
            let remap: Vec<u32> = values
                .into_iter()
                .map(|(v, line)| match self.global.get(&v) {
                    Some(&id) => id,
                    None => {
                        let id = self.label_values.len() as u32;
                        self.global.insert(v.clone(), id);
                        self.label_values.push((v, line));
                        id
                    }
                })
                .collect();
            self.label_ids
                .extend(ids.iter().map(|&i| remap[i as usize]));
            self.rows += n;
            self.dropped += d;
            self.filled += f;
            from += cap;
        }
        self.x.truncate(self.rows * width);
        Ok(())
    }
}

type ChunkResult = std::result::Result<(usize, usize, usize, Vec<u32>, Vec<(String, u64)>), String>;

impl Plan<'_> {
    /// A chunk that writes its rows into `out`.
    fn new_chunk<'a, T: Element>(&'a self, out: &'a mut [T]) -> Chunk<'a, T> {
        Chunk {
            roles: &self.raw_roles,
            names: &self.header.names,
            offset: self.header.offset,
            width: self.width,
            missing: self.missing,
            float64: self.float64,
            has_label: self.has_label,
            out,
            rows: 0,
            dropped: 0,
            filled: 0,
            labels: Vec::new(),
            interner: Interner::default(),
        }
    }

    /// Parses one chunk of unquoted text into `out`.
    fn chunk<T: Element>(&self, text: &[u8], out: &mut [T], first_line: u64) -> ChunkResult {
        let mut c = self.new_chunk(out);
        c.plain(text, first_line, self.header.delimiter)
            .map(|()| (c.rows, c.dropped, c.filled, c.labels, c.interner.values))
    }

    /// Parses whole unquoted lines `data` (starting at line `first_line`) on `threads` threads,
    /// each writing its rows into its own part of the output, then moves the rows together and
    /// merges the label texts. Returns the number of lines `data` held.
    fn block<T: Element>(
        &self,
        path: &Path,
        data: &[u8],
        first_line: u64,
        threads: usize,
        g: &mut Gathered<T>,
    ) -> Result<u64> {
        let width = self.width;
        let mut bounds = vec![0usize];
        for t in 1..threads {
            let guess = (data.len() * t / threads).max(*bounds.last().unwrap_or(&0));
            let at = memchr::memchr(b'\n', &data[guess..]).map_or(data.len(), |p| guess + p + 1);
            bounds.push(at);
        }
        bounds.push(data.len());
        let pieces: Vec<&[u8]> = bounds.windows(2).map(|w| &data[w[0]..w[1]]).collect();
        let line_counts: Vec<usize> = pieces
            .iter()
            .map(|p| memchr::memchr_iter(b'\n', p).count())
            .collect();
        // Every piece's rows fit in (its newlines + 1) rows; they are moved together afterwards.
        let capacity: Vec<usize> = line_counts.iter().map(|n| n + 1).collect();
        let start = g.x.len();
        g.x.resize(start + capacity.iter().sum::<usize>() * width, T::default());
        let mut slices = Vec::new();
        let mut rest: &mut [T] = &mut g.x[start..];
        for c in &capacity {
            let (a, b) = std::mem::take(&mut rest).split_at_mut(c * width);
            slices.push(a);
            rest = b;
        }
        let mut first_lines = vec![first_line];
        for n in &line_counts {
            first_lines.push(first_lines.last().unwrap_or(&0) + *n as u64);
        }
        let results: Vec<ChunkResult> = if pieces.len() == 1 {
            vec![self.chunk(pieces[0], slices.remove(0), first_line)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = pieces
                    .iter()
                    .zip(slices)
                    .zip(&first_lines)
                    .map(|((text, out), &line)| s.spawn(move || self.chunk(text, out, line)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err("a parser thread failed".into()))
                    })
                    .collect()
            })
        };
        g.absorb(path, width, start, results, &capacity)?;
        Ok(line_counts.iter().sum::<usize>() as u64)
    }
}

/// Reads into `buf` until it holds `want` bytes or the file ends; returns whether it ended.
fn fill(path: &Path, file: &mut std::fs::File, buf: &mut Vec<u8>, want: usize) -> Result<bool> {
    use std::io::Read;
    let mut have = buf.len();
    buf.resize(want, 0);
    while have < want {
        match file.read(&mut buf[have..]) {
            Ok(0) => {
                buf.truncate(have);
                return Ok(true);
            }
            Ok(n) => have += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(false)
}

/// Parses the data rows of the file at `path` (after `header`), with raw column roles `roles` per
/// named column. Features go to one `T` array, written in place by every core (at most one block of
/// the file's text is in memory at a time); the label column's texts are interned. A file with quotes
/// is streamed through the csv crate on one thread (`quoted`), as boundedly.
pub fn parse<T: Element>(
    path: &Path,
    header: &Header,
    roles: &[Role],
    dialect: &Dialect,
) -> Result<Parsed<T>> {
    let missing = dialect.missing;
    use std::io::{Seek, SeekFrom};
    let plan = Plan {
        raw_roles: header.raw_roles(roles),
        header,
        width: roles
            .iter()
            .filter(|r| matches!(r, Role::Feature(_)))
            .count(),
        has_label: roles.contains(&Role::Label),
        missing,
        float64: dialect.float64,
    };
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len() as usize;
    let data_len = size.saturating_sub(header.data_start);
    file.seek(SeekFrom::Start(header.data_start as u64))
        .map_err(|e| Error::io(path, e))?;
    let threads = threads_for(data_len);
    let block = BLOCK_PER_THREAD * threads;
    let mut g = Gathered::new();
    let mut buf = Vec::new();
    let mut line = header.first_line;
    let mut want = block;
    let mut consumed = 0usize;
    let mut reserved = false;
    loop {
        let eof = fill(path, &mut file, &mut buf, want)?;
        if let Some(at) = memchr::memchr(0, &buf) {
            return Err(nul_error(path, &buf, at, line));
        }
        if memchr::memchr(b'"', &buf).is_some() {
            // Quoted fields may hold newlines: the data rows again from the start, streamed
            // through the csv crate.
            drop(std::mem::take(&mut buf));
            g = Gathered::new();
            file.seek(SeekFrom::Start(header.data_start as u64))
                .map_err(|e| Error::io(path, e))?;
            quoted::stream(
                &plan,
                path,
                std::io::BufReader::new(file),
                header.first_line,
                &mut g,
            )?;
            break;
        }
        let end = if eof {
            buf.len()
        } else {
            match memchr::memrchr(b'\n', &buf) {
                Some(p) => p + 1,
                None if buf.len() > MAX_LINE_BYTES => return Err(long_line_error(path, line)),
                None => {
                    want += block; // a line longer than a block: read more
                    continue;
                }
            }
        };
        line += plan.block(path, &buf[..end], line, threads, &mut g)?;
        consumed += end;
        if !reserved && g.rows > 0 && consumed < data_len {
            reserved = true;
            // Room for the rows still to come, estimated from the bytes per row so far.
            let estimate = (data_len - consumed) / (consumed / g.rows).max(1) + 1;
            g.x.reserve_exact(estimate * plan.width + estimate * plan.width / 20);
        }
        buf.drain(..end);
        want = block.max(buf.len() + 1);
        if eof {
            break;
        }
    }
    let Gathered {
        mut x,
        rows,
        dropped,
        filled,
        label_ids,
        label_values,
        ..
    } = g;
    let width = plan.width;
    x.shrink_to_fit();
    if rows == 0 {
        return Err(csv_err(
            path,
            if dropped > 0 {
                "has no rows left once the rows with missing values are dropped"
            } else {
                "has a header but no data rows"
            },
        ));
    }
    let mut notes = Vec::new();
    if dropped > 0 {
        notes.push(format!("left out {dropped} rows with missing values"));
    }
    let mut means = None;
    if missing == Missing::Mean {
        let m = match &dialect.means {
            Some(m) if m.len() == width => m.clone(),
            Some(m) => {
                return Err(Error::Internal(format!(
                    "{} means for {width} feature columns",
                    m.len()
                )));
            }
            None => column_means(path, &x, width, roles, &header.names)?,
        };
        if filled > 0 {
            fill_gaps(&mut x, width, &m);
            notes.push(format!(
                "filled the missing values of {filled} rows with their column's mean{}",
                if dialect.means.is_some() {
                    " in the training data"
                } else {
                    ""
                }
            ));
        }
        means = Some(m);
    } else if missing == Missing::Zero && filled > 0 {
        notes.push(format!("filled {filled} missing values with 0"));
    }
    Ok(Parsed {
        x,
        width,
        rows,
        label_ids,
        label_values,
        means,
        notes,
    })
}

/// Each column's mean over its present values (float64); a column without any is refused.
fn column_means<T: Element>(
    path: &Path,
    x: &[T],
    width: usize,
    roles: &[Role],
    names: &[String],
) -> Result<Vec<f64>> {
    let mut sums = vec![(0f64, 0usize); width];
    for row in x.chunks_exact(width) {
        for (s, v) in sums.iter_mut().zip(row) {
            let v = v.to_f64();
            if !v.is_nan() {
                s.0 += v;
                s.1 += 1;
            }
        }
    }
    if let Some(k) = sums.iter().position(|s| s.1 == 0) {
        let name = roles
            .iter()
            .position(|r| *r == Role::Feature(k))
            .map_or("?", |j| names[j].as_str());
        return Err(csv_err(
            path,
            format!("column {} has no values to take the mean of", shown(name)),
        ));
    }
    Ok(sums.iter().map(|s| s.0 / s.1 as f64).collect())
}

/// Replaces each NaN (a missing value) by its column's mean.
fn fill_gaps<T: Element>(x: &mut [T], width: usize, means: &[f64]) {
    let means: Vec<T> = means.iter().map(|&m| T::from_f64(m)).collect();
    for row in x.chunks_exact_mut(width) {
        for (v, m) in row.iter_mut().zip(&means) {
            if v.to_f64().is_nan() {
                *v = *m;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parser agrees with `str::parse` bit for bit on every finite decimal, and refuses what is
    /// not one.
    #[test]
    fn fast_f64_equals_std_parse() {
        let mut rng = crate::rng::NumpyRandomState::new(7);
        let mut answered = 0;
        let mut texts: Vec<String> = [
            "0",
            "-0",
            "+1",
            "1.",
            ".5",
            "-.5",
            "00012.3400",
            "1e5",
            "1E-5",
            "2.5e+3",
            "9007199254740993",
            "123456789012345678",
            "1234567890123456789012",
            "0.1",
            "0.3",
            "1e22",
            "1e23",
            "1e-22",
            "4.9e-324",
            "1.7976931348623157e308",
            "0e400",
            "3.4028235e38",
            "1.00000017881393421514957253748434595763683319091796875",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..100_000 {
            let v =
                (rng.random_sample() - 0.5) * 10f64.powi((rng.random_sample() * 20.0) as i32 - 10);
            texts.push(format!("{}", v as f32));
            texts.push(format!("{v}"));
            texts.push(format!("{v:.3}"));
            texts.push(format!("{v:e}"));
        }
        for (i, t) in texts.iter().enumerate() {
            let want: f64 = t.parse().unwrap();
            match fast_f64(t.as_bytes()) {
                Some(got) => {
                    assert_eq!(got.to_bits(), want.to_bits(), "{t}");
                    answered += 1;
                }
                None => panic!("{t} (text {i}) was not read"),
            }
        }
        assert_eq!(answered, texts.len());
        for bad in [
            "", "-", ".", "e5", "1e", "1e+", "1.2.3", "1,5", "0x10", "inf", "NaN", "1 2", " 1",
            "1 ", "1e400", "-inf", "infinity",
        ] {
            assert_eq!(fast_f64(bad.as_bytes()), None, "{bad}");
        }
    }
}
