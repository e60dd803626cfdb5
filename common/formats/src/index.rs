//! The restore index: where every tar member of an archive lies in each stage's stream, so
//! one file can be fetched without the whole archive (`sol-restore --path`). The contract is
//! man/sol-index.1 (FORMAT).
//!
//! Each stage writes its own part as a side file while it runs, and stays a filter:
//! `sol-tar create --index F` the tar members and their byte ranges, `sol-zip --index F`
//! its members' uncompressed and compressed offsets, `sol-crypt -e --index F` its header
//! length and chunk size. `sol-index make` checks that the three parts describe one stream
//! and binds them to the stored archive (its size and ETag); the result is sealed like the
//! archive (`sol-zip | sol-crypt -e`) and stored next to it. [`Index::plan`] maps paths to
//! the byte ranges of the archive that hold them, and to what each stage keeps of its input.
//!
//! All files are text, one record a line, fields separated by tabs; names are escaped
//! ([`escape`]) so a line is always one record.

use std::ops::Range;

use crate::crypt;

/// First line of `sol-tar create --index`.
pub const TAR_MAGIC: &str = "sol-tar-index 1";
/// First line of `sol-zip --index`.
pub const ZIP_MAGIC: &str = "sol-zip-index 1";
/// First line of `sol-crypt -e --index`.
pub const CRYPT_MAGIC: &str = "sol-crypt-index 1";
/// First line of an index made by `sol-index make`.
pub const INDEX_MAGIC: &str = "sol-index 1";

/// Chunk runs closer than this (ciphertext bytes between them) are fetched as one range:
/// one request costs about as much time as this many bytes.
pub const COALESCE_GAP: u64 = 1 << 20;

/// A name as one field: printable UTF-8 stays as it is; a backslash, tab, newline, carriage
/// return, any other control character and any byte that is not UTF-8 is escaped
/// (`\\`, `\t`, `\n`, `\r`, `\xHH`).
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '\t' => s.push_str("\\t"),
                '\n' => s.push_str("\\n"),
                '\r' => s.push_str("\\r"),
                c if c.is_control() => {
                    let mut b = [0u8; 4];
                    for byte in c.encode_utf8(&mut b).bytes() {
                        s.push_str(&format!("\\x{byte:02x}"));
                    }
                }
                c => s.push(c),
            }
        }
        for byte in chunk.invalid() {
            s.push_str(&format!("\\x{byte:02x}"));
        }
    }
    s
}

/// Why an index or a side file is refused, or a selection fails: one kind each, in the
/// manner of age's `DecryptError`. The text of each is what sol-index prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexError {
    /// A `\x` escape without two hex digits after it.
    ShortHexEscape,
    /// A `\x` escape whose two characters are not hex digits.
    BadHexEscape {
        digits: String,
    },
    /// A backslash that starts no escape.
    DanglingBackslash,
    /// A member type letter other than f, d, l and h.
    UnknownKind {
        letter: String,
    },
    /// A record with the wrong number of fields.
    Fields {
        record: String,
        want: usize,
        got: usize,
    },
    BadMode {
        mode: String,
    },
    BadMtime {
        mtime: String,
    },
    NamelessMember,
    /// A member whose byte range is not whole 512-byte blocks.
    NotWholeBlocks {
        start: u64,
        end: u64,
    },
    NotANumber {
        text: String,
    },
    NumberTooLarge {
        text: String,
    },
    BadCryptVersion,
    BadChunkSizeField,
    /// A record name this format does not have (escaped).
    UnknownRecord {
        record: String,
    },
    /// A record that may appear once, twice.
    Repeated {
        record: &'static str,
    },
    /// The first line is not the file's magic.
    NoMagic {
        what: &'static str,
        magic: &'static str,
    },
    /// An error on a line of a side file or index.
    AtLine {
        what: &'static str,
        line: usize,
        error: Box<IndexError>,
    },
    ArchiveInSideFile,
    /// A record every index has is missing (and whose part it is).
    Missing {
        record: &'static str,
        part: &'static str,
    },
    ChunkSizeOutOfRange {
        chunk_size: u32,
    },
    HeaderLenOutOfRange {
        header_len: u64,
    },
    CryptLengths,
    CryptSize {
        sealed: u64,
        archive: u64,
    },
    ZipCrypt {
        zip_out: u64,
        crypt_in: u64,
    },
    ZipGap {
        uoff: u64,
    },
    ZipOverflow,
    ZipTotals,
    TarZip {
        tar_len: u64,
        zip_in: u64,
    },
    /// A member that does not start where the one before ends (its name escaped).
    TarGap {
        path: String,
        start: u64,
        at: u64,
    },
    TarPastEnd,
    /// A PATH that names no member (escaped).
    NotInArchive {
        path: String,
    },
    /// A hard link whose target is not before it (both escaped).
    LinkTargetNotBefore {
        path: String,
        link: String,
    },
}

