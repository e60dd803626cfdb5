//! Transfers run N at a time inside a window: sol-sync's uploads and sol-pull's downloads.
//! No transfer starts after the deadline; past the hard limit (or on SIGINT/SIGTERM) the
//! running ones get SIGTERM, which s3-mput answers by aborting its upload (nothing stored)
//! and s3-mget by leaving its output unfinished.

use std::fs::File;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use crate::common;

/// How one transfer ended.
pub enum Ended<T> {
    Done(T),
    Failed(String),
    /// Never started: the deadline had passed, or the run was interrupted.
    NotStarted,
    /// Cut by the hard limit or a signal (why), with what the last tool said of it.
    Cut(&'static str, String),
}

/// When transfers may start, and when the running ones are cut.
#[derive(Clone, Copy)]
pub struct Window {
    pub deadline: Option<Instant>,
    pub hard: Option<Instant>,
}

impl Window {
    pub fn open() -> Window {
        Window {
            deadline: None,
            hard: None,
        }
    }

    fn closed(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn cut(&self) -> Option<&'static str> {
        if common::stopped() {
            return Some("interrupted");
        }
        self.hard
            .filter(|&h| Instant::now() >= h)
            .map(|_| "the hard limit")
    }
}

/// Why a step of a transfer stopped short.
pub enum Stop {
    Failed(String),
    Cut(&'static str, String),
}

impl From<anyhow::Error> for Stop {
    fn from(e: anyhow::Error) -> Stop {
        Stop::Failed(format!("{e:#}"))
    }
}

/// Run `work` on each item, `n` at a time, within `window`; the outcomes in item order.
pub fn run_all<I: Sync, T: Send>(
    items: &[I],
    n: usize,
    window: Window,
    work: impl Fn(&I, &Window) -> Result<T, Stop> + Sync,
) -> Vec<Ended<T>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Ended<T>>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..n.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let ended = if window.closed() || window.cut().is_some() {
                    Ended::NotStarted
                } else {
                    match work(item, &window) {
                        Ok(t) => Ended::Done(t),
                        Err(Stop::Failed(why)) => Ended::Failed(why),
                        Err(Stop::Cut(why, said)) => Ended::Cut(why, said),
                    }
                };
                results.lock().expect("results")[i] = Some(ended);
            });
        }
    });
    let results = results.into_inner().expect("results");
    results
        .into_iter()
        .map(|r| r.unwrap_or(Ended::NotStarted))
        .collect()
}

/// A started tool: its process and the file its stderr goes to.
pub struct Tool {
    pub child: Child,
    stderr: File,
    name: String,
}

impl Tool {
    /// Start C with stderr to a temporary file (read when it fails).
    pub fn start(mut c: Command) -> Result<Tool> {
        let name = c.get_program().to_string_lossy().into_owned();
        let stderr = tempfile::tempfile()?;
        let child = c
            .stderr(Stdio::from(stderr.try_clone()?))
            .spawn()
            .map_err(|e| anyhow!("{name}: {e}"))?;
        Ok(Tool {
            child,
            stderr,
            name,
        })
    }

    /// The first line the tool wrote on stderr (its error), or that it failed.
    pub fn said(&mut self, status: ExitStatus) -> String {
        use std::io::Seek;
        let mut text = String::new();
        let _ = self.stderr.rewind();
        let _ = self.stderr.read_to_string(&mut text);
        match text.lines().find(|l| !l.trim().is_empty()) {
            Some(line) => line.to_string(),
            None => format!("{} failed ({status})", self.name),
        }
    }
}

/// Wait for every tool; past the window's hard limit (or on a signal) each gets SIGTERM and
/// the wait is a `Stop::Cut` with the last tool's first line (s3-mput says whether the
/// object was stored before the signal). A tool that failed is `Stop::Failed` with its last line
/// (the first failed tool's, in the order given).
pub fn wait(tools: &mut [Tool], window: &Window) -> Result<(), Stop> {
    let mut status: Vec<Option<ExitStatus>> = tools.iter().map(|_| None).collect();
    loop {
        for (t, s) in tools.iter_mut().zip(status.iter_mut()) {
            if s.is_none() {
                *s = t.child.try_wait().map_err(|e| anyhow!("{}: {e}", t.name))?;
            }
        }
        if status.iter().all(Option::is_some) {
            break;
        }
        if let Some(why) = window.cut() {
            for (t, s) in tools.iter_mut().zip(&status) {
                if s.is_none() {
                    // SAFETY: a signal to our own child, which has not been reaped yet.
                    unsafe { libc::kill(t.child.id() as i32, libc::SIGTERM) };
                }
            }
            let mut said = String::new();
            for t in tools.iter_mut() {
                if let Ok(s) = t.child.wait() {
                    said = t.said(s);
                }
            }
            return Err(Stop::Cut(why, said));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The first tool that failed of itself: one that died of SIGPIPE (status 141 or the
    // signal) only lost its reader, whose own failure is the cause.
    let piped = |s: &ExitStatus| {
        use std::os::unix::process::ExitStatusExt;
        s.signal() == Some(libc::SIGPIPE) || s.code() == Some(141)
    };
    let status: Vec<ExitStatus> = status.into_iter().map(|s| s.expect("waited")).collect();
    let failed = (status.iter().enumerate())
        .filter(|(_, s)| !s.success())
        .min_by_key(|(_, s)| piped(s));
    match failed {
        Some((i, s)) => Err(Stop::Failed(tools[i].said(*s))),
        None => Ok(()),
    }
}
