//! ustar headers with pax extended records for whatever does not fit (POSIX.1-2001).
//!
//! Fields are written as raw bytes: names are bytes on Unix (non-UTF-8 included), and the
//! tar crate's path setters refuse some names we must keep.

use std::io;

use sol_formats::sparse;
use tar::{EntryType, Header, UstarHeader};

/// Largest value of an 11-digit octal field (size, mtime): 8 GiB - 1.
const OCTAL11_MAX: u64 = (1 << 33) - 1;
/// Largest value of a 7-digit octal field (uid, gid).
const OCTAL7_MAX: u64 = (1 << 21) - 1;

/// What an entry is.
#[derive(Clone, Copy)]
pub enum Kind<'a> {
    File,
    Dir,
    Symlink(&'a [u8]),
    HardLink(&'a [u8]),
}

#[derive(Clone, Copy)]
pub struct Meta {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub size: u64,
}

/// The header, and the pax header to write before it when needed.
pub struct Prepared {
    pub pax: Option<(Header, Vec<u8>)>,
    pub header: Header,
}

/// Append one `"%d key=value\n"` record; the length counts its own digits.
pub fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = 1 + key.len() + 1 + value.len() + 1;
    let mut len = body + 1;
    loop {
        let total = len.to_string().len() + body;
        if total == len {
            break;
        }
        len = total;
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Split a name into ustar (prefix, name) fields, if it fits.
fn ustar_split(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 {
        return Some((&[], name));
    }
    // The prefix ends at a '/', which is not stored; both parts must fit and be non-empty.
    let limit = name.len().min(156);
    (1..limit).rev().filter(|&i| name[i] == b'/').find_map(|i| {
        let (prefix, rest) = (&name[..i], &name[i + 1..]);
        (prefix.len() <= 155 && !rest.is_empty() && rest.len() <= 100).then_some((prefix, rest))
    })
}

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
}

/// The header for member `name`, and the pax extended header to write before it when a
/// field does not fit in ustar (pax records are added in the order path, uid, gid, mtime,
/// size, linkpath).
pub fn prepare(name: &[u8], kind: Kind<'_>, meta: &Meta) -> io::Result<Prepared> {
    let mut pax = Vec::new();
    let mut h = Header::new_ustar();
    let full_name = stored_name(name, kind);
    {
        let u = h.as_ustar_mut().expect("ustar header");
        set_name(u, &full_name, &mut pax);
        set_mode_owner_mtime(u, meta, &mut pax);
    }
    set_size(&mut h, kind, meta, &mut pax);
    if let Some(target) = set_type(&mut h, kind) {
        set_link(&mut h, target, &mut pax);
    }
    h.set_cksum();
    let pax = if pax.is_empty() {
        None
    } else {
        let binary = std::str::from_utf8(&full_name).is_err();
        Some(pax_header(name, meta, pax, binary))
    };
    Ok(Prepared { pax, header: h })
}

/// A sparse file's headers (pax sparse 1.0): the ustar header under GNU tar's stored name
/// (`DIR/GNUSparseFile.0/BASE`) and sized `stored` (the map and the regions' data), after a
/// pax header that carries the real name and size.
pub fn prepare_sparse(name: &[u8], meta: &Meta, stored: u64) -> Prepared {
    let mut pax = Vec::new();
    pax_record(&mut pax, "GNU.sparse.major", b"1");
    pax_record(&mut pax, "GNU.sparse.minor", b"0");
    pax_record(&mut pax, "GNU.sparse.name", name);
    pax_record(
        &mut pax,
        "GNU.sparse.realsize",
        meta.size.to_string().as_bytes(),
    );
    let mut h = Header::new_ustar();
    let stored_name = sparse::stored_name(name);
    {
        let u = h.as_ustar_mut().expect("ustar header");
        set_name(u, &stored_name, &mut pax);
        set_mode_owner_mtime(u, meta, &mut pax);
    }
    let data = Meta {
        size: stored,
        ..*meta
    };
    set_size(&mut h, Kind::File, &data, &mut pax);
    set_type(&mut h, Kind::File);
    h.set_cksum();
    let binary = std::str::from_utf8(&stored_name).is_err();
    Prepared {
        pax: Some(pax_header(name, meta, pax, binary)),
        header: h,
    }
}

/// The name as stored: a directory's ends with '/'.
fn stored_name(name: &[u8], kind: Kind<'_>) -> Vec<u8> {
    let mut full_name = name.to_vec();
    if matches!(kind, Kind::Dir) && !full_name.ends_with(b"/") {
        full_name.push(b'/');
    }
    full_name
}

/// The ustar name (and prefix) fields; a name that does not fit goes in a pax "path"
/// record, its last 100 bytes in the name field.
fn set_name(u: &mut UstarHeader, full_name: &[u8], pax: &mut Vec<u8>) {
    match ustar_split(full_name) {
        Some((prefix, rest)) => {
            u.prefix[..prefix.len()].copy_from_slice(prefix);
            u.name[..rest.len()].copy_from_slice(rest);
        }
        None => {
            pax_record(pax, "path", full_name);
            let cut = &full_name[full_name.len() - 100..];
            u.name.copy_from_slice(cut);
        }
    }
}

/// The mode, uid, gid and mtime fields; a uid, gid or mtime out of the field's range goes in
/// a pax record, the field holding 0 (uid, gid) or the mtime clamped.
fn set_mode_owner_mtime(u: &mut UstarHeader, meta: &Meta, pax: &mut Vec<u8>) {
    octal(&mut u.mode, u64::from(meta.mode & 0o7777));
    for (field, value, key) in [(&mut u.uid, meta.uid, "uid"), (&mut u.gid, meta.gid, "gid")] {
        if value <= OCTAL7_MAX {
            octal(field, value);
        } else {
            pax_record(pax, key, value.to_string().as_bytes());
            octal(field, 0);
        }
    }
    if (0..=OCTAL11_MAX as i64).contains(&meta.mtime) {
        octal(&mut u.mtime, meta.mtime as u64);
    } else {
        pax_record(pax, "mtime", meta.mtime.to_string().as_bytes());
        octal(&mut u.mtime, meta.mtime.clamp(0, OCTAL11_MAX as i64) as u64);
    }
}

/// The size field: a file's size, else 0. Sizes of 8 GiB and more: pax "size", and base-256
/// in the field for older readers.
fn set_size(h: &mut Header, kind: Kind<'_>, meta: &Meta, pax: &mut Vec<u8>) {
    let size = if matches!(kind, Kind::File) {
        meta.size
    } else {
        0
    };
    h.set_size(size);
    if size > OCTAL11_MAX {
        pax_record(pax, "size", size.to_string().as_bytes());
    }
}

/// The entry type field; the link's target for a symlink or hard link.
fn set_type<'a>(h: &mut Header, kind: Kind<'a>) -> Option<&'a [u8]> {
    match kind {
        Kind::File => {
            h.set_entry_type(EntryType::Regular);
            None
        }
        Kind::Dir => {
            h.set_entry_type(EntryType::Directory);
            None
        }
        Kind::Symlink(t) => {
            h.set_entry_type(EntryType::Symlink);
            Some(t)
        }
        Kind::HardLink(t) => {
            h.set_entry_type(EntryType::Link);
            Some(t)
        }
    }
}

