//! Writing small regular files on a few threads during extraction.
//!
//! Creating and writing many small files is system-call bound (open, write, fchown, fchmod,
//! futimens, close per file), so the stream reader hands whole small files to writer threads
//! and moves on, in batches (one hand-over and one wake-up per batch, not per file). A
//! batch's files are read back to back into one buffer, reused through a pool: no
//! allocation and no zeroing per file. Ordering
//! stays safe: every parent directory exists and is checked before a file is handed over, and
//! an entry that touches a path still being written (the same name twice, or a hard link to
//! it) waits until every queued file is on disk. Queued data is bounded: at most QUEUE
//! batches wait, each under BATCH_BYTES plus one file.
//!
//! A file that could not be written completely is removed, so no half file keeps a real
//! name. An error that dooms the rest of the extraction (see [`dooms`]) is recorded instead
//! of printed, the writers skip every later file, and the reader stops with that one line.
//! A file being written when SIGINT, SIGTERM, SIGHUP or SIGQUIT arrives is removed too (see
//! [`remove_partial_files_on_signal`]).

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{fchown, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Barrier, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};

use filetime::FileTime;

use super::warn;
use sol_common::io_msg;
use sol_common::pool::Pool;

/// Files up to this size go to the writer threads; larger ones are written by the reader.
pub const SMALL: u64 = 1 << 20;
/// A batch is handed over once it holds this many bytes or BATCH_FILES files.
const BATCH_BYTES: usize = 256 << 10;
const BATCH_FILES: usize = 64;
/// Batches queued for the writers.
const QUEUE: usize = 8;

pub struct FileJob {
    pub path: PathBuf,
    pub shown: String,
    pub mode: u32,
    pub mtime: u64,
    pub owner: Option<(u64, u64)>,
}

/// Files handed over together: their data back to back in `buf` (each at its range), which
/// stays initialised at its whole length and goes back to the pool once written.
struct Batch {
    buf: Vec<u8>,
    used: usize,
    files: Vec<(std::ops::Range<usize>, FileJob)>,
}

impl Batch {
    fn new(pool: &Pool) -> Batch {
        Batch {
            buf: pool.take(),
            used: 0,
            files: Vec::new(),
        }
    }
}

enum Msg {
    Write(Batch),
    /// Wait here until every writer and the reader are here: a writer holding a barrier
    /// cannot take another message, so each writer takes exactly one.
    Barrier(Arc<Barrier>),
}

/// The first error that ends the extraction, as its one-line message.
#[derive(Clone, Default)]
pub struct Fatal(Arc<Mutex<Option<String>>>);

impl Fatal {
    /// Record `msg` unless an earlier fatal error was recorded.
    pub fn set(&self, msg: String) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(msg);
    }
    pub fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// True when `e` dooms every later write under `dest`: the disk or quota is full, the file
/// system is read-only or failing, or DEST itself can no longer be written (permission
/// denied or gone). Other errors concern one entry, which is reported and skipped.
pub fn dooms(e: &io::Error, dest: &Path) -> bool {
    match os_error(e) {
        Some(libc::ENOSPC | libc::EDQUOT | libc::EROFS | libc::EIO) => true,
        Some(libc::EACCES | libc::EPERM | libc::ENOENT) => !writable(dest),
        _ => false,
    }
}

/// The errno under `e`, also when the tar crate wrapped it in its own error.
fn os_error(e: &io::Error) -> Option<i32> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|i| i as _);
    let mut found = e.raw_os_error();
    while found.is_none() {
        let c = cause?;
        found = c
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error);
        cause = c.source();
    }
    found
}

/// The one line that ends an extraction.
pub fn stopped(shown: &str, e: &io::Error) -> String {
    format!("extraction stopped at '{shown}': {}", io_msg(e))
}

fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access only reads the NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

pub struct Writers {
    tx: Option<SyncSender<Msg>>,
    threads: Vec<JoinHandle<()>>,
    failed: Arc<AtomicBool>,
    pub fatal: Fatal,
    /// Paths handed over (or batched) since the last barrier.
    queued: HashSet<PathBuf>,
    batch: Batch,
    pool: Pool,
}

