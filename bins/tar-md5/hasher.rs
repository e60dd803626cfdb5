//! Hashing files of the tar stream on a pool of threads while the stream is read.
//!
//! MD5 is serial within a file, so files are spread over the workers: the reader hands each
//! large file's blocks to whichever worker took that file, through a small bounded channel,
//! and moves on to the next file as soon as the last block is handed over. Small files (most
//! of a mission's, by count) are read whole and handed over in batches of up to 1 MiB, one
//! hand-over per batch: a wake-up per file cost more CPU than comparing the file. Block
//! buffers return to a pool, so memory is flat whatever the stream length.
//!
//! With --check, the worker that takes a file reads the local copy and compares it with the
//! same blocks, byte for byte, and hashes nothing: a byte comparison catches every difference
//! an MD5 comparison would (and a few it could miss), and MD5 was half of --check's CPU. The
//! local files are still read in parallel with the stream.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};

use md5::{Digest, Md5};
use sol_common::ordered::{Ticket, Workers};
use sol_common::stdio::read_full;

pub const BLOCK: usize = 1 << 20;
/// Blocks queued per file.
const QUEUE: usize = 4;

pub type Md5Sum = [u8; 16];

pub use sol_common::pool::Pool;

/// The pool of stream blocks.
pub fn block_pool() -> Pool {
    Pool::new(|| vec![0u8; BLOCK])
}

/// The local copy of a stream file, as seen by the worker that hashed it.
#[derive(Debug, PartialEq)]
pub enum Compared {
    Same,
    Differs,
    Missing,
    Unreadable(String),
}

/// A file's digest (when hashing), and with --check its comparison with the local copy.
pub type Hashed = (Option<Md5Sum>, Option<Compared>);

/// Files up to this size go in batches.
pub const SMALL: u64 = 256 << 10;
/// A batch is handed over when it holds this many bytes or files.
const BATCH_BYTES: usize = 1 << 20;
const BATCH_FILES: usize = 512;

/// Small files read whole, back to back, each with its local copy's path under --check.
#[derive(Default)]
pub struct Batch {
    data: Vec<u8>,
    files: Vec<(usize, Option<PathBuf>)>,
}

impl Batch {
    /// Read the rest of `r` (`len` bytes) as the next file of the batch.
    pub fn add(&mut self, r: &mut impl Read, len: u64, local: Option<PathBuf>) -> io::Result<()> {
        let start = self.data.len();
        r.take(len).read_to_end(&mut self.data)?;
        if (self.data.len() - start) as u64 != len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.files.push((self.data.len() - start, local));
        Ok(())
    }

    pub fn is_full(&self) -> bool {
        self.data.len() >= BATCH_BYTES || self.files.len() >= BATCH_FILES
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn files_len(&self) -> usize {
        self.files.len()
    }
}

enum Job {
    /// One file, block by block.
    Stream(Receiver<(Vec<u8>, usize)>, Option<PathBuf>),
    /// Small files, answered together, in order.
    Batch(Batch),
}

/// A worker's answer: one file's, or a batch's (in the batch's order).
pub enum Answer {
    One(Hashed),
    Many(Vec<Hashed>),
}

impl Answer {
    pub fn one(self) -> Option<Hashed> {
        match self {
            Answer::One(h) => Some(h),
            Answer::Many(_) => None,
        }
    }

    pub fn many(self) -> Vec<Hashed> {
        match self {
            Answer::Many(v) => v,
            Answer::One(_) => Vec::new(),
        }
    }
}

/// Reads the local copy of a file alongside its stream blocks, into the worker's buffer.
struct LocalCopy<'a> {
    file: Option<fs::File>,
    scratch: &'a mut Vec<u8>,
    verdict: Option<Compared>,
}

impl LocalCopy<'_> {
    fn open<'a>(path: &Path, scratch: &'a mut Vec<u8>) -> LocalCopy<'a> {
        let (file, verdict) = match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => (None, Some(Compared::Missing)),
            Err(e) => (None, Some(Compared::Unreadable(sol_common::io_msg(&e)))),
            Ok(m) if !m.is_file() => (None, Some(Compared::Differs)),
            Ok(_) => match fs::File::open(path) {
                Ok(f) => (Some(f), None),
                Err(e) => (None, Some(Compared::Unreadable(sol_common::io_msg(&e)))),
            },
        };
        LocalCopy {
            file,
            scratch,
            verdict,
        }
    }

    /// Compare the next `block.len()` local bytes with `block`.
    fn compare(&mut self, block: &[u8]) {
        let Some(f) = self.file.as_mut() else { return };
        self.scratch.resize(block.len(), 0);
        match read_full(f, self.scratch) {
            Ok(n) if n == block.len() && self.scratch[..] == *block => {}
            Ok(_) => self.differs(Compared::Differs),
            Err(e) => self.differs(Compared::Unreadable(sol_common::io_msg(&e))),
        }
    }

    fn differs(&mut self, verdict: Compared) {
        self.file = None;
        self.verdict = Some(verdict);
    }

    /// After the last block: the local copy must end here too.
    fn finish(mut self) -> Compared {
        if let Some(f) = self.file.as_mut() {
            let mut one = [0u8; 1];
            match f.read(&mut one) {
                Ok(0) => return Compared::Same,
                Ok(_) => return Compared::Differs,
                Err(e) => return Compared::Unreadable(sol_common::io_msg(&e)),
            }
        }
        self.verdict.unwrap_or(Compared::Same)
    }
}

