//! `sol-tar extract`: restore a tar stream under DEST, refusing anything that would land
//! outside it.
//!
//! [`extract`] reads the stream and hands each entry to an [`Extraction`], which first
//! decides what the entry is and where it goes (a [`Kind`] at a [`Place`]), then makes way
//! for it, then writes it by the step for its kind; at the end it waits for the files and
//! applies the directories' modes and times.
//!
//! Regular files and hard links are created afresh by us (unlinking what is in the way, never
//! following it); other entries go through the tar crate's `unpack` (which unlinks before writing).
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
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use filetime::FileTime;
use sol_common::stdio::{read_full, BLOCK};
use sol_common::{Fail, Status};
use tar::{Entry, EntryType, Header};

use super::warn;
use super::writers::{self, replacing, Fatal, FileJob, Writers, SMALL};
use sol_common::io_msg;
use sol_formats::index::trim_slash as trimmed;
use sol_formats::sparse::{self, Sparse};
use sol_formats::tar::{self as stream, corrupt, Checker};

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

/// Restore the tar stream `input` under `dest`: every entry goes through
/// [`Extraction::entry`], then [`Extraction::finish`] completes the files and directories.
pub fn extract(input: impl Read, dest: &Path, opts: &Options) -> anyhow::Result<Status> {
    fs::create_dir_all(dest).with_context(|| format!("'{}'", dest.display()))?;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    writers::remove_partial_files_on_signal();
    let (mut archive, check) = stream::open(input)?;
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    archive.set_preserve_ownerships(root);
    archive.set_unpack_xattrs(false);

    let mut x = Extraction::new(dest, opts, root, check);
    let mut entries = archive.entries().map_err(corrupt)?;
    while let Some(entry) = x.check.next(&mut entries)? {
        x.entry(entry)?;
    }
    x.check.finish(archive.into_inner().count)?;
    x.finish()
}

/// What an entry is, as far as extracting it goes; each kind has its own step in
/// [`Extraction`].
enum Kind {
    /// A regular file up to [`SMALL`] bytes: read whole, written by a writer thread.
    SmallFile,
    /// A larger regular file: written by the reader as it reads it.
    LargeFile,
    /// A sparse member (pax 1.0, 0.1, 0.0): written by the reader, its holes left as holes.
    Sparse(Box<Sparse>),
    /// A directory: made at once, its mode and mtime applied at the end.
    Directory,
    /// A symbolic link: made whatever it points to, never followed.
    Symlink,
    /// A hard link to an earlier member: that member's name inside DEST (checked).
    HardLink(PathBuf),
    /// A character or block device or a FIFO: not extracted.
    Special,
    /// Any other type (a GNU sparse file, say): left to the tar crate's `unpack`.
    Other,
}

/// What to do with one entry, as [`Extraction::decide`] found: write it as `kind` at `path`.
struct Place {
    /// The member's name, for messages.
    shown: String,
    /// Its name inside DEST: not absolute, no `..`, not empty.
    rel: PathBuf,
    /// DEST joined with `rel`.
    path: PathBuf,
    kind: Kind,
}

/// A regular file's size, and what is set on it once written.
struct FileMeta {
    size: u64,
    mode: u32,
    mtime: u64,
    owner: Option<(u64, u64)>,
}

/// A directory whose owner, mode and mtime are applied at the end.
struct Dir {
    path: PathBuf,
    mode: u32,
    mtime: u64,
    owner: Option<(u64, u64)>,
}

/// One extraction under way: the state its steps share.
struct Extraction<'a> {
    dest: &'a Path,
    /// --keep-old-files.
    keep_old: bool,
    /// Owners are restored (only root can).
    root: bool,
    /// With PATH operands: the members they select.
    selection: Option<Selection>,
    /// Checks each entry's headers, and tells when the input ran dry.
    check: Checker,
    parents: Parents<'a>,
    writers: Writers,
    /// The directories to finish at the end, in archive order.
    dirs: Vec<Dir>,
    /// With --keep-old-files: the files kept as they were, so no hard link joins one.
    kept_files: HashSet<PathBuf>,
    /// The reader's buffer for large files (BLOCK bytes once one came).
    block: Vec<u8>,
    /// Entries refused for landing outside DEST.
    refused: u64,
    /// Something was reported: the status is a failure.
    failed: bool,
}

