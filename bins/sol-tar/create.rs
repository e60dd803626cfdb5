//! `sol-tar create`: the writer side.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

use anyhow::Context;
use sol_common::{Fail, Status};
use sol_formats::index::{self, TarEntry};
use sol_formats::sparse::{self, Region};
use tar::Builder;

use super::header::{self, Kind, Meta};
use super::holes;
use super::readahead::{self, Body, Budget, Item};
use sol_common::io_msg;

use super::walk::{Node, Walk};
use super::warn;

/// Archive names for the PATH operands: as given, without leading '/' or trailing '/'.
fn roots(dir: Option<&Path>, paths: &[PathBuf]) -> anyhow::Result<Vec<(Vec<u8>, PathBuf)>> {
    let mut warned = false;
    let mut out = Vec::new();
    for p in paths {
        if p.components().any(|c| c == Component::ParentDir) {
            return Err(Fail::usage(format!(
                "'{}': names with '..' are not archived; use -C to change directory",
                p.display()
            ))
            .into());
        }
        let bytes = p.as_os_str().as_bytes();
        let mut name = bytes;
        while name.len() > 1 && name.ends_with(b"/") {
            name = &name[..name.len() - 1];
        }
        if name.starts_with(b"/") {
            if !warned {
                warn("removing leading '/' from member names");
                warned = true;
            }
            while name.starts_with(b"/") {
                name = &name[1..];
            }
        }
        let disk = match dir {
            Some(d) => d.join(p),
            None => p.clone(),
        };
        out.push((name.to_vec(), disk));
    }
    Ok(out)
}

fn meta_of(m: &std::fs::Metadata, size: u64) -> Meta {
    Meta {
        mode: m.mode(),
        uid: u64::from(m.uid()),
        gid: u64::from(m.gid()),
        mtime: m.mtime(),
        size,
    }
}

/// The output, counting the bytes written: where each member starts and ends.
struct Counted<W> {
    inner: W,
    at: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.at += n as u64;
        Ok(n)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        self.at += buf.len() as u64;
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `--index FILE`: the tar part of the restore index ([`sol_formats::index`]), one
/// [`TarEntry::line`] per member.
///
/// The writer only copies each member's fields into a batch (no allocation per member); a
/// thread of its own turns batches into lines and writes them. Formatting on the writer
/// made `create -C /usr share` (50k members) 10-25 % slower: the writer sets the pace, and
/// every microsecond per member on it shows.
struct TarIndex {
    shown: String,
    batch: Vec<u8>,
    tx: Option<SyncSender<IndexMsg>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

enum IndexMsg {
    /// Members, as [`TarIndex::add`] encodes them.
    Batch(Vec<u8>),
    /// The end of the stream, and its length.
    End(u64),
}

/// A batch is handed to the index thread at this size; lines are written at this size too.
const INDEX_PIECE: usize = 64 << 10;
/// Batches waiting for the index thread at most.
const INDEX_QUEUE: usize = 16;

impl TarIndex {
    /// Create (or empty) FILE and start the thread that writes it.
    fn create(path: &Path) -> anyhow::Result<TarIndex> {
        let shown = path.display().to_string();
        let file = File::create(path).with_context(|| format!("index file '{shown}'"))?;
        let (tx, rx) = mpsc::sync_channel(INDEX_QUEUE);
        let thread = thread::spawn(move || write_index(file, &rx));
        Ok(TarIndex {
            shown,
            batch: Vec::with_capacity(INDEX_PIECE + 4096),
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Record the member written at `start..end` of the stream.
    fn add(&mut self, start: u64, end: u64, name: &[u8], kind: Kind<'_>, meta: &Meta) {
        let (letter, size, link) = match kind {
            Kind::File => (b'f', meta.size, &[][..]),
            Kind::Dir => (b'd', 0, &[][..]),
            Kind::Symlink(t) => (b'l', 0, t),
            Kind::HardLink(t) => (b'h', 0, t),
        };
        let b = &mut self.batch;
        for n in [start, end, size, meta.mtime as u64] {
            b.extend_from_slice(&n.to_le_bytes());
        }
        b.extend_from_slice(&(meta.mode & 0o7777).to_le_bytes());
        b.push(letter);
        for bytes in [name, link] {
            b.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            b.extend_from_slice(bytes);
        }
    }

    /// Hand the batch over once it is `at_least` bytes; an error of the index thread ends
    /// the run.
    fn send(&mut self, at_least: usize) -> anyhow::Result<()> {
        if self.batch.len() >= at_least.max(1) {
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(INDEX_PIECE + 4096));
            self.message(IndexMsg::Batch(batch))?;
        }
        Ok(())
    }

    fn message(&mut self, msg: IndexMsg) -> anyhow::Result<()> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(msg).is_ok());
        if !sent {
            self.join()?; // the thread stopped: its error
            anyhow::bail!(
                "writing index file '{}': the index thread stopped",
                self.shown
            );
        }
        Ok(())
    }