impl Writers {
    pub fn new(threads: usize, dest: &Path, fatal: Fatal) -> Writers {
        let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let failed = Arc::new(AtomicBool::new(false));
        // A batch is handed over once it holds BATCH_BYTES, so its files fit in this.
        let pool = Pool::new(|| vec![0u8; BATCH_BYTES + SMALL as usize]);
        let threads = (0..threads.max(1))
            .map(|_| {
                let (rx, failed, fatal) = (rx.clone(), failed.clone(), fatal.clone());
                let (dest, pool) = (dest.to_path_buf(), pool.clone());
                thread::spawn(move || work(&rx, &failed, &fatal, &dest, &pool))
            })
            .collect();
        Writers {
            tx: Some(tx),
            threads,
            failed,
            fatal,
            queued: HashSet::new(),
            batch: Batch::new(&pool),
            pool,
        }
    }

    /// Hand a small file of `size` bytes over, its data read by `fill` straight into the
    /// batch. When `fill` reads less (or fails), nothing is handed over: the file comes
    /// back with what `fill` returned.
    pub fn write(
        &mut self,
        job: FileJob,
        size: usize,
        fill: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> Result<(), (FileJob, io::Result<usize>)> {
        if self.batch.used + size > self.batch.buf.len() {
            self.flush();
        }
        let b = &mut self.batch;
        let at = b.used..b.used + size;
        if b.buf.len() < at.end {
            b.buf.resize(at.end, 0); // a file larger than the buffer: never from extract
        }
        match fill(&mut b.buf[at.clone()]) {
            Ok(n) if n == size => {}
            got => return Err((job, got)),
        }
        b.used = at.end;
        self.queued.insert(job.path.clone());
        b.files.push((at, job));
        if b.used >= BATCH_BYTES || b.files.len() >= BATCH_FILES {
            self.flush();
        }
        Ok(())
    }

    /// Hand the batch being gathered over.
    fn flush(&mut self) {
        if !self.batch.files.is_empty() {
            // The next buffer is taken once this one is queued: while the queue is full,
            // no buffer waits idle here.
            let none = Batch {
                buf: Vec::new(),
                used: 0,
                files: Vec::new(),
            };
            let batch = std::mem::replace(&mut self.batch, none);
            self.send(Msg::Write(batch));
            self.batch.buf = self.pool.take();
        }
    }

    /// Wait until queued files are on disk if `path` is one of them.
    pub fn settle(&mut self, path: &Path) {
        if self.queued.contains(path) {
            self.barrier();
        }
    }

    /// Wait until every queued file is on disk.
    pub fn barrier(&mut self) {
        self.flush();
        let barrier = Arc::new(Barrier::new(self.threads.len() + 1));
        for _ in 0..self.threads.len() {
            if !self.send(Msg::Barrier(barrier.clone())) {
                return; // no writers left to wait for
            }
        }
        barrier.wait();
        self.queued.clear();
    }

    fn send(&mut self, msg: Msg) -> bool {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(msg).is_ok());
        if !sent && !self.failed.swap(true, Ordering::Relaxed) {
            warn("the file writer threads died");
        }
        sent
    }

    /// The fatal error a writer met, if any.
    pub fn fatal(&self) -> Option<String> {
        self.fatal.get()
    }

    /// Wait for every file; true when all were written.
    pub fn finish(mut self) -> bool {
        self.flush();
        self.join();
        !self.failed.load(Ordering::Relaxed)
    }

