//! `--check DIR`: compare the stream with a tree while reading it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::Context;
use sol_common::{io_msg, Fail, Status};

use super::hasher::{same_content, Compared, Hashers};
use super::sums::{scan, Chunk, Entry, Pending};

/// What to look up on disk for a stream entry that is not a regular file.
enum Look {
    /// A symlink: its target.
    Symlink,
    /// A hard link: whether the local file holds the same bytes as the local copy of the
    /// file it links to (whose own verdict then decides).
    SameAs(PathBuf),
}

/// What is on disk at a stream entry's path.
enum Local {
    Symlink(Vec<u8>),
    /// A file with (true) or without (false) the same bytes as its hard link's target.
    Linked(bool),
    Other,
    Missing,
    Unreadable(String),
}

fn local_of(path: &Path, look: &Look) -> Local {
    match (fs::symlink_metadata(path), look) {
        (Err(e), _) if e.kind() == io::ErrorKind::NotFound => Local::Missing,
        (Err(e), _) => Local::Unreadable(io_msg(&e)),
        (Ok(m), Look::Symlink) if m.file_type().is_symlink() => match fs::read_link(path) {
            Ok(t) => Local::Symlink(t.as_os_str().as_bytes().to_vec()),
            Err(e) => Local::Unreadable(io_msg(&e)),
        },
        (Ok(m), Look::SameAs(target)) if m.is_file() => match same_content(path, target) {
            Ok(same) => Local::Linked(same),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Local::Linked(false),
            Err(e) => Local::Unreadable(io_msg(&e)),
        },
        (Ok(_), _) => Local::Other,
    }
}

/// Looks up symlinks and hard links on a thread of its own, so the stream keeps moving.
struct LocalPool(Sender<(PathBuf, Look, Sender<Local>)>);

impl LocalPool {
    fn new(threads: usize) -> LocalPool {
        let (tx, rx) = mpsc::channel::<(PathBuf, Look, Sender<Local>)>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..threads.max(1) {
            let rx = rx.clone();
            thread::spawn(move || loop {
                let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok((path, look, reply)) = job else {
                    return;
                };
                let _ = reply.send(local_of(&path, &look));
            });
        }
        LocalPool(tx)
    }

    fn look(&self, path: PathBuf, look: Look) -> Receiver<Local> {
        let (tx, rx) = mpsc::channel();
        if self.0.send((path, look, tx.clone())).is_err() {
            let _ = tx.send(Local::Unreadable("lookup thread died".into()));
        }
        rx
    }
}

/// What --check says of one stream entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Same,
    Changed,
    Missing,
    /// The local copy could not be read: an I/O error (status 1, said on stderr), not a
    /// difference (status 3).
    Unreadable,
}

impl Verdict {
    /// The word of its line on stdout, for a difference.
    fn word(self) -> Option<&'static str> {
        match self {
            Verdict::Changed => Some("changed"),
            Verdict::Missing => Some("missing"),
            Verdict::Same | Verdict::Unreadable => None,
        }
    }
}

/// `tar-md5: PATH: cannot read: REASON`, for a local path (or a directory) --check could not
/// read.
fn cannot_read(path: &Path, why: &str) {
    sol_common::warn(
        super::TOOL,
        format!("{}: cannot read: {why}", path.display()),
    );
}

fn unreadable(dir: &Path, name: &[u8], why: &str) -> Verdict {
    cannot_read(&dir.join(OsStr::from_bytes(name)), why);
    Verdict::Unreadable
}

/// The verdict on a regular file, from the worker that compared it.
fn file_verdict(dir: &Path, name: &[u8], hashed: Option<super::hasher::Hashed>) -> Verdict {
    match hashed {
        Some((_, Some(Compared::Same))) => Verdict::Same,
        Some((_, Some(Compared::Missing))) => Verdict::Missing,
        Some((_, Some(Compared::Unreadable(e)))) => unreadable(dir, name, &e),
        _ => Verdict::Changed,
    }
}

