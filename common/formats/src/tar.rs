//! Reading tar streams: `sol-tar list`, `sol-tar extract` and `tar-md5` all read through here.
//!
//! The tar crate frames the entries; this module makes it strict. The tar crate silently
//! ignores what it cannot parse in a pax extended header (`size=-1` falls back to the ustar
//! size, an empty `path=` drops the entry) and reads numeric fields loosely. So the bytes the
//! crate consumes between one entry's data and the next entry's header (extended headers,
//! long names, the header itself) are kept as they pass, and checked here before the entry
//! is handed on: every numeric field, every pax record's length, every number a pax record
//! carries, and no empty path. A problem is one line naming the entry and the byte where its
//! header starts, status 3.

use std::io::{self, BufReader, Chain, Cursor, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sol_common::stdio::read_full;
use sol_common::Fail;
use tar::{Archive, Entries, Entry, EntryType};

use crate::sparse::{Sparse, SparseError};

use sol_common::io_msg;

/// Extended headers of one entry larger than this are refused (a pax path is at most a few
/// KiB; the bound keeps memory flat on hostile input). A sparse file's map in GNU tar's old
/// and pax 0.0 forms lives in these headers: 16 MiB holds about 280,000 regions in pax 0.0
/// and 680,000 in old GNU (the 1.0 form keeps its map in the data).
const MAX_META: usize = 16 << 20;
const BLOCK: usize = 512;

/// What [`Counting`] keeps of the bytes it passes on.
#[derive(Default)]
struct Capture {
    /// Stream offset of `buf[0]`.
    from: u64,
    buf: Vec<u8>,
    /// Bytes consumed so far.
    pos: u64,
}

/// Counts the bytes the tar reader consumed (to tell a finished archive from a cut one),
/// notes when the input ran dry (a failed unpack after that is a truncated stream), and keeps
/// the bytes from `Capture::from` on.
pub struct Counting<R> {
    inner: R,
    pub count: u64,
    eof: Arc<AtomicBool>,
    capture: Arc<Mutex<Capture>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof.store(true, Ordering::Relaxed);
        }
        let end = self.count + n as u64;
        let mut cap = self.capture.lock().unwrap_or_else(|p| p.into_inner());
        cap.pos = end;
        if end > cap.from {
            let skip = cap.from.saturating_sub(self.count) as usize;
            cap.buf.extend_from_slice(&buf[skip..n]);
            if cap.buf.len() > MAX_META + 2 * BLOCK {
                return Err(io::Error::other(format!(
                    "extended headers larger than {} KiB",
                    MAX_META >> 10
                )));
            }
        }
        self.count = end;
        Ok(n)
    }
}

pub type TarArchive<R> = Archive<Counting<BufReader<Chain<Cursor<Vec<u8>>, R>>>>;

/// A tar reader over `input`, and the checker its entries go through. Input in another of the
/// toolkit's formats is refused here, saying which stage comes first.
pub fn open<R: Read>(mut input: R) -> anyhow::Result<(TarArchive<R>, Checker)> {
    let mut head = vec![0u8; crate::sniff::SNIFF_LEN];
    let n = read_full(&mut input, &mut head)
        .map_err(|e| anyhow::Error::new(e).context("reading input"))?;
    head.truncate(n);
    if let Some(kind) = crate::sniff::sniff(&head) {
        if kind != crate::sniff::Kind::Tar {
            let why = crate::sniff::wrong_stage(&head).unwrap_or_default();
            Err(Fail::integrity(format!("not a tar archive: {why}")))?;
        }
    }
    let eof = Arc::new(AtomicBool::new(false));
    let capture = Arc::new(Mutex::new(Capture::default()));
    let counting = Counting {
        inner: BufReader::with_capacity(1 << 20, Cursor::new(head).chain(input)),
        count: 0,
        eof: eof.clone(),
        capture: capture.clone(),
    };
    let checker = Checker {
        capture,
        eof,
        index: 0,
        end_of_data: 0,
    };
    Ok((Archive::new(counting), checker))
}

/// A global pax header's records are its data: check them too.
fn check_global_pax<R: Read>(entry: &mut Entry<'_, R>, index: u64) -> anyhow::Result<()> {
    let pos = entry.raw_header_position();
    let mut data = Vec::new();
    entry
        .take(MAX_META as u64 + 1)
        .read_to_end(&mut data)
        .map_err(corrupt)?;
    if data.len() > MAX_META {
        Err(Fail::integrity(format!(
            "entry {index} (header at byte {pos}): global pax header larger than {} KiB",
            MAX_META >> 10
        )))?;
    }
    check_pax(&data).map_err(|why| {
        Fail::integrity(format!(
            "entry {index} (header at byte {pos}): malformed global pax header: {why}"
        ))
    })?;
    Ok(())
}

