//! `sol-tar extract`: restore a tar stream under DEST, refusing anything that would land
//! outside it.
//!
//! Regular files are created afresh by us (unlinking what is in the way, never following
//! it); other entries go through the tar crate's `unpack` (which unlinks before writing).
//! Both only after our own checks: absolute names and `..` are refused, and so is any entry (or hard-link target)
//! whose parent path inside DEST is a symlink, so extraction never follows a symlink, not
//! even one an earlier entry created. Parents are checked once per directory, not per entry.
//! Files up to 1 MiB are written by writer threads (see `writers`), larger ones by the
//! reader in 1 MiB writes. Directory modes and
//! mtimes are applied last, deepest first, so read-only directories and contents written
//! later do not get in the way.
//!
//! With PATH operands only the members they name are written (see [`Selection`]); the others
//! go through the same checks. With --keep-old-files what is in DEST stays: a non-directory
//! in an entry's place is reported and kept, an existing directory keeps its mode and mtime.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use filetime::FileTime;
use sol_common::stdio::{read_full, BLOCK};
use sol_common::{Fail, Status};
use tar::EntryType;

use super::warn;
use super::writers::{self, replacing, Fatal, FileJob, Writers, SMALL};
use sol_common::io_msg;
use sol_formats::index::trim_slash as trimmed;
use sol_formats::tar::{self as stream, corrupt};

/// Threads writing small files: on 2 cores, 24k files took 0.78 s with one, 0.58 s with
/// two and 0.57 s with three (tmpfs).
const WRITERS: usize = 2;

/// What `extract` does besides extracting everything.
#[derive(Default)]
pub struct Options {
    /// Extract only these members and what is under them (all when empty).
    pub paths: Vec<PathBuf>,
    /// Leave what is in DEST as it is.
    pub keep_old_files: bool,
}

/// The members `extract PATH...` selects: those named PATH, and those under one (PATH/...).
pub struct Selection {
    /// Each PATH (trimmed), and whether a member matched it.
    wanted: HashMap<Vec<u8>, bool>,
    /// The operands as given, with their trimmed form, for the report.
    operands: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Selection {
    /// None when there are no PATHs: every member is extracted.
    pub fn new(paths: &[PathBuf]) -> Option<Selection> {
        if paths.is_empty() {
            return None;
        }
        let operands: Vec<(Vec<u8>, Vec<u8>)> = paths
            .iter()
            .map(|p| {
                let given = p.as_os_str().as_bytes();
                (given.to_vec(), trimmed(given).to_vec())
            })
            .collect();
        let wanted = operands.iter().map(|(_, t)| (t.clone(), false)).collect();
        Some(Selection { wanted, operands })
    }

    /// Whether `name` is selected; the PATHs that select it are marked found. A name is looked
    /// up once whole and once per '/' in it (each directory above it), whatever the number of
    /// PATHs.
    pub fn select(&mut self, name: &[u8]) -> bool {
        let name = trimmed(name);
        let mut hit = false;
        for end in (0..name.len())
            .filter(|&i| name[i] == b'/')
            .chain([name.len()])
        {
            if let Some(found) = self.wanted.get_mut(&name[..end]) {
                *found = true;
                hit = true;
            }
        }
        hit
    }

    /// Whether `name` is selected, marking nothing.
    pub fn selects(&self, name: &[u8]) -> bool {
        let name = trimmed(name);
        (0..name.len())
            .filter(|&i| name[i] == b'/')
            .chain([name.len()])
            .any(|end| self.wanted.contains_key(&name[..end]))
    }

    /// The PATHs, as given, that selected no member.
    pub fn missing(&self) -> impl Iterator<Item = &[u8]> {
        self.operands
            .iter()
            .filter(|(_, t)| !self.wanted[t])
            .map(|(given, _)| &given[..])
    }
}

/// A name inside DEST, or why not.
fn safe_relative(name: &[u8]) -> Result<PathBuf, String> {
    if name.starts_with(b"/") {
        return Err("absolute name".into());
    }
    let mut rel = PathBuf::new();
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("name contains '..'".into()),
            p => rel.push(std::ffi::OsStr::from_bytes(p)),
        }
    }
    Ok(rel)
}

/// Why an entry's parents are not usable.
enum ParentError {
    /// A parent inside DEST is a symlink: refuse the entry.
    Symlink(PathBuf),
    /// A parent could not be created.
    Io(io::Error),
}

