//! CSV with quoted fields, streamed: the csv crate reads the file through a bounded reader, record
//! by record, and the records are parsed in batches of about `BATCH_BYTES` into the one output
//! array. No more of the file than one batch and one record is held at a time; a record longer than
//! `MAX_LINE_BYTES` (an unclosed quote, say) is refused once that many bytes are read, never held
//! whole; a NUL byte is refused naming its line, as on the unquoted path.

use super::{
    Element, Gathered, MAX_LINE_BYTES, Plan, csv_err, describe_csv_error, long_line_error,
};
use crate::error::{Error, Result};
use std::cell::Cell;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

/// Bytes of records gathered before they are parsed together.
const BATCH_BYTES: usize = 4 << 20;

/// The csv reader's own buffer: how far it may read ahead of the record it parses.
const READ_AHEAD: usize = 64 << 10;

/// Why the bounded reader stopped.
#[derive(Clone, Copy)]
enum Fault {
    /// A NUL byte, after this many newlines of the data.
    Nul(u64),
    /// The record being read passed `MAX_LINE_BYTES`.
    Long,
}

/// The data's bytes as the csv reader takes them: never more than `limit` bytes in all (the
/// current record's start plus `MAX_LINE_BYTES` plus the read-ahead), and no NUL byte.
struct Bounded<R> {
    inner: R,
    read: u64,
    newlines: u64,
    limit: Rc<Cell<u64>>,
    fault: Rc<Cell<Option<Fault>>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = self.limit.get().saturating_sub(self.read);
        if room == 0 {
            self.fault.set(Some(Fault::Long));
            return Err(std::io::Error::other("record too long"));
        }
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        let got = &buf[..n];
        if let Some(at) = memchr::memchr(0, got) {
            let before = memchr::memchr_iter(b'\n', &got[..at]).count() as u64;
            self.fault.set(Some(Fault::Nul(self.newlines + before)));
            return Err(std::io::Error::other("NUL byte"));
        }
        self.newlines += memchr::memchr_iter(b'\n', got).count() as u64;
        self.read += n as u64;
        Ok(n)
    }
}

/// Records read but not yet parsed: their fields' bytes end to end.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// Where each field ends in `bytes`.
    ends: Vec<usize>,
    /// Per record: its first line and its number of fields.
    records: Vec<(u64, usize)>,
}

impl Batch {
    fn push(&mut self, line: u64, rec: &csv::ByteRecord) {
        for f in rec {
            self.bytes.extend_from_slice(f);
            self.ends.push(self.bytes.len());
        }
        self.records.push((line, rec.len()));
    }

    /// Parses the batch's records into `g` and empties it.
    fn parse_into<T: Element>(
        &mut self,
        plan: &Plan,
        path: &Path,
        g: &mut Gathered<T>,
    ) -> Result<()> {
        let n = self.records.len();
        if n == 0 {
            return Ok(());
        }
        let width = plan.width;
        let start = g.x.len();
        g.x.resize(start + n * width, T::default());
        let result = {
            let mut c = plan.new_chunk(&mut g.x[start..]);
            let mut field = 0;
            let mut from = 0;
            let mut r = Ok(());
            for &(line, count) in &self.records {
                let ends = &self.ends[field..field + count];
                let mut begin = from;
                let fields = ends.iter().map(|&end| {
                    let f = &self.bytes[begin..end];
                    begin = end;
                    f
                });
                r = c.row(line, fields);
                if r.is_err() {
                    break;
                }
                field += count;
                from = ends.last().copied().unwrap_or(from);
            }
            r.map(|()| (c.rows, c.dropped, c.filled, c.labels, c.interner.values))
        };
        g.absorb(path, width, start, vec![result], &[n])?;
        self.bytes.clear();
        self.ends.clear();
        self.records.clear();
        Ok(())
    }
}

