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
use sol_common::{Fail, Status};

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
        (Err(e), _) => Local::Unreadable(e.to_string()),
        (Ok(m), Look::Symlink) if m.file_type().is_symlink() => match fs::read_link(path) {
            Ok(t) => Local::Symlink(t.as_os_str().as_bytes().to_vec()),
            Err(e) => Local::Unreadable(e.to_string()),
        },
        (Ok(m), Look::SameAs(target)) if m.is_file() => match same_content(path, target) {
            Ok(same) => Local::Linked(same),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Local::Linked(false),
            Err(e) => Local::Unreadable(e.to_string()),
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

fn unreadable(name: &[u8], e: &str) -> Option<&'static str> {
    sol_common::warn(
        super::TOOL,
        format!("{}: {e}", String::from_utf8_lossy(name)),
    );
    Some("changed")
}

/// The verdict on a regular file, from the worker that compared it.
fn file_verdict(name: &[u8], hashed: Option<super::hasher::Hashed>) -> Option<&'static str> {
    match hashed {
        Some((_, Some(Compared::Same))) => None,
        Some((_, Some(Compared::Missing))) => Some("missing"),
        Some((_, Some(Compared::Unreadable(e)))) => unreadable(name, &e),
        _ => Some("changed"),
    }
}

/// The verdict on a symlink or hard link, from what the lookup found; `same` holds the
/// verdicts of the files seen so far (true: identical to the stream).
fn local_verdict(
    same: &HashMap<Vec<u8>, bool>,
    name: &[u8],
    entry: Entry,
    local: Receiver<Local>,
) -> Option<&'static str> {
    let local = local
        .recv()
        .unwrap_or(Local::Unreadable("lookup thread died".into()));
    match (entry, local) {
        (_, Local::Missing) => Some("missing"),
        (_, Local::Unreadable(e)) => unreadable(name, &e),
        (Entry::Symlink(want), Local::Symlink(have)) => (want != have).then_some("changed"),
        // A hard link holds its target's bytes: the same bytes as the target's local copy,
        // and that copy identical to the stream.
        (Entry::LinkTo(target), Local::Linked(true)) => {
            (same.get(&target) != Some(&true)).then_some("changed")
        }
        (_, _) => Some("changed"),
    }
}

#[derive(Default)]
struct Tally {
    files: u64,
    changed: u64,
    missing: u64,
    extra: u64,
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

pub fn check(input: impl Read, dir: &Path, threads: usize, strip: usize) -> anyhow::Result<Status> {
    let meta = fs::metadata(dir).with_context(|| format!("'{}'", dir.display()))?;
    if !meta.is_dir() {
        anyhow::bail!("'{}': Not a directory", dir.display());
    }
    // Regular files are compared by the workers, without hashing; symlinks and hard links
    // (rare) are looked up on one thread of their own.
    let hashers = Hashers::new(threads, false);
    let locals = LocalPool::new(1);
    // A chunk of entries, with the lookups of its links.
    type Looked = (Chunk, Vec<Option<Receiver<Local>>>);
    let (tx, rx) = mpsc::sync_channel::<Looked>(64);
    let checker = thread::spawn(move || -> anyhow::Result<(Tally, HashMap<Vec<u8>, bool>)> {
        let mut out = sol_common::stdio::text_output();
        let mut same = HashMap::new();
        let mut t = Tally::default();
        for (chunk, mut lookups) in rx {
            let lookups = lookups.drain(..);
            for ((name, entry), local) in chunk.resolve().zip(lookups) {
                let verdict = match (entry, local) {
                    (Entry::File(hashed), _) => file_verdict(&name, hashed),
                    (entry, Some(local)) => local_verdict(&same, &name, entry, local),
                    (_, None) => Some("changed"),
                };
                t.files += 1;
                match verdict {
                    Some("missing") => t.missing += 1,
                    Some(_) => t.changed += 1,
                    None => {}
                }
                if let Some(v) = verdict {
                    report(&mut out, v, &name).context("writing output")?;
                }
                same.insert(name, verdict.is_none());
            }
        }
        out.flush().context("writing output")?;
        Ok((t, same))
    });

    let scanned = scan(input, &hashers, strip, Some(dir), |chunk| {
        let lookups = chunk
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
            .collect();
        tx.send((chunk, lookups)).is_ok()
    });
    drop(tx);
    let (mut tally, seen) = checker
        .join()
        .map_err(|_| anyhow::anyhow!("the checker thread died"))??;
    scanned?;

    // Files under DIR that the stream does not have.
    let mut extra = Vec::new();
    find_extra(dir, &mut Vec::new(), &seen, &mut extra)?;
    extra.sort();
    let mut out = sol_common::stdio::text_output();
    for name in &extra {
        report(&mut out, "extra", name).context("writing output")?;
    }
    out.flush().context("writing output")?;
    tally.extra = extra.len() as u64;

    if tally.changed + tally.missing + tally.extra > 0 {
        Err(Fail::integrity(format!(
            "'{}' differs from the stream: {} changed, {} missing, {} extra ({} files in the stream)",
            dir.display(),
            tally.changed,
            tally.missing,
            tally.extra,
            tally.files
        )))?;
    }
    Ok(Status::Success)
}

fn find_extra(
    dir: &Path,
    rel: &mut Vec<u8>,
    seen: &HashMap<Vec<u8>, bool>,
    extra: &mut Vec<Vec<u8>>,
) -> anyhow::Result<()> {
    let path = dir.join(OsStr::from_bytes(rel));
    let rd = fs::read_dir(&path).with_context(|| format!("'{}'", path.display()))?;
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
            find_extra(dir, rel, seen, extra)?;
        } else if !seen.contains_key(rel.as_slice()) {
            extra.push(rel.clone());
        }
        rel.truncate(len);
    }
    Ok(())
}