/// The directories under DEST already known to be real directories (relative to DEST).
///
/// Checking every parent of every entry with lstat costs more than writing the files; a
/// directory is checked (or created) once, and an entry whose parent is known needs no system
/// call at all. Only this process writes under DEST during extraction, and a known directory
/// is never replaced by anything else (unpacking over a directory fails), so the set stays true.
struct Parents<'a> {
    dest: &'a Path,
    known: HashSet<PathBuf>,
    /// With --keep-old-files: the directories this extraction made (the others were there
    /// before, and keep their mode and mtime).
    created: Option<HashSet<PathBuf>>,
}

impl Parents<'_> {
    /// Refuse `rel` if an existing parent inside DEST is a symlink; with `create`, make the
    /// missing parents.
    fn check(&mut self, rel: &Path, create: bool) -> Result<(), ParentError> {
        let parent = match rel.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => return Ok(()),
        };
        if self.known.contains(parent) {
            return Ok(());
        }
        let mut at = PathBuf::new();
        for part in parent.components() {
            at.push(part);
            if self.known.contains(&at) {
                continue;
            }
            let full = self.dest.join(&at);
            match fs::symlink_metadata(&full) {
                Ok(m) if m.file_type().is_symlink() => return Err(ParentError::Symlink(full)),
                Ok(m) if m.is_dir() => {}
                Ok(_) if !create => return Ok(()), // nothing deeper can exist
                Ok(_) => {
                    let e = io::Error::new(io::ErrorKind::AlreadyExists, "File exists");
                    return Err(ParentError::Io(e));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !create {
                        return Ok(());
                    }
                    match fs::create_dir(&full) {
                        Ok(()) => {
                            if let Some(created) = &mut self.created {
                                created.insert(at.clone());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            continue; // checked again on the next entry under it
                        }
                        Err(e) => return Err(ParentError::Io(e)),
                    }
                }
                Err(e) => return Err(ParentError::Io(e)),
            }
            self.known.insert(at.clone());
        }
        Ok(())
    }

    /// Something other than a directory now lives at `rel`.
    fn replaced(&mut self, rel: &Path) {
        if self.known.remove(rel) {
            self.known.clear();
        }
    }
}

/// An error on one entry: the end of the extraction when it dooms the rest (one line,
/// status 1), else a warning and the next entry.
fn entry_error(shown: &str, what: &str, e: &io::Error, dest: &Path) -> anyhow::Result<()> {
    if writers::dooms(e, dest) {
        anyhow::bail!(writers::stopped(shown, e));
    }
    if what.is_empty() {
        warn(format!("{shown}: {}", io_msg(e)));
    } else {
        warn(format!("{shown}: {what}: {}", io_msg(e)));
    }
    Ok(())
}

/// The input ran dry inside an entry's data.
fn truncated_in(shown: &str) -> anyhow::Error {
    Fail::integrity(format!(
        "truncated archive: the stream ended inside '{shown}'"
    ))
    .into()
}

struct Dir {
    path: PathBuf,
    mode: u32,
    mtime: u64,
    owner: Option<(u64, u64)>,
}

/// The line for an entry --keep-old-files did not write.
fn kept(shown: &str) {
    warn(format!("{shown}: exists, not replaced (--keep-old-files)"));
}