impl std::fmt::Display for IndexError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        use IndexError::*;
        match self {
            ShortHexEscape => write!(f, "a \\x escape needs two hex digits"),
            BadHexEscape { digits } => write!(f, "bad escape \\x{digits}"),
            DanglingBackslash => write!(f, "a backslash that starts no escape"),
            UnknownKind { letter } => write!(f, "unknown member type '{letter}'"),
            Fields { record, want, got } if record == "t" => {
                write!(f, "a member line has {want} fields, not {got}")
            }
            Fields { record, want, got } => {
                write!(f, "a '{record}' line has {want} fields, not {got}")
            }
            BadMode { mode } => write!(f, "bad mode '{mode}'"),
            BadMtime { mtime } => write!(f, "bad mtime '{mtime}'"),
            NamelessMember => write!(f, "a member without a name"),
            NotWholeBlocks { start, end } => {
                write!(f, "member range {start}..{end} is not whole blocks")
            }
            NotANumber { text } => write!(f, "'{text}' is not a number"),
            NumberTooLarge { text } => write!(f, "'{text}' is too large"),
            BadCryptVersion => write!(f, "bad crypt version"),
            BadChunkSizeField => write!(f, "bad chunk size"),
            UnknownRecord { record } => write!(f, "unknown record '{record}'"),
            Repeated { record } => write!(f, "a second '{record}' line"),
            NoMagic { what, magic } => write!(f, "{what} does not start with '{magic}'"),
            AtLine { what, line, error } => write!(f, "{what}, line {line}: {error}"),
            _ => self.fmt_parts(f),
        }
    }
}

impl IndexError {
    /// The text of the kinds that say the parts of an index disagree.
    fn fmt_parts(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        use IndexError::*;
        match self {
            ArchiveInSideFile => write!(f, "a side file holds an 'archive' line"),
            Missing { record, part: "" } => write!(f, "no '{record}' line"),
            Missing { record, part } => write!(f, "no '{record}' line ({part}'s part)"),
            ChunkSizeOutOfRange { chunk_size } => write!(f, "chunk size {chunk_size} out of range"),
            HeaderLenOutOfRange { header_len } => {
                write!(f, "header length {header_len} out of range")
            }
            CryptLengths => write!(f, "the crypt part's lengths do not add up"),
            CryptSize { sealed, archive } => {
                write!(f, "the crypt part describes a stream of {sealed} bytes, the archive has {archive}")
            }
            ZipCrypt { zip_out, crypt_in } => write!(
                f,
                "sol-zip wrote {zip_out} bytes, sol-crypt read {crypt_in}"
            ),
            ZipGap { uoff } => write!(f, "zip member at {uoff} is not where the one before ends"),
            ZipOverflow => write!(f, "zip offsets overflow"),
            ZipTotals => write!(
                f,
                "the zip members do not add up to what sol-zip read and wrote"
            ),
            TarZip { tar_len, zip_in } => {
                write!(f, "sol-tar wrote {tar_len} bytes, sol-zip read {zip_in}")
            }
            TarGap { path, start, at } => {
                write!(
                    f,
                    "member '{path}' starts at {start}, not where the one before ends ({at})"
                )
            }
            TarPastEnd => write!(f, "the tar members run past the end of the tar stream"),
            NotInArchive { path } => write!(f, "'{path}' is not in the archive"),
            LinkTargetNotBefore { path, link } => {
                write!(
                    f,
                    "hard link '{path}': its target '{link}' is not before it in the archive"
                )
            }
            _ => unreachable!("fmt handles the other kinds"),
        }
    }
}

impl std::error::Error for IndexError {}

/// The bytes of an [`escape`]d field.
pub fn unescape(s: &str) -> Result<Vec<u8>, IndexError> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b't') => out.push(b'\t'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b'x') => {
                let hex = s.get(i + 2..i + 4).ok_or(IndexError::ShortHexEscape)?;
                let v = u8::from_str_radix(hex, 16).map_err(|_| IndexError::BadHexEscape {
                    digits: hex.to_string(),
                })?;
                out.push(v);
                i += 2;
            }
            _ => return Err(IndexError::DanglingBackslash),
        }
        i += 2;
    }
    Ok(out)
}

/// What a tar member is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    HardLink,
}

impl Kind {
    pub fn letter(self) -> char {
        match self {
            Kind::File => 'f',
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
            Kind::HardLink => 'h',
        }
    }
    fn from_letter(s: &str) -> Result<Kind, IndexError> {
        Ok(match s {
            "f" => Kind::File,
            "d" => Kind::Dir,
            "l" => Kind::Symlink,
            "h" => Kind::HardLink,
            _ => {
                return Err(IndexError::UnknownKind {
                    letter: s.to_string(),
                })
            }
        })
    }
}

