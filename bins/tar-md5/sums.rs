//! Default mode: `md5  path` lines, exactly as md5sum prints them.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc;
use std::thread;

use anyhow::Context;
use sol_common::Status;
use tar::EntryType;

use super::hasher::{hex, Answer, Batch, Hashed, Hashers, Md5Sum, SMALL};
use sol_common::ordered::Ticket;
use sol_formats::sparse::{self, Sparse};
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

/// A stream entry, as the reader hands it on: a file being hashed, or a link.
pub enum Pending {
    /// A large file, hashed on its own.
    Digest(Ticket<Answer>),
    /// A small file: the chunk's batch result at this index.
    InBatch(usize),
    /// A hard link to an earlier entry.
    LinkTo(Vec<u8>),
    /// Not a file: a symlink with its target (checked by --check, not summed).
    Symlink(Vec<u8>),
}

/// A stream entry with its file's result in hand.
pub enum Entry {
    /// A file's digest (when hashing) and comparison; None if its worker failed.
    File(Option<Hashed>),
    LinkTo(Vec<u8>),
    Symlink(Vec<u8>),
}

/// Entries in stream order, handed on together, with the batch their small files are in.
#[derive(Default)]
pub struct Chunk {
    entries: Vec<(Vec<u8>, Pending)>,
    batch: Option<Ticket<Answer>>,
}

impl Chunk {
    /// The entries, before their results are in.
    pub fn entries(&self) -> impl Iterator<Item = &(Vec<u8>, Pending)> {
        self.entries.iter()
    }

    /// Wait for the results, in stream order.
    pub fn resolve(self) -> impl Iterator<Item = (Vec<u8>, Entry)> {
        let mut batch = self
            .batch
            .and_then(|rx| rx.recv().ok())
            .map(Answer::many)
            .unwrap_or_default()
            .into_iter()
            .map(Some)
            .collect::<Vec<_>>();
        self.entries.into_iter().map(move |(name, pending)| {
            let entry = match pending {
                Pending::Digest(rx) => Entry::File(rx.recv().ok().and_then(Answer::one)),
                Pending::InBatch(i) => Entry::File(batch.get_mut(i).and_then(Option::take)),
                Pending::LinkTo(t) => Entry::LinkTo(t),
                Pending::Symlink(t) => Entry::Symlink(t),
            };
            (name, entry)
        })
    }
}

/// Read the stream, hashing files on the pool (and comparing each with its copy under `dir`
/// when given); `each` gets the entries in stream order, a chunk at a time.
pub fn scan(
    input: impl Read,
    hashers: &Hashers,
    strip: usize,
    dir: Option<&Path>,
    each: impl FnMut(Chunk) -> bool,
) -> anyhow::Result<()> {
    let (mut archive, mut check) = stream::open(input)?;
    let mut entries = archive.entries().map_err(corrupt)?;
    let mut chunker = Chunker {
        hashers,
        batch: hashers.batch(),
        chunk: Chunk::default(),
        each,
    };
    while let Some(mut entry) = check.next(&mut entries)? {
        let sparse = check.sparse(&mut entry)?;
        let raw_name = sparse::real_name(&entry, sparse.as_ref());
        let Some(name) = super::strip(&raw_name, strip) else {
            continue;
        };
        if let Some(sparse) = sparse {
            if !chunker.add_sparse(&mut entry, name, dir, &sparse)? {
                return Ok(());
            }
            continue;
        }
        if !chunker.add(&mut entry, name, strip, dir)? {
            return Ok(()); // the consumer stopped; it reports why
        }
    }
    if !chunker.flush()? {
        return Ok(());
    }
    check.finish(archive.into_inner().count)
}

/// Gathers the entries into chunks for `each`. Small files wait in `batch` (their entries in
/// `chunk`) until it is full or an entry that is not in it comes: entries are always handed
/// on in stream order.
struct Chunker<'h, F> {
    hashers: &'h Hashers,
    batch: Batch,
    chunk: Chunk,
    each: F,
}

