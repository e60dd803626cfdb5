//! The sol-zip stream format (documented in man/sol-zip.5): gzp's Mgzip members between
//! sol-zip's own markers.
//!
//! A member: gzip header with FEXTRA, XLEN = 8, one subfield `IG` of 4 bytes holding the
//! member's total size (header + deflate data + 8-byte trailer); deflate data; CRC-32; ISIZE.
//!
//! ```text
//! version 2 (written since 0.1.0 of this format page):
//!   START2  empty member, MTIME "SZ\x02S"
//!   data members (Mgzip)
//!   END2    empty member, MTIME "SZ\x02E", XLEN 32: subfield IG (its own size, 54) and
//!           subfield SZ (20 bytes): member count u64 LE, total length u64 LE, CRC-32 of all
//!           the data u32 LE (combined from the members' CRCs)
//! version 1 (older streams, still read): START1 "SZ\x01S", data members, END1 "SZ\x01E".
//! ```

use std::io::{self, Write};

/// The first two bytes of every gzip member.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Bytes of an Mgzip header.
pub const HEADER: usize = 20;
/// Bytes of the CRC-32 + ISIZE trailer.
pub const TRAILER: usize = 8;
/// Largest member (compressed) or block (decompressed) we accept: sol-zip writes blocks of at
/// most 8 MiB (1 MiB by default, gzp's own default is 128 KiB);
/// anything far beyond is corruption, and the bound keeps memory flat on garbage.
pub const MAX_BLOCK: usize = 16 << 20;

const fn marker(version: u8, tag: u8) -> [u8; 30] {
    [
        0x1f, 0x8b, 8, 4, b'S', b'Z', version, tag, 0, 255, 8, 0, b'I', b'G', 4, 0, 30, 0, 0,
        0, // header
        3, 0, // an empty final deflate block
        0, 0, 0, 0, 0, 0, 0, 0, // CRC-32 and ISIZE of nothing
    ]
}

/// Opened streams before version 2: "an end marker follows".
pub const START1: [u8; 30] = marker(1, b'S');
/// Closed streams before version 2.
pub const END1: [u8; 30] = marker(1, b'E');
/// Opens every stream written now: "an END2 with the stream's summary follows".
pub const START2: [u8; 30] = marker(2, b'S');

/// Bytes of the END2 member.
pub const END2_LEN: usize = 54;
/// Its first HEADER bytes, fixed.
const END2_HEAD: [u8; HEADER] = [
    0x1f,
    0x8b,
    8,
    4,
    b'S',
    b'Z',
    2,
    b'E',
    0,
    255,
    32,
    0,
    b'I',
    b'G',
    4,
    0,
    END2_LEN as u8,
    0,
    0,
    0,
];

/// The member's total size when `h` is an Mgzip header, else None.
pub fn mgzip_size(h: &[u8]) -> Option<usize> {
    let is_mgzip = h.len() >= HEADER
        && h[0] == 0x1f
        && h[1] == 0x8b
        && h[2] == 8
        && h[3] == 4
        && h[10] == 8
        && h[11] == 0
        && &h[12..14] == b"IG"
        && h[14] == 4
        && h[15] == 0;
    is_mgzip.then(|| u32::from_le_bytes([h[16], h[17], h[18], h[19]]) as usize)
}

/// The member's total size when `h` starts an END2 member.
pub fn end2_size(h: &[u8]) -> Option<usize> {
    (h.len() >= HEADER && h[..HEADER] == END2_HEAD).then_some(END2_LEN)
}

/// What a version 2 stream's end member records: how many data members, how many bytes of
/// data, and the CRC-32 of all of it, so a dropped, duplicated or reordered member is caught.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub members: u64,
    pub bytes: u64,
    pub crc: u32,
}

impl Summary {
    /// Count one more member of `len` bytes with CRC-32 `crc`, after the ones so far.
    pub fn add(&mut self, crc: u32, len: u64) {
        let mut all = crc32fast::Hasher::new_with_initial_len(self.crc, self.bytes);
        all.combine(&crc32fast::Hasher::new_with_initial_len(crc, len));
        self.crc = all.finalize();
        self.members += 1;
        self.bytes += len;
    }