/// One tar member: its bytes in the tar stream are `start..end`, from its first header
/// block (a pax extended header's, when it has one) to the end of its padded data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarEntry {
    pub start: u64,
    pub end: u64,
    pub kind: Kind,
    pub size: u64,
    pub mode: u32,
    pub mtime: i64,
    /// The name as stored (directories end with '/').
    pub path: Vec<u8>,
    /// The link target (symlinks and hard links), else empty.
    pub link: Vec<u8>,
}

impl TarEntry {
    /// `t START END TYPE SIZE MODE MTIME PATH LINK` (MODE in octal), with its newline.
    pub fn line(&self) -> String {
        format!(
            "t\t{}\t{}\t{}\t{}\t{:o}\t{}\t{}\t{}\n",
            self.start,
            self.end,
            self.kind.letter(),
            self.size,
            self.mode,
            self.mtime,
            escape(&self.path),
            escape(&self.link)
        )
    }

    fn parse(f: &[&str]) -> Result<TarEntry, IndexError> {
        if f.len() != 9 {
            return Err(IndexError::Fields {
                record: "t".into(),
                want: 9,
                got: f.len(),
            });
        }
        let e = TarEntry {
            start: num(f[1])?,
            end: num(f[2])?,
            kind: Kind::from_letter(f[3])?,
            size: num(f[4])?,
            mode: u32::from_str_radix(f[5], 8).map_err(|_| IndexError::BadMode {
                mode: f[5].to_string(),
            })?,
            mtime: f[6].parse().map_err(|_| IndexError::BadMtime {
                mtime: f[6].to_string(),
            })?,
            path: unescape(f[7])?,
            link: unescape(f[8])?,
        };
        if e.path.is_empty() {
            return Err(IndexError::NamelessMember);
        }
        if e.end < e.start + 512 || (e.end - e.start) % 512 != 0 {
            return Err(IndexError::NotWholeBlocks {
                start: e.start,
                end: e.end,
            });
        }
        Ok(e)
    }

    /// The name without a trailing '/'.
    pub fn name(&self) -> &[u8] {
        trim_slash(&self.path)
    }
}

/// One sol-zip data member: uncompressed bytes `uoff..uoff+ulen` of the input are
/// compressed bytes `coff..coff+clen` of sol-zip's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZipMember {
    pub uoff: u64,
    pub ulen: u64,
    pub coff: u64,
    pub clen: u64,
}

impl ZipMember {
    /// `z UOFF ULEN COFF CLEN`, with its newline.
    pub fn line(&self) -> String {
        format!(
            "z\t{}\t{}\t{}\t{}\n",
            self.uoff, self.ulen, self.coff, self.clen
        )
    }
}

/// How a sol-crypt stream addresses its chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CryptLayout {
    pub version: u8,
    pub header_len: u64,
    pub chunk_size: u32,
    pub plain_len: u64,
    pub sealed_len: u64,
}

impl CryptLayout {
    /// A `crypt` record's fields (its field count checked by the caller).
    fn parse(f: &[&str]) -> Result<CryptLayout, IndexError> {
        let version = u8::try_from(num(f[1])?).map_err(|_| IndexError::BadCryptVersion)?;
        let chunk_size = u32::try_from(num(f[3])?).map_err(|_| IndexError::BadChunkSizeField)?;
        Ok(CryptLayout {
            version,
            header_len: num(f[2])?,
            chunk_size,
            plain_len: num(f[4])?,
            sealed_len: num(f[5])?,
        })
    }

    /// `crypt VERSION HEADER_LEN CHUNK_SIZE PLAIN_LEN SEALED_LEN`, with its newline.
    pub fn line(&self) -> String {
        format!(
            "crypt\t{}\t{}\t{}\t{}\t{}\n",
            self.version, self.header_len, self.chunk_size, self.plain_len, self.sealed_len
        )
    }

    /// The number of chunks (the last one shorter than the chunk size, maybe empty).
    pub fn chunks(&self) -> u64 {
        self.plain_len / u64::from(self.chunk_size) + 1
    }

    /// Where chunk `i`'s sealed bytes lie in the stream; the last chunk's range runs to the
    /// end of the stream, its trailer included.
    pub fn chunk_bytes(&self, i: u64) -> Range<u64> {
        let c = u64::from(self.chunk_size);
        let start = self.header_len + i * (c + crypt::TAG_LEN as u64);
        if i + 1 >= self.chunks() {
            start..self.sealed_len
        } else {
            start..start + c + crypt::TAG_LEN as u64
        }
    }
}

