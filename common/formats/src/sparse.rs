//! Sparse members: a file stored as its data regions, its holes left out.
//!
//! GNU tar writes three forms in pax archives, all read here (the GNU tar manual, "Sparse
//! Formats"):
//! - 1.0 (`GNU.sparse.major=1`, `GNU.sparse.minor=0`): the map leads the member's data as
//!   decimal numbers, one a line (the count, then offset and length of each region), padded
//!   with NULs to a 512-byte block; the real name is `GNU.sparse.name`, the real size
//!   `GNU.sparse.realsize`. sol-tar writes this form ([`write_map`]).
//! - 0.1: the map in `GNU.sparse.map` as `offset,length,...`; the size in `GNU.sparse.size`.
//! - 0.0: `GNU.sparse.offset` and `GNU.sparse.numbytes` records in turn.
//!
//! The old GNU form (type `S`) is expanded by the tar crate itself. A map is refused (status
//! 3 at the reader) when a number is not plain decimal or overflows, when regions are out of
//! order, overlap or end past the real size, or when the regions and the map do not add up
//! to the member's stored size.

use std::io::{self, Read};

use tar::Entry;

/// Regions one map may hold: 16 bytes of memory each (64 MiB at most).
pub const MAX_REGIONS: u64 = 1 << 22;
const BLOCK: u64 = 512;

/// One data region of a sparse file: `len` bytes at `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub offset: u64,
    pub len: u64,
}

impl Region {
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// A sparse member, as its headers (and for 1.0 the start of its data) describe it.
#[derive(Debug, PartialEq, Eq)]
pub struct Sparse {
    /// The real name (`GNU.sparse.name`), when the headers carry one (1.0, 0.1).
    pub name: Option<Vec<u8>>,
    /// The file's length, holes included.
    pub real_size: u64,
    /// The data regions, in order, not overlapping, within `real_size`.
    pub regions: Vec<Region>,
}

impl Sparse {
    /// The bytes of data the regions hold.
    pub fn data_len(&self) -> u64 {
        self.regions.iter().map(|r| r.len).sum()
    }
}

/// The name a member goes by: a sparse member's real name when its headers carry one, else
/// its path.
pub fn real_name<R: Read>(entry: &Entry<'_, R>, sparse: Option<&Sparse>) -> Vec<u8> {
    match sparse.and_then(|s| s.name.clone()) {
        Some(name) => name,
        None => entry.path_bytes().into_owned(),
    }
}

/// Why a sparse member is refused: one kind each; the text is what the tools print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SparseError {
    /// `GNU.sparse.major`/`minor` name a version we do not read.
    Version { major: String, minor: String },
    /// A record the form needs is missing.
    Missing { key: &'static str },
    /// A number (in a record or the map) is not plain decimal, or overflows.
    Number { what: &'static str, value: String },
    /// More regions than [`MAX_REGIONS`].
    TooManyRegions { count: u64 },
    /// The count of regions disagrees with the regions given.
    Count { said: u64, found: u64 },
    /// Region N starts before region N-1 ends.
    OutOfOrder { region: u64 },
    /// Region N ends past the real size.
    PastEnd {
        region: u64,
        end: u64,
        real_size: u64,
    },
    /// The map and the regions do not add up to the member's stored size.
    Length { map: u64, data: u64, stored: u64 },
    /// The member's data ended inside the map.
    MapCut,
    /// A real size past the largest file (2^63 - 1 bytes, as GNU tar checks).
    SizeOutOfRange { size: u64 },
    /// Region N, not the last with data, does not start and end on 512-byte blocks: GNU tar
    /// reads each region from a block of its own, and would read other bytes.
    Unaligned { region: u64 },
    /// The real name is empty, `.`, or ends with `/`: no file can be made of it.
    Name { name: String },
}

impl std::fmt::Display for SparseError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        use SparseError::*;
        match self {
            Version { major, minor } => write!(f, "sparse format {major}.{minor} is not known"),
            Missing { key } => write!(f, "sparse member without {key}"),
            Number { what, value } => write!(f, "bad {what} '{value}' in the sparse map"),
            TooManyRegions { count } => {
                write!(f, "sparse map of {count} regions (at most {MAX_REGIONS})")
            }
            Count { said, found } => {
                write!(f, "sparse map says {said} regions and gives {found}")
            }
            OutOfOrder { region } => {
                write!(f, "sparse map region {region} out of order or overlapping")
            }
            PastEnd {
                region,
                end,
                real_size,
            } => write!(
                f,
                "sparse map region {region} ends at {end}, past the file's size {real_size}"
            ),
            Length { map, data, stored } => write!(
                f,
                "sparse map ({map} bytes) and regions ({data} bytes) do not add up to the \
                 member's {stored} bytes"
            ),
            MapCut => write!(f, "the sparse map ends before its last region"),
            SizeOutOfRange { size } => {
                write!(
                    f,
                    "sparse file size {size} out of range (at most {})",
                    i64::MAX
                )
            }
            Unaligned { region } => write!(
                f,
                "sparse map region {region} is not whole 512-byte blocks, and a region \
                 with data follows it"
            ),
            Name { name } => write!(f, "sparse file named '{name}': not a file name"),
        }
    }
}