impl<F: FnMut(Chunk) -> bool> Chunker<'_, F> {
    /// Adds one entry (named `name`, its path stripped) by its type: files are hashed, links
    /// noted, anything else skipped. False when the consumer stopped.
    fn add<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: Vec<u8>,
        strip: usize,
        dir: Option<&Path>,
    ) -> anyhow::Result<bool> {
        match entry.header().entry_type() {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.add_file(entry, name, dir)
            }
            EntryType::Link => match super::strip(&link_name(entry), strip) {
                Some(t) => self.push(name, Pending::LinkTo(t)),
                None => Ok(true),
            },
            EntryType::Symlink => self.push(name, Pending::Symlink(link_name(entry))),
            _ => Ok(true),
        }
    }

    /// A regular file: a small one joins the batch, a large one is hashed on its own after
    /// the chunk before it is handed on.
    fn add_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: Vec<u8>,
        dir: Option<&Path>,
    ) -> anyhow::Result<bool> {
        let local = dir.map(|d| d.join(OsStr::from_bytes(&name)));
        let len = entry.size();
        if len <= SMALL {
            self.batch.add(entry, len, local).map_err(corrupt)?;
            let i = self.batch.files_len() - 1;
            self.chunk.entries.push((name, Pending::InBatch(i)));
            return if self.batch.is_full() {
                self.flush()
            } else {
                Ok(true)
            };
        }
        if !self.flush()? {
            return Ok(false);
        }
        let digest = self.hashers.hash(entry, local).map_err(corrupt)?;
        self.push(name, Pending::Digest(digest))
    }

    /// A sparse member: hashed on its own (as a large file), its holes as their length.
    fn add_sparse<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: Vec<u8>,
        dir: Option<&Path>,
        sparse: &Sparse,
    ) -> anyhow::Result<bool> {
        let local = dir.map(|d| d.join(OsStr::from_bytes(&name)));
        if !self.flush()? {
            return Ok(false);
        }
        let digest = self
            .hashers
            .hash_sparse(entry, sparse, local)
            .map_err(corrupt)?;
        self.push(name, Pending::Digest(digest))
    }

    /// Adds an entry that is not in the batch. Links ride in the chunk after the small files
    /// before them; a large file's entry ends its chunk.
    fn push(&mut self, name: Vec<u8>, pending: Pending) -> anyhow::Result<bool> {
        self.chunk.entries.push((name, pending));
        if matches!(self.chunk.entries.last(), Some((_, Pending::Digest(_)))) {
            return self.flush();
        }
        Ok(true)
    }

    /// Sends the batch to the hashers and hands the chunk on; false when the consumer
    /// stopped.
    fn flush(&mut self) -> anyhow::Result<bool> {
        if !self.batch.is_empty() {
            let batch = std::mem::replace(&mut self.batch, self.hashers.batch());
            self.chunk.batch = Some(self.hashers.hash_batch(batch).map_err(corrupt)?);
        }
        Ok(self.chunk.entries.is_empty() || (self.each)(std::mem::take(&mut self.chunk)))
    }
}

/// The link target of a hard link or symlink entry (empty when it has none).
fn link_name<R: Read>(entry: &tar::Entry<'_, R>) -> Vec<u8> {
    entry
        .link_name_bytes()
        .map(|t| t.into_owned())
        .unwrap_or_default()
}

/// Resolves digests in order, remembering them for later hard links.
#[derive(Default)]
pub struct Resolver(HashMap<Vec<u8>, Md5Sum>);

impl Resolver {
    /// The digest of a file or hard link (None for a symlink, or when hashing failed).
    pub fn resolve(&mut self, name: &[u8], entry: Entry) -> Option<Md5Sum> {
        let d = match entry {
            Entry::File(hashed) => hashed?.0?,
            Entry::LinkTo(target) => *self.0.get(&target)?,
            Entry::Symlink(_) => return None,
        };
        self.0.insert(name.to_vec(), d);
        Some(d)
    }
}

pub fn sums(input: impl Read, threads: usize, strip: usize) -> anyhow::Result<Status> {
    let hashers = Hashers::new(threads, true);
    // Lines are printed in stream order by a printer thread as digests complete.
    let (line_tx, line_rx) = mpsc::sync_channel::<Chunk>(64);
    let printer = thread::spawn(move || -> anyhow::Result<()> {
        let mut out = sol_common::stdio::text_output();
        let mut resolver = Resolver::default();
        for (name, entry) in line_rx.into_iter().flat_map(Chunk::resolve) {
            if let Some(d) = resolver.resolve(&name, entry) {
                out.write_all(&md5sum_line(&d, &name))
                    .context("writing output")?;
            }
        }
        out.flush().context("writing output")
    });
    let scanned = scan(input, &hashers, strip, None, |chunk| {
        line_tx.send(chunk).is_ok()
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