/// The verdict on a symlink or hard link, from what the lookup found; `same` holds the
/// verdicts of the files seen so far.
fn local_verdict(
    dir: &Path,
    same: &HashMap<Vec<u8>, Verdict>,
    name: &[u8],
    entry: Entry,
    local: Receiver<Local>,
) -> Verdict {
    let local = local
        .recv()
        .unwrap_or(Local::Unreadable("lookup thread died".into()));
    match (entry, local) {
        (_, Local::Missing) => Verdict::Missing,
        (_, Local::Unreadable(e)) => unreadable(dir, name, &e),
        (Entry::Symlink(want), Local::Symlink(have)) if want == have => Verdict::Same,
        // A hard link holds its target's bytes: the same bytes as the target's local copy,
        // and that copy identical to the stream (or, when it could not be read, this one
        // cannot be checked either).
        (Entry::LinkTo(target), Local::Linked(true)) => match same.get(&target) {
            Some(Verdict::Same) => Verdict::Same,
            Some(Verdict::Unreadable) => unreadable(
                dir,
                name,
                &format!(
                    "a hard link to '{}', which could not be read",
                    String::from_utf8_lossy(&target)
                ),
            ),
            _ => Verdict::Changed,
        },
        (_, _) => Verdict::Changed,
    }
}

#[derive(Default)]
struct Tally {
    files: u64,
    changed: u64,
    missing: u64,
    extra: u64,
    /// Local files (and directories) that could not be read.
    unreadable: u64,
}

impl Tally {
    /// Counts one stream entry and its verdict.
    fn count(&mut self, verdict: Verdict) {
        self.files += 1;
        match verdict {
            Verdict::Same => {}
            Verdict::Changed => self.changed += 1,
            Verdict::Missing => self.missing += 1,
            Verdict::Unreadable => self.unreadable += 1,
        }
    }
}

fn show(name: &[u8]) -> Vec<u8> {
    name.iter()
        .flat_map(|&b| if b == b'\n' { b"\\n".to_vec() } else { vec![b] })
        .collect()
}

fn report(out: &mut impl Write, what: &str, name: &[u8]) -> io::Result<()> {
    out.write_all(what.as_bytes())?;
    out.write_all(b": ")?;
    out.write_all(&show(name))?;
    out.write_all(b"\n")
}

/// A chunk of entries, with the lookups of its links.
type Looked = (Chunk, Vec<Option<Receiver<Local>>>);

/// `--check DIR`: reads the stream, compares each entry with its copy under `dir` and
/// reports the differences, then the files only `dir` has; status 3 for a difference.
pub fn check(input: impl Read, dir: &Path, threads: usize, strip: usize) -> anyhow::Result<Status> {
    let meta = fs::metadata(dir).with_context(|| format!("'{}'", dir.display()))?;
    if !meta.is_dir() {
        anyhow::bail!("'{}': Not a directory", dir.display());
    }
    // Regular files are compared by the workers, without hashing; symlinks and hard links
    // (rare) are looked up on one thread of their own.
    let hashers = Hashers::new(threads, false);
    let locals = LocalPool::new(1);
    let (tx, rx) = mpsc::sync_channel::<Looked>(64);
    let root = dir.to_path_buf();
    let checker = thread::spawn(move || judge(&root, rx));
    let scanned = scan(input, &hashers, strip, Some(dir), |chunk| {
        let lookups = look_up_links(&locals, dir, &chunk);
        tx.send((chunk, lookups)).is_ok()
    });
    drop(tx);
    let (mut tally, seen) = checker
        .join()
        .map_err(|_| anyhow::anyhow!("the checker thread died"))??;
    scanned?;
    report_extra(dir, &seen, &mut tally)?;
    outcome(dir, &tally)
}

/// Starts the lookups of a chunk's symlinks and hard links under `dir` (None for files).
fn look_up_links(locals: &LocalPool, dir: &Path, chunk: &Chunk) -> Vec<Option<Receiver<Local>>> {
    chunk
        .entries()
        .map(|(name, pending)| {
            let path = dir.join(OsStr::from_bytes(name));
            match pending {
                Pending::LinkTo(target) => {
                    Some(locals.look(path, Look::SameAs(dir.join(OsStr::from_bytes(target)))))
                }
                Pending::Symlink(_) => Some(locals.look(path, Look::Symlink)),
                _ => None,
            }
        })
        .collect()
}

