//! Finding a file's holes (SEEK_DATA/SEEK_HOLE), and reading only its data regions: what a
//! sparse member (pax sparse 1.0, see [`sol_formats::sparse`]) stores.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::io::AsRawFd;

use sol_formats::sparse::{Region, MAX_REGIONS};

/// The data regions of `file` (as it was walked: `m`), ended by GNU tar's empty region at
/// the file's size; None when it has no holes, when the file system cannot say, or when
/// the map would be too long: then the file is stored whole.
pub fn regions(file: &File, m: &Metadata) -> Option<Vec<Region>> {
    let size = m.len();
    // Fewer blocks than the size needs: it has holes (the usual case costs no system call).
    if m.blocks().saturating_mul(512) >= size {
        return None;
    }
    let mut regions = Vec::new();
    let mut at = 0;
    while at < size {
        let Some(data) = seek(file, at, libc::SEEK_DATA)? else {
            break; // holes to the end
        };
        if data >= size {
            break;
        }
        let hole = seek(file, data, libc::SEEK_HOLE)?.unwrap_or(size).min(size);
        if hole <= data || regions.len() as u64 >= MAX_REGIONS {
            return None;
        }
        regions.push(Region {
            offset: data,
            len: hole - data,
        });
        at = hole;
    }
    let mut regions = blocks(regions, size);
    if regions.iter().map(|r| r.len).sum::<u64>() == size {
        return None;
    }
    regions.push(Region {
        offset: size,
        len: 0,
    });
    Some(regions)
}

/// The regions widened to whole 512-byte blocks (the last may end at the file's size) and
/// merged where they then meet: GNU tar reads each region from a block of its own. File
/// systems report holes in whole blocks of their own, so this changes nothing unless the
/// file changed between the calls that mapped it (found by an attack: a region of 35 bytes
/// made GNU tar misread the member and lose the next one).
fn blocks(regions: Vec<Region>, size: u64) -> Vec<Region> {
    const B: u64 = 512;
    let mut out: Vec<Region> = Vec::with_capacity(regions.len());
    for r in regions {
        let start = r.offset / B * B;
        let end = r.end().div_ceil(B).saturating_mul(B).min(size);
        match out.last_mut() {
            Some(last) if start <= last.end() => last.len = end.max(last.end()) - last.offset,
            _ => out.push(Region {
                offset: start,
                len: end - start,
            }),
        }
    }
    out
}

/// lseek with WHENCE from `from`: Some(offset), None past the last data (ENXIO), and None
/// around the whole answer (`?` in the caller) on any other error.
fn seek(file: &File, from: u64, whence: libc::c_int) -> Option<Option<u64>> {
    // SAFETY: lseek on a descriptor we own; its offset is not used afterwards (the data is
    // read with pread).
    let r = unsafe { libc::lseek(file.as_raw_fd(), from as libc::off_t, whence) };
    if r >= 0 {
        return Some(Some(r as u64));
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::ENXIO) => Some(None),
        _ => None,
    }
}

/// Reads the regions' bytes one after another, exactly their length, padding with zeros
/// where the file shrank since it was mapped.
pub struct RegionData<'a> {
    file: &'a File,
    regions: &'a [Region],
    /// Bytes of the first region read so far.
    done: u64,
    /// Zeros written for bytes the file no longer had.
    pub shrank: u64,
}

impl<'a> RegionData<'a> {
    pub fn new(file: &'a File, regions: &'a [Region]) -> RegionData<'a> {
        RegionData {
            file,
            regions,
            done: 0,
            shrank: 0,
        }
    }
}

impl Read for RegionData<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(r) = self.regions.first() {
            if self.done == r.len {
                self.regions = &self.regions[1..];
                self.done = 0;
                continue;
            }
            let want = buf
                .len()
                .min((r.len - self.done).min(usize::MAX as u64) as usize);
            let n = if self.shrank > 0 {
                0
            } else {
                self.file.read_at(&mut buf[..want], r.offset + self.done)?
            };
            let n = if n == 0 {
                buf[..want].fill(0);
                self.shrank += want as u64;
                want
            } else {
                n
            };
            self.done += n as u64;
            return Ok(n);
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_whole_blocks() {
        let r = |offset, len| Region { offset, len };
        assert_eq!(
            blocks(
                vec![r(0, 4511297), r(4511297, 35), r(4511332, 7)],
                104857600
            ),
            vec![r(0, 4511744)]
        );
        assert_eq!(
            blocks(vec![r(100, 1), r(4096, 4096), r(10000, 1)], 10001),
            vec![r(0, 512), r(4096, 4096), r(9728, 273)]
        );
        assert_eq!(blocks(vec![r(1024, 6)], 1030), vec![r(1024, 6)]);
    }

    #[test]
    fn holes_are_found_and_data_read_in_order() {
        let dir = std::env::temp_dir().join(format!("sol-holes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let f = File::create(&path).unwrap();
        f.set_len(8 << 20).unwrap();
        f.write_at(b"abc", 1 << 20).unwrap();
        f.write_at(b"z", (8 << 20) - 1).unwrap();
        f.sync_all().unwrap();
        let f = File::open(&path).unwrap();
        let m = f.metadata().unwrap();
        let Some(regions) = regions(&f, &m) else {
            std::fs::remove_dir_all(&dir).unwrap();
            panic!(
                "no holes found in {}: a file system without them?",
                path.display()
            );
        };
        assert_eq!(
            regions.last(),
            Some(&Region {
                offset: 8 << 20,
                len: 0
            })
        );
        assert!(regions[0].offset <= 1 << 20 && regions[0].end() >= (1 << 20) + 3);
        let mut data = Vec::new();
        RegionData::new(&f, &regions)
            .read_to_end(&mut data)
            .unwrap();
        assert_eq!(
            data.len() as u64,
            regions.iter().map(|r| r.len).sum::<u64>()
        );
        assert!(data.windows(3).any(|w| w == b"abc"));
        assert_eq!(data.last(), Some(&b'z'));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