/// A whole index: the archive it describes and the three stages' parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    /// Size in bytes of the stored archive.
    pub size: u64,
    /// Its ETag, as s3-mput printed it.
    pub etag: String,
    pub crypt: CryptLayout,
    pub zip: Vec<ZipMember>,
    /// Bytes sol-zip read (the whole tar stream) and wrote.
    pub zip_in: u64,
    pub zip_out: u64,
    pub tar: Vec<TarEntry>,
    /// Length of the tar stream, end blocks included.
    pub tar_len: u64,
}

fn num(s: &str) -> Result<u64, IndexError> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(IndexError::NotANumber {
            text: s.to_string(),
        });
    }
    s.parse().map_err(|_| IndexError::NumberTooLarge {
        text: s.to_string(),
    })
}

/// A name without its leading "./" and trailing '/': how PATHs and member names are compared
/// (here and by `sol-tar extract PATH...`).
pub fn trim_slash(p: &[u8]) -> &[u8] {
    let mut p = p;
    while p.len() > 1 && p.ends_with(b"/") {
        p = &p[..p.len() - 1];
    }
    while p.starts_with(b"./") {
        p = &p[2..];
    }
    p
}

/// Records of the three side files, read in any order.
#[derive(Default)]
struct Parts {
    crypt: Option<CryptLayout>,
    zip: Vec<ZipMember>,
    zip_end: Option<(u64, u64)>,
    tar: Vec<TarEntry>,
    tar_end: Option<u64>,
    archive: Option<(u64, String)>,
}

impl Parts {
    fn line(&mut self, line: &str) -> Result<(), IndexError> {
        let f: Vec<&str> = line.split('\t').collect();
        let want = |n: usize| -> Result<(), IndexError> {
            if f.len() == n {
                Ok(())
            } else {
                Err(IndexError::Fields {
                    record: f[0].to_string(),
                    want: n,
                    got: f.len(),
                })
            }
        };
        match f[0] {
            "t" => self.tar.push(TarEntry::parse(&f)?),
            "tar-end" => {
                want(2)?;
                set_once(&mut self.tar_end, num(f[1])?, "tar-end")?;
            }
            "z" => {
                want(5)?;
                self.zip.push(ZipMember {
                    uoff: num(f[1])?,
                    ulen: num(f[2])?,
                    coff: num(f[3])?,
                    clen: num(f[4])?,
                });
            }
            "zip-end" => {
                want(3)?;
                set_once(&mut self.zip_end, (num(f[1])?, num(f[2])?), "zip-end")?;
            }
            "crypt" => {
                want(6)?;
                set_once(&mut self.crypt, CryptLayout::parse(&f)?, "crypt")?;
            }
            "archive" => {
                want(3)?;
                let etag = String::from_utf8_lossy(&unescape(f[2])?).into_owned();
                set_once(&mut self.archive, (num(f[1])?, etag), "archive")?;
            }
            other => {
                return Err(IndexError::UnknownRecord {
                    record: escape(other.as_bytes()),
                })
            }
        }
        Ok(())
    }
}

fn set_once<T>(slot: &mut Option<T>, v: T, what: &'static str) -> Result<(), IndexError> {
    if slot.is_some() {
        return Err(IndexError::Repeated { record: what });
    }
    *slot = Some(v);
    Ok(())
}

/// Read the lines of `text` after its first, which must be `magic`; errors name the line.
fn read_lines(
    text: &str,
    magic: &'static str,
    parts: &mut Parts,
    what: &'static str,
) -> Result<(), IndexError> {
    let mut lines = text.lines();
    if lines.next() != Some(magic) {
        return Err(IndexError::NoMagic { what, magic });
    }
    for (n, line) in lines.enumerate() {
        parts.line(line).map_err(|e| IndexError::AtLine {
            what,
            line: n + 2,
            error: Box::new(e),
        })?;
    }
    Ok(())
}

/// sol-crypt's part: its chunk size and header length in range, its lengths adding up,
/// and the archive's size.
fn check_crypt(crypt: &CryptLayout, size: u64) -> Result<(), IndexError> {
    if !(crypt::MIN_CHUNK..=crypt::MAX_CHUNK).contains(&crypt.chunk_size) {
        let chunk_size = crypt.chunk_size;
        return Err(IndexError::ChunkSizeOutOfRange { chunk_size });
    }
    if crypt.header_len < crypt::HEADER_LEN as u64 || crypt.header_len > 65536 {
        let header_len = crypt.header_len;
        return Err(IndexError::HeaderLenOutOfRange { header_len });
    }
    if crypt.plain_len > u64::MAX / 4
        || crypt.header_len + crypt::sealed_len(crypt.plain_len, crypt.chunk_size)
            != crypt.sealed_len
    {
        return Err(IndexError::CryptLengths);
    }
    if crypt.sealed_len != size {
        let sealed = crypt.sealed_len;
        return Err(IndexError::CryptSize {
            sealed,
            archive: size,
        });
    }
    Ok(())
}

