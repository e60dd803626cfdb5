//! The stdin side: a thread fills pooled part buffers and hands them to the uploader, so
//! reading overlaps uploading and memory stays at (concurrency + 1) parts.

use std::io::{self, Read};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sol_common::progress::Progress;
use sol_common::stdio::read_full;
use sol_s3::part_size;

/// Bytes read between checks of --limit-rate.
const SLICE: usize = 1 << 20;

pub struct Part {
    /// 1-based part number.
    pub number: u64,
    /// The buffer (its length may exceed `len`; only `..len` is data).
    pub data: Vec<u8>,
    pub len: usize,
}

/// What the whole stream looked like, for the sol-crypt completeness check.
#[derive(Default)]
pub struct Summary {
    pub total: u64,
    /// The first bytes (up to a sol-crypt header).
    pub head: Vec<u8>,
    /// The last 16 bytes.
    pub tail: Vec<u8>,
}

pub struct Config {
    pub part_size: u64,
    pub limit_rate: Option<u64>,
    pub progress: bool,
}

pub fn spawn(
    mut input: impl Read + Send + 'static,
    cfg: Config,
    pool: Receiver<Vec<u8>>,
    parts: tokio::sync::mpsc::Sender<Part>,
) -> JoinHandle<io::Result<Summary>> {
    std::thread::spawn(move || {
        let mut sum = Summary::default();
        let mut progress = Progress::new("s3-mput", cfg.progress);
        let start = Instant::now();
        for number in 1u64.. {
            let size = part_size(cfg.part_size, number) as usize;
            let Ok(mut buf) = pool.recv() else { break };
            if buf.len() < size {
                buf.resize(size, 0);
            }
            let mut len = 0;
            while len < size {
                let end = (len + SLICE).min(size);
                let want = end - len;
                let n = read_full(&mut input, &mut buf[len..end])?;
                len += n;
                progress.add(n as u64);
                if let Some(rate) = cfg.limit_rate {
                    let due =
                        Duration::from_secs_f64((sum.total + len as u64) as f64 / rate as f64);
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                if n < want {
                    break; // EOF
                }
            }
            let data = &buf[..len];
            if sum.head.len() < 128 {
                let take = (128 - sum.head.len()).min(len);
                sum.head.extend_from_slice(&data[..take]);
            }
            sum.tail.extend_from_slice(&data[len.saturating_sub(16)..]);
            let excess = sum.tail.len().saturating_sub(16);
            sum.tail.drain(..excess);
            sum.total += len as u64;
            let eof = len < size;
            if len == 0 && number > 1 {
                break;
            }
            if parts
                .blocking_send(Part {
                    number,
                    data: buf,
                    len,
                })
                .is_err()
            {
                break; // the uploader stopped; it reports why
            }
            if eof {
                break;
            }
        }
        progress.done();
        Ok(sum)
    })
}
