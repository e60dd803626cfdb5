//! Default mode: `md5  path` lines, exactly as md5sum prints them.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::thread;

use anyhow::Context;
use sol_common::Status;
use tar::EntryType;

use super::hasher::{hex, Compared, Hashed, Hashers, Md5Sum};
use sol_formats::tar::{self as stream, corrupt};

/// One md5sum line. Like coreutils, a name with a backslash, newline or carriage return is
/// escaped and the line starts with a backslash.
pub fn md5sum_line(digest: &Md5Sum, name: &[u8]) -> Vec<u8> {
    let escape = name.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r'));
    let mut line = Vec::with_capacity(name.len() + 36);
    if escape {
        line.push(b'\\');
    }
    line.extend_from_slice(hex(digest).as_bytes());
    line.extend_from_slice(b"  ");
    for &b in name {
        match (escape, b) {
            (true, b'\\') => line.extend_from_slice(b"\\\\"),
            (true, b'\n') => line.extend_from_slice(b"\\n"),
            (true, b'\r') => line.extend_from_slice(b"\\r"),
            _ => line.push(b),
        }
    }
    line.push(b'\n');
    line
}

/// A file's digest: being computed, or that of an earlier file (a hard link).
pub enum Pending {
    Digest(Receiver<Hashed>),
    LinkTo(Vec<u8>),
    /// Not a file: a symlink with its target (checked by --check, not summed).
    Symlink(Vec<u8>),
}

/// Read the stream, hashing files on the pool (and comparing each with its copy under `dir`
/// when given); `each` gets (name, pending) in stream order.
pub fn scan(
    input: impl Read,
    hashers: &Hashers,
    strip: usize,
    dir: Option<&Path>,
    mut each: impl FnMut(Vec<u8>, Pending) -> bool,
) -> anyhow::Result<()> {
    let (mut archive, mut check) = stream::open(input)?;
    let mut entries = archive.entries().map_err(corrupt)?;
    while let Some(mut entry) = check.next(&mut entries)? {
        let raw_name = entry.path_bytes().into_owned();
        let Some(name) = super::strip(&raw_name, strip) else {
            continue;
        };
        let pending = match entry.header().entry_type() {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let local = dir.map(|d| d.join(OsStr::from_bytes(&name)));
                Pending::Digest(hashers.hash(&mut entry, local).map_err(corrupt)?)
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                match super::strip(&target, strip) {
                    Some(t) => Pending::LinkTo(t),
                    None => continue,
                }
            }
            EntryType::Symlink => Pending::Symlink(
                entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default(),
            ),
            _ => continue,
        };
        if !each(name, pending) {
            return Ok(()); // the consumer stopped; it reports why
        }
    }
    check.finish(archive.into_inner().count)
}

/// Resolves pending digests in order, remembering them for later hard links.
#[derive(Default)]
pub struct Resolver(HashMap<Vec<u8>, Md5Sum>);

impl Resolver {
    /// The digest, and for a file hashed with --check its comparison with the local copy.
    pub fn resolve(&mut self, name: &[u8], pending: Pending) -> Option<(Md5Sum, Option<Compared>)> {
        let (d, compared) = match pending {
            Pending::Digest(rx) => rx.recv().ok()?,
            Pending::LinkTo(target) => (*self.0.get(&target)?, None),
            Pending::Symlink(_) => return None,
        };
        self.0.insert(name.to_vec(), d);
        Some((d, compared))
    }
}

pub fn sums(input: impl Read, threads: usize, strip: usize) -> anyhow::Result<Status> {
    let hashers = Hashers::new(threads);
    // Lines are printed in stream order by a printer thread as digests complete.
    let (line_tx, line_rx) = mpsc::sync_channel::<(Vec<u8>, Pending)>(4096);
    let printer = thread::spawn(move || -> anyhow::Result<()> {
        let mut out = sol_common::stdio::text_output();
        let mut resolver = Resolver::default();
        for (name, pending) in line_rx {
            if let Some((d, _)) = resolver.resolve(&name, pending) {
                out.write_all(&md5sum_line(&d, &name))
                    .context("writing output")?;
            }
        }
        out.flush().context("writing output")
    });
    let scanned = scan(input, &hashers, strip, None, |name, pending| {
        line_tx.send((name, pending)).is_ok()
    });
    drop(line_tx);
    let printed = printer
        .join()
        .map_err(|_| anyhow::anyhow!("the printer thread died"))?;
    printed?;
    scanned?;
    Ok(Status::Success)
}

#[cfg(test)]
mod tests {
    use super::md5sum_line;

    #[test]
    fn escapes_like_coreutils() {
        let d = [0u8; 16];
        let zero = "00000000000000000000000000000000";
        assert_eq!(
            md5sum_line(&d, b"a b"),
            format!("{zero}  a b\n").into_bytes()
        );
        assert_eq!(
            md5sum_line(&d, b"a\\b"),
            format!("\\{zero}  a\\\\b\n").into_bytes()
        );
        assert_eq!(
            md5sum_line(&d, b"a\nb\rc"),
            format!("\\{zero}  a\\nb\\rc\n").into_bytes()
        );
    }
}