/// A decimal number as GNU tar writes them: digits only, no sign, no overflow.
fn decimal(what: &'static str, v: &[u8]) -> Result<u64, SparseError> {
    let bad = || SparseError::Number {
        what,
        value: shown(&v[..v.len().min(40)]),
    };
    if v.is_empty() || v.len() > 20 || !v.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)
}

/// Bytes as a message shows them: control characters escaped.
fn shown(v: &[u8]) -> String {
    String::from_utf8_lossy(v).escape_debug().to_string()
}

/// The `GNU.sparse.*` records of one entry's pax header.
#[derive(Default)]
struct Records {
    major: Option<Vec<u8>>,
    minor: Option<Vec<u8>>,
    name: Option<Vec<u8>>,
    realsize: Option<Vec<u8>>,
    size: Option<Vec<u8>>,
    numblocks: Option<Vec<u8>>,
    map: Option<Vec<u8>>,
    /// 0.0's offset and numbytes records, in the order they came.
    pairs: Vec<(bool, Vec<u8>)>,
    any: bool,
}

impl Records {
    fn of<R: Read>(entry: &mut Entry<'_, R>) -> io::Result<Records> {
        let mut r = Records::default();
        let Some(exts) = entry.pax_extensions()? else {
            return Ok(r);
        };
        for ext in exts {
            let ext = ext?;
            let Some(key) = ext.key_bytes().strip_prefix(b"GNU.sparse.") else {
                continue;
            };
            let value = ext.value_bytes().to_vec();
            r.any = true;
            match key {
                b"major" => r.major = Some(value),
                b"minor" => r.minor = Some(value),
                b"name" => r.name = Some(value),
                b"realsize" => r.realsize = Some(value),
                b"size" => r.size = Some(value),
                b"numblocks" => r.numblocks = Some(value),
                b"map" => r.map = Some(value),
                b"offset" => r.pairs.push((true, value)),
                b"numbytes" => r.pairs.push((false, value)),
                _ => {}
            }
        }
        Ok(r)
    }

    fn number(v: &Option<Vec<u8>>, key: &'static str) -> Result<u64, SparseError> {
        decimal(key, v.as_deref().ok_or(SparseError::Missing { key })?)
    }
}

/// The sparse map of `entry`, when it is a pax sparse member (None otherwise); for the 1.0
/// form the map is read from the start of the entry's data, which then yields the regions'
/// bytes one after another. `stored` is the entry's data length.
pub fn of_entry<R: Read>(
    entry: &mut Entry<'_, R>,
) -> io::Result<Result<Option<Sparse>, SparseError>> {
    let r = Records::of(entry)?;
    if !r.any {
        return Ok(Ok(None));
    }
    let stored = entry.size();
    Ok(match (&r.major, &r.minor) {
        (Some(major), Some(minor)) if major == b"1" && minor == b"0" => {
            let real_size = Records::number(&r.realsize, "GNU.sparse.realsize");
            match real_size.and_then(|n| Ok((n, read_map(entry, stored)?))) {
                Ok((real_size, (regions, map_len))) => {
                    finish(r.name, real_size, regions, map_len, stored).map(Some)
                }
                Err(e) => Err(e),
            }
        }
        (None, None) => version_0(r, stored).map(Some),
        (major, minor) => Err(SparseError::Version {
            major: String::from_utf8_lossy(major.as_deref().unwrap_or(b"?")).into_owned(),
            minor: String::from_utf8_lossy(minor.as_deref().unwrap_or(b"?")).into_owned(),
        }),
    })
}