    fn join(&mut self) {
        drop(self.tx.take());
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                self.failed.store(true, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for Writers {
    /// Leaving early (an error in the stream): the files already handed over are finished
    /// before the process exits, so none is cut off half-written under its name.
    fn drop(&mut self) {
        self.join();
    }
}

fn work(rx: &Mutex<Receiver<Msg>>, failed: &AtomicBool, fatal: &Fatal, dest: &Path, pool: &Pool) {
    loop {
        let msg = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        match msg {
            Ok(Msg::Write(batch)) => {
                for (at, job) in &batch.files {
                    if fatal.get().is_some() {
                        break; // the extraction is over: write nothing more
                    }
                    if let Err(e) = write_file(job, &batch.buf[at.clone()]) {
                        failed.store(true, Ordering::Relaxed);
                        if dooms(&e, dest) {
                            fatal.set(stopped(&job.shown, &e));
                        } else {
                            warn(format!("{}: {}", job.shown, io_msg(&e)));
                        }
                    }
                }
                pool.give(batch.buf);
            }
            Ok(Msg::Barrier(barrier)) => {
                barrier.wait();
            }
            Err(_) => return,
        }
    }
}

/// The files being written now, by the reader (a large file) and the writers.
static WRITING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn writing_now() -> MutexGuard<'static, Vec<PathBuf>> {
    WRITING.lock().unwrap_or_else(|e| e.into_inner())
}

/// While this lives, `path` is being written: a signal that ends the extraction removes it.
pub struct Writing(PathBuf);

impl Writing {
    pub fn new(path: &Path) -> Writing {
        writing_now().push(path.to_path_buf());
        Writing(path.to_path_buf())
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        let mut w = writing_now();
        if let Some(i) = w.iter().position(|p| *p == self.0) {
            w.swap_remove(i);
        }
    }
}

/// From here on SIGINT, SIGTERM, SIGHUP and SIGQUIT (those not ignored when the process started) are
/// taken by one thread, which removes every file being written and then ends the process by
/// that signal: an interrupted extraction leaves no half file under a real name, even when
/// its input has stalled. Call before any other thread starts (threads inherit the mask).
pub fn remove_partial_files_on_signal() {
    // SAFETY: plain libc calls on local, initialised signal sets; the thread below only
    // unlinks paths and re-raises the signal it received.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction != libc::SIG_IGN
            {
                libc::sigaddset(&mut set, sig);
            }
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        thread::spawn(move || {
            let mut sig: libc::c_int = 0;
            if libc::sigwait(&set, &mut sig) != 0 {
                return;
            }
            let writing = writing_now(); // held: no writer starts another file
            for path in writing.iter() {
                let _ = fs::remove_file(path);
            }
            // Ended by the signal as asked, without a core file (SIGQUIT's default).
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            libc::signal(sig, libc::SIG_DFL);
            let mut one: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut one);
            libc::sigaddset(&mut one, sig);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
            libc::raise(sig);
            std::process::exit(128 + sig);
        });
    }
}

/// Run `create` (which makes something at `path`); if something is already there, remove it
/// (never following it) and run `create` once more.
pub fn replacing<T>(path: &Path, create: impl Fn() -> io::Result<T>) -> io::Result<T> {
    match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(path)?;
            create()
        }
        other => other,
    }
}

/// Create `path` afresh for writing, never writing through an existing file or symlink.
pub fn create(path: &Path, mode: u32) -> io::Result<File> {
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o777)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
    };
    replacing(path, open)
}

/// The process's umask, read once.
fn umask() -> u32 {
    static UMASK: OnceLock<u32> = OnceLock::new();
    *UMASK.get_or_init(|| {
        // SAFETY: umask has no preconditions; the mask is set back at once, before any
        // file is created.
        let old = unsafe { libc::umask(0o022) };
        unsafe { libc::umask(old) };
        old
    })
}

/// Whether [`create`] gave a file `mode` exactly (no set-id or sticky bit, none masked by
/// the umask): then no chmod is needed, one system call fewer per file.
fn created_with(mode: u32) -> bool {
    mode & 0o7000 == 0 && mode & 0o777 & umask() == 0
}

/// Set a written file's owner (when given), mode and times, like the tar crate's unpack
/// (the mode only when [`create`] could not give it).
pub fn set_meta(f: &File, owner: Option<(u64, u64)>, mode: u32, mtime: u64) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        fchown(f, Some(uid as u32), Some(gid as u32))?;
    }
    if !created_with(mode) {
        f.set_permissions(fs::Permissions::from_mode(mode & 0o7777))?;
    }
    let t = FileTime::from_unix_time(mtime as i64, 0);
    filetime::set_file_handle_times(f, Some(t), Some(t))
}

/// Write a small file whole; a file begun but not completed is removed.
fn write_file(job: &FileJob, data: &[u8]) -> io::Result<()> {
    let _writing = Writing::new(&job.path);
    let mut f = create(&job.path, job.mode)?;
    if let Err(e) = f.write_all(data) {
        drop(f);
        let _ = fs::remove_file(&job.path);
        return Err(e);
    }
    set_meta(&f, job.owner, job.mode, job.mtime)
}