    /// Wait for the index thread; its error, if it had one.
    fn join(&mut self) -> anyhow::Result<()> {
        drop(self.tx.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => {
                Err(e).with_context(|| format!("writing index file '{}'", self.shown))
            }
            Some(Err(_)) => {
                anyhow::bail!("writing index file '{}': the index thread died", self.shown)
            }
            _ => Ok(()),
        }
    }

    /// The last members, and the length of the whole stream.
    fn finish(mut self, total: u64) -> anyhow::Result<()> {
        self.send(0)?;
        self.message(IndexMsg::End(total))?;
        self.join()
    }
}

impl Drop for TarIndex {
    /// Leaving early (an error in the stream): the lines gathered are written, without the
    /// tar-end line, before the process exits.
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// The index thread: batches to lines, written [`INDEX_PIECE`] at a time; the tar-end line
/// only when the writer says the stream is complete.
fn write_index(mut file: File, rx: &Receiver<IndexMsg>) -> io::Result<()> {
    let mut lines = format!("{}\n", index::TAR_MAGIC);
    for msg in rx {
        match msg {
            IndexMsg::Batch(batch) => {
                let mut rest = &batch[..];
                while !rest.is_empty() {
                    lines.push_str(&decode(&mut rest).line());
                    if lines.len() >= INDEX_PIECE {
                        file.write_all(lines.as_bytes())?;
                        lines.clear();
                    }
                }
            }
            IndexMsg::End(total) => {
                lines.push_str(&format!("tar-end\t{total}\n"));
                return file.write_all(lines.as_bytes());
            }
        }
    }
    // The writer stopped early: what was gathered, without the tar-end line.
    file.write_all(lines.as_bytes())
}

/// One member of a batch, as [`TarIndex::add`] encoded it.
fn decode(rest: &mut &[u8]) -> TarEntry {
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> &'a [u8] {
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        head
    }
    let u64_of = |rest: &mut &[u8]| u64::from_le_bytes(take(rest, 8).try_into().unwrap());
    let (start, end, size, mtime) = (
        u64_of(rest),
        u64_of(rest),
        u64_of(rest),
        u64_of(rest) as i64,
    );
    let mode = u32::from_le_bytes(take(rest, 4).try_into().unwrap());
    let kind = match take(rest, 1)[0] {
        b'f' => index::Kind::File,
        b'd' => index::Kind::Dir,
        b'l' => index::Kind::Symlink,
        _ => index::Kind::HardLink,
    };
    let len = u64_of(rest) as usize;
    let mut path = take(rest, len).to_vec();
    if kind == index::Kind::Dir && !path.ends_with(b"/") {
        path.push(b'/'); // as header::prepare stores it
    }
    let len = u64_of(rest) as usize;
    let link = take(rest, len).to_vec();
    TarEntry {
        start,
        end,
        kind,
        size,
        mode,
        mtime,
        path,
        link,
    }
}

/// Append one member (with its pax extended header, when it needs one), and record it in the
/// index.
fn append(
    b: &mut Builder<Counted<impl Write>>,
    ix: &mut Option<TarIndex>,
    name: &[u8],
    kind: Kind<'_>,
    meta: &Meta,
    data: impl Read,
) -> io::Result<()> {
    let prepared = header::prepare(name, kind, meta)?;
    let start = b.get_ref().at;
    if let Some((ph, records)) = prepared.pax {
        b.append(&ph, &records[..])?;
    }
    b.append(&prepared.header, data)?;
    if let Some(ix) = ix {
        ix.add(start, b.get_ref().at, name, kind, meta);
    }
    Ok(())
}

/// Reads exactly `left` bytes of a file, padding with zeros if it shrinks.
struct Exact {
    file: File,
    left: u64,
    shrank: u64,
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = if self.shrank > 0 {
            0
        } else {
            self.file.read(&mut buf[..want])?
        };
        let n = if n == 0 {
            // EOF before the size in the header: pad with zeros, as GNU tar does.
            buf[..want].fill(0);
            self.shrank += want as u64;
            want
        } else {
            n
        };
        self.left -= n as u64;
        Ok(n)
    }
}

/// How `create` writes: its read-ahead threads, the index it also writes, and whether files
/// with holes are stored as sparse members.
pub struct Options<'a> {
    pub readers: u16,
    pub index: Option<&'a Path>,
    pub sparse: bool,
}