/// 0.1 (`GNU.sparse.map`) or 0.0 (offset and numbytes records).
fn version_0(r: Records, stored: u64) -> Result<Sparse, SparseError> {
    let real_size = Records::number(&r.size, "GNU.sparse.size")?;
    let numbers: Vec<(&'static str, &[u8])> = match &r.map {
        Some(map) if map.is_empty() => Vec::new(),
        Some(map) => map.split(|&b| b == b',').map(|v| ("number", v)).collect(),
        None => {
            // 0.0: offset, numbytes, offset, numbytes, ...
            for (i, (is_offset, _)) in r.pairs.iter().enumerate() {
                if *is_offset != (i % 2 == 0) {
                    return Err(SparseError::Missing {
                        key: "GNU.sparse.offset and GNU.sparse.numbytes in turn",
                    });
                }
            }
            if r.pairs.is_empty() && r.numblocks.is_none() {
                return Err(SparseError::Missing {
                    key: "GNU.sparse.map",
                });
            }
            r.pairs.iter().map(|(_, v)| ("number", &v[..])).collect()
        }
    };
    if numbers.len() % 2 != 0 {
        return Err(SparseError::Count {
            said: numbers.len() as u64 / 2 + 1,
            found: numbers.len() as u64 / 2,
        });
    }
    let mut regions = Vec::with_capacity(numbers.len() / 2);
    for pair in numbers.chunks(2) {
        regions.push(Region {
            offset: decimal(pair[0].0, pair[0].1)?,
            len: decimal(pair[1].0, pair[1].1)?,
        });
    }
    if let Some(n) = &r.numblocks {
        let said = decimal("GNU.sparse.numblocks", n)?;
        if said != regions.len() as u64 {
            let found = regions.len() as u64;
            return Err(SparseError::Count { said, found });
        }
    }
    finish(r.name, real_size, regions, 0, stored)
}

/// Read a 1.0 map from the start of the member's data (`stored` bytes): the regions, and
/// the bytes the map took (whole blocks).
fn read_map(data: &mut impl Read, stored: u64) -> Result<(Vec<Region>, u64), SparseError> {
    let mut lines = MapLines {
        data,
        left: stored,
        buf: Vec::new(),
        at: 0,
        read: 0,
    };
    let count = lines.number("region count")?;
    if count > MAX_REGIONS {
        return Err(SparseError::TooManyRegions { count });
    }
    let mut regions = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let offset = lines.number("offset")?;
        let len = lines.number("length")?;
        regions.push(Region { offset, len });
    }
    // Blocks are read only while a number is unfinished, so the map ends in the last block
    // read: the map takes whole blocks, its NUL padding with it.
    let map_len = lines.read;
    Ok((regions, map_len))
}

/// Reads the map's lines a block at a time, never past the blocks the map needs.
struct MapLines<'r, R> {
    data: &'r mut R,
    /// Data bytes of the member not read yet.
    left: u64,
    buf: Vec<u8>,
    at: usize,
    /// Bytes read from the member so far.
    read: u64,
}

