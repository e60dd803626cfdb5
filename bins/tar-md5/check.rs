//! `--check DIR`: compare the stream with a tree while reading it.

use std::collections::HashSet;
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

use super::hasher::{md5_file, Compared, Hashers, Md5Sum};
use super::sums::{scan, Pending, Resolver};

/// What is on disk at a stream entry's path.
enum Local {
    File(Md5Sum),
    Symlink(Vec<u8>),
    Other,
    Missing,
    Unreadable(String),
}

fn local_of(path: &Path, want_file: bool) -> Local {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Local::Missing,
        Err(e) => Local::Unreadable(e.to_string()),
        Ok(m) if m.file_type().is_symlink() => match fs::read_link(path) {
            Ok(t) => Local::Symlink(t.as_os_str().as_bytes().to_vec()),
            Err(e) => Local::Unreadable(e.to_string()),
        },
        Ok(m) if m.is_file() && want_file => match md5_file(path) {
            Ok(d) => Local::File(d),
            Err(e) => Local::Unreadable(e.to_string()),
        },
        Ok(_) => Local::Other,
    }
}

/// Hashes local files on their own threads, so disk and stream are read at once.
struct LocalPool(Sender<(PathBuf, bool, Sender<Local>)>);

impl LocalPool {
    fn new(threads: usize) -> LocalPool {
        let (tx, rx) = mpsc::channel::<(PathBuf, bool, Sender<Local>)>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..threads.max(1) {
            let rx = rx.clone();
            thread::spawn(move || loop {
                let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok((path, want_file, reply)) = job else {
                    return;
                };
                let _ = reply.send(local_of(&path, want_file));
            });
        }
        LocalPool(tx)
    }

    fn look(&self, path: PathBuf, want_file: bool) -> Receiver<Local> {
        let (tx, rx) = mpsc::channel();
        if self.0.send((path, want_file, tx.clone())).is_err() {
            let _ = tx.send(Local::Unreadable("hash threads died".into()));
        }
        rx
    }
}

/// The verdict on a symlink or hard link, from what the local pool found.
fn local_verdict(
    resolver: &mut Resolver,
    name: &[u8],
    pending: Pending,
    local: Receiver<Local>,
) -> Option<&'static str> {
    let local = local
        .recv()
        .unwrap_or(Local::Unreadable("hash threads died".into()));
    match (pending, local) {
        (_, Local::Missing) => Some("missing"),
        (_, Local::Unreadable(e)) => {
            sol_common::warn(
                super::TOOL,
                format!("{}: {e}", String::from_utf8_lossy(name)),
            );
            Some("changed")
        }
        (Pending::Symlink(want), Local::Symlink(have)) => (want != have).then_some("changed"),
        (Pending::Symlink(_), _) => Some("changed"),
        (pending, Local::File(have)) => match resolver.resolve(name, pending) {
            Some((want, _)) => (want != have).then_some("changed"),
            None => Some("changed"),
        },
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
    let hashers = Hashers::new(threads);
    let locals = LocalPool::new(1); // symlinks and hard links only: rare
                                    // Regular files are compared by the hashers; symlinks and hard links are looked up here.
    let (tx, rx) = mpsc::sync_channel::<(Vec<u8>, Pending, Option<Receiver<Local>>)>(4096);
    let checker = thread::spawn(move || -> anyhow::Result<(Tally, HashSet<Vec<u8>>)> {
        let mut out = sol_common::stdio::text_output();
        let mut resolver = Resolver::default();
        let mut seen = HashSet::new();
        let mut t = Tally::default();
        for (name, pending, local) in rx {
            let verdict = match local {
                None => match resolver.resolve(&name, pending) {
                    Some((_, Some(Compared::Same))) => None,
                    Some((_, Some(Compared::Missing))) => Some("missing"),
                    Some((_, Some(Compared::Unreadable(e)))) => {
                        sol_common::warn(
                            super::TOOL,
                            format!("{}: {e}", String::from_utf8_lossy(&name)),
                        );
                        Some("changed")
                    }
                    _ => Some("changed"),
                },
                Some(local) => local_verdict(&mut resolver, &name, pending, local),
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
            seen.insert(name);
        }
        out.flush().context("writing output")?;
        Ok((t, seen))
    });

    let scanned = scan(input, &hashers, strip, Some(dir), |name, pending| {
        let local = match pending {
            Pending::Digest(_) => None,
            Pending::LinkTo(_) => Some(locals.look(dir.join(OsStr::from_bytes(&name)), true)),
            Pending::Symlink(_) => Some(locals.look(dir.join(OsStr::from_bytes(&name)), false)),
        };
        tx.send((name, pending, local)).is_ok()
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
    seen: &HashSet<Vec<u8>>,
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
        } else if !seen.contains(rel.as_slice()) {
            extra.push(rel.clone());
        }
        rel.truncate(len);
    }
    Ok(())
}