    /// The END2 member carrying this summary.
    pub fn end_member(&self) -> [u8; END2_LEN] {
        let mut m = [0u8; END2_LEN];
        m[..HEADER].copy_from_slice(&END2_HEAD);
        m[20..24].copy_from_slice(&[b'S', b'Z', 20, 0]);
        m[24..32].copy_from_slice(&self.members.to_le_bytes());
        m[32..40].copy_from_slice(&self.bytes.to_le_bytes());
        m[40..44].copy_from_slice(&self.crc.to_le_bytes());
        m[44..46].copy_from_slice(&[3, 0]);
        m
    }

    /// The summary an END2 member carries; None when `m` is not exactly one.
    pub fn parse_end(m: &[u8]) -> Option<Summary> {
        let fixed = m.len() == END2_LEN
            && m[..HEADER] == END2_HEAD
            && m[20..24] == [b'S', b'Z', 20, 0]
            && m[44..] == [3, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let u64_at = |i: usize| u64::from_le_bytes(m[i..i + 8].try_into().expect("8 bytes"));
        fixed.then(|| Summary {
            members: u64_at(24),
            bytes: u64_at(32),
            crc: u32::from_le_bytes(m[40..44].try_into().expect("4 bytes")),
        })
    }
}

/// Each member's data length and its size in the stream, in order (sol-zip's part of the
/// restore index, sol_formats::index).
pub type MemberSizes = Vec<(u64, u64)>;

/// Passes the compressor's Mgzip members through and tallies them (CRC-32 and ISIZE from each
/// member's trailer), so the end member describes exactly what was written.
pub struct Tally<W> {
    inner: W,
    summary: Summary,
    /// Position inside the current member, its header and its size once known.
    pos: usize,
    head: [u8; HEADER],
    size: usize,
    trailer: [u8; TRAILER],
    members: MemberSizes,
}

impl<W: Write> Tally<W> {
    pub fn new(inner: W) -> Tally<W> {
        Tally {
            inner,
            summary: Summary::default(),
            pos: 0,
            head: [0; HEADER],
            size: 0,
            trailer: [0; TRAILER],
            members: Vec::new(),
        }
    }

    /// The summary of every complete member, each member's data length and size, and the
    /// writer; an error if a member was cut.
    pub fn finish(self) -> io::Result<(Summary, MemberSizes, W)> {
        if self.pos != 0 {
            return Err(io::Error::other("the compressor ended inside a member"));
        }
        Ok((self.summary, self.members, self.inner))
    }

    fn observe(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            if self.pos < HEADER {
                let k = (HEADER - self.pos).min(buf.len());
                self.head[self.pos..self.pos + k].copy_from_slice(&buf[..k]);
                self.pos += k;
                buf = &buf[k..];
                if self.pos == HEADER {
                    self.size = mgzip_size(&self.head)
                        .filter(|&s| s >= HEADER + TRAILER)
                        .ok_or_else(|| {
                            io::Error::other("the compressor wrote a non-Mgzip member")
                        })?;
                }
                continue;
            }
            let trailer_at = self.size - TRAILER;
            if self.pos < trailer_at {
                let k = (trailer_at - self.pos).min(buf.len());
                self.pos += k;
                buf = &buf[k..];
                continue;
            }
            let k = (self.size - self.pos).min(buf.len());
            let t = self.pos - trailer_at;
            self.trailer[t..t + k].copy_from_slice(&buf[..k]);
            self.pos += k;
            buf = &buf[k..];
            if self.pos == self.size {
                let crc = u32::from_le_bytes(self.trailer[..4].try_into().expect("4 bytes"));
                let len = u32::from_le_bytes(self.trailer[4..].try_into().expect("4 bytes"));
                self.summary.add(crc, u64::from(len));
                self.members.push((u64::from(len), self.size as u64));
                self.pos = 0;
            }
        }
        Ok(())
    }
}

impl<W: Write> Write for Tally<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.observe(&buf[..n])?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crcs_combine_in_order() {
        let (a, b) = (b"hello ".as_slice(), b"world".as_slice());
        let mut s = Summary::default();
        s.add(crc32fast::hash(a), a.len() as u64);
        s.add(crc32fast::hash(b), b.len() as u64);
        assert_eq!(s.crc, crc32fast::hash(b"hello world"));
        let mut swapped = Summary::default();
        swapped.add(crc32fast::hash(b), b.len() as u64);
        swapped.add(crc32fast::hash(a), a.len() as u64);
        assert_ne!(swapped.crc, s.crc);
        assert_eq!(Summary::parse_end(&s.end_member()), Some(s));
        assert_eq!(end2_size(&s.end_member()), Some(END2_LEN));
        assert_eq!(mgzip_size(&START2), Some(30));
    }
}