/// sol-zip's part: each member where the one before ends, adding up to what it read and
/// wrote.
fn check_zip(zip: &[ZipMember], zip_in: u64, zip_out: u64) -> Result<(), IndexError> {
    let (mut u, mut c) = (0u64, zip.first().map_or(0, |m| m.coff));
    for m in zip {
        if m.uoff != u || m.coff != c || m.clen == 0 {
            return Err(IndexError::ZipGap { uoff: m.uoff });
        }
        u = u.checked_add(m.ulen).ok_or(IndexError::ZipOverflow)?;
        c = c.checked_add(m.clen).ok_or(IndexError::ZipOverflow)?;
    }
    if u != zip_in || c > zip_out {
        return Err(IndexError::ZipTotals);
    }
    Ok(())
}

/// sol-tar's part: each member where the one before ends, all before the end blocks.
fn check_tar(tar: &[TarEntry], tar_len: u64) -> Result<(), IndexError> {
    let mut at = 0u64;
    for e in tar {
        if e.start != at {
            let (path, start) = (escape(&e.path), e.start);
            return Err(IndexError::TarGap { path, start, at });
        }
        at = e.end;
    }
    if at + 1024 > tar_len {
        return Err(IndexError::TarPastEnd);
    }
    Ok(())
}

impl Index {
    /// Join the side files of sol-tar, sol-zip and sol-crypt and bind them to the stored
    /// archive; every way they could disagree is refused.
    pub fn make(
        tar: &str,
        zip: &str,
        crypt: &str,
        size: u64,
        etag: &str,
    ) -> Result<Index, IndexError> {
        let mut parts = Parts::default();
        read_lines(tar, TAR_MAGIC, &mut parts, "the tar index")?;
        read_lines(zip, ZIP_MAGIC, &mut parts, "the zip index")?;
        read_lines(crypt, CRYPT_MAGIC, &mut parts, "the crypt index")?;
        if parts.archive.is_some() {
            return Err(IndexError::ArchiveInSideFile);
        }
        parts.archive = Some((size, etag.to_string()));
        Index::check(parts)
    }

    /// Read an index made by [`Index::make`] and [`Index::render`]ed.
    pub fn parse(text: &str) -> Result<Index, IndexError> {
        let mut parts = Parts::default();
        read_lines(text, INDEX_MAGIC, &mut parts, "the index")?;
        Index::check(parts)
    }

    fn check(p: Parts) -> Result<Index, IndexError> {
        let missing = |record, part| IndexError::Missing { record, part };
        let (size, etag) = p.archive.ok_or(missing("archive", ""))?;
        let crypt = p.crypt.ok_or(missing("crypt", "sol-crypt"))?;
        let (zip_in, zip_out) = p.zip_end.ok_or(missing("zip-end", "sol-zip"))?;
        let tar_len = p.tar_end.ok_or(missing("tar-end", "sol-tar"))?;
        check_crypt(&crypt, size)?;
        if zip_out != crypt.plain_len {
            let crypt_in = crypt.plain_len;
            return Err(IndexError::ZipCrypt { zip_out, crypt_in });
        }
        check_zip(&p.zip, zip_in, zip_out)?;
        if tar_len != zip_in {
            return Err(IndexError::TarZip { tar_len, zip_in });
        }
        check_tar(&p.tar, tar_len)?;
        Ok(Index {
            size,
            etag,
            crypt,
            zip: p.zip,
            zip_in,
            zip_out,
            tar: p.tar,
            tar_len,
        })
    }