/// Checks each entry's headers as it comes out of the tar crate.
pub struct Checker {
    capture: Arc<Mutex<Capture>>,
    eof: Arc<AtomicBool>,
    /// Entries handed out so far.
    index: u64,
    /// Where the last entry's padded data ends.
    end_of_data: u64,
}

impl Checker {
    /// The next entry, checked; None at the end of the archive.
    pub fn next<'a, R: Read>(
        &mut self,
        entries: &mut Entries<'a, R>,
    ) -> anyhow::Result<Option<Entry<'a, R>>> {
        let index = self.index + 1;
        let mut entry = match entries.next() {
            None => return Ok(None),
            Some(Ok(entry)) => entry,
            Some(Err(e)) => return Err(self.refused(index, &e)),
        };
        self.check_entry(&entry, index)?;
        if entry.header().entry_type().is_pax_global_extensions() {
            check_global_pax(&mut entry, index)?;
        }
        self.index = index;
        Ok(Some(entry))
    }

    /// The crate refused entry INDEX: say precisely what, when the headers read so far show
    /// it, else pass its reason on with the position (or say the stream was truncated).
    fn refused(&self, index: u64, e: &io::Error) -> anyhow::Error {
        let cap = self.capture.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(why) = check_headers(&cap.buf, cap.from, index, false) {
            return Fail::integrity(why).into();
        }
        let (at, pos) = (cap.from, cap.pos);
        drop(cap);
        if self.eof.load(Ordering::Relaxed) {
            return Fail::integrity(if pos < at {
                format!(
                    "truncated archive: the stream ended inside the data of entry {}",
                    self.index
                )
            } else {
                format!(
                    "truncated archive: the stream ended in the headers of entry \
                     {index} (from byte {at})"
                )
            })
            .into();
        }
        let msg = crate_msg(e);
        Fail::integrity(format!(
            "corrupt archive: entry {index} (from byte {at}): {msg}"
        ))
        .into()
    }

    /// An entry's headers checked, and where its data ends noted.
    fn check_entry<R: Read>(&mut self, entry: &Entry<'_, R>, index: u64) -> anyhow::Result<()> {
        let mut cap = self.capture.lock().unwrap_or_else(|p| p.into_inner());
        let header_end = entry.raw_header_position() + BLOCK as u64;
        let len = header_end.saturating_sub(cap.from) as usize;
        let region = &cap.buf[..len.min(cap.buf.len())];
        check_headers(region, cap.from, index, true).map_err(Fail::integrity)?;
        // The data follows what the crate has read so far (a GNU sparse entry's extension
        // blocks included); its stored size is the header's for a GNU sparse entry (the
        // crate reports the expanded size), else the entry's.
        let h = entry.header();
        let stored = if h.entry_type().is_gnu_sparse() {
            h.entry_size().unwrap_or(0)
        } else {
            entry.size()
        };
        self.end_of_data = cap.pos + stored.div_ceil(512) * 512;
        cap.from = self.end_of_data;
        cap.buf.clear();
        Ok(())
    }

    /// The sparse map of `entry`, a regular file, when it is a pax sparse member (see
    /// [`crate::sparse`]); for the 1.0 form the map is read from the entry's data, which then
    /// yields the regions' bytes. A bad map is status 3, naming the entry.
    pub fn sparse<R: Read>(&self, entry: &mut Entry<'_, R>) -> anyhow::Result<Option<Sparse>> {
        if !matches!(
            entry.header().entry_type(),
            EntryType::Regular | EntryType::Continuous
        ) {
            return Ok(None);
        }
        let pos = entry.raw_header_position();
        let index = self.index;
        match crate::sparse::of_entry(entry).map_err(corrupt)? {
            Ok(sparse) => Ok(sparse),
            Err(SparseError::MapCut) if self.input_ended() => Err(Fail::integrity(format!(
                "truncated archive: the stream ended inside the data of entry {index}"
            )))?,
            Err(why) => Err(Fail::integrity(format!(
                "entry {index} (header at byte {pos}): {why}"
            )))?,
        }
    }

    /// True once the input ran dry (a failure after that is a truncated stream).
    pub fn input_ended(&self) -> bool {
        self.eof.load(Ordering::Relaxed)
    }

    /// After the last entry: the tar reader must have consumed an end-of-archive block.
    pub fn finish(&self, consumed: u64) -> anyhow::Result<()> {
        if consumed == 0 {
            Err(Fail::integrity("empty input: not a tar archive"))?;
        }
        if consumed < self.end_of_data + BLOCK as u64 {
            Err(Fail::integrity(
                "truncated archive: the end-of-archive marker is missing",
            ))?;
        }
        Ok(())
    }
}