/// The checker thread: the verdict on each entry in stream order, a line on stdout for each
/// difference; the tally, and every verdict by name.
fn judge(root: &Path, rx: Receiver<Looked>) -> anyhow::Result<(Tally, HashMap<Vec<u8>, Verdict>)> {
    let mut out = sol_common::stdio::text_output();
    let mut same = HashMap::new();
    let mut t = Tally::default();
    for (chunk, mut lookups) in rx {
        let lookups = lookups.drain(..);
        for ((name, entry), local) in chunk.resolve().zip(lookups) {
            let verdict = match (entry, local) {
                (Entry::File(hashed), _) => file_verdict(root, &name, hashed),
                (entry, Some(local)) => local_verdict(root, &same, &name, entry, local),
                (_, None) => Verdict::Changed,
            };
            t.count(verdict);
            if let Some(word) = verdict.word() {
                report(&mut out, word, &name).context("writing output")?;
            }
            same.insert(name, verdict);
        }
    }
    out.flush().context("writing output")?;
    Ok((t, same))
}

/// Files under DIR that the stream does not have: an `extra` line for each, sorted; counted
/// in `tally` with the directories that could not be read.
fn report_extra(
    dir: &Path,
    seen: &HashMap<Vec<u8>, Verdict>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let mut extra = Vec::new();
    tally.unreadable += find_extra(dir, &mut Vec::new(), seen, &mut extra)?;
    extra.sort();
    let mut out = sol_common::stdio::text_output();
    for name in &extra {
        report(&mut out, "extra", name).context("writing output")?;
    }
    out.flush().context("writing output")?;
    tally.extra = extra.len() as u64;
    Ok(())
}

/// The status from the tally. A difference (status 3) wins over what could not be read
/// (status 1): both are said.
fn outcome(dir: &Path, tally: &Tally) -> anyhow::Result<Status> {
    let unreadable = match tally.unreadable {
        0 => String::new(),
        n => format!(", {n} unreadable"),
    };
    if tally.changed + tally.missing + tally.extra > 0 {
        Err(Fail::integrity(format!(
            "'{}' differs from the stream: {} changed, {} missing, {} extra{unreadable} ({} files in the stream)",
            dir.display(),
            tally.changed,
            tally.missing,
            tally.extra,
            tally.files
        )))?;
    }
    if tally.unreadable > 0 {
        anyhow::bail!(
            "'{}': {} could not be read; nothing else differs ({} files in the stream)",
            dir.display(),
            plural(tally.unreadable, "file"),
            tally.files
        );
    }
    Ok(Status::Success)
}

/// `1 file`, `2 files`.
fn plural(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Adds the files under `dir`/`rel` that the stream does not have to `extra`; returns how
/// many directories could not be read (each said on stderr; the search goes on past them).
fn find_extra(
    dir: &Path,
    rel: &mut Vec<u8>,
    seen: &HashMap<Vec<u8>, Verdict>,
    extra: &mut Vec<Vec<u8>>,
) -> anyhow::Result<u64> {
    let path = dir.join(OsStr::from_bytes(rel));
    let rd = match fs::read_dir(&path) {
        Ok(rd) => rd,
        // DIR itself was read before; below it, a directory nobody may list is like a file
        // nobody may read.
        Err(e) if !rel.is_empty() && e.kind() != io::ErrorKind::NotFound => {
            cannot_read(&path, &io_msg(&e));
            return Ok(1);
        }
        Err(e) => return Err(e).with_context(|| format!("'{}'", path.display())),
    };
    let mut unreadable = 0;
    for e in rd {
        let e = e.with_context(|| format!("'{}'", path.display()))?;
        let ft = e
            .file_type()
            .with_context(|| format!("'{}'", e.path().display()))?;
        let len = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(e.file_name().as_bytes());
        if ft.is_dir() {
            unreadable += find_extra(dir, rel, seen, extra)?;
        } else if !seen.contains_key(rel.as_slice()) {
            extra.push(rel.clone());
        }
        rel.truncate(len);
    }
    Ok(unreadable)
}