    /// The index as text: [`INDEX_MAGIC`], the archive, then each stage's part.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{INDEX_MAGIC}\narchive\t{}\t{}\n",
            self.size,
            escape(self.etag.as_bytes())
        );
        s.push_str(&self.crypt.line());
        for m in &self.zip {
            s.push_str(&m.line());
        }
        s.push_str(&format!("zip-end\t{}\t{}\n", self.zip_in, self.zip_out));
        for e in &self.tar {
            s.push_str(&e.line());
        }
        s.push_str(&format!("tar-end\t{}\n", self.tar_len));
        s
    }

    /// The members named by `paths` (a directory names its subtree; a leading "./" and
    /// trailing '/' do not count), plus the targets of hard links among them (the data is
    /// stored with the target), in stream order. A path that names nothing is an error.
    pub fn select(&self, paths: &[Vec<u8>]) -> Result<Vec<usize>, IndexError> {
        let mut chosen = vec![false; self.tar.len()];
        for p in paths {
            let p = trim_slash(p);
            let mut any = false;
            for (i, e) in self.tar.iter().enumerate() {
                let n = e.name();
                if n == p || (n.len() > p.len() && n.starts_with(p) && n[p.len()] == b'/') {
                    chosen[i] = true;
                    any = true;
                }
            }
            if !any {
                return Err(IndexError::NotInArchive { path: escape(p) });
            }
        }
        for i in 0..self.tar.len() {
            let e = &self.tar[i];
            if chosen[i] && e.kind == Kind::HardLink {
                let target = trim_slash(&e.link);
                match self.tar[..i].iter().rposition(|t| t.name() == target) {
                    Some(t) => chosen[t] = true,
                    None => {
                        return Err(IndexError::LinkTargetNotBefore {
                            path: escape(&e.path),
                            link: escape(&e.link),
                        })
                    }
                }
            }
        }
        Ok((0..self.tar.len()).filter(|&i| chosen[i]).collect())
    }

    /// What to fetch and what each stage keeps, for the members `chosen` (from [`select`]).
    ///
    /// [`select`]: Index::select
    pub fn plan(&self, chosen: &[usize]) -> Plan {
        // Tar byte ranges, adjacent members merged.
        let tar = merge(chosen.iter().map(|&i| self.tar[i].start..self.tar[i].end));
        let members = self.zip_runs(&tar);
        let chunks = self.chunk_runs(&members);
        // The archive's bytes: the header, then each chunk run.
        let mut fetch = Vec::with_capacity(chunks.len() + 1);
        fetch.push(0..self.crypt.header_len);
        for r in &chunks {
            let b = self.crypt.chunk_bytes(r.start).start..self.crypt.chunk_bytes(r.end - 1).end;
            push_run(&mut fetch, b);
        }
        Plan {
            fetch,
            zip_cut: self.zip_cuts(&members, &chunks),
            tar_cut: self.tar_cuts(&tar, &members),
            chunks,
            members: chosen.len(),
        }
    }

    /// The zip members holding the tar ranges, as runs of consecutive members.
    fn zip_runs(&self, tar: &[Range<u64>]) -> Vec<Range<usize>> {
        let mut members: Vec<Range<usize>> = Vec::new();
        for r in tar {
            let first = self.zip.partition_point(|m| m.uoff + m.ulen <= r.start);
            let last = self.zip.partition_point(|m| m.uoff < r.end);
            push_run(&mut members, first..last);
        }
        members
    }

    /// The compressed bytes of a run of zip members.
    fn zip_bytes(&self, m: &Range<usize>) -> Range<u64> {
        self.zip[m.start].coff..self.zip[m.end - 1].coff + self.zip[m.end - 1].clen
    }

    /// The tar bytes a run of zip members holds.
    fn tar_bytes(&self, m: &Range<usize>) -> Range<u64> {
        self.zip[m.start].uoff..self.zip[m.end - 1].uoff + self.zip[m.end - 1].ulen
    }

    /// The chunks holding the members' compressed bytes, runs closer than COALESCE_GAP
    /// merged.
    fn chunk_runs(&self, members: &[Range<usize>]) -> Vec<Range<u64>> {
        let c = u64::from(self.crypt.chunk_size);
        let mut chunks: Vec<Range<u64>> = Vec::new();
        for m in members {
            let z = self.zip_bytes(m);
            let run = z.start / c..(z.end - 1) / c + 1;
            match chunks.last_mut() {
                Some(last)
                    if run.start <= last.end
                        || self.crypt.chunk_bytes(run.start).start
                            - self.crypt.chunk_bytes(last.end - 1).end
                            <= COALESCE_GAP =>
                {
                    last.end = last.end.max(run.end)
                }
                _ => chunks.push(run),
            }
        }
        chunks
    }

    /// sol-crypt -d --chunks writes the runs' plaintext back to back: where each zip
    /// member run lies in it.
    fn zip_cuts(&self, members: &[Range<usize>], chunks: &[Range<u64>]) -> Vec<Range<u64>> {
        let c = u64::from(self.crypt.chunk_size);
        let mut zip_cut = Vec::new();
        for m in members {
            let z = self.zip_bytes(m);
            let (mut out, mut k) = (0u64, 0usize);
            while z.start >= chunks[k].end * c {
                out += (chunks[k].end - chunks[k].start) * c;
                k += 1;
            }
            let base = out + z.start - chunks[k].start * c;
            push_run(&mut zip_cut, base..base + (z.end - z.start));
        }
        zip_cut
    }

    /// sol-zip -d writes the member runs' data back to back: where each tar range lies.
    fn tar_cuts(&self, tar: &[Range<u64>], members: &[Range<usize>]) -> Vec<Range<u64>> {
        let mut tar_cut = Vec::new();
        for r in tar {
            let (mut out, mut k) = (0u64, 0usize);
            while r.start >= self.tar_bytes(&members[k]).end {
                let u = self.tar_bytes(&members[k]);
                out += u.end - u.start;
                k += 1;
            }
            let base = out + r.start - self.tar_bytes(&members[k]).start;
            push_run(&mut tar_cut, base..base + (r.end - r.start));
        }
        tar_cut
    }
}