impl<R: Read> MapLines<'_, R> {
    fn number(&mut self, what: &'static str) -> Result<u64, SparseError> {
        loop {
            if self.buf.get(self.at) == Some(&0) {
                return Err(SparseError::MapCut); // the map's padding: no more numbers
            }
            if let Some(nl) = self.buf[self.at..].iter().position(|&b| b == b'\n') {
                let v = decimal(what, &self.buf[self.at..self.at + nl]);
                self.at += nl + 1;
                return v;
            }
            if self.buf.len() - self.at > 20 {
                let value = shown(&self.buf[self.at..self.at + 21]);
                return Err(SparseError::Number { what, value });
            }
            self.block()?;
        }
    }

    /// The next block of the member into the buffer.
    fn block(&mut self) -> Result<(), SparseError> {
        if self.left < BLOCK {
            return Err(SparseError::MapCut);
        }
        self.buf.drain(..self.at);
        self.at = 0;
        let start = self.buf.len();
        self.buf.resize(start + BLOCK as usize, 0);
        if self.data.read_exact(&mut self.buf[start..]).is_err() {
            return Err(SparseError::MapCut);
        }
        self.left -= BLOCK;
        self.read += BLOCK;
        Ok(())
    }
}

/// Check the regions against the real size and the stored size.
fn finish(
    name: Option<Vec<u8>>,
    real_size: u64,
    regions: Vec<Region>,
    map_len: u64,
    stored: u64,
) -> Result<Sparse, SparseError> {
    if regions.len() as u64 > MAX_REGIONS {
        let count = regions.len() as u64;
        return Err(SparseError::TooManyRegions { count });
    }
    if real_size > i64::MAX as u64 {
        return Err(SparseError::SizeOutOfRange { size: real_size });
    }
    if let Some(name) = &name {
        let n = &name[..];
        if n.is_empty() || n == b"." || n == b"./" || n.ends_with(b"/") {
            let name = shown(n);
            return Err(SparseError::Name { name });
        }
    }
    let mut at = 0u64;
    let mut data = 0u64;
    for (i, r) in regions.iter().enumerate() {
        let region = i as u64 + 1;
        if r.offset < at {
            return Err(SparseError::OutOfOrder { region });
        }
        let end = r.offset.checked_add(r.len).filter(|&e| e <= real_size);
        let Some(end) = end else {
            let end = r.offset.saturating_add(r.len);
            return Err(SparseError::PastEnd {
                region,
                end,
                real_size,
            });
        };
        at = end;
        data = data.saturating_add(r.len);
    }
    if map_len.checked_add(data) != Some(stored) {
        return Err(SparseError::Length {
            map: map_len,
            data,
            stored,
        });
    }
    // Every region with data but the last starts and ends on a block boundary.
    let last_data = regions.iter().rposition(|r| r.len > 0).unwrap_or(0);
    for (i, r) in regions[..last_data].iter().enumerate() {
        if r.len > 0 && (r.offset % BLOCK != 0 || r.len % BLOCK != 0) {
            return Err(SparseError::Unaligned {
                region: i as u64 + 1,
            });
        }
    }
    Ok(Sparse {
        name,
        real_size,
        regions,
    })
}

/// The 1.0 map of `regions`, padded with NULs to a whole block: what leads the data.
pub fn write_map(regions: &[Region]) -> Vec<u8> {
    let mut map = format!("{}\n", regions.len()).into_bytes();
    for r in regions {
        map.extend_from_slice(format!("{}\n{}\n", r.offset, r.len).as_bytes());
    }
    let padded = (map.len() as u64).div_ceil(BLOCK) * BLOCK;
    map.resize(padded as usize, 0);
    map
}

