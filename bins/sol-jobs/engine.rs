//! The job engine: GNU parallel runs one per-sol command for each sol, here or on the hosts
//! of an sshlogin file, and each prints its row into the work directory's `rows`.
//!
//! INT or TERM stops every job (each stops its stages, aborts its upload, removes its
//! staging directory), and so does this program's death (parallel's parent-death signal).
//! With hosts, the sols of a host that was lost (no row: ssh ended 255, or the job was
//! killed) run once more on the other hosts, between two calls of the before-retry step
//! (sol-backup: abort the sol's pending uploads), and the report's head says so. A sol that
//! still has no row gets one: INTERRUPTED after INT or TERM, else FAILED with how its
//! command ended.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, Result};

use crate::common::{self, say, Work};

pub struct Engine<'a> {
    pub work: &'a Work,
    pub jobs: u32,
    pub hosts: Option<PathBuf>,
    /// The per-sol command and its arguments; `{}` is the entry (a sol, or a directory
    /// whose last name is the sol).
    pub cmd: Vec<OsString>,
    /// sol-backup: the prefixes (one per target) under which a lost sol's pending uploads
    /// are aborted.
    pub abort_under: Vec<String>,
    /// The field of a row that progress counts as bytes.
    pub bytes_field: usize,
    /// INT, TERM or HUP came, or GNU parallel was ended by one.
    pub interrupted: bool,
    /// How each sol's job ended last: (lost host or "", in words, ended by a signal).
    how: HashMap<String, (String, String, bool)>,
}

/// The sol of an entry: its last name.
pub fn sol_of(entry: &OsString) -> String {
    let b = entry.as_bytes();
    let name = b.rsplit(|&c| c == b'/').next().unwrap_or(b);
    String::from_utf8_lossy(name).into_owned()
}