pub fn extract(input: impl Read, dest: &Path, opts: &Options) -> anyhow::Result<Status> {
    let keep_old = opts.keep_old_files;
    let mut selection = Selection::new(&opts.paths);
    fs::create_dir_all(dest).with_context(|| format!("'{}'", dest.display()))?;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    writers::remove_partial_files_on_signal();
    let (mut archive, mut check) = stream::open(input)?;
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    archive.set_preserve_ownerships(root);
    archive.set_unpack_xattrs(false);

    let mut dirs: Vec<Dir> = Vec::new();
    let mut big: Option<Vec<u8>> = None;
    let mut writers = Writers::new(WRITERS, dest, Fatal::default());
    let mut parents = Parents {
        dest,
        known: HashSet::new(),
        created: keep_old.then(HashSet::new),
    };
    let (mut refused, mut failed) = (0u64, false);
    // With --keep-old-files: the files kept as they were, so no hard link joins one.
    let mut kept_files: HashSet<PathBuf> = HashSet::new();
    let mut entries = archive.entries().map_err(corrupt)?;
    while let Some(mut entry) = check.next(&mut entries)? {
        if let Some(msg) = writers.fatal() {
            anyhow::bail!(msg);
        }
        let name = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&name).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        if let Some(sel) = &mut selection {
            if !sel.select(&name) {
                continue; // read and checked, not written
            }
        }
        let refuse = |why: String, refused: &mut u64| {
            warn(format!("{shown}: refusing to extract: {why}"));
            *refused += 1;
        };
        let rel = match safe_relative(&name) {
            Ok(r) => r,
            Err(why) => {
                refuse(why, &mut refused);
                continue;
            }
        };
        if rel.as_os_str().is_empty() {
            continue; // "./" itself
        }
        let through =
            |link: PathBuf| format!("it would pass through the symlink '{}'", link.display());
        let mut link_target = None;
        if kind == EntryType::Link {
            let target = entry
                .link_name_bytes()
                .map(|t| t.into_owned())
                .unwrap_or_default();
            let checked = safe_relative(&target)
                .map_err(|why| format!("hard link target: {why}"))
                .and_then(|t| match parents.check(&t, false) {
                    Err(ParentError::Symlink(l)) => {
                        Err(format!("hard link target: {}", through(l)))
                    }
                    _ => Ok(t),
                });
            match checked {
                Ok(t) => link_target = Some(t),
                Err(why) => {
                    refuse(why, &mut refused);
                    continue;
                }
            }
            if selection.as_ref().is_some_and(|sel| !sel.selects(&target)) {
                // Its data is stored with the target, which is not being extracted.
                warn(format!(
                    "{shown}: not extracted: it is a hard link to '{}', which is not \
                     selected; name that too",
                    String::from_utf8_lossy(&target)
                ));
                failed = true;
                continue;
            }
        }
        let special = matches!(kind, EntryType::Char | EntryType::Block | EntryType::Fifo);
        match parents.check(&rel, !special) {
            Ok(()) => {}
            Err(ParentError::Symlink(link)) => {
                refuse(through(link), &mut refused);
                continue;
            }
            Err(ParentError::Io(e)) => {
                failed = true;
                entry_error(&shown, "cannot create its directory", &e, dest)?;
                continue;
            }
        }
        if special {
            warn(format!("{shown}: special file not extracted"));
            continue;
        }
        let path = dest.join(&rel);
        writers.settle(&path);
        if let Some(target) = &link_target {
            writers.settle(&dest.join(target));
        }
        if kind.is_dir() {
            // With --keep-old-files, a directory that was there before keeps its mode and mtime.
            let mut existed = false;
            if !parents.known.contains(&rel) {
                if keep_old {
                    match fs::symlink_metadata(&path) {
                        Ok(m) if m.is_dir() => existed = true,
                        Ok(_) => {
                            kept(&shown);
                            failed = true;
                            continue;
                        }
                        Err(_) => {}
                    }
                }
                if !existed {
                    if let Err(e) = make_dir(&path) {
                        failed = true;
                        entry_error(&shown, "cannot create directory", &e, dest)?;
                        continue;
                    }
                    if let Some(created) = &mut parents.created {
                        created.insert(rel.clone());
                    }
                }
                parents.known.insert(rel);
            } else if let Some(created) = &parents.created {
                existed = !created.contains(&rel);
            }
            if existed {
                continue;
            }
            let h = entry.header();
            let owner = root.then(|| (h.uid().unwrap_or(0), h.gid().unwrap_or(0)));
            dirs.push(Dir {
                path,
                mode: h.mode().unwrap_or(0o755),
                mtime: h.mtime().unwrap_or(0),
                owner,
            });
            continue;
        }
        if keep_old && !parents.known.contains(&rel) {
            if let Ok(m) = fs::symlink_metadata(&path) {
                if !m.is_dir() {
                    kept(&shown);
                    failed = true;
                    kept_files.insert(rel);
                    continue;
                }
            }
        }
        if let Some(target) = link_target.as_ref().filter(|t| kept_files.contains(*t)) {
            // Linked to the file that was kept, it would hold that file's data, not its own.
            warn(format!(
                "{shown}: not extracted: it is a hard link to '{}', which exists and was \
                 not replaced (--keep-old-files)",
                target.display()
            ));
            failed = true;
            continue;
        }
        parents.replaced(&rel);
        let size = entry.size();
        let regular = matches!(kind, EntryType::Regular | EntryType::Continuous);
        let h = entry.header();
        let (mode, mtime) = (h.mode().unwrap_or(0o644), h.mtime().unwrap_or(0));
        let owner = root.then(|| (h.uid().unwrap_or(0), h.gid().unwrap_or(0)));
        let short = |got: io::Result<usize>| match got {
            _ if check.input_ended() => truncated_in(&shown),
            Ok(_) => corrupt(io::Error::other("short entry data")),
            Err(e) => corrupt(e),
        };
        if regular && size > SMALL {
            // Written here in BLOCK-sized writes (the tar crate's unpack writes 8 KiB at a time).
            let block = big.get_or_insert_with(|| vec![0u8; BLOCK]);
            // A file not completely written is removed: no half file keeps a real name.
            let _writing = writers::Writing::new(&path);
            let mut out = match writers::create(&path) {
                Ok(f) => Some(f),
                Err(e) => {
                    failed = true;
                    entry_error(&shown, "", &e, dest)?;
                    None
                }
            };
            let mut left = size;
            while left > 0 {
                let want = left.min(BLOCK as u64) as usize;
                match read_full(&mut entry, &mut block[..want]) {
                    Ok(n) if n == want => {}
                    got => {
                        if out.take().is_some() {
                            let _ = fs::remove_file(&path);
                        }
                        return Err(short(got));
                    }
                }
                if let Some(f) = &mut out {
                    if let Err(e) = f.write_all(&block[..want]) {
                        out = None;
                        let _ = fs::remove_file(&path);
                        failed = true;
                        entry_error(&shown, "", &e, dest)?;
                    }
                }
                left -= want as u64;
            }
            if let Some(f) = out {
                if let Err(e) = writers::set_meta(&f, owner, mode, mtime) {
                    failed = true;
                    entry_error(&shown, "", &e, dest)?;
                }
            }
            continue;
        }
        if regular {
            let mut data = Vec::with_capacity(size as usize);
            match (&mut entry).take(size).read_to_end(&mut data) {
                Ok(n) if n as u64 == size => {}
                got => return Err(short(got)),
            }
            writers.write(FileJob {
                path,
                shown,
                data,
                mode,
                mtime,
                owner,
            });
            continue;
        }
        let mtime = entry.header().mtime().unwrap_or(1);
        let unpacked = match &link_target {
            // The tar crate would resolve a hard link's target against the working directory.
            Some(target) => {
                let target = dest.join(target);
                replacing(&path, || fs::hard_link(&target, &path))
            }
            None => entry.unpack(&path).map(drop),
        };
        match unpacked {
            Ok(()) if mtime == 0 && link_target.is_none() => {
                // The tar crate turns mtime 0 into 1; restore it exactly.
                let zero = FileTime::from_unix_time(0, 0);
                if let Err(e) = filetime::set_symlink_file_times(&path, zero, zero) {
                    failed = true;
                    entry_error(&shown, "cannot set time", &e, dest)?;
                }
            }
            Ok(()) => {}
            Err(e) => {
                if kind == EntryType::GNUSparse {
                    let _ = fs::remove_file(&path); // the tar crate wrote part of it
                }
                if check.input_ended() {
                    return Err(truncated_in(&shown));
                }
                failed = true;
                entry_error(&shown, "", &e, dest)?;
            }
        }
    }
    check.finish(archive.into_inner().count)?;
    // Files first, then the directories' own modes and times.
    let fatal = writers.fatal.clone();
    if !writers.finish() {
        failed = true;
    }
    if let Some(msg) = fatal.get() {
        anyhow::bail!(msg);
    }

    for d in dirs.iter().rev() {
        let applied = (|| -> io::Result<()> {
            if let Some((uid, gid)) = d.owner {
                std::os::unix::fs::lchown(&d.path, Some(uid as u32), Some(gid as u32))?;
            }
            fs::set_permissions(
                &d.path,
                std::os::unix::fs::PermissionsExt::from_mode(d.mode & 0o7777),
            )?;
            let t = FileTime::from_unix_time(d.mtime as i64, 0);
            filetime::set_file_times(&d.path, t, t)
        })();
        if let Err(e) = applied {
            failed = true;
            let shown = d.path.display().to_string();
            entry_error(&shown, "cannot set mode/time", &e, dest)?;
        }
    }
    if let Some(sel) = &selection {
        for path in sel.missing() {
            warn(format!(
                "{}: not found in the archive",
                String::from_utf8_lossy(path)
            ));
            failed = true;
        }
    }
    if refused > 0 {
        Err(Fail::integrity(format!(
            "refused {refused} entries that would land outside the destination"
        )))?;
    }
    Ok(if failed {
        Status::Failure
    } else {
        Status::Success
    })
}

/// Create a directory (and missing parents); replace a non-directory in the way.
fn make_dir(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => {
            fs::remove_file(path)?;
            fs::create_dir(path)
        }
        Err(_) => fs::create_dir_all(path),
    }
}