pub fn create(
    dir: Option<&Path>,
    paths: &[PathBuf],
    out: impl Write,
    how: &Options,
) -> anyhow::Result<Status> {
    let mut ix = how.index.map(TarIndex::create).transpose()?;
    let budget = Budget::default();
    let items = readahead::start(
        Walk::new(roots(dir, paths)?),
        usize::from(how.readers),
        budget.clone(),
    );
    let mut b = Builder::new(Counted { inner: out, at: 0 });
    let mut failed = false;
    for item in items {
        let (node, body) = match item {
            Item::Error(msg) => {
                warn(msg);
                failed = true;
                continue;
            }
            Item::Entry(node, body) => (node, body),
        };
        if node.name.is_empty() {
            continue; // the root "/" itself
        }
        failed |= write_entry(&mut b, &mut ix, &node, body, &budget, how.sparse)
            .context("writing output")?;
        if let Some(ix) = &mut ix {
            if let Err(e) = ix.send(INDEX_PIECE) {
                return Err(cut(b, e));
            }
        }
    }
    // The index is finished before the stream: a stream whose index failed never gets its
    // end blocks.
    let total = b.get_ref().at + END_BLOCKS;
    if let Some(ix) = ix {
        if let Err(e) = ix.finish(total) {
            return Err(cut(b, e));
        }
    }
    let mut out = b.into_inner().context("writing output")?;
    out.flush().context("writing output")?;
    anyhow::ensure!(
        out.at == total,
        "the stream ends at byte {}, not {total}",
        out.at
    );
    if failed {
        warn("exiting with failure status due to previous errors (the archive is complete)");
        return Ok(Status::Failure);
    }
    Ok(Status::Success)
}

/// What the tar crate writes at the end of the stream: two zero blocks.
const END_BLOCKS: u64 = 1024;

/// End the run on `e` without the end blocks the tar crate writes when a builder is dropped,
/// so no later stage takes the stream for a complete archive.
fn cut<W: Write>(b: Builder<W>, e: anyhow::Error) -> anyhow::Error {
    std::mem::forget(b);
    e
}

/// Write one entry; Ok(true) when something was reported (exit 1 at the end).
fn write_entry(
    b: &mut Builder<Counted<impl Write>>,
    ix: &mut Option<TarIndex>,
    node: &Node,
    body: Body,
    budget: &Budget,
    sparse: bool,
) -> io::Result<bool> {
    let m = &node.meta;
    match body {
        Body::Skip(why) => {
            warn(format!("{}: {why}", node.path.display()));
            Ok(false)
        }
        Body::Empty if m.is_dir() => {
            append(b, ix, &node.name, Kind::Dir, &meta_of(m, 0), io::empty())?;
            Ok(false)
        }
        Body::Empty => append_symlink(b, ix, node),
        Body::HardLink(first) => {
            let kind = Kind::HardLink(&first);
            append(b, ix, &node.name, kind, &meta_of(m, 0), io::empty())?;
            Ok(false)
        }
        Body::Small(rx) => append_small(b, ix, node, &rx, budget),
        Body::Large => append_large(b, ix, node, sparse),
    }
}

