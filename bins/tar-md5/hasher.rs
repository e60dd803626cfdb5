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
//!
//! A sparse member's holes travel as their length, not as zeros: hashing still feeds the
//! zeros to MD5 (a digest has no shortcut), but --check skips the local copy's own holes
//! (SEEK_DATA) and reads only what it holds as data there.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};

use md5::{Digest, Md5};
use sol_common::ordered::{Ticket, Workers};
use sol_common::stdio::read_full;
use sol_formats::sparse::Sparse;

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
/// `data` is a buffer of the hashers' batch pool, initialised at its whole length, so each
/// file is read straight into it (no allocation, no zeroing, no copy on growth); `used` is
/// how much of it the files fill.
pub struct Batch {
    data: Vec<u8>,
    used: usize,
    files: Vec<(usize, Option<PathBuf>)>,
}

impl Batch {
    /// Read the rest of `r` (`len` bytes, at most SMALL) as the next file of the batch.
    pub fn add(&mut self, r: &mut impl Read, len: u64, local: Option<PathBuf>) -> io::Result<()> {
        let (start, end) = (self.used, self.used + len as usize);
        if self.data.len() < end {
            self.data.resize(end, 0); // a batch is handed over before it can come to this
        }
        if read_full(r, &mut self.data[start..end])? != end - start {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.used = end;
        self.files.push((end - start, local));
        Ok(())
    }

    pub fn is_full(&self) -> bool {
        self.used >= BATCH_BYTES || self.files.len() >= BATCH_FILES
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn files_len(&self) -> usize {
        self.files.len()
    }
}

/// A piece of one file's contents, in order.
enum Piece {
    /// A stream block and how much of it is the file's.
    Data(Vec<u8>, usize),
    /// This many zero bytes: a sparse member's hole.
    Zeros(u64),
}

enum Job {
    /// One file, piece by piece.
    Stream(Receiver<Piece>, Option<PathBuf>),
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
    /// The local file's length (compared before a hole is skipped).
    len: u64,
    /// Bytes compared so far.
    at: u64,
    scratch: &'a mut Vec<u8>,
    verdict: Option<Compared>,
}

impl LocalCopy<'_> {
    /// The local copy at `path`, opened without following a symlink and without blocking
    /// on a FIFO; its type and length from the open file (an open, a stat, the reads and a
    /// close: per-file system calls were most of --check's CPU on a tree of small files).
    fn open<'a>(path: &Path, scratch: &'a mut Vec<u8>) -> LocalCopy<'a> {
        let opened = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .and_then(|f| f.metadata().map(|m| (f, m)));
        let unreadable = |e: &io::Error| Compared::Unreadable(sol_common::io_msg(e));
        let (file, len, verdict) = match opened {
            Err(e) if e.kind() == io::ErrorKind::NotFound => (None, 0, Some(Compared::Missing)),
            // A symlink where the stream has a file.
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => (None, 0, Some(Compared::Differs)),
            Err(e) => (None, 0, Some(unreadable(&e))),
            Ok((_, m)) if !m.is_file() => (None, 0, Some(Compared::Differs)),
            Ok((f, m)) => (Some(f), m.len(), None),
        };
        LocalCopy {
            file,
            len,
            at: 0,
            scratch,
            verdict,
        }
    }

    /// Compare the next `block.len()` local bytes with `block`.
    fn compare(&mut self, block: &[u8]) {
        let Some(f) = self.file.as_mut() else { return };
        let scratch = room(self.scratch, block.len());
        match read_full(f, scratch) {
            Ok(n) if n == block.len() && scratch[..] == *block => {}
            Ok(_) => self.differs(Compared::Differs),
            Err(e) => self.differs(Compared::Unreadable(sol_common::io_msg(&e))),
        }
        self.at += block.len() as u64;
    }

    /// The next `n` local bytes must be zeros: its holes are skipped, its data read.
    fn zeros(&mut self, n: u64) {
        let Some(f) = self.file.as_mut() else { return };
        let end = self.at + n;
        if end > self.len {
            return self.differs(Compared::Differs);
        }
        while self.at < end {
            let (data, hole) = match data_from(f, self.at) {
                Ok(Some((d, h))) => (d, h),
                Ok(None) => break, // holes to the end of the file
                Err(e) => return self.differs(Compared::Unreadable(sol_common::io_msg(&e))),
            };
            if data >= end {
                break;
            }
            let upto = hole.min(end);
            if let Err(e) = f.seek(SeekFrom::Start(data)) {
                return self.differs(Compared::Unreadable(sol_common::io_msg(&e)));
            }
            let mut left = upto - data;
            while left > 0 {
                let want = left.min(BLOCK as u64) as usize;
                let scratch = room(self.scratch, want);
                match read_full(f, scratch) {
                    Ok(got) if got == want && scratch.iter().all(|&b| b == 0) => {}
                    Ok(_) => return self.differs(Compared::Differs),
                    Err(e) => return self.differs(Compared::Unreadable(sol_common::io_msg(&e))),
                }
                left -= want as u64;
            }
            self.at = upto;
        }
        self.at = end;
        if let Err(e) = f.seek(SeekFrom::Start(end)) {
            self.differs(Compared::Unreadable(sol_common::io_msg(&e)));
        }
    }

    fn differs(&mut self, verdict: Compared) {
        self.file = None;
        self.verdict = Some(verdict);
    }

    /// After the last block: the local copy must end here too (its length as it was
    /// opened: every byte up to it compared).
    fn finish(self) -> Compared {
        if self.file.is_some() {
            return if self.at == self.len {
                Compared::Same
            } else {
                Compared::Differs
            };
        }
        self.verdict.unwrap_or(Compared::Same)
    }
}

