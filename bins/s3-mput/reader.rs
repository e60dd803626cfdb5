//! The stdin side: a thread fills pooled part buffers and hands them to the uploader, so
//! reading overlaps uploading and memory stays at (concurrency + 1) parts.
//!
//! The buffers come from `sol_common::pool::Pool`, which reuses them but never makes a taker
//! wait; the bound is a semaphore of (concurrency + 1) places: the reader takes a place before
//! a buffer, and a place is freed once its part's buffer is back in the pool (or dropped).

use std::io::{self, Read};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use md5::{Digest, Md5};
use sol_common::pool::Pool;
use sol_common::progress::Progress;
use sol_common::stdio::read_full;
use sol_s3::{part_size, S3Url};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// Bytes read between checks of --limit-rate.
const SLICE: usize = 1 << 20;

/// One part of the stream, in a buffer that holds one of the places in flight. Cloned for
/// each destination: the bytes are shared, and the place is freed when the last clone is
/// dropped.
#[derive(Clone)]
pub struct Part {
    /// 1-based part number.
    pub number: u64,
    /// The buffer (its length may exceed `len`; only `..len` is data).
    pub data: Bytes,
    pub len: usize,
    /// Its place among the buffers in flight (held, not read: dropping the last clone frees
    /// it).
    _place: Arc<OwnedSemaphorePermit>,
    /// The MD5 of its data, computed once by whichever destination asks first.
    md5: Arc<OnceLock<[u8; 16]>>,
}

impl Part {
    /// The MD5 of the part's data.
    pub fn md5(&self) -> [u8; 16] {
        *self
            .md5
            .get_or_init(|| Md5::digest(&self.data[..self.len]).into())
    }

    /// Done with this clone: the last one gives the buffer back for the next part (without a
    /// copy; the pool makes a fresh one when that is not possible).
    pub fn recycle(self, buffers: &Buffers) {
        if let Ok(m) = self.data.try_into_mut() {
            buffers.pool.give(Vec::from(m));
        }
    }
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

impl Summary {
    /// Note the next `data` of the stream.
    fn add(&mut self, data: &[u8]) {
        if self.head.len() < 128 {
            let take = (128 - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
        }
        self.tail
            .extend_from_slice(&data[data.len().saturating_sub(16)..]);
        let excess = self.tail.len().saturating_sub(16);
        self.tail.drain(..excess);
        self.total += data.len() as u64;
    }
}

/// How the reader reads: --part-size, --limit-rate, and whether to show progress.
pub struct Config {
    pub part_size: u64,
    pub limit_rate: Option<u64>,
    pub progress: bool,
}

/// The part buffers shared by the reader and every uploader: reused through the pool, at
/// most `places` of them out at once.
#[derive(Clone)]
pub struct Buffers {
    pool: Pool,
    places: Arc<Semaphore>,
}

impl Buffers {
    /// Buffers of which at most `places` are out (being filled, queued or uploading) at once.
    pub fn new(places: usize) -> Buffers {
        Buffers {
            pool: Pool::new(Vec::new),
            places: Arc::new(Semaphore::new(places)),
        }
    }

    /// Wait (blocking the thread) for a free place, then a buffer; None once closed.
    fn take_blocking(&self, rt: &Handle) -> Option<(Vec<u8>, OwnedSemaphorePermit)> {
        let place = rt.block_on(self.places.clone().acquire_owned()).ok()?;
        Some((self.pool.take(), place))
    }

    /// Buffers for `n` destinations of `concurrency` parts each: (concurrency + 1) places
    /// for one; for several, `window` more (the parts a destination may fall behind the
    /// fastest before it is dropped) and one more (the part that drops it).
    pub fn for_destinations(n: usize, concurrency: usize, window: usize) -> Buffers {
        match n {
            1 => Buffers::new(concurrency + 1),
            _ => Buffers::new(concurrency + window + 2),
        }
    }

    /// No more buffers: a reader waiting for one stops.
    fn close(&self) {
        self.places.close();
    }
}

/// The uploader's end of the reader: the parts as they are read, then the stream's summary.
pub struct Feed {
    parts: mpsc::Receiver<Part>,
    thread: Option<JoinHandle<io::Result<Summary>>>,
    buffers: Buffers,
}

impl Feed {
    /// Start the thread reading `input` into parts, in buffers from `buffers`.
    pub fn start(input: impl Read + Send + 'static, cfg: Config, buffers: Buffers) -> Feed {
        let (tx, parts) = mpsc::channel::<Part>(1);
        let reader = Reader {
            input,
            progress: Progress::new("s3-mput", cfg.progress),
            cfg,
            sum: Summary::default(),
            start: Instant::now(),
        };
        let (rt, b) = (Handle::current(), buffers.clone());
        let thread = std::thread::spawn(move || reader.run(&b, &rt, &tx));
        Feed {
            parts,
            thread: Some(thread),
            buffers,
        }
    }

