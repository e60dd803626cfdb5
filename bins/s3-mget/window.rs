//! The ranges in order: a window of `--concurrency` ranges in flight as tokio tasks, and the
//! writer thread it feeds. (Not `sol_common::ordered`: that pool's workers are threads, and
//! a thread per range would hold a connection's worth of waiting; see docs/ARCHITECTURE.md.)

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use md5::{Digest, Md5};
use sol_common::pool::Pool;
use sol_common::progress::Progress;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::fetch::{fetch, Ctx};

/// The ranges in flight, at most `limit`, started in order and written in that order: the
/// front range's blocks go to the writer as they fill, the others' wait in their channels
/// (at most one range each) until their range is at the front.
pub(crate) struct Window {
    ctx: Arc<Ctx>,
    /// The ranges not started yet, in order.
    todo: std::vec::IntoIter<(u64, u64)>,
    /// How many ranges may be in flight at once (--concurrency).
    limit: usize,
    /// Whether each range computes its MD5 on the way (a multipart ETag to check).
    hash: bool,
    /// The ranges started and not yet written, the front one first.
    in_flight: VecDeque<InFlight>,
    /// The MD5s of the ranges written so far, in order (only with `hash`).
    md5s: Vec<[u8; 16]>,
}

/// One range being fetched: its blocks as they fill, and the task that fetches it.
struct InFlight {
    blocks: mpsc::UnboundedReceiver<Vec<u8>>,
    task: JoinHandle<anyhow::Result<Option<[u8; 16]>>>,
}

impl Window {
    /// A window over `ranges`, `limit` of them in flight at once; with `hash`, each range's
    /// MD5 is computed and kept.
    pub(crate) fn new(ctx: Arc<Ctx>, ranges: Vec<(u64, u64)>, limit: usize, hash: bool) -> Self {
        Window {
            ctx,
            todo: ranges.into_iter(),
            limit,
            hash,
            in_flight: VecDeque::new(),
            md5s: Vec::new(),
        }
    }

    /// Write every range through `writer`, in order. The outer error is a fetch task that
    /// died; the inner one the first range that failed. It stops early (Ok) when the writer
    /// is gone: the writer then says why.
    pub(crate) async fn run(&mut self, writer: &Writer) -> anyhow::Result<anyhow::Result<()>> {
        loop {
            self.fill();
            let Some(front) = self.in_flight.front_mut() else {
                return Ok(Ok(())); // every range written
            };
            if !writer.pass(&mut front.blocks).await {
                return Ok(Ok(())); // the writer failed; it says why
            }
            if let Err(e) = self.retire().await? {
                return Ok(Err(e));
            }
        }
    }

    /// The MD5s of the ranges written, in order (empty without `hash`).
    pub(crate) fn md5s(&self) -> &[[u8; 16]] {
        &self.md5s
    }

    /// Start the next ranges, in order, until `limit` are in flight or none is left.
    fn fill(&mut self) {
        while self.in_flight.len() < self.limit {
            let Some((start, end)) = self.todo.next() else {
                break;
            };
            let (tx, blocks) = mpsc::unbounded_channel();
            let (ctx, hash) = (self.ctx.clone(), self.hash);
            let task = tokio::spawn(async move { fetch(&ctx, start, end, &tx, hash).await });
            self.in_flight.push_back(InFlight { blocks, task });
        }
    }

    /// Take off the front range, all its blocks passed on, and keep its MD5. The outer error
    /// is its task that died; the inner one the range's own failure.
    async fn retire(&mut self) -> anyhow::Result<anyhow::Result<()>> {
        let front = self.in_flight.pop_front().expect("the front range");
        match front.task.await.context("a download task died")? {
            Ok(md5) => {
                self.md5s.extend(md5);
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(e)),
        }
    }
}

/// The writer thread: blocking writes to stdout, in order, and the whole-object MD5. It is
/// fed blocks as they fill from the network, so the next stage starts at once instead of
/// after the first range is complete.
pub(crate) struct Writer {
    /// The blocks to write (4 wait at most); closed to finish.
    tx: mpsc::Sender<Vec<u8>>,
    /// The thread: the whole object's MD5 (if asked for), or why writing failed.
    thread: std::thread::JoinHandle<anyhow::Result<Option<[u8; 16]>>>,
}

impl Writer {
    /// Start the thread writing to `out`, each block given back to `pool` once written;
    /// `whole`: hash everything; `progress_on`: show progress on stderr.
    pub(crate) fn spawn(
        mut out: impl Write + Send + 'static,
        pool: Pool,
        whole: bool,
        progress_on: bool,
    ) -> Writer {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4);
        let thread = std::thread::spawn(move || -> anyhow::Result<Option<[u8; 16]>> {
            let mut md5 = whole.then(Md5::new);
            let mut progress = Progress::new("s3-mget", progress_on);
            while let Some(chunk) = rx.blocking_recv() {
                out.write_all(&chunk).context("writing output")?;
                if let Some(h) = md5.as_mut() {
                    h.update(&chunk);
                }
                progress.add(chunk.len() as u64);
                pool.give(chunk);
            }
            out.flush().context("writing output")?;
            progress.done();
            Ok(md5.map(|h| h.finalize().into()))
        });
        Writer { tx, thread }
    }

    /// Pass on a range's blocks as they arrive, until it has sent them all; false when the
    /// writer is gone (it failed, and says why).
    async fn pass(&self, blocks: &mut mpsc::UnboundedReceiver<Vec<u8>>) -> bool {
        while let Some(block) = blocks.recv().await {
            if self.tx.send(block).await.is_err() {
                return false;
            }
        }
        true
    }

    /// No more blocks: wait until the thread has written those queued. The whole object's
    /// MD5 (if asked for), or the writer's error.
    pub(crate) fn finish(self) -> anyhow::Result<Option<[u8; 16]>> {
        drop(self.tx);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the writer thread died"))?
    }
}