/// Where `f` next holds data at or after `from`, and where that data ends: Some((data,
/// hole)); None when only holes follow. A file system without SEEK_DATA reads as all data.
fn data_from(f: &fs::File, from: u64) -> io::Result<Option<(u64, u64)>> {
    use std::os::unix::io::AsRawFd;
    let fd = f.as_raw_fd();
    let at = |whence| {
        // SAFETY: lseek on a descriptor we own; it moves only that descriptor's offset,
        // which is set again before the next read.
        let r = unsafe { libc::lseek(fd, from as libc::off_t, whence) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as u64)
        }
    };
    let data = match at(libc::SEEK_DATA) {
        Ok(d) => d,
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(Some((from, u64::MAX))),
        Err(e) => return Err(e),
    };
    let hole = match at(libc::SEEK_HOLE) {
        Ok(h) => h.max(data),
        Err(_) => u64::MAX,
    };
    Ok(Some((data, if hole == data { u64::MAX } else { hole })))
}

/// The hashing workers: sol-common's ordered pool, a ticket per job.
pub struct Hashers {
    workers: Workers<Job, Answer>,
    pool: Pool,
    /// Buffers for batches of small files.
    batches: Pool,
}

/// The first `n` bytes of `scratch`, which keeps its length from file to file: it is
/// zeroed only when it grows.
fn room(scratch: &mut Vec<u8>, n: usize) -> &mut [u8] {
    if scratch.len() < n {
        scratch.resize(n, 0);
    }
    &mut scratch[..n]
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
        // A batch is handed over once it holds BATCH_BYTES, so its files fit in this.
        let batches = Pool::new(|| vec![0u8; BATCH_BYTES + SMALL as usize]);
        let batches_back = batches.clone();
        let workers = Workers::new(
            threads,
            threads.max(1),
            // The local copy's bytes, reused from file to file.
            || Vec::with_capacity(BLOCK),
            move |scratch: &mut Vec<u8>, job: Job| match job {
                Job::Stream(rx, local) => {
                    let mut file = File::start(md5, local.as_deref(), scratch);
                    for piece in rx.iter() {
                        match piece {
                            Piece::Data(block, n) => {
                                file.update(&block[..n]);
                                blocks.give(block);
                            }
                            Piece::Zeros(n) => file.zeros(n),
                        }
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
                    batches_back.give(batch.data);
                    Answer::Many(done)
                }
            },
        );
        Hashers {
            workers,
            pool,
            batches,
        }
    }

    /// An empty batch, its buffer from the pool.
    pub fn batch(&self) -> Batch {
        Batch {
            data: self.batches.take(),
            used: 0,
            files: Vec::new(),
        }
    }

    /// Hash everything `r` yields, comparing it with the file at `local` when given; the
    /// answer comes on the ticket (which closes without one if reading failed: the error is
    /// returned here).
    pub fn hash(&self, r: &mut impl Read, local: Option<PathBuf>) -> io::Result<Ticket<Answer>> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let ticket = self
            .workers
            .submit(Job::Stream(rx, local))
            .map_err(|_| died())?;
        self.send_data(r, &tx)?;
        Ok(ticket)
    }

    /// Hash a sparse member as the file it stands for (`r` yields its regions' bytes),
    /// comparing it with the file at `local` when given; as [`Hashers::hash`].
    pub fn hash_sparse(
        &self,
        r: &mut impl Read,
        sparse: &Sparse,
        local: Option<PathBuf>,
    ) -> io::Result<Ticket<Answer>> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let ticket = self
            .workers
            .submit(Job::Stream(rx, local))
            .map_err(|_| died())?;
        let mut at = 0;
        for region in &sparse.regions {
            if region.offset > at {
                tx.send(Piece::Zeros(region.offset - at))
                    .map_err(|_| died())?;
            }
            if self.send_data(&mut r.take(region.len), &tx)? != region.len {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            at = region.end();
        }
        if sparse.real_size > at {
            tx.send(Piece::Zeros(sparse.real_size - at))
                .map_err(|_| died())?;
        }
        Ok(ticket)
    }

    /// Everything `r` yields to a worker, block by block; the bytes sent.
    fn send_data(&self, r: &mut impl Read, tx: &SyncSender<Piece>) -> io::Result<u64> {
        let mut sent = 0;
        loop {
            let mut block = self.pool.take();
            let n = read_full(r, &mut block)?;
            if n == 0 {
                self.pool.give(block);
                break;
            }
            tx.send(Piece::Data(block, n)).map_err(|_| died())?;
            sent += n as u64;
            if n < BLOCK {
                break;
            }
        }
        Ok(sent)
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

    /// `n` zero bytes: a sparse member's hole.
    fn zeros(&mut self, n: u64) {
        if let Some(h) = self.md5.as_mut() {
            let zeros = [0u8; 64 << 10];
            let mut left = n;
            while left > 0 {
                let k = left.min(zeros.len() as u64) as usize;
                h.update(&zeros[..k]);
                left -= k as u64;
            }
        }
        if let Some(l) = self.local.as_mut() {
            l.zeros(n);
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