    /// The next part; None at the end of the stream (or when the reader failed: `finish`
    /// says why). Cancel-safe.
    pub async fn next(&mut self) -> Option<Part> {
        self.parts.recv().await
    }

    /// Wait for the reader: the stream's summary, or why reading it failed (`url`'s).
    pub fn finish(&mut self, url: &S3Url) -> anyhow::Result<Summary> {
        let thread = self.thread.take().context("the reader thread died")?;
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("the reader thread died"))?
            .with_context(|| format!("{url}: reading stdin"))
    }
}

impl Drop for Feed {
    /// The uploader stopped: so does a reader waiting for a buffer (or to hand one over).
    fn drop(&mut self) {
        self.buffers.close();
    }
}

/// The reading thread's state: stdin, the pace and progress, and what was read so far.
struct Reader<R> {
    input: R,
    cfg: Config,
    progress: Progress,
    sum: Summary,
    start: Instant,
}

impl<R: Read> Reader<R> {
    /// Read parts until EOF, or until the uploader stops taking them.
    fn run(
        mut self,
        buffers: &Buffers,
        rt: &Handle,
        parts: &mpsc::Sender<Part>,
    ) -> io::Result<Summary> {
        for number in 1u64.. {
            let size = part_size(self.cfg.part_size, number) as usize;
            let Some((mut data, place)) = buffers.take_blocking(rt) else {
                break;
            };
            if data.len() < size {
                data.resize(size, 0);
            }
            let len = self.fill(&mut data[..size])?;
            self.sum.add(&data[..len]);
            let eof = len < size;
            if len == 0 && number > 1 {
                break;
            }
            let part = Part {
                number,
                data: Bytes::from(data),
                len,
                _place: Arc::new(place),
                md5: Arc::default(),
            };
            if parts.blocking_send(part).is_err() {
                break; // the uploader stopped; it reports why
            }
            if eof {
                break;
            }
        }
        self.progress.done();
        Ok(self.sum)
    }

    /// Fill `buf` from stdin, no faster than --limit-rate: the bytes read (fewer at EOF).
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = buf.len();
        let mut len = 0;
        while len < size {
            let end = (len + SLICE).min(size);
            let want = end - len;
            let n = read_full(&mut self.input, &mut buf[len..end])?;
            len += n;
            self.progress.add(n as u64);
            self.pace(self.sum.total + len as u64);
            if n < want {
                break; // EOF
            }
        }
        Ok(len)
    }

    /// With --limit-rate, sleep until `read` bytes are due.
    fn pace(&self, read: u64) {
        if let Some(rate) = self.cfg.limit_rate {
            let due = Duration::from_secs_f64(read as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(self.start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_places_buffers_are_out_and_given_ones_come_back() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let buffers = Buffers::new(2);
        let (_, first) = buffers.take_blocking(rt.handle()).unwrap();
        let (_, _second) = buffers.take_blocking(rt.handle()).unwrap();
        assert_eq!(buffers.places.available_permits(), 0);
        let part = Part {
            number: 1,
            data: Bytes::from(vec![1, 2, 3]),
            len: 3,
            _place: Arc::new(first),
            md5: Arc::default(),
        };
        let other = part.clone();
        part.recycle(&buffers);
        assert_eq!(buffers.places.available_permits(), 0, "a clone holds it");
        other.recycle(&buffers);
        let (again, _third) = buffers.take_blocking(rt.handle()).unwrap();
        assert_eq!(again, vec![1, 2, 3]);
        buffers.close();
        assert!(buffers.take_blocking(rt.handle()).is_none());
    }

    #[test]
    fn the_summary_keeps_the_first_128_and_last_16_bytes() {
        let mut sum = Summary::default();
        let data: Vec<u8> = (0..=255).collect();
        sum.add(&data[..100]);
        sum.add(&data[100..110]);
        sum.add(&data[110..]);
        assert_eq!(sum.total, 256);
        assert_eq!(sum.head, &data[..128]);
        assert_eq!(sum.tail, &data[240..]);
        sum.add(&[]);
        assert_eq!(sum.tail, &data[240..]);
    }
}