/// The hashing workers: sol-common's ordered pool, a ticket per job.
pub struct Hashers {
    workers: Workers<Job, Answer>,
    pool: Pool,
}

fn died() -> io::Error {
    io::Error::other("hash threads died")
}

impl Hashers {
    /// `threads` workers; `md5`: whether they hash what they read (without it they only
    /// compare with the local copies).
    pub fn new(threads: usize, md5: bool) -> Hashers {
        // Files waiting for a worker are bounded too: each holds up to QUEUE blocks. A full
        // queue cannot deadlock: the workers are busy with files whose blocks were all sent.
        let pool = block_pool();
        let blocks = pool.clone();
        let workers = Workers::new(
            threads,
            threads.max(1),
            // The local copy's bytes, reused from file to file.
            || Vec::with_capacity(BLOCK),
            move |scratch: &mut Vec<u8>, job: Job| match job {
                Job::Stream(rx, local) => {
                    let mut file = File::start(md5, local.as_deref(), scratch);
                    for (block, n) in rx.iter() {
                        file.update(&block[..n]);
                        blocks.give(block);
                    }
                    Answer::One(file.finish())
                }
                Job::Batch(batch) => {
                    let mut done = Vec::with_capacity(batch.files.len());
                    let mut at = 0;
                    for (len, local) in &batch.files {
                        let mut file = File::start(md5, local.as_deref(), scratch);
                        file.update(&batch.data[at..at + len]);
                        done.push(file.finish());
                        at += len;
                    }
                    Answer::Many(done)
                }
            },
        );
        Hashers { workers, pool }
    }

    /// Hash everything `r` yields, comparing it with the file at `local` when given; the
    /// answer comes on the ticket (which closes without one if reading failed: the error is
    /// returned here).
    pub fn hash(&self, r: &mut impl Read, local: Option<PathBuf>) -> io::Result<Ticket<Answer>> {
        let (block_tx, block_rx): (SyncSender<(Vec<u8>, usize)>, _) = mpsc::sync_channel(QUEUE);
        let ticket = self
            .workers
            .submit(Job::Stream(block_rx, local))
            .map_err(|_| died())?;
        loop {
            let mut block = self.pool.take();
            let n = read_full(r, &mut block)?;
            if n == 0 {
                self.pool.give(block);
                break;
            }
            block_tx.send((block, n)).map_err(|_| died())?;
            if n < BLOCK {
                break;
            }
        }
        Ok(ticket)
    }

    /// Hash (and compare) a batch of small files; their answers come together, in order.
    pub fn hash_batch(&self, batch: Batch) -> io::Result<Ticket<Answer>> {
        self.workers.submit(Job::Batch(batch)).map_err(|_| died())
    }
}

/// One file on a worker: its digest (when hashing) and its comparison (under --check).
struct File<'a> {
    md5: Option<Md5>,
    local: Option<LocalCopy<'a>>,
}

impl<'a> File<'a> {
    fn start(md5: bool, local: Option<&Path>, scratch: &'a mut Vec<u8>) -> File<'a> {
        File {
            md5: md5.then(Md5::new),
            local: local.map(|p| LocalCopy::open(p, scratch)),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        if let Some(h) = self.md5.as_mut() {
            h.update(bytes);
        }
        if let Some(l) = self.local.as_mut() {
            l.compare(bytes);
        }
    }

    fn finish(self) -> Hashed {
        (
            self.md5.map(|h| h.finalize().into()),
            self.local.map(LocalCopy::finish),
        )
    }
}

/// Whether two files on disk hold the same bytes (true at once for one file under two names).
pub fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (ma, mb) = (fs::metadata(a)?, fs::metadata(b)?);
    if !ma.is_file() || !mb.is_file() || ma.len() != mb.len() {
        return Ok(false);
    }
    if (ma.dev(), ma.ino()) == (mb.dev(), mb.ino()) {
        return Ok(true);
    }
    let (mut fa, mut fb) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; BLOCK], vec![0u8; BLOCK]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        if read_full(&mut fb, &mut bb)? != n || ba[..n] != bb[..n] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

pub fn hex(d: &Md5Sum) -> String {
    sol_common::hex(d)
}