/// Write a symlink with the target it has now; Ok(true) when it cannot be read (reported).
fn append_symlink(
    b: &mut Builder<Counted<impl Write>>,
    ix: &mut Option<TarIndex>,
    node: &Node,
) -> io::Result<bool> {
    let target = match std::fs::read_link(&node.path) {
        Ok(t) => t,
        Err(e) => {
            let path = node.path.display();
            warn(format!("{path}: cannot read symlink: {}", io_msg(&e)));
            return Ok(true);
        }
    };
    let kind = Kind::Symlink(target.as_os_str().as_bytes());
    append(
        b,
        ix,
        &node.name,
        kind,
        &meta_of(&node.meta, 0),
        io::empty(),
    )?;
    Ok(false)
}

/// Write a small file with the contents a reader thread read ahead, giving their cost back
/// to the budget; Ok(true) when it could not be read or changed while read (reported).
fn append_small(
    b: &mut Builder<Counted<impl Write>>,
    ix: &mut Option<TarIndex>,
    node: &Node,
    rx: &Receiver<readahead::Contents>,
    budget: &Budget,
) -> io::Result<bool> {
    let (path, m) = (node.path.display(), &node.meta);
    let contents = rx
        .recv()
        .map_err(|_| io::Error::other("a reader thread died"))?;
    budget.give(readahead::cost(m.len()));
    let data = match contents.data {
        Ok(d) => d,
        Err(e) => return Ok(report_unreadable(&path, &e)),
    };
    let meta = meta_of(m, data.len() as u64);
    append(b, ix, &node.name, Kind::File, &meta, &data[..])?;
    if contents.changed {
        warn(format!("{path}: file changed as we read it"));
    }
    Ok(contents.changed)
}

/// Stream a large file from disk, exactly the size it had when walked (padded with zeros if
/// it shrank), as a sparse member when it has holes and `sparse`; Ok(true) when it could not be read, shrank, grew or changed (reported).
fn append_large(
    b: &mut Builder<Counted<impl Write>>,
    ix: &mut Option<TarIndex>,
    node: &Node,
    sparse: bool,
) -> io::Result<bool> {
    let (path, m) = (node.path.display(), &node.meta);
    let file = match File::open(&node.path) {
        Ok(f) => f,
        Err(e) => return Ok(report_unreadable(&path, &e)),
    };
    let regions = if sparse {
        holes::regions(&file, m)
    } else {
        None
    };
    if let Some(regions) = regions {
        return append_sparse(b, ix, node, &file, &regions);
    }
    let mut exact = Exact {
        file,
        left: m.len(),
        shrank: 0,
    };
    let meta = meta_of(m, m.len());
    append(b, ix, &node.name, Kind::File, &meta, &mut exact)?;
    if exact.shrank > 0 {
        warn(format!(
            "{path}: file shrank by {} bytes; padding with zeros",
            exact.shrank
        ));
        return Ok(true);
    }
    let mut probe = [0u8; 1];
    let grew = exact.file.read(&mut probe).map(|n| n > 0).unwrap_or(true);
    let now = exact.file.metadata()?;
    if grew || readahead::changed_since(m, &now) {
        warn(format!("{path}: file changed as we read it"));
        return Ok(true);
    }
    Ok(false)
}