/// Parses the quoted data rows `data` (the file after its header, whose first line is
/// `first_line`) into `g`.
pub(super) fn stream<T: Element>(
    plan: &Plan,
    path: &Path,
    data: impl Read,
    first_line: u64,
    g: &mut Gathered<T>,
) -> Result<()> {
    let most = (MAX_LINE_BYTES + READ_AHEAD) as u64;
    let limit = Rc::new(Cell::new(most));
    let fault = Rc::new(Cell::new(None));
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(plan.header.delimiter)
        .buffer_capacity(READ_AHEAD)
        .from_reader(Bounded {
            inner: data,
            read: 0,
            newlines: 0,
            limit: limit.clone(),
            fault: fault.clone(),
        });
    let mut rec = csv::ByteRecord::new();
    let mut batch = Batch::default();
    loop {
        // The line the next record starts on.
        let next_line = rdr.position().line() + first_line - 1;
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                if rec.as_slice().len() > MAX_LINE_BYTES {
                    return Err(long_line_error(path, next_line));
                }
                batch.push(next_line, &rec);
                limit.set(rdr.position().byte() + most);
                if batch.bytes.len() >= BATCH_BYTES {
                    batch.parse_into(plan, path, g)?;
                }
                if rec.as_slice().len() > READ_AHEAD {
                    // A long record's buffer is not kept for the short ones after it.
                    rec = csv::ByteRecord::new();
                }
            }
            Err(e) => {
                return Err(match fault.take() {
                    Some(Fault::Long) => long_line_error(path, next_line),
                    Some(Fault::Nul(newlines)) => csv_err(
                        path,
                        format!(
                            "line {} holds a NUL byte: not CSV text (a binary or sparse file?)",
                            first_line + newlines
                        ),
                    ),
                    None => match e.kind() {
                        csv::ErrorKind::Io(io) => {
                            Error::io(path, std::io::Error::new(io.kind(), io.to_string()))
                        }
                        _ => csv_err(path, describe_csv_error(&e, first_line)),
                    },
                });
            }
        }
    }
    batch.parse_into(plan, path, g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ingest::{Dialect, Missing, Role, read_header};

    /// Streams `data` as the rows after the header `a,b,label` (two features and a label).
    fn parse_stream(data: impl Read) -> Result<Gathered<f64>> {
        let path = Path::new("q.csv");
        let header = read_header(path, b"a,b,label\n", &Dialect::default())?;
        let roles = [Role::Feature(0), Role::Feature(1), Role::Label];
        let plan = Plan {
            raw_roles: header.raw_roles(&roles),
            header: &header,
            width: 2,
            has_label: true,
            missing: Missing::Error,
            float64: true,
        };
        let mut g = Gathered::new();
        stream(&plan, path, data, 2, &mut g)?;
        Ok(g)
    }

    /// An endless quoted field (an unclosed quote) is refused once `MAX_LINE_BYTES` are read,
    /// naming its line: the reader stops there, it never holds the record whole.
    #[test]
    fn an_unclosed_quote_is_refused_after_the_line_limit() {
        let endless = std::io::Cursor::new(&b"1,2,x\n3,4,\""[..]).chain(std::io::repeat(b'y'));
        let e = parse_stream(endless).err().unwrap().to_string();
        assert!(e.contains("line 3 is longer than"), "{e}");
    }

    /// Rows across several batches, quoted labels with newlines and delimiters in them, read in
    /// order with the right line numbers; a NUL byte far in is refused naming its line.
    #[test]
    fn rows_stream_across_batches_with_their_lines() {
        let mut text = String::new();
        let rows = 400_000;
        for i in 0..rows {
            text.push_str(&format!("{i},\"{}\",\"l{}\n,x\"\n", i * 2, i % 3));
        }
        assert!(text.len() > 2 * BATCH_BYTES);
        let g = parse_stream(text.as_bytes()).unwrap();
        assert_eq!(g.rows, rows);
        assert_eq!(g.x[2 * 123_456..2 * 123_456 + 2], [123_456.0, 246_912.0]);
        assert_eq!(g.label_values.len(), 3);
        assert_eq!(g.label_values[2], ("l2\n,x".to_string(), 6));
        // Each record spans two lines: row i starts on line 2 + 2i.
        let mut bad = text.clone();
        bad.push_str("1,2,\"ok\"\n1,oops,\"ok\"\n");
        let e = parse_stream(bad.as_bytes()).err().unwrap().to_string();
        assert!(e.contains(&format!("line {}", 2 + 2 * rows + 1)), "{e}");
        let mut nul = text;
        nul.push_str("1,2,\"o\0k\"\n");
        let e = parse_stream(nul.as_bytes()).err().unwrap().to_string();
        assert!(
            e.contains(&format!("line {} holds a NUL byte", 2 + 2 * rows)),
            "{e}"
        );
    }
}