impl<'a> Engine<'a> {
    pub fn new(
        work: &'a Work,
        jobs: u32,
        hosts: Option<PathBuf>,
        cmd: Vec<OsString>,
    ) -> Engine<'a> {
        Engine {
            work,
            jobs,
            hosts,
            cmd,
            abort_under: Vec::new(),
            bytes_field: 5,
            interrupted: false,
            how: HashMap::new(),
        }
    }

    /// Every entry to a row (see the module's text).
    pub fn run(&mut self, entries: &[OsString]) -> Result<()> {
        let hosts = self.hosts.clone();
        // INT, TERM or HUP before the jobs began: none begins.
        self.interrupted |= common::stopped();
        if !self.interrupted {
            self.pass(entries, hosts.as_deref())?;
        }
        let missing = self.missing(entries)?;
        let lost: Vec<OsString> = missing
            .iter()
            .filter(|e| self.lost_host(e).is_some())
            .cloned()
            .collect();
        if let (Some(hosts), false, false) = (&hosts, lost.is_empty(), self.interrupted) {
            let gone: HashSet<String> = lost.iter().filter_map(|e| self.lost_host(e)).collect();
            let left = self.hosts_left(hosts, &gone)?;
            if let Some(left) = left {
                let mut gone: Vec<_> = gone.into_iter().collect();
                gone.sort();
                let names: Vec<String> = lost.iter().map(sol_of).collect();
                self.work.append(
                    "engine",
                    &format!(
                        "retried on another host (lost: {}): {}\n",
                        gone.join(" "),
                        names.join(" ")
                    ),
                )?;
                self.before_retry(&names);
                self.pass(&lost, Some(&left))?;
                // Again after the retry: what a lost host still running began meanwhile.
                self.before_retry(&names);
            }
        }
        for e in self.missing(entries)? {
            self.no_result(&e)?;
        }
        Ok(())
    }

    fn lost_host(&self, entry: &OsString) -> Option<String> {
        self.how
            .get(&sol_of(entry))
            .map(|h| h.0.clone())
            .filter(|h| !h.is_empty())
    }

    /// The hosts file without the lost hosts, or None when none is left.
    fn hosts_left(&self, hosts: &Path, gone: &HashSet<String>) -> Result<Option<PathBuf>> {
        let text = fs::read_to_string(hosts)?;
        let mut left = String::new();
        let mut any = false;
        for line in text.lines() {
            let host = line
                .split_once('/')
                .filter(|(n, _)| n.bytes().all(|c| c.is_ascii_digit()))
                .map_or(line, |x| x.1);
            if gone.contains(host) {
                continue;
            }
            any |= !(line.is_empty() || line.starts_with('#'));
            left.push_str(line);
            left.push('\n');
        }
        let path = self.work.path("hosts");
        fs::write(&path, left)?;
        Ok(any.then_some(path))
    }

    /// sol-backup: abort the sols' pending uploads, so that a lost host still alive can no
    /// longer complete one and replace the archive stored by the retry.
    fn before_retry(&self, sols: &[String]) {
        for under in &self.abort_under {
            self.abort_each(under, sols);
        }
    }

    fn abort_each(&self, under: &str, sols: &[String]) {
        for sol in sols {
            common::abort_uploads(
                &format!("{under}/{sol}.tar.gz.sc"),
                "0s",
                &format!("{sol}: warning: aborting its pending uploads before the retry"),
            );
        }
    }

    /// The entries whose sol has no row yet.
    fn missing(&self, entries: &[OsString]) -> Result<Vec<OsString>> {
        let rows = fs::read(self.work.path("rows"))?;
        let seen: HashSet<&[u8]> = rows
            .split(|&c| c == b'\n')
            .filter_map(|l| l.split(|&c| c == b'\t').next())
            .collect();
        Ok(entries
            .iter()
            .filter(|e| !seen.contains(sol_of(e).as_bytes()))
            .cloned()
            .collect())
    }

    /// A row for a sol whose command printed none.
    fn no_result(&self, entry: &OsString) -> Result<()> {
        let sol = sol_of(entry);
        let how = self.how.get(&sol);
        if self.interrupted || how.is_some_and(|h| h.2) {
            return self.work.row(&sol, "INTERRUPTED", 130, "");
        }
        let cmd = self.cmd.first().map(sol_of).unwrap_or_default();
        let words = how.map_or("GNU parallel recorded no end for it", |h| h.1.as_str());
        let why = format!("{cmd} ended without a result ({words})");
        say(format!("{sol}: {why}"));
        self.work.row(&sol, "FAILED", 1, &why)
    }

    /// One pass of GNU parallel over ENTRIES.
    fn pass(&mut self, entries: &[OsString], hosts: Option<&Path>) -> Result<()> {
        let list = self.work.path("list");
        let mut text = Vec::new();
        for e in entries {
            text.extend_from_slice(e.as_bytes());
            text.push(0);
        }
        fs::write(&list, text)?;
        let joblog = self.work.path("joblog");
        let _ = fs::remove_file(&joblog);
        let mut child = self.spawn(&list, &joblog, hosts)?;
        let relay = relay_stderr(child.stderr.take());
        let mut progress = Progress::new(self.work, entries.len(), self.bytes_field);
        let mut seen = 1;
        let mut forwarded = false;
        let status = loop {
            if let Some(st) = child.try_wait()? {
                break st;
            }
            if common::stopped() && !forwarded {
                self.interrupted = true;
                forwarded = true;
                // SAFETY: a signal to our own child.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            }
            std::thread::sleep(Duration::from_millis(100));
            progress.show();
            if hosts.is_some() {
                seen = self.lost_now(entries, &joblog, seen);
            }
        };
        let _ = relay.join();
        progress.show();
        // GNU parallel ended by INT, TERM or HUP (sent to the whole group, it may come
        // before ours): the run was interrupted.
        if matches!(status.code(), Some(129 | 130 | 143))
            || matches!(status.signal(), Some(1 | 2 | 15))
        {
            self.interrupted = true;
        }
        self.record_ends(entries, &joblog);
        Ok(())
    }

    /// How each job of this pass ended (the joblog's sequence numbers are ENTRIES' order).
    fn record_ends(&mut self, entries: &[OsString], joblog: &Path) {
        for (seq, host, st, sig) in joblog_lines(joblog) {
            let Some(e) = entries.get(seq.wrapping_sub(1)) else {
                continue;
            };
            let intr = matches!(st, 129 | 130 | 143) || matches!(sig, 1 | 2 | 15);
            let lost = if (st == 255 || sig != 0) && !intr {
                host.clone()
            } else {
                String::new()
            };
            let place = if host.is_empty() {
                "this host".to_string()
            } else {
                host
            };
            self.how.insert(
                sol_of(e),
                (lost, format!("status {st}, signal {sig}, on {place}"), intr),
            );
        }
    }

    fn spawn(&self, list: &Path, joblog: &Path, hosts: Option<&Path>) -> Result<Child> {
        let mut c = Command::new("setpriv");
        c.args([
            "--pdeathsig",
            "TERM",
            "--",
            "parallel",
            "-0",
            "-q",
            "--line-buffer",
            "--will-cite",
        ]);
        c.arg("-j")
            .arg(self.jobs.to_string())
            .arg("--joblog")
            .arg(joblog);
        c.args(["--termseq", "TERM,30000,KILL,25"]);
        if let Some(hosts) = hosts {
            // Each sol runs on one of the hosts, with this run's PATH and S3 and sol settings.
            c.arg("--sshloginfile").arg(hosts).args([
                "--env",
                "PATH",
                "--env",
                "SOL_HOST_FROM_SSHLOGIN",
            ]);
            for (k, _) in std::env::vars_os() {
                let k = k.to_string_lossy();
                if k.starts_with("AWS_") || k.starts_with("SOL_") {
                    c.args(["--env", &k]);
                }
            }
        }
        c.arg("-a")
            .arg(list)
            .args(["setpriv", "--pdeathsig", "TERM", "--"])
            .args(&self.cmd);
        c.env(
            "SOL_HOST_FROM_SSHLOGIN",
            if hosts.is_some() { "1" } else { "" },
        );
        let rows = fs::OpenOptions::new()
            .append(true)
            .open(self.work.path("rows"))?;
        c.stdin(Stdio::null()).stdout(rows).stderr(Stdio::piped());
        c.spawn()
            .map_err(|e| anyhow!("cannot run GNU parallel: {e}"))
    }

    /// Jobs that ended lost (ssh's 255 or a signal) since line SEEN of the joblog: the
    /// before-retry step for their sols at once, while the pass goes on (a lost host still
    /// running gets less time to finish). Returns the lines seen.
    fn lost_now(&self, entries: &[OsString], joblog: &Path, seen: usize) -> usize {
        let Ok(text) = fs::read_to_string(joblog) else {
            return seen;
        };
        let lines: Vec<&str> = text.lines().collect();
        let mut lost = Vec::new();
        for line in lines.iter().skip(seen) {
            if let Some((seq, _, st, sig)) = joblog_line(line) {
                if st == 255 || sig != 0 {
                    if let Some(e) = entries.get(seq.wrapping_sub(1)) {
                        lost.push(sol_of(e));
                    }
                }
            }
        }
        if !lost.is_empty() {
            self.before_retry(&lost);
        }
        lines.len().max(seen)
    }
}