impl<'a> Extraction<'a> {
    /// Nothing extracted yet; the writer threads are started.
    fn new(dest: &'a Path, opts: &Options, root: bool, check: Checker) -> Extraction<'a> {
        let keep_old = opts.keep_old_files;
        Extraction {
            dest,
            keep_old,
            root,
            selection: Selection::new(&opts.paths),
            check,
            parents: Parents {
                dest,
                known: HashSet::new(),
                created: keep_old.then(HashSet::new),
            },
            writers: Writers::new(WRITERS, dest, Fatal::default()),
            dirs: Vec::new(),
            kept_files: HashSet::new(),
            block: Vec::new(),
            refused: 0,
            failed: false,
        }
    }

    /// Extract one entry: decide what it is and where it goes, make way for it, then write
    /// it by the step for its kind. Err ends the extraction.
    fn entry<R: Read>(&mut self, mut entry: Entry<'_, R>) -> anyhow::Result<()> {
        if let Some(msg) = self.writers.fatal() {
            anyhow::bail!(msg); // a writer thread met an error that dooms the rest
        }
        let sparse = self.check.sparse(&mut entry)?;
        let Some(place) = self.decide(&entry, sparse) else {
            return Ok(()); // skipped, refused or reported
        };
        if !self.make_way(&place)? {
            return Ok(()); // refused, reported, or kept (--keep-old-files)
        }
        match place.kind {
            Kind::SmallFile => self.small_file(&mut entry, place),
            Kind::LargeFile => self.large_file(&mut entry, &place),
            Kind::Sparse(ref sparse) => self.sparse_file(&mut entry, &place, sparse),
            Kind::Directory => self.directory(entry.header(), place),
            Kind::Symlink => self.symlink(&mut entry, &place),
            Kind::HardLink(ref target) => self.hard_link(&place, target),
            Kind::Special => self.special(&place),
            Kind::Other => self.other(&mut entry, &place),
        }
    }

    // Deciding: what an entry is and where it goes.

    /// What `entry` is and where it goes; None when it is not written: a global pax header,
    /// a member not selected, "./" itself, or an entry refused or reported here. A sparse
    /// member goes by its real name.
    fn decide<R: Read>(&mut self, entry: &Entry<'_, R>, sparse: Option<Sparse>) -> Option<Place> {
        if entry.header().entry_type().is_pax_global_extensions() {
            return None;
        }
        let name = sparse::real_name(entry, sparse.as_ref());
        let shown = String::from_utf8_lossy(&name).into_owned();
        if let Some(sel) = &mut self.selection {
            if !sel.select(&name) {
                return None; // read and checked, not written
            }
        }
        let rel = match safe_relative(&name) {
            Ok(rel) if rel.as_os_str().is_empty() => return None, // "./" itself
            Ok(rel) => rel,
            Err(why) => {
                self.refuse(&shown, why);
                return None;
            }
        };
        let kind = match sparse {
            Some(sparse) => Kind::Sparse(Box::new(sparse)),
            None => self.kind_of(entry, &shown)?,
        };
        let path = self.dest.join(&rel);
        Some(Place {
            shown,
            rel,
            path,
            kind,
        })
    }

    /// The kind of `entry`; None for a hard link refused or not extracted (reported).
    fn kind_of<R: Read>(&mut self, entry: &Entry<'_, R>, shown: &str) -> Option<Kind> {
        let kind = match entry.header().entry_type() {
            EntryType::Link => Kind::HardLink(self.link_target(entry, shown)?),
            EntryType::Char | EntryType::Block | EntryType::Fifo => Kind::Special,
            EntryType::Directory => Kind::Directory,
            EntryType::Regular | EntryType::Continuous if entry.size() > SMALL => Kind::LargeFile,
            EntryType::Regular | EntryType::Continuous => Kind::SmallFile,
            EntryType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        };
        Some(kind)
    }

    /// A hard link's target inside DEST; None when the link is refused (the target would
    /// land outside DEST or pass through a symlink) or not extracted (the target is not
    /// selected), reported either way.
    fn link_target<R: Read>(&mut self, entry: &Entry<'_, R>, shown: &str) -> Option<PathBuf> {
        let target = entry
            .link_name_bytes()
            .map(|t| t.into_owned())
            .unwrap_or_default();
        let checked = safe_relative(&target)
            .map_err(|why| format!("hard link target: {why}"))
            .and_then(|t| match self.parents.check(&t, false) {
                Err(ParentError::Symlink(l)) => Err(format!("hard link target: {}", through(&l))),
                _ => Ok(t),
            });
        let checked = match checked {
            Ok(t) => t,
            Err(why) => {
                self.refuse(shown, why);
                return None;
            }
        };
        if self
            .selection
            .as_ref()
            .is_some_and(|sel| !sel.selects(&target))
        {
            // Its data is stored with the target, which is not being extracted.
            warn(format!(
                "{shown}: not extracted: it is a hard link to '{}', which is not \
                 selected; name that too",
                String::from_utf8_lossy(&target)
            ));
            self.failed = true;
            return None;
        }
        Some(checked)
    }

    // Making way: parents, writers, and what is already in DEST.

    /// Make way for the entry: its parents checked (and made, unless it is a special file),
    /// the writers done with its path, and for a non-directory, the place taken. False when
    /// it is not written (refused or reported).
    fn make_way(&mut self, place: &Place) -> anyhow::Result<bool> {
        if !self.parents_ready(place)? {
            return Ok(false);
        }
        match place.kind {
            Kind::Special => Ok(true), // nothing is made: nothing to wait for
            Kind::Directory => {
                self.settle(place);
                Ok(true)
            }
            _ => {
                self.settle(place);
                Ok(self.take_place(place))
            }
        }
    }

    /// Check the entry's parents inside DEST, making the missing ones (except for a special
    /// file); false when refused (a parent is a symlink) or reported.
    fn parents_ready(&mut self, place: &Place) -> anyhow::Result<bool> {
        let create = !matches!(place.kind, Kind::Special);
        match self.parents.check(&place.rel, create) {
            Ok(()) => Ok(true),
            Err(ParentError::Symlink(link)) => {
                self.refuse(&place.shown, through(&link));
                Ok(false)
            }
            Err(ParentError::Io(e)) => {
                self.fail(&place.shown, "cannot create its directory", &e)?;
                Ok(false)
            }
        }
    }

    /// Wait for the writer threads when a file they hold is at the entry's path or is its
    /// hard-link target: hard links only after their targets, one name written at a time.
    fn settle(&mut self, place: &Place) {
        self.writers.settle(&place.path);
        if let Kind::HardLink(target) = &place.kind {
            self.writers.settle(&self.dest.join(target));
        }
    }

    /// Whether a non-directory may take its place in DEST. With --keep-old-files a
    /// non-directory there stays (reported), and no hard link to a file so kept is made.
    fn take_place(&mut self, place: &Place) -> bool {
        if self.keep_old && !self.parents.known.contains(&place.rel) {
            if let Ok(m) = fs::symlink_metadata(&place.path) {
                if !m.is_dir() {
                    self.keep(&place.shown);
                    self.kept_files.insert(place.rel.clone());
                    return false;
                }
            }
        }
        if let Kind::HardLink(target) = &place.kind {
            if self.kept_files.contains(target) {
                // Linked to the file that was kept, it would hold that file's data, not its own.
                warn(format!(
                    "{}: not extracted: it is a hard link to '{}', which exists and was \
                     not replaced (--keep-old-files)",
                    place.shown,
                    target.display()
                ));
                self.failed = true;
                return false;
            }
        }
        self.parents.replaced(&place.rel);
        true
    }

    // Writing: one step per kind.

    /// A regular file up to SMALL bytes: read whole here, written by a writer thread.
    fn small_file<R: Read>(
        &mut self,
        entry: &mut Entry<'_, R>,
        place: Place,
    ) -> anyhow::Result<()> {
        let meta = self.file_meta(entry);
        let job = FileJob {
            path: place.path,
            shown: place.shown,
            mode: meta.mode,
            mtime: meta.mtime,
            owner: meta.owner,
        };
        let size = meta.size as usize;
        match self.writers.write(job, size, |data| read_full(entry, data)) {
            Ok(()) => Ok(()),
            Err((job, got)) => Err(self.short(&job.shown, got)),
        }
    }

    /// A regular file over SMALL bytes: created here and written as it is read. A file not
    /// completely written is removed: no half file keeps a real name.
    fn large_file<R: Read>(
        &mut self,
        entry: &mut Entry<'_, R>,
        place: &Place,
    ) -> anyhow::Result<()> {
        let meta = self.file_meta(entry);
        let _writing = writers::Writing::new(&place.path);
        let mut out = self.create(place, meta.mode)?;
        self.copy_data(entry, place, meta.size, &mut out)?;
        if let Some(f) = out {
            if let Err(e) = writers::set_meta(&f, meta.owner, meta.mode, meta.mtime) {
                self.fail(&place.shown, "", &e)?;
            }
        }
        Ok(())
    }

    /// The file at `place`, created for writing with `mode`; None when it cannot be
    /// (reported).
    fn create(&mut self, place: &Place, mode: u32) -> anyhow::Result<Option<fs::File>> {
        match writers::create(&place.path, mode) {
            Ok(f) => Ok(Some(f)),
            Err(e) => {
                self.fail(&place.shown, "", &e)?;
                Ok(None)
            }
        }
    }

    /// A sparse member: created here, each region's bytes written at its offset and the
    /// holes left as holes (the length set at the end). A file not completely written is
    /// removed.
    fn sparse_file<R: Read>(
        &mut self,
        entry: &mut Entry<'_, R>,
        place: &Place,
        sparse: &Sparse,
    ) -> anyhow::Result<()> {
        let meta = self.file_meta(entry);
        let _writing = writers::Writing::new(&place.path);
        let mut out = self.create(place, meta.mode)?;
        for region in &sparse.regions {
            if let Some(f) = &mut out {
                if let Err(e) = f.seek(SeekFrom::Start(region.offset)) {
                    out = None;
                    let _ = fs::remove_file(&place.path);
                    self.fail(&place.shown, "", &e)?;
                }
            }
            self.copy_data(entry, place, region.len, &mut out)?;
        }
        let Some(f) = out else { return Ok(()) };
        if let Err(e) = f.set_len(sparse.real_size) {
            let _ = fs::remove_file(&place.path); // short of its holes at the end
            return self.fail(&place.shown, "", &e);
        }
        if let Err(e) = writers::set_meta(&f, meta.owner, meta.mode, meta.mtime) {
            self.fail(&place.shown, "", &e)?;
        }
        Ok(())
    }

    /// Read a large file's `size` bytes of data and write them to `out` in BLOCK-sized
    /// writes (the tar crate's unpack writes 8 KiB at a time). After a failed write the
    /// file is removed, `out` emptied, and the data read on to its end.
    fn copy_data(
        &mut self,
        entry: &mut impl Read,
        place: &Place,
        size: u64,
        out: &mut Option<fs::File>,
    ) -> anyhow::Result<()> {
        if self.block.is_empty() {
            self.block = vec![0u8; BLOCK];
        }
        let mut block = std::mem::take(&mut self.block);
        let mut left = size;
        while left > 0 {
            let want = left.min(BLOCK as u64) as usize;
            match read_full(entry, &mut block[..want]) {
                Ok(n) if n == want => {}
                got => {
                    if out.take().is_some() {
                        let _ = fs::remove_file(&place.path);
                    }
                    return Err(self.short(&place.shown, got));
                }
            }
            if let Some(f) = out {
                if let Err(e) = f.write_all(&block[..want]) {
                    *out = None;
                    let _ = fs::remove_file(&place.path);
                    self.fail(&place.shown, "", &e)?;
                }
            }
            left -= want as u64;
        }
        self.block = block;
        Ok(())
    }

    /// A directory: made unless it is there. Its mode and mtime are applied at the end,
    /// except with --keep-old-files to one that was there before (it keeps its own).
    fn directory(&mut self, header: &Header, place: Place) -> anyhow::Result<()> {
        let existed = if self.parents.known.contains(&place.rel) {
            self.parents.was_there(&place.rel)
        } else {
            match self.make_directory(&place)? {
                Some(existed) => existed,
                None => return Ok(()), // reported
            }
        };
        if !existed {
            self.dirs.push(Dir {
                path: place.path,
                mode: header.mode().unwrap_or(0o755),
                mtime: header.mtime().unwrap_or(0),
                owner: self.owner(header),
            });
        }
        Ok(())
    }

    /// Make the directory at `place`, or find it there with --keep-old-files. Some(whether it
    /// was there), None when it cannot be made or a non-directory is kept there (reported).
    fn make_directory(&mut self, place: &Place) -> anyhow::Result<Option<bool>> {
        let mut existed = false;
        if self.keep_old {
            match fs::symlink_metadata(&place.path) {
                Ok(m) if m.is_dir() => existed = true,
                Ok(_) => {
                    self.keep(&place.shown);
                    return Ok(None);
                }
                Err(_) => {}
            }
        }
        if !existed {
            if let Err(e) = make_dir(&place.path) {
                self.fail(&place.shown, "cannot create directory", &e)?;
                return Ok(None);
            }
            if let Some(created) = &mut self.parents.created {
                created.insert(place.rel.clone());
            }
        }
        self.parents.known.insert(place.rel.clone());
        Ok(Some(existed))
    }

    /// A symlink: made by the tar crate's unpack, which replaces what is in the way without
    /// following it.
    fn symlink<R: Read>(&mut self, entry: &mut Entry<'_, R>, place: &Place) -> anyhow::Result<()> {
        let mtime = entry.header().mtime().unwrap_or(1);
        match entry.unpack(&place.path) {
            Ok(_) => self.keep_zero_mtime(place, mtime),
            Err(e) => self.not_made(&place.shown, &e),
        }
    }

    /// A hard link, made here: the tar crate would resolve its target against the working
    /// directory, not DEST. The target is on disk already (see `settle`).
    fn hard_link(&mut self, place: &Place, target: &Path) -> anyhow::Result<()> {
        let target = self.dest.join(target);
        match replacing(&place.path, || fs::hard_link(&target, &place.path)) {
            Ok(()) => Ok(()),
            Err(e) => self.not_made(&place.shown, &e),
        }
    }

    /// A device or FIFO: reported and skipped (the status stays a success).
    fn special(&self, place: &Place) -> anyhow::Result<()> {
        warn(format!("{}: special file not extracted", place.shown));
        Ok(())
    }

    /// Any other entry (a GNU sparse file, say): made by the tar crate's unpack. A sparse
    /// file it could not finish is removed.
    fn other<R: Read>(&mut self, entry: &mut Entry<'_, R>, place: &Place) -> anyhow::Result<()> {
        let mtime = entry.header().mtime().unwrap_or(1);
        // A signal while the crate writes it removes it too (found by an attack).
        let sparse = entry.header().entry_type() == EntryType::GNUSparse;
        let _writing = sparse.then(|| writers::Writing::new(&place.path));
        match entry.unpack(&place.path) {
            Ok(_) => self.keep_zero_mtime(place, mtime),
            Err(e) => {
                if sparse {
                    let _ = fs::remove_file(&place.path); // the tar crate wrote part of it
                }
                self.not_made(&place.shown, &e)
            }
        }
    }

    /// The tar crate turns an mtime of 0 into 1: set 0 back on what it made.
    fn keep_zero_mtime(&mut self, place: &Place, mtime: u64) -> anyhow::Result<()> {
        if mtime == 0 {
            let zero = FileTime::from_unix_time(0, 0);
            if let Err(e) = filetime::set_symlink_file_times(&place.path, zero, zero) {
                self.fail(&place.shown, "cannot set time", &e)?;
            }
        }
        Ok(())
    }

    // Finishing.

    /// After the last entry: wait for the files, then apply the directories' modes and times;
    /// report the PATHs that selected nothing and the entries refused; the status.
    fn finish(mut self) -> anyhow::Result<Status> {
        // Files first, then the directories' own modes and times.
        let fatal = self.writers.fatal.clone();
        if !self.writers.finish() {
            self.failed = true;
        }
        if let Some(msg) = fatal.get() {
            anyhow::bail!(msg);
        }
        self.failed |= set_dir_times(&self.dirs, self.dest)?;
        if let Some(sel) = &self.selection {
            self.failed |= sel.report_missing();
        }
        let refused = self.refused;
        if refused > 0 {
            Err(Fail::integrity(format!(
                "refused {refused} entries that would land outside the destination"
            )))?;
        }
        Ok(if self.failed {
            Status::Failure
        } else {
            Status::Success
        })
    }

    // Shared by the steps.

    /// A regular file's size, mode, mtime and owner, from its header.
    fn file_meta<R: Read>(&self, entry: &Entry<'_, R>) -> FileMeta {
        let h = entry.header();
        FileMeta {
            size: entry.size(),
            mode: h.mode().unwrap_or(0o644),
            mtime: h.mtime().unwrap_or(0),
            owner: self.owner(h),
        }
    }

    /// The owner to give what `h` describes: None unless running as root.
    fn owner(&self, h: &Header) -> Option<(u64, u64)> {
        self.root
            .then(|| (h.uid().unwrap_or(0), h.gid().unwrap_or(0)))
    }

    /// An entry refused for landing outside DEST: reported, and counted for the end.
    fn refuse(&mut self, shown: &str, why: String) {
        warn(format!("{shown}: refusing to extract: {why}"));
        self.refused += 1;
    }

    /// An entry --keep-old-files did not write: reported.
    fn keep(&mut self, shown: &str) {
        warn(format!("{shown}: exists, not replaced (--keep-old-files)"));
        self.failed = true;
    }

    /// An entry that failed with `e`: the end of the extraction when `e` dooms the rest, else
    /// reported (see [`entry_error`]).
    fn fail(&mut self, shown: &str, what: &str, e: &io::Error) -> anyhow::Result<()> {
        self.failed = true;
        entry_error(shown, what, e, self.dest)
    }

    /// An entry that could not be made: a truncated archive when the input ran dry, else a
    /// failed entry.
    fn not_made(&mut self, shown: &str, e: &io::Error) -> anyhow::Result<()> {
        if self.check.input_ended() {
            return Err(truncated_in(shown));
        }
        self.fail(shown, "", e)
    }

    /// The error for entry data that came short: a truncated archive when the input ran dry,
    /// else a corrupt one.
    fn short(&self, shown: &str, got: io::Result<usize>) -> anyhow::Error {
        match got {
            _ if self.check.input_ended() => truncated_in(shown),
            Ok(_) => corrupt(io::Error::other("short entry data")),
            Err(e) => corrupt(e),
        }
    }
}

impl Dir {
    /// Set the directory's owner (when restoring owners), mode and mtime.
    fn apply(&self) -> io::Result<()> {
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::lchown(&self.path, Some(uid as u32), Some(gid as u32))?;
        }
        fs::set_permissions(
            &self.path,
            std::os::unix::fs::PermissionsExt::from_mode(self.mode & 0o7777),
        )?;
        let t = FileTime::from_unix_time(self.mtime as i64, 0);
        filetime::set_file_times(&self.path, t, t)
    }
}

/// Apply the directories' owners, modes and mtimes in reverse archive order, so deepest
/// first; true when one could not be set (reported).
fn set_dir_times(dirs: &[Dir], dest: &Path) -> anyhow::Result<bool> {
    let mut failed = false;
    for d in dirs.iter().rev() {
        if let Err(e) = d.apply() {
            failed = true;
            let shown = d.path.display().to_string();
            entry_error(&shown, "cannot set mode/time", &e, dest)?;
        }
    }
    Ok(failed)
}

/// The reason for refusing an entry whose path would pass through the symlink `link`.
fn through(link: &Path) -> String {
    format!("it would pass through the symlink '{}'", link.display())
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

    /// Report each PATH that selected no member; true when there was one.
    fn report_missing(&self) -> bool {
        let mut any = false;
        for path in self.missing() {
            warn(format!(
                "{}: not found in the archive",
                String::from_utf8_lossy(path)
            ));
            any = true;
        }
        any
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

    /// With --keep-old-files: whether the known directory `rel` was there before this
    /// extraction (it keeps its mode and mtime). Always false without.
    fn was_there(&self, rel: &Path) -> bool {
        self.created.as_ref().is_some_and(|c| !c.contains(rel))
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