/// Merge sorted ranges that touch.
fn merge(it: impl Iterator<Item = Range<u64>>) -> Vec<Range<u64>> {
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in it {
        push_run(&mut out, r);
    }
    out
}

/// Append `r` (not before the last range), joining it to the last when they touch or overlap.
fn push_run<T: Ord + Copy>(v: &mut Vec<Range<T>>, r: Range<T>) {
    if let Some(last) = v.last_mut() {
        if r.start <= last.end {
            last.end = last.end.max(r.end);
            return;
        }
    }
    v.push(r);
}

/// What `sol-restore --path` runs, as `sol-index plan` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Byte ranges of the archive to fetch, in order (s3-mget --range).
    pub fetch: Vec<Range<u64>>,
    /// The chunks they hold (sol-crypt -d --chunks).
    pub chunks: Vec<Range<u64>>,
    /// What to keep of sol-crypt's output: whole sol-zip members (sol-index cut).
    pub zip_cut: Vec<Range<u64>>,
    /// What to keep of sol-zip -d's output: whole tar members (sol-index cut --tar).
    pub tar_cut: Vec<Range<u64>>,
    /// How many members.
    pub members: usize,
}

impl Plan {
    /// Bytes fetched.
    pub fn fetch_bytes(&self) -> u64 {
        self.fetch.iter().map(|r| r.end - r.start).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_escaping() {
        for name in [
            &b"sol0001/a b.txt"[..],
            b"tab\there",
            b"new\nline",
            b"back\\slash",
            b"\xff\xfe not utf-8",
            b"caf\xc3\xa9",
            b"\x1b[31m",
        ] {
            let e = escape(name);
            assert!(!e.contains('\t') && !e.contains('\n'), "{e:?}");
            assert_eq!(unescape(&e).unwrap(), name, "{e:?}");
        }
        assert_eq!(unescape("a\\"), Err(IndexError::DanglingBackslash));
        assert_eq!(unescape("a\\q"), Err(IndexError::DanglingBackslash));
        assert_eq!(unescape("a\\x4"), Err(IndexError::ShortHexEscape));
        assert!(matches!(
            unescape("\\xzz"),
            Err(IndexError::BadHexEscape { .. })
        ));
    }

    /// A made-up archive: 40 members of 3 blocks, zip members of 16 blocks compressing to
    /// 5000 bytes each, chunks of 4096.
    fn sample() -> Index {
        let mut tar = String::from("sol-tar-index 1\n");
        let mut at = 0;
        for i in 0..40u64 {
            let (kind, path, link) = match i {
                0 => ("d", "s/".to_string(), String::new()),
                7 => ("h", "s/f7".to_string(), "s/0/f3".to_string()),
                _ => ("f", format!("s/{}/f{i}", i / 10), String::new()),
            };
            tar.push_str(&format!(
                "t\t{at}\t{}\t{kind}\t1000\t644\t0\t{path}\t{link}\n",
                at + 1536
            ));
            at += 1536;
        }
        let tar_len = at + 1024;
        tar.push_str(&format!("tar-end\t{tar_len}\n"));
        let mut zip = String::from("sol-zip-index 1\n");
        let (mut u, mut c) = (0u64, 30u64);
        while u < tar_len {
            let ulen = (tar_len - u).min(16 * 512);
            zip.push_str(&format!("z\t{u}\t{ulen}\t{c}\t5000\n"));
            u += ulen;
            c += 5000;
        }
        let zip_out = c + 54;
        zip.push_str(&format!("zip-end\t{tar_len}\t{zip_out}\n"));
        let sealed = 86 + crypt::sealed_len(zip_out, 4096);
        let crypt = format!("sol-crypt-index 1\ncrypt\t1\t86\t4096\t{zip_out}\t{sealed}\n");
        Index::make(&tar, &zip, &crypt, sealed, "\"abc-2\"").unwrap()
    }

    #[test]
    fn an_index_renders_and_parses_back() {
        let ix = sample();
        assert_eq!(Index::parse(&ix.render()).unwrap(), ix);
    }

    #[test]
    fn parts_that_disagree_are_refused() {
        let ix = sample();
        let text = ix.render();
        let size = ix.size.to_string();
        let at_line = |e: IndexError| match e {
            IndexError::AtLine { error, .. } => *error,
            e => e,
        };
        for (from, to, kind) in [
            (
                format!("archive\t{size}"),
                format!("archive\t{}", ix.size + 1),
                "CryptSize",
            ),
            (
                "t\t1536\t".to_string(),
                "t\t1537\t".to_string(),
                "NotWholeBlocks",
            ),
            ("z\t8192\t".to_string(), "z\t8193\t".to_string(), "ZipGap"),
            (
                "crypt\t1\t86\t4096".to_string(),
                "crypt\t1\t86\t8192".to_string(),
                "CryptLengths",
            ),
        ] {
            let bad = text.replacen(&from, &to, 1);
            assert_ne!(bad, text, "{from}");
            let e = at_line(Index::parse(&bad).expect_err(&format!("{from} -> {to} accepted")));
            let got = format!("{e:?}");
            assert!(got.starts_with(kind), "{from} -> {to}: {got}, not {kind}");
        }
        assert!(matches!(
            Index::parse(&text.replacen("sol-index 1", "sol-index 2", 1)),
            Err(IndexError::NoMagic { .. })
        ));
    }

    #[test]
    fn selection_takes_subtrees_and_hard_link_targets() {
        let ix = sample();
        let names = |sel: Vec<usize>| -> Vec<String> {
            sel.iter()
                .map(|&i| String::from_utf8_lossy(&ix.tar[i].path).into_owned())
                .collect()
        };
        assert_eq!(
            names(ix.select(&[b"s/1/f12".to_vec()]).unwrap()),
            ["s/1/f12"]
        );
        assert_eq!(
            names(ix.select(&[b"s/f7".to_vec()]).unwrap()),
            ["s/0/f3", "s/f7"]
        );
        assert_eq!(ix.select(&[b"s/2/".to_vec()]).unwrap().len(), 10);
        assert_eq!(ix.select(&[b"s".to_vec()]).unwrap().len(), 40);
        assert_eq!(
            names(ix.select(&[b"./s/0/f1/".to_vec()]).unwrap()),
            ["s/0/f1"]
        );
        let not_in = |p: &str| Err(IndexError::NotInArchive { path: p.into() });
        assert_eq!(ix.select(&[b"s/9".to_vec()]), not_in("s/9"));
        assert_eq!(
            ix.select(&[b"s/1/f".to_vec()]),
            not_in("s/1/f"),
            "a prefix of a name is not the name"
        );
    }

    /// Follow a plan on a model of the three streams: what it keeps is exactly the members.
    #[test]
    fn plans_keep_exactly_the_chosen_members() {
        let ix = sample();
        let c = u64::from(ix.crypt.chunk_size);
        for paths in [
            vec![&b"s/1/f12"[..]],
            vec![b"s/f7"],
            vec![b"s/2", b"s/0/f1"],
            vec![b"s"],
        ] {
            let paths: Vec<Vec<u8>> = paths.iter().map(|p| p.to_vec()).collect();
            let chosen = ix.select(&paths).unwrap();
            let plan = ix.plan(&chosen);
            // The fetched ranges are the header and the chunks' sealed bytes.
            assert_eq!(plan.fetch[0].start, 0);
            let mut sealed: u64 = 0;
            for r in &plan.chunks {
                sealed += ix.crypt.chunk_bytes(r.end - 1).end - ix.crypt.chunk_bytes(r.start).start;
            }
            assert_eq!(plan.fetch_bytes(), ix.crypt.header_len + sealed);
            // Plaintext offsets sol-crypt writes, then the zip stream offsets they hold.
            let plain: Vec<u64> = plan
                .chunks
                .iter()
                .flat_map(|r| r.start * c..(r.end * c).min(ix.zip_out))
                .collect();
            let zip: Vec<u64> = plan
                .zip_cut
                .iter()
                .flat_map(|r| r.clone().map(|o| plain[o as usize]))
                .collect();
            // Every kept zip byte starts and ends whole members.
            let starts: Vec<u64> = ix.zip.iter().map(|m| m.coff).collect();
            for r in &plan.zip_cut {
                assert!(starts.contains(&plain[r.start as usize]));
            }
            // sol-zip -d writes those members' data: the tar offsets.
            let mut tar_offsets = Vec::new();
            for m in &ix.zip {
                if zip.contains(&m.coff) {
                    tar_offsets.extend(m.uoff..m.uoff + m.ulen);
                }
            }
            let kept: Vec<u64> = plan
                .tar_cut
                .iter()
                .flat_map(|r| r.clone().map(|o| tar_offsets[o as usize]))
                .collect();
            let want: Vec<u64> = chosen
                .iter()
                .flat_map(|&i| ix.tar[i].start..ix.tar[i].end)
                .collect();
            assert_eq!(kept, want, "{paths:?}");
            assert_eq!(plan.members, chosen.len());
        }
    }

    #[test]
    fn the_last_chunk_runs_to_the_end_of_the_stream() {
        let ix = sample();
        let n = ix.crypt.chunks();
        assert_eq!(ix.crypt.chunk_bytes(n - 1).end, ix.size);
        assert_eq!(ix.crypt.chunk_bytes(0), 86..86 + 4096 + 16);
        let plan = ix.plan(&ix.select(&[b"s/3/f39".to_vec()]).unwrap());
        assert_eq!(plan.fetch.last().unwrap().end, ix.size);
    }
}