/// The joblog's lines: sequence number, host, exit value, signal.
fn joblog_lines(joblog: &Path) -> Vec<(usize, String, i64, i64)> {
    fs::read_to_string(joblog)
        .unwrap_or_default()
        .lines()
        .filter_map(joblog_line)
        .collect()
}

fn joblog_line(line: &str) -> Option<(usize, String, i64, i64)> {
    let f: Vec<&str> = line.split('\t').collect();
    let seq = f.first()?.parse().ok()?;
    Some((
        seq,
        f.get(1)?.to_string(),
        f.get(6)?.parse().ok()?,
        f.get(7)?.parse().ok()?,
    ))
}

/// GNU parallel's and the jobs' stderr, each line prefixed with the script's name unless a
/// tool or script already named itself.
fn relay_stderr(pipe: Option<std::process::ChildStderr>) -> std::thread::JoinHandle<()> {
    let prog = common::prog();
    std::thread::spawn(move || {
        let Some(pipe) = pipe else { return };
        let mut err = std::io::stderr();
        for line in BufReader::new(pipe).split(b'\n').map_while(Result::ok) {
            let named = line.iter().position(|&c| c == b':').is_some_and(|i| {
                line.get(i + 1) == Some(&b' ')
                    && line[..i]
                        .iter()
                        .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            });
            let mut out = Vec::new();
            if !named || line.starts_with(b"parallel: ") {
                out.extend_from_slice(format!("{prog}: ").as_bytes());
            }
            out.extend_from_slice(&line);
            out.push(b'\n');
            let _ = err.write_all(&out);
        }
    })
}

/// On a terminal (stderr), each row as its sol finishes, with sols done of all, bytes and
/// an ETA; nothing under cron.
struct Progress {
    rows: Option<fs::File>,
    all: usize,
    done: usize,
    bytes: u64,
    field: usize,
    partial: Vec<u8>,
}

impl Progress {
    fn new(work: &Work, all: usize, field: usize) -> Progress {
        // SAFETY: isatty only looks at the descriptor.
        let tty = unsafe { libc::isatty(2) } == 1;
        let rows = fs::File::open(work.path("rows"))
            .ok()
            .filter(|_| tty)
            .and_then(|mut f| {
                f.seek(SeekFrom::End(0)).ok()?;
                Some(f)
            });
        Progress {
            rows,
            all,
            done: 0,
            bytes: 0,
            field,
            partial: Vec::new(),
        }
    }

    fn show(&mut self) {
        let Some(f) = &mut self.rows else { return };
        let mut new = Vec::new();
        if f.read_to_end(&mut new).is_err() {
            return;
        }
        self.partial.extend_from_slice(&new);
        while let Some(i) = self.partial.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line[..i]).into_owned();
            let r: Vec<&str> = line.split('\t').collect();
            self.done += 1;
            self.bytes += r
                .get(self.field)
                .and_then(|b| b.parse::<u64>().ok())
                .unwrap_or(0);
            let t = common::elapsed_ms() / 1000;
            let eta = t * (self.all.saturating_sub(self.done)) as u64 / self.done as u64;
            say(format!(
                "{} {} on {}: {} of {} sols, {} MB, ETA {eta}s",
                r[0],
                r.get(2).unwrap_or(&""),
                r.get(1).unwrap_or(&""),
                self.done,
                self.all,
                self.bytes / 1_000_000
            ));
        }
    }
}