/// Stream a file with holes as a sparse member: its map, then only its data regions (as
/// they were mapped; padded with zeros if it shrank). Ok(true) when it shrank, grew or
/// changed while read (reported).
fn append_sparse(
    b: &mut Builder<Counted<impl Write>>,
    ix: &mut Option<TarIndex>,
    node: &Node,
    file: &File,
    regions: &[Region],
) -> io::Result<bool> {
    let (path, m) = (node.path.display(), &node.meta);
    let map = sparse::write_map(regions);
    let stored = map.len() as u64 + regions.iter().map(|r| r.len).sum::<u64>();
    let meta = meta_of(m, m.len());
    let prepared = header::prepare_sparse(&node.name, &meta, stored);
    let start = b.get_ref().at;
    if let Some((ph, records)) = prepared.pax {
        b.append(&ph, &records[..])?;
    }
    let mut data = holes::RegionData::new(file, regions);
    b.append(&prepared.header, (&map[..]).chain(&mut data))?;
    if let Some(ix) = ix {
        ix.add(start, b.get_ref().at, &node.name, Kind::File, &meta);
    }
    if data.shrank > 0 {
        warn(format!(
            "{path}: file shrank by {} bytes; padding with zeros",
            data.shrank
        ));
        return Ok(true);
    }
    let now = file.metadata()?;
    if now.len() != m.len() || readahead::changed_since(m, &now) {
        warn(format!("{path}: file changed as we read it"));
        return Ok(true);
    }
    Ok(false)
}

fn report_unreadable(path: &impl std::fmt::Display, e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::NotFound {
        warn(format!("{path}: file removed before we read it"));
    } else {
        warn(format!("{path}: cannot read: {}", io_msg(e)));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::{decode, index, Exact, Kind, Meta, TarEntry, TarIndex};
    use std::io::{Read, Write};

    #[test]
    fn index_batches_decode_to_the_members_added() {
        let mut ix = TarIndex {
            shown: String::new(),
            batch: Vec::new(),
            tx: None,
            thread: None,
        };
        let meta = |size, mtime| Meta {
            mode: 0o104755,
            uid: 0,
            gid: 0,
            mtime,
            size,
        };
        ix.add(0, 512, b"d", Kind::Dir, &meta(0, -5));
        ix.add(512, 2048, b"d/f\xff\n", Kind::File, &meta(700, 1 << 40));
        ix.add(2048, 3584, b"d/l", Kind::Symlink(b"f\xff\n"), &meta(0, 0));
        ix.add(3584, 4096, b"d/h", Kind::HardLink(b"d/f"), &meta(9, 7));
        let mut rest = &ix.batch[..];
        let mut got = Vec::new();
        while !rest.is_empty() {
            got.push(decode(&mut rest));
        }
        let e = |start, end, kind, size, mtime, path: &[u8], link: &[u8]| TarEntry {
            start,
            end,
            kind,
            size,
            mode: 0o4755,
            mtime,
            path: path.to_vec(),
            link: link.to_vec(),
        };
        assert_eq!(
            got,
            [
                e(0, 512, index::Kind::Dir, 0, -5, b"d/", b""),
                e(
                    512,
                    2048,
                    index::Kind::File,
                    700,
                    1 << 40,
                    b"d/f\xff\n",
                    b""
                ),
                e(2048, 3584, index::Kind::Symlink, 0, 0, b"d/l", b"f\xff\n"),
                e(3584, 4096, index::Kind::HardLink, 0, 7, b"d/h", b"d/f"),
            ]
        );
    }

    #[test]
    fn a_file_that_shrinks_is_padded_to_its_header_size() {
        let mut f = tempfile_with(b"abc");
        let mut exact = Exact {
            file: f.reopen(),
            left: 8,
            shrank: 0,
        };
        let mut out = Vec::new();
        exact.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc\0\0\0\0\0");
        assert_eq!(exact.shrank, 5);
        f.done();
    }

    /// A scratch file under the system temp dir, removed by `done`.
    struct Scratch(std::path::PathBuf);
    impl Scratch {
        fn reopen(&self) -> std::fs::File {
            std::fs::File::open(&self.0).unwrap()
        }
        fn done(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    fn tempfile_with(data: &[u8]) -> Scratch {
        let p = std::env::temp_dir().join(format!("sol-tar-exact-{}", std::process::id()));
        std::fs::File::create(&p).unwrap().write_all(data).unwrap();
        Scratch(p)
    }
}