/// The link name field; a target over 100 bytes goes in a pax "linkpath" record, its first
/// 100 bytes in the field.
fn set_link(h: &mut Header, target: &[u8], pax: &mut Vec<u8>) {
    let u = h.as_ustar_mut().expect("ustar header");
    if target.len() <= 100 {
        u.linkname[..target.len()].copy_from_slice(target);
    } else {
        pax_record(pax, "linkpath", target);
        u.linkname.copy_from_slice(&target[..100]);
    }
}

/// The pax extended header holding `records` for member `name`, and its data (led by
/// "hdrcharset=BINARY" when the stored name is not UTF-8).
fn pax_header(name: &[u8], meta: &Meta, records: Vec<u8>, binary: bool) -> (Header, Vec<u8>) {
    let pax = if binary {
        let mut with_charset = Vec::new();
        pax_record(&mut with_charset, "hdrcharset", b"BINARY");
        with_charset.extend_from_slice(&records);
        with_charset
    } else {
        records
    };
    let mut ph = Header::new_ustar();
    {
        let u = ph.as_ustar_mut().expect("ustar header");
        let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
        let mut pname = b"PaxHeaders/".to_vec();
        pname.extend_from_slice(&base[..base.len().min(89)]);
        u.name[..pname.len()].copy_from_slice(&pname);
        octal(&mut u.mode, 0o644);
        octal(&mut u.uid, 0);
        octal(&mut u.gid, 0);
        octal(&mut u.mtime, meta.mtime.clamp(0, OCTAL11_MAX as i64) as u64);
    }
    ph.set_size(pax.len() as u64);
    ph.set_entry_type(EntryType::XHeader);
    ph.set_cksum();
    (ph, pax)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let mut v = Vec::new();
        pax_record(&mut v, "path", b"a");
        assert_eq!(v, b"9 path=a\n");
        let mut v = Vec::new();
        pax_record(&mut v, "path", &[b'x'; 95]);
        // 1 + 4 + 1 + 95 + 1 = 102 bytes after the length, plus its 3 digits: 105
        assert!(v.starts_with(b"105 path="));
        assert_eq!(v.len(), 105);
    }

    #[test]
    fn ustar_split_uses_the_prefix() {
        let name = [b"d".repeat(120), b"/".to_vec(), b"f".repeat(50)].concat();
        let (p, n) = ustar_split(&name).unwrap();
        assert_eq!(p.len(), 120);
        assert_eq!(n.len(), 50);
        assert!(ustar_split(&b"x".repeat(101)).is_none());
    }

    #[test]
    fn big_files_get_a_pax_size() {
        let m = Meta {
            mode: 0o644,
            uid: 1,
            gid: 1,
            mtime: 5,
            size: 9 << 30,
        };
        let p = prepare(b"big", Kind::File, &m).unwrap();
        let (_, records) = p.pax.expect("pax header");
        assert_eq!(records, format!("19 size={}\n", 9u64 << 30).as_bytes());
        assert_eq!(p.header.size().unwrap(), 9 << 30);
    }
}
