//! Hashing files of the tar stream on a pool of threads while the stream is read.
//!
//! MD5 is serial within a file, so files are spread over the workers: the reader hands each
//! file's blocks to whichever worker took that file, through a small bounded channel, and
//! moves on to the next file as soon as the last block is handed over. Block buffers return
//! to a pool, so memory is flat whatever the stream length.
//!
//! With --check, the worker that hashes a file also reads the local copy and compares it with
//! the same blocks, byte for byte: equal bytes have equal MD5s, so the verdict is the one
//! hashing both sides would give, at half the MD5 work, and the local files are still read in
//! parallel with the stream.

use std::fs::{self, File};
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

/// A file's digest, and with --check its comparison with the local copy.
pub type Hashed = (Md5Sum, Option<Compared>);

/// A file's blocks as the reader hands them over, and where its local copy is (--check).
type Job = (Receiver<(Vec<u8>, usize)>, Option<PathBuf>);

/// Reads the local copy of a file alongside its stream blocks, into the worker's buffer.
struct LocalCopy<'a> {
    file: Option<File>,
    scratch: &'a mut Vec<u8>,
    verdict: Option<Compared>,
}

impl LocalCopy<'_> {
    fn open<'a>(path: &Path, scratch: &'a mut Vec<u8>) -> LocalCopy<'a> {
        let (file, verdict) = match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => (None, Some(Compared::Missing)),
            Err(e) => (None, Some(Compared::Unreadable(e.to_string()))),
            Ok(m) if !m.is_file() => (None, Some(Compared::Differs)),
            Ok(_) => match File::open(path) {
                Ok(f) => (Some(f), None),
                Err(e) => (None, Some(Compared::Unreadable(e.to_string()))),
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
            Err(e) => self.differs(Compared::Unreadable(e.to_string())),
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
                Err(e) => return Compared::Unreadable(e.to_string()),
            }
        }
        self.verdict.unwrap_or(Compared::Same)
    }
}

pub struct Hashers {
    workers: Workers<Job, Hashed>,
    pool: Pool,
}

impl Hashers {
    pub fn new(threads: usize) -> Hashers {
        // Files waiting for a worker are bounded too: each holds up to QUEUE blocks. A full
        // queue cannot deadlock: the workers are busy with files whose blocks were all sent.
        let pool = block_pool();
        let give_back = pool.clone();
        let workers = Workers::new(
            threads,
            threads.max(1),
            // The local copy's bytes, reused from file to file.
            || Vec::with_capacity(BLOCK),
            move |scratch: &mut Vec<u8>, (blocks, local): Job| {
                let mut local = local.as_deref().map(|p| LocalCopy::open(p, scratch));
                let mut h = Md5::new();
                for (block, n) in blocks.iter() {
                    h.update(&block[..n]);
                    if let Some(l) = local.as_mut() {
                        l.compare(&block[..n]);
                    }
                    give_back.give(block);
                }
                (h.finalize().into(), local.map(LocalCopy::finish))
            },
        );
        Hashers { workers, pool }
    }

    /// Hash everything `r` yields, comparing it with the file at `local` when given; the
    /// result arrives on the returned receiver (which closes without a value if reading
    /// failed: the error is returned here).
    pub fn hash(&self, r: &mut impl Read, local: Option<PathBuf>) -> io::Result<Ticket<Hashed>> {
        let (block_tx, block_rx): (SyncSender<(Vec<u8>, usize)>, _) = mpsc::sync_channel(QUEUE);
        let ticket = self
            .workers
            .submit((block_rx, local))
            .map_err(|_| io::Error::other("hash threads died"))?;
        loop {
            let mut block = self.pool.take();
            let n = read_full(r, &mut block)?;
            if n == 0 {
                self.pool.give(block);
                break;
            }
            block_tx
                .send((block, n))
                .map_err(|_| io::Error::other("hash threads died"))?;
            if n < BLOCK {
                break;
            }
        }
        Ok(ticket)
    }
}

/// MD5 of a file on disk, read in large blocks.
pub fn md5_file(path: &std::path::Path) -> io::Result<Md5Sum> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; BLOCK];
    loop {
        let n = read_full(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

pub fn hex(d: &Md5Sum) -> String {
    sol_common::hex(d)
}