/// The tar crate's reason, briefly: its messages can quote whole headers and raw bytes.
fn crate_msg(e: &io::Error) -> String {
    let msg = io_msg(e);
    let msg = msg.split(" when getting").next().unwrap_or_default();
    let msg = msg.split(": ").next().unwrap_or_default();
    let msg: String = msg.chars().take(120).collect();
    sol_common::exit::printable(&msg)
}

/// A broken stream is an integrity failure (status 3).
pub fn corrupt(e: io::Error) -> anyhow::Error {
    Fail::integrity(format!("corrupt or truncated archive: {}", crate_msg(&e))).into()
}

/// Check the headers in `region` (stream offset `base`): extended headers (pax `x`, GNU `L`
/// and `K`), then the entry's own header last. With `complete`, the region ends exactly with
/// the entry's header; otherwise it may stop anywhere (the crate gave up inside it).
fn check_headers(region: &[u8], base: u64, index: u64, complete: bool) -> Result<(), TarError> {
    let mut at = 0;
    // (A cut inside a header's padding leaves `at` past the region's end.)
    while region.len().saturating_sub(at) >= BLOCK {
        let h = &region[at..at + BLOCK];
        let pos = base + at as u64;
        let bad = |problem| TarError::Header {
            index,
            pos,
            problem,
        };
        if h.iter().all(|&b| b == 0) {
            return Ok(()); // the end-of-archive marker
        }
        check_header_block(h).map_err(bad)?;
        let size =
            numeric(&h[124..136], false).ok_or(bad(HeaderProblem::Field { name: "size" }))?;
        let typ = h[156];
        if !matches!(typ, b'x' | b'L' | b'K') {
            return Ok(()); // the entry's own header
        }
        if size > MAX_META as u64 {
            return Err(bad(HeaderProblem::MetaTooLarge { size }));
        }
        let data_at = at + BLOCK;
        let data_end = data_at + size as usize;
        if data_end > region.len() {
            return if complete {
                Err(bad(HeaderProblem::MetaCutShort))
            } else {
                Ok(())
            };
        }
        if typ == b'x' {
            check_pax(&region[data_at..data_end]).map_err(|e| bad(HeaderProblem::Pax(e)))?;
        }
        at = data_at + (size as usize).div_ceil(BLOCK) * BLOCK;
    }
    if complete {
        return Err(TarError::MissingHeader { index, from: base });
    }
    Ok(())
}

/// The checksum, and the numeric fields every reader uses (mode, uid, gid, size, mtime).
fn check_header_block(h: &[u8]) -> Result<(), HeaderProblem> {
    let stored = numeric(&h[148..156], false).ok_or(HeaderProblem::Field { name: "checksum" })?;
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    if stored != sum {
        return Err(HeaderProblem::ChecksumMismatch);
    }
    for (name, range, signed) in [
        ("mode", 100..108, false),
        ("uid", 108..116, false),
        ("gid", 116..124, false),
        ("mtime", 136..148, true),
    ] {
        numeric(&h[range], signed).ok_or(HeaderProblem::Field { name })?;
    }
    if matches!(h[156], b'3' | b'4') {
        for (name, range) in [("devmajor", 329..337), ("devminor", 337..345)] {
            numeric(&h[range], false).ok_or(HeaderProblem::Field { name })?;
        }
    }
    Ok(())
}