/// The name GNU tar gives a 1.0 member in its ustar header, `DIR/GNUSparseFile.0/BASE`
/// (GNU tar puts its process id where we put 0), so that a tar without sparse support
/// extracts the stored form aside, not over the real file.
pub fn stored_name(name: &[u8]) -> Vec<u8> {
    let (dir, base) = match name.iter().rposition(|&b| b == b'/') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => (&b""[..], name),
    };
    let mut out = dir.to_vec();
    out.extend_from_slice(b"GNUSparseFile.0/");
    out.extend_from_slice(base);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_of(text: &str, stored: u64) -> Result<(Vec<Region>, u64), SparseError> {
        let mut data = text.as_bytes().to_vec();
        data.resize(data.len().div_ceil(512) * 512, 0);
        data.resize(stored as usize, 7);
        read_map(&mut &data[..], stored)
    }

    #[test]
    fn a_map_is_read_to_its_block_end() {
        let (regions, len) = map_of("2\n0\n5\n4096\n0\n", 517).unwrap();
        assert_eq!(
            regions,
            vec![
                Region { offset: 0, len: 5 },
                Region {
                    offset: 4096,
                    len: 0
                }
            ]
        );
        assert_eq!(len, 512);
        assert_eq!(write_map(&regions)[..13], *b"2\n0\n5\n4096\n0\n");
    }

    #[test]
    fn a_long_map_spans_blocks() {
        let regions: Vec<Region> = (0..100)
            .map(|i| Region {
                offset: i * 1_000_000_000,
                len: 1,
            })
            .collect();
        let map = write_map(&regions);
        assert!(map.len() > 512);
        let mut data = map.clone();
        data.extend(std::iter::repeat_n(1u8, 100));
        let (got, len) = read_map(&mut &data[..], data.len() as u64).unwrap();
        assert_eq!((got, len), (regions, map.len() as u64));
    }

    #[test]
    fn bad_maps_are_refused() {
        for (text, want) in [
            ("-1\n", "bad region count '-1'"),
            ("1\n+5\n1\n", "bad offset '+5'"),
            (
                "1\n99999999999999999999\n1\n",
                "bad offset '99999999999999999999'",
            ),
            ("1\n5 \n1\n", "bad offset '5 '"),
            ("1\n\n1\n", "bad offset ''"),
            ("99999999\n", "sparse map of 99999999 regions"),
            ("3\n0\n1\n", "the sparse map ends before its last region"),
        ] {
            let e = map_of(text, 512).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
        let e = map_of("1\n012345678901234567890123\n", 512).unwrap_err();
        assert!(matches!(e, SparseError::Number { what: "offset", .. }));
    }

    #[test]
    fn regions_are_checked_against_the_sizes() {
        let r = |offset, len| Region { offset, len };
        let k = 512;
        let size = 100 * k;
        // The last region with data may end anywhere; the empty one after it too.
        let ok = finish(
            None,
            size,
            vec![r(0, k), r(50 * k, 10), r(size, 0)],
            512,
            512 + k + 10,
        );
        assert_eq!(ok.unwrap().data_len(), k + 10);
        let cases = [
            (
                vec![r(50 * k, k), r(0, k)],
                512 + 2 * k,
                SparseError::OutOfOrder { region: 2 },
            ),
            (
                vec![r(0, 2 * k), r(k, k)],
                512 + 3 * k,
                SparseError::OutOfOrder { region: 2 },
            ),
            (
                vec![r(99 * k, 2 * k)],
                512 + 2 * k,
                SparseError::PastEnd {
                    region: 1,
                    end: 101 * k,
                    real_size: size,
                },
            ),
            (
                vec![r(u64::MAX, 2)],
                514,
                SparseError::PastEnd {
                    region: 1,
                    end: u64::MAX,
                    real_size: size,
                },
            ),
            (
                vec![r(0, k)],
                600,
                SparseError::Length {
                    map: 512,
                    data: k,
                    stored: 600,
                },
            ),
            // GNU tar reads each region from a block of its own: a short one before another
            // with data would be read otherwise.
            (
                vec![r(0, 1), r(k, 1)],
                514,
                SparseError::Unaligned { region: 1 },
            ),
            (
                vec![r(1, k), r(2 * k, 1)],
                512 + k + 1,
                SparseError::Unaligned { region: 1 },
            ),
        ];
        for (regions, stored, want) in cases {
            assert_eq!(finish(None, size, regions, 512, stored).unwrap_err(), want);
        }
        let huge = finish(None, u64::MAX, vec![], 512, 512).unwrap_err();
        assert_eq!(huge, SparseError::SizeOutOfRange { size: u64::MAX });
        for name in [&b""[..], b".", b"./", b"d/"] {
            let e = finish(Some(name.to_vec()), size, vec![], 512, 512).unwrap_err();
            assert!(matches!(e, SparseError::Name { .. }), "{name:?}: {e}");
        }
    }

    #[test]
    fn the_stored_name_is_gnu_tars() {
        assert_eq!(stored_name(b"a/b/c"), b"a/b/GNUSparseFile.0/c");
        assert_eq!(stored_name(b"c"), b"GNUSparseFile.0/c");
    }
}
