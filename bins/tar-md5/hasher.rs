//! Hashing files of the tar stream on a pool of threads while the stream is read.
//!
//! MD5 is serial within a file, so files are spread over the workers: the reader hands each
//! file's blocks to whichever worker took that file, through a small bounded channel, and
//! moves on to the next file as soon as the last block is handed over. Block buffers return
//! to a pool, so memory is flat whatever the stream length.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

use std::sync::{Arc, Mutex};
use std::thread;

use md5::{Digest, Md5};
use sol_common::stdio::read_full;

pub const BLOCK: usize = 1 << 20;
/// Blocks queued per file.
const QUEUE: usize = 4;

pub type Md5Sum = [u8; 16];

#[derive(Clone, Default)]
pub struct Pool(Arc<Mutex<Vec<Vec<u8>>>>);

impl Pool {
    pub fn take(&self) -> Vec<u8> {
        let v = self.0.lock().unwrap_or_else(|p| p.into_inner()).pop();
        v.unwrap_or_else(|| vec![0u8; BLOCK])
    }
    pub fn give(&self, v: Vec<u8>) {
        let mut pool = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 64 {
            pool.push(v);
        }
    }
}

type Job = (Receiver<(Vec<u8>, usize)>, Sender<Md5Sum>);

pub struct Hashers {
    jobs: SyncSender<Job>,
    pool: Pool,
}

impl Hashers {
    pub fn new(threads: usize) -> Hashers {
        // Files waiting for a worker are bounded too: each holds up to QUEUE blocks. A full
        // queue cannot deadlock: the workers are busy with files whose blocks were all sent.
        let (jobs, rx) = mpsc::sync_channel::<Job>(threads.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let pool = Pool::default();
        for _ in 0..threads.max(1) {
            let rx = rx.clone();
            let pool = pool.clone();
            thread::spawn(move || loop {
                let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok((blocks, reply)) = job else { return };
                let mut h = Md5::new();
                for (block, n) in blocks.iter() {
                    h.update(&block[..n]);
                    pool.give(block);
                }
                let _ = reply.send(h.finalize().into());
            });
        }
        Hashers { jobs, pool }
    }

    /// Hash everything `r` yields; the digest arrives on the returned receiver (which closes
    /// without a value if reading failed: the error is returned here).
    pub fn hash(&self, r: &mut impl Read) -> io::Result<Receiver<Md5Sum>> {
        let (block_tx, block_rx): (SyncSender<(Vec<u8>, usize)>, _) = mpsc::sync_channel(QUEUE);
        let (reply_tx, reply_rx) = mpsc::channel();
        self.jobs
            .send((block_rx, reply_tx))
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
        Ok(reply_rx)
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