/// A numeric header field: octal digits after optional spaces, ended by a space or NUL with
/// only spaces and NULs after, or GNU base-256 (first byte 0x80, or 0xff for a negative value
/// where `signed`). Blank fields are malformed, as GNU tar says.
pub fn numeric(field: &[u8], signed: bool) -> Option<u64> {
    match field.first() {
        Some(0x80) => {
            let rest = &field[1..];
            let lead = rest.len().saturating_sub(8);
            if rest[..lead].iter().any(|&b| b != 0) {
                return None;
            }
            return Some(
                rest[lead..]
                    .iter()
                    .fold(0u64, |v, &b| (v << 8) | u64::from(b)),
            );
        }
        Some(0xff) if signed => return Some(0),
        _ => {}
    }
    let start = field.iter().position(|&b| b != b' ')?;
    let digits = field[start..]
        .iter()
        .take_while(|b| (b'0'..=b'7').contains(*b))
        .count();
    if digits == 0 {
        return None;
    }
    let rest = &field[start + digits..];
    if !rest.iter().all(|&b| b == 0 || b == b' ') {
        return None;
    }
    let text = std::str::from_utf8(&field[start..start + digits]).ok()?;
    u64::from_str_radix(text, 8).ok()
}

/// Strict pax records: `LEN SP KEY=VALUE NL` with LEN counting the whole record, covering
/// the data exactly; numbers where the standard wants numbers; no empty path or link path.
pub fn check_pax(mut data: &[u8]) -> Result<(), PaxError> {
    let mut n = 0;
    while !data.is_empty() {
        n += 1;
        let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 20 || data.get(digits) != Some(&b' ') {
            return Err(PaxError::MissingLength { record: n });
        }
        let len: usize = std::str::from_utf8(&data[..digits])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(usize::MAX);
        if len < digits + 4 || len > data.len() {
            let (len, left) = (shown(&data[..digits]), data.len());
            return Err(PaxError::LengthOutOfRange {
                record: n,
                len,
                left,
            });
        }
        if data[len - 1] != b'\n' {
            return Err(PaxError::NoNewline { record: n, len });
        }
        let kv = &data[digits + 1..len - 1];
        let Some(eq) = kv.iter().position(|&b| b == b'=') else {
            return Err(PaxError::MissingEquals { record: n });
        };
        let (key, value) = (&kv[..eq], &kv[eq + 1..]);
        let valid = match key {
            b"" => return Err(PaxError::EmptyKeyword { record: n }),
            b"path" | b"linkpath" => !value.is_empty(),
            b"size"
            | b"uid"
            | b"gid"
            | b"GNU.sparse.size"
            | b"GNU.sparse.realsize"
            | b"GNU.sparse.numblocks"
            | b"GNU.sparse.offset"
            | b"GNU.sparse.numbytes"
            | b"GNU.sparse.major"
            | b"GNU.sparse.minor" => unsigned(value),
            b"mtime" | b"atime" | b"ctime" => time(value),
            _ => true,
        };
        if !valid {
            let key = shown(key);
            return Err(if value.is_empty() {
                PaxError::Empty { key }
            } else {
                PaxError::Invalid {
                    key,
                    value: shown(value),
                }
            });
        }
        data = &data[len..];
    }
    Ok(())
}

fn unsigned(v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(v).is_ok_and(|s| s.parse::<u64>().is_ok())
}

/// `[-]digits[.digits]`.
fn time(v: &[u8]) -> bool {
    let v = v.strip_prefix(b"-").unwrap_or(v);
    let (whole, frac) = match v.iter().position(|&b| b == b'.') {
        Some(i) => (&v[..i], Some(&v[i + 1..])),
        None => (v, None),
    };
    unsigned(whole) && frac.map_or(true, |f| f.iter().all(u8::is_ascii_digit))
}

/// Bytes for a message: printable, at most 40 characters.
fn shown(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let cut: String = s.chars().take(40).collect();
    let more = if s.chars().count() > 40 { "..." } else { "" };
    format!("{}{more}", sol_common::exit::printable(&cut))
}

/// Why a tar stream is refused at a header: one kind each; the text is what the tools print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TarError {
    /// A header of entry INDEX, at byte POS of the stream, is wrong.
    Header {
        index: u64,
        pos: u64,
        problem: HeaderProblem,
    },
    /// The headers of entry INDEX, from byte FROM, end before its own header.
    MissingHeader { index: u64, from: u64 },
}

/// What is wrong with one header block or the extended header it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderProblem {
    /// A numeric field (checksum, mode, uid, gid, size, mtime, devmajor, devminor).
    Field {
        name: &'static str,
    },
    ChecksumMismatch,
    MetaTooLarge {
        size: u64,
    },
    MetaCutShort,
    Pax(PaxError),
}

