//! Results in order from a pool of worker threads: the building block of sol-tar's
//! read-ahead, `sol-zip -d` and tar-md5's hashers (docs/ARCHITECTURE.md says why s3-mget's
//! async ranges are not on it).
//!
//! A stage that reads a stream in order hands out the slow part of each item (reading a
//! small file, inflating a member, hashing a file) to [`Workers`], and gets a [`Ticket`] for
//! each result at once. It passes the tickets on in stream order through a bounded channel
//! of its own, and the stage behind it waits on each ticket in that order: the workers run
//! ahead on the items queued, the output stays in stream order, and what is in flight is
//! bounded by the two queues (the jobs waiting for a worker here, the tickets there).

use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

/// The result of one job, once a worker has done it. `recv()` fails only when the worker
/// died (or the job was never run).
pub type Ticket<R> = Receiver<R>;

/// A ticket that holds its result already (an item that needs no worker).
pub fn ready<R>(result: R) -> Ticket<R> {
    let (tx, rx) = mpsc::channel();
    let _ = tx.send(result);
    rx
}

type Job<J, R> = (J, Sender<R>);

/// A fixed pool of threads applying one function to jobs.
pub struct Workers<J, R> {
    jobs: Jobs<J, R>,
    threads: Vec<JoinHandle<()>>,
}

/// Where jobs are queued; cloned for the thread that submits them.
pub struct Jobs<J, R>(SyncSender<Job<J, R>>);

impl<J, R> Clone for Jobs<J, R> {
    fn clone(&self) -> Self {
        Jobs(self.0.clone())
    }
}

impl<J, R> Jobs<J, R> {
    /// Queue a job (waiting while `queue` jobs already wait for a worker) and return the
    /// ticket of its result; the job back when the workers are gone.
    pub fn submit(&self, job: J) -> Result<Ticket<R>, J> {
        let (tx, rx) = mpsc::channel();
        match self.0.send((job, tx)) {
            Ok(()) => Ok(rx),
            Err(mpsc::SendError((job, _))) => Err(job),
        }
    }
}

impl<J: Send + 'static, R: Send + 'static> Workers<J, R> {
    /// `threads` workers (at least one). Each makes its own state with `init` (a
    /// decompressor, a scratch buffer) and runs `work(&mut state, job)` for the jobs it
    /// takes; at most `queue` jobs wait for a worker.
    pub fn new<S, I, W>(threads: usize, queue: usize, init: I, work: W) -> Workers<J, R>
    where
        I: Fn() -> S + Send + Sync + 'static,
        W: Fn(&mut S, J) -> R + Send + Sync + 'static,
    {
        let (tx, rx) = mpsc::sync_channel::<Job<J, R>>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let init = Arc::new(init);
        let work = Arc::new(work);
        let threads = (0..threads.max(1))
            .map(|_| {
                let (rx, init, work) = (rx.clone(), init.clone(), work.clone());
                thread::spawn(move || {
                    let mut state = init();
                    loop {
                        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok((job, reply)) = job else { return };
                        // A ticket dropped unread is no reason to stop.
                        let _ = reply.send(work(&mut state, job));
                    }
                })
            })
            .collect();
        Workers {
            jobs: Jobs(tx),
            threads,
        }
    }

    /// See [`Jobs::submit`].
    pub fn submit(&self, job: J) -> Result<Ticket<R>, J> {
        self.jobs.submit(job)
    }

    /// A handle to queue jobs from another thread.
    pub fn jobs(&self) -> Jobs<J, R> {
        self.jobs.clone()
    }

    /// Take no more jobs, and wait until the workers have done those queued (once every
    /// [`Jobs`] handle is dropped too).
    pub fn join(self) {
        drop(self.jobs);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn results_come_in_submission_order_whatever_finishes_first() {
        let workers = Workers::new(
            4,
            4,
            || (),
            |_, n: u64| {
                thread::sleep(Duration::from_millis(20 - n * 2));
                n * 10
            },
        );
        let tickets: Vec<_> = (0..8).map(|n| workers.submit(n).unwrap()).collect();
        let got: Vec<u64> = tickets.iter().map(|t| t.recv().unwrap()).collect();
        assert_eq!(got, (0..8).map(|n| n * 10).collect::<Vec<_>>());
        workers.join();
        assert_eq!(ready(7).recv(), Ok(7));
    }

    #[test]
    fn each_worker_keeps_its_state() {
        let workers = Workers::new(
            1,
            1,
            || 0u32,
            |seen, ()| {
                *seen += 1;
                *seen
            },
        );
        let a = workers.submit(()).unwrap();
        let b = workers.submit(()).unwrap();
        assert_eq!((a.recv(), b.recv()), (Ok(1), Ok(2)));
    }
}
