//! Writing small regular files on a few threads during extraction.
//!
//! Creating and writing many small files is system-call bound (open, write, fchown, fchmod,
//! futimens, close per file), so the stream reader hands whole small files to writer threads
//! and moves on, in batches (one hand-over and one wake-up per batch, not per file). Ordering
//! stays safe: every parent directory exists and is checked before a file is handed over, and
//! an entry that touches a path still being written (the same name twice, or a hard link to
//! it) waits until every queued file is on disk. Queued data is bounded: at most QUEUE
//! batches wait, each under BATCH_BYTES plus one file.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{fchown, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::{self, JoinHandle};

use filetime::FileTime;

use super::walk::io_msg;
use super::warn;

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
    pub data: Vec<u8>,
    pub mode: u32,
    pub mtime: u64,
    pub owner: Option<(u64, u64)>,
}

enum Msg {
    Write(Vec<FileJob>),
    /// Wait here until every writer and the reader are here: a writer holding a barrier
    /// cannot take another message, so each writer takes exactly one.
    Barrier(Arc<Barrier>),
}

pub struct Writers {
    tx: Option<SyncSender<Msg>>,
    threads: Vec<JoinHandle<()>>,
    failed: Arc<AtomicBool>,
    /// Paths handed over (or batched) since the last barrier.
    queued: HashSet<PathBuf>,
    batch: Vec<FileJob>,
    batch_bytes: usize,
}

impl Writers {
    pub fn new(threads: usize) -> Writers {
        let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let failed = Arc::new(AtomicBool::new(false));
        let threads = (0..threads.max(1))
            .map(|_| {
                let rx = rx.clone();
                let failed = failed.clone();
                thread::spawn(move || work(&rx, &failed))
            })
            .collect();
        Writers {
            tx: Some(tx),
            threads,
            failed,
            queued: HashSet::new(),
            batch: Vec::new(),
            batch_bytes: 0,
        }
    }

    /// Hand a small file over.
    pub fn write(&mut self, job: FileJob) {
        self.queued.insert(job.path.clone());
        self.batch_bytes += job.data.len();
        self.batch.push(job);
        if self.batch_bytes >= BATCH_BYTES || self.batch.len() >= BATCH_FILES {
            self.flush();
        }
    }

    /// Hand the batch being gathered over.
    fn flush(&mut self) {
        if !self.batch.is_empty() {
            self.batch_bytes = 0;
            let batch = std::mem::take(&mut self.batch);
            self.send(Msg::Write(batch));
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

    /// Wait for every file; true when all were written.
    pub fn finish(mut self) -> bool {
        self.flush();
        drop(self.tx.take());
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                self.failed.store(true, Ordering::Relaxed);
            }
        }
        !self.failed.load(Ordering::Relaxed)
    }
}

fn work(rx: &Mutex<Receiver<Msg>>, failed: &AtomicBool) {
    loop {
        let msg = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        match msg {
            Ok(Msg::Write(batch)) => {
                for job in batch {
                    if let Err(e) = write_file(&job) {
                        warn(format!("{}: {}", job.shown, io_msg(&e)));
                        failed.store(true, Ordering::Relaxed);
                    }
                }
            }
            Ok(Msg::Barrier(barrier)) => {
                barrier.wait();
            }
            Err(_) => return,
        }
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
pub fn create(path: &Path) -> io::Result<File> {
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
    };
    replacing(path, open)
}

/// Set a written file's owner (when given), mode and times, like the tar crate's unpack.
pub fn set_meta(f: &File, owner: Option<(u64, u64)>, mode: u32, mtime: u64) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        fchown(f, Some(uid as u32), Some(gid as u32))?;
    }
    f.set_permissions(fs::Permissions::from_mode(mode & 0o7777))?;
    let t = FileTime::from_unix_time(mtime as i64, 0);
    filetime::set_file_handle_times(f, Some(t), Some(t))
}

fn write_file(job: &FileJob) -> io::Result<()> {
    let mut f = create(&job.path)?;
    f.write_all(&job.data)?;
    set_meta(&f, job.owner, job.mode, job.mtime)
}