/// Why pax records are refused (RECORD counts from 1; keys and values shown escaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaxError {
    MissingLength {
        record: usize,
    },
    LengthOutOfRange {
        record: usize,
        len: String,
        left: usize,
    },
    NoNewline {
        record: usize,
        len: usize,
    },
    MissingEquals {
        record: usize,
    },
    EmptyKeyword {
        record: usize,
    },
    Empty {
        key: String,
    },
    Invalid {
        key: String,
        value: String,
    },
}

impl std::fmt::Display for TarError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            TarError::Header {
                index,
                pos,
                problem,
            } => {
                write!(
                    f,
                    "corrupt archive: entry {index} (header at byte {pos}): {problem}"
                )
            }
            TarError::MissingHeader { index, from } => {
                write!(
                    f,
                    "corrupt archive: entry {index} (from byte {from}): its header is missing"
                )
            }
        }
    }
}

impl std::fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            HeaderProblem::Field { name } => write!(f, "invalid {name} field"),
            HeaderProblem::ChecksumMismatch => {
                write!(f, "header checksum mismatch (not a tar header)")
            }
            HeaderProblem::MetaTooLarge { size } => {
                write!(f, "extended header of {size} bytes is too large")
            }
            HeaderProblem::MetaCutShort => write!(f, "extended header cut short"),
            HeaderProblem::Pax(e) => write!(f, "malformed pax extended header: {e}"),
        }
    }
}

impl std::fmt::Display for PaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            PaxError::MissingLength { record } => write!(f, "record {record}: missing length"),
            PaxError::LengthOutOfRange { record, len, left } => {
                write!(
                    f,
                    "record {record}: length {len} out of range ({left} bytes left)"
                )
            }
            PaxError::NoNewline { record, len } => {
                write!(f, "record {record}: length {len} does not end at a newline")
            }
            PaxError::MissingEquals { record } => write!(f, "record {record}: missing '='"),
            PaxError::EmptyKeyword { record } => write!(f, "record {record}: empty keyword"),
            PaxError::Empty { key } => write!(f, "empty {key}"),
            PaxError::Invalid { key, value } => write!(f, "invalid {key}={value}"),
        }
    }
}

impl std::error::Error for TarError {}
impl std::error::Error for PaxError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields() {
        assert_eq!(numeric(b"0000644\0", false), Some(0o644));
        assert_eq!(numeric(b"  644 \0\0", false), Some(0o644));
        assert_eq!(numeric(&[0x80, 0, 0, 0, 0, 0, 0, 1], false), Some(1));
        // All NULs, all spaces, a sign, a letter, a space inside, not digits at all.
        let not_numbers: [&[u8]; 7] = [
            b"\0\0\0", b"    ", b"+644\0", b"-1\0\0", b"64x\0", b"6 4\0", b"\xff\0",
        ];
        for bad in not_numbers {
            assert_eq!(numeric(bad, false), None, "{bad:?}");
        }
    }

    #[test]
    fn pax_records() {
        assert_eq!(check_pax(b"9 path=a\n12 size=123\n"), Ok(()));
        assert_eq!(check_pax(b"16 mtime=-1.500\n"), Ok(()));
        let key = |k: &str| k.to_string();
        assert_eq!(
            check_pax(b"11 size=-1\n"),
            Err(PaxError::Invalid {
                key: key("size"),
                value: "-1".into()
            })
        );
        assert_eq!(
            check_pax(b"8 path=\n"),
            Err(PaxError::Empty { key: key("path") })
        );
        assert_eq!(
            check_pax(b"8 size=\n"),
            Err(PaxError::Empty { key: key("size") })
        );
        assert_eq!(
            check_pax(b"10 path=ab\n"),
            Err(PaxError::NoNewline { record: 1, len: 10 })
        );
        assert!(matches!(
            check_pax(b"99 path=a\n"),
            Err(PaxError::LengthOutOfRange { record: 1, .. })
        ));
        assert_eq!(
            check_pax(b"x path=a\n"),
            Err(PaxError::MissingLength { record: 1 })
        );
        assert_eq!(
            check_pax(b"9 path=a\n\n"),
            Err(PaxError::MissingLength { record: 2 })
        );
        // The text of each kind is the message the tools print.
        assert_eq!(
            PaxError::Invalid {
                key: key("size"),
                value: "-1".into()
            }
            .to_string(),
            "invalid size=-1"
        );
        // A value may hold a newline: the length frames the record.
        assert_eq!(check_pax(b"12 path=a\nb\n"), Ok(()));
    }
}
