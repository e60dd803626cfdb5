//! What every driver needs: its name on stderr, signals, the checks of its operands, the
//! sol-crypt options, the work directory, one listing of a prefix and the server's clock.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Result};
use sol_common::Fail;

static PROG: OnceLock<&'static str> = OnceLock::new();
static T0: OnceLock<(Instant, String)> = OnceLock::new();
static STOP: AtomicBool = AtomicBool::new(false);
static SCRIPTS: OnceLock<PathBuf> = OnceLock::new();

/// The directory of the scripts (and of the per-sol commands): the script's --scripts, else
/// the one of this program.
pub fn set_scripts(given: Option<&Path>) {
    let dir = given.map(Path::to_path_buf).unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
            .unwrap_or_default()
    });
    let _ = SCRIPTS.set(dir);
}
pub fn scripts() -> PathBuf {
    SCRIPTS.get().cloned().unwrap_or_default()
}

pub fn set_prog(prog: &'static str) {
    let _ = PROG.set(prog);
    let _ = T0.set((Instant::now(), sol_common::time::rfc3339(now())));
}

/// The script this run speaks for: sol-backup, sol-audit or sol-restore.
pub fn prog() -> &'static str {
    PROG.get().copied().unwrap_or(crate::TOOL)
}

/// One line on stderr, `PROG: MESSAGE`.
pub fn say(message: impl std::fmt::Display) {
    sol_common::warn(prog(), message);
}

pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Fail::usage(message).into()
}

/// Seconds since the epoch on this host's clock.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// When this run started (RFC 3339 UTC), and milliseconds since.
pub fn started() -> String {
    T0.get()
        .map_or_else(|| sol_common::time::rfc3339(now()), |t| t.1.clone())
}
pub fn elapsed_ms() -> u64 {
    T0.get().map_or(0, |t| t.0.elapsed().as_millis() as u64)
}

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// INT, TERM and HUP set a flag the drivers look at: they stop their jobs, then report.
pub fn on_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}
pub fn stopped() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// This host's name, as bash's $HOSTNAME.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if rc != 0 || end == 0 {
        return "?".into();
    }
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// s3://BUCKET/PREFIX or PROFILE:s3://BUCKET/PREFIX without trailing slashes, or a usage
/// error.
pub fn check_url(url: &OsStr) -> Result<String> {
    let u = url.to_string_lossy();
    let (_, plain) = sol_common::target::split(&u);
    if !plain.starts_with("s3://") || plain.len() == 5 || url.to_str().is_none() {
        return Err(usage(format!(
            "'{u}': expected s3://BUCKET/PREFIX or PROFILE:s3://BUCKET/PREFIX"
        )));
    }
    Ok(u.trim_end_matches('/').to_string())
}

/// A path that reads the same on every host, and is never an option to another program.
pub fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    std::env::current_dir().unwrap_or_default().join(p)
}

/// A sol name from a listing: [A-Za-z0-9][A-Za-z0-9._-]* (the man pages say so).
pub fn listed_name_ok(name: &str) -> bool {
    let mut b = name.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
}

/// A sol name the operator typed: anything but empty, . and .., a slash, a backslash or a
/// control character.
pub fn operand_name_ok(name: &OsStr) -> bool {
    let b = name.as_bytes();
    !(b.is_empty()
        || b == b"."
        || b == b".."
        || b.iter()
            .any(|&c| c == b'/' || c == b'\\' || c < 0x20 || c == 0x7f))
}

/// --hosts FILE: readable, and each line (but comments) an sshlogin: [N/]HOST, or ":".
pub fn check_hosts(file: &Path) -> Result<()> {
    let f = file.display();
    let text = fs::read(file)
        .ok()
        .filter(|_| file.is_file())
        .ok_or_else(|| usage(format!("--hosts '{f}': not a readable file")))?;
    let mut hosts = 0;
    for (n, line) in String::from_utf8_lossy(&text).lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let host = match line.split_once('/') {
            Some((n, h))
                if !n.is_empty()
                    && n.bytes().all(|c| c.is_ascii_digit())
                    && n.bytes().any(|c| c != b'0') =>
            {
                h
            }
            _ => line,
        };
        if host.is_empty() || host.contains('/') || host.chars().any(char::is_whitespace) {
            return Err(usage(format!(
                "--hosts '{f}': line {}: '{line}' is not an sshlogin ([N/]HOST, or : for this host)",
                n + 1
            )));
        }
        hosts += 1;
    }
    if hosts == 0 {
        return Err(usage(format!("--hosts '{f}': no host in it")));
    }
    Ok(())
}

/// Each tool on PATH (the scripts put the tools' directory first), or one line, status 1.
pub fn need_tools(tools: &[&str]) -> Result<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for t in tools {
        if !std::env::split_paths(&path).any(|d| d.join(t).is_file()) {
            return Err(anyhow!(
                "'{t}' not found on PATH or beside {}",
                scripts().join(prog()).display()
            ));
        }
    }
    Ok(())
}

/// What sol-crypt is given: for opening archives (-k KEYFILE and/or -i IDENTITY, else
/// SOL_KEY_FILE and/or SOL_IDENTITY_FILE) or sealing them (-k and/or -R RECIPIENTS, else
/// SOL_KEY_FILE). Each file gets sol-crypt's own verdict before any work (unreadable,
/// malformed, readable by others): one line, status 1. Both variables are unset for the
/// jobs, so sol-crypt uses exactly what is passed. Paths are absolute (every host).
pub fn key_args(seal: bool, key: Option<&Path>, other: Option<&Path>) -> Result<Vec<OsString>> {
    let given = |p: Option<&Path>| p.filter(|p| !p.as_os_str().is_empty()).map(absolute);
    let from_env = |v: &str| {
        std::env::var_os(v)
            .filter(|s| !s.is_empty())
            .map(|s| absolute(Path::new(&s)))
    };
    let (mut k, mut o) = (given(key), given(other));
    if k.is_none() && o.is_none() {
        k = from_env("SOL_KEY_FILE");
        o = if seal {
            None
        } else {
            from_env("SOL_IDENTITY_FILE")
        };
    }
    std::env::remove_var("SOL_KEY_FILE");
    std::env::remove_var("SOL_IDENTITY_FILE");
    if k.is_none() && o.is_none() {
        return Err(usage(if seal {
            "a key file or recipients are required: -k KEYFILE (or SOL_KEY_FILE) or -R RECIPIENTS-FILE"
        } else {
            "a key file or an identity is required: -k KEYFILE or -i IDENTITY (or SOL_KEY_FILE, SOL_IDENTITY_FILE)"
        }));
    }
    let mut out = Vec::new();
    if let Some(k) = k {
        crypt_verdict("key file", &k, &["-e", "-k"])?;
        out.extend([OsString::from("-k"), k.into_os_string()]);
    }
    if let Some(o) = o {
        let (what, flag, check): (_, _, &[&str]) = if seal {
            ("recipients file", "-R", &["-e", "-R"])
        } else {
            ("identity file", "-i", &["recipient", "-i"])
        };
        crypt_verdict(what, &o, check)?;
        out.extend([OsString::from(flag), o.into_os_string()]);
    }
    Ok(out)
}

fn crypt_verdict(what: &str, file: &Path, args: &[&str]) -> Result<()> {
    if File::open(file).is_err() {
        return Err(anyhow!("{what} '{}': cannot read it", file.display()));
    }
    let mut c = Command::new("sol-crypt");
    c.args(args).arg(file).stdout(Stdio::null());
    run(c, |first| first.to_string())?;
    Ok(())
}

/// The run's work directory, TMPDIR/PROG.PID.XXXXXX, locked for as long as this run or
/// any process it started lives, removed when the run ends. One left by a run that was
/// killed (SIGKILL: nothing removed it) is removed by a later run once its owner is gone
/// and nothing holds its lock; a live run's never is.
pub struct Work {
    dir: tempfile::TempDir,
    _lock: File,
}

impl Work {
    pub fn new() -> Result<Work> {
        let tmp = std::env::temp_dir();
        sweep(&tmp);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}.{}.", prog(), std::process::id()))
            .rand_bytes(6)
            .tempdir_in(&tmp)
            .map_err(|e| anyhow!("cannot make a work directory in {}: {e}", tmp.display()))?;
        let lock = File::create(dir.path().join(".lock"))?;
        // Inherited by every process this run starts (no close-on-exec), like bash's.
        // SAFETY: plain fcntl and flock on a descriptor this function owns.
        unsafe {
            libc::fcntl(lock.as_raw_fd(), libc::F_SETFD, 0);
            libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB);
        }
        File::create(dir.path().join("rows"))?;
        Ok(Work { dir, _lock: lock })
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// Append text to a file of the work directory.
    pub fn append(&self, name: &str, text: &str) -> Result<()> {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(name))?;
        f.write_all(text.as_bytes())?;
        Ok(())
    }
    /// A row for a sol the driver decided itself (skipped, or failed before any job).
    pub fn row(&self, sol: &str, status: &str, code: u8, note: &str) -> Result<()> {
        let note = if note.is_empty() {
            String::new()
        } else {
            format!("\t{note}")
        };
        self.append(
            "rows",
            &format!(
                "{sol}\t{}\t{status}\t{code}\t0\t0\t0\t0{note}\n",
                hostname()
            ),
        )
    }
}

fn sweep(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let mut parts = name.rsplitn(3, '.');
        let (Some(suffix), Some(pid), Some(kind)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let ours = ["sol-backup", "sol-audit", "sol-restore"]
            .iter()
            .any(|k| kind == *k || kind == format!("{k}-one"));
        let Ok(pid) = pid.parse::<i32>() else {
            continue;
        };
        let d = e.path();
        let owned = fs::symlink_metadata(&d).is_ok_and(|m| m.is_dir() && m.uid() == uid);
        if !ours || suffix.len() != 6 || !owned || !d.join(".lock").is_file() || alive(pid) {
            continue;
        }
        let Ok(lock) = File::open(d.join(".lock")) else {
            continue;
        };
        if try_flock(&lock) {
            let _ = fs::remove_dir_all(&d);
        }
    }
}

/// Take an exclusive flock on FILE without waiting: whether it was free.
pub fn try_flock(file: &File) -> bool {
    // SAFETY: flock on a descriptor the caller owns.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Is there a process PID (one of another user counts)?
pub fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// One stored object, from `s3-ls --relative`: its key below the prefix, size,
/// Last-Modified (seconds, None when unreadable, with the text) and ETag.
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub modified: Option<i64>,
    pub modified_text: String,
    pub etag: String,
}

/// Everything under URL (a prefix, or a prefix and the start of a key), from one listing;
/// a failure is one line, status 1.
pub fn listing(url: &str, what: &str) -> Result<Vec<Listed>> {
    let mut c = Command::new("s3-ls");
    c.args(["--relative", "--", url]);
    let stdout = run(c, |first| format!("cannot list {what}: {first}"))?;
    Ok(String::from_utf8_lossy(&stdout)
        .lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            let key = f.next()?.to_string();
            let size = f.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            let modified_text = f.next().unwrap_or("").to_string();
            let etag = f.next().unwrap_or("").to_string();
            Some(Listed {
                key,
                size,
                modified: epoch(&modified_text),
                modified_text,
                etag,
            })
        })
        .collect())
}

/// The server's clock minus this host's in seconds (0 when it cannot be told), and the
/// report's warning line when it is over a minute.
pub fn clock(url: &str) -> (i64, Option<String>) {
    let out = Command::new("s3-ls")
        .args(["--clock", "--", url])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let skew: i64 = out
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0);
    if skew.abs() <= 60 {
        return (skew, None);
    }
    let how = if skew > 0 { "ahead of" } else { "behind" };
    let line = format!(
        "clock: the server's clock is {} s {how} this host's; ages and changes are judged on the server's clock",
        skew.abs()
    );
    (skew, Some(line))
}

/// RFC 3339 UTC as s3-ls prints it (`2026-11-21T20:05:00Z`, maybe with a fraction) in
/// seconds since the epoch.
pub fn epoch(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

pub fn utc(secs: i64) -> String {
    sol_common::time::rfc3339(secs)
}

/// A time as keys and names carry it: YYYYMMDDTHHMMSSZ (UTC).
pub fn stamp(secs: i64) -> String {
    utc(secs).replace(['-', ':'], "")
}

/// The key prefix of s3://BUCKET/PREFIX (or PROFILE:s3://...), without slashes at its
/// ends; empty for a whole bucket.
pub fn prefix_of(url: &str) -> &str {
    sol_common::target::split(url)
        .1
        .splitn(4, '/')
        .nth(3)
        .unwrap_or("")
}

/// Run a tool (stdin from /dev/null) and return its stdout; when it fails, an error made
/// by WHY from the first line of its stderr.
pub fn run(mut c: Command, why: impl Fn(&str) -> String) -> Result<Vec<u8>> {
    let name = c.get_program().to_string_lossy().into_owned();
    let out = c
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| anyhow!("{name}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = why(err.lines().next().unwrap_or(&format!("{name} failed")));
        // The tool's usage error (a target's profile in neither AWS file, say) is the run's.
        if out.status.code() == Some(2) {
            return Err(usage(line));
        }
        return Err(anyhow!("{line}"));
    }
    Ok(out.stdout)
}

/// Text of a file's first line (a stage's error), or empty.
pub fn first_line(path: &Path) -> String {
    fs::read(path)
        .map(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}

/// Relay the `aborted the upload` lines of an s3-ls run as this script's.
pub fn relay_aborted(stderr: &[u8]) {
    for line in String::from_utf8_lossy(stderr).lines() {
        if let Some(rest) = line.strip_prefix("s3-ls: ") {
            if rest.contains("aborted the upload") {
                say(rest);
            }
        }
    }
}

/// Abort pending multipart uploads under URL older than AGE (s3-ls --abort-older-than);
/// a failure is a warning line, WHAT: s3-ls's last line.
pub fn abort_uploads(url: &str, age: &str, what: &str) {
    let out = Command::new("s3-ls")
        .args(["--abort-older-than", age, "--", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match out {
        Ok(o) => {
            if !o.status.success() {
                let text = String::from_utf8_lossy(&o.stderr);
                say(format!(
                    "{what}: {}",
                    text.lines().last().unwrap_or("s3-ls failed")
                ));
            }
            relay_aborted(&o.stderr);
        }
        Err(e) => say(format!("{what}: s3-ls: {e}")),
    }
}

/// Run a tool with INPUT on its stdin: its output (stdout and stderr).
pub fn feed(mut c: Command, input: &[u8]) -> Result<std::process::Output> {
    let name = c.get_program().to_string_lossy().into_owned();
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow!("{name}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input)?;
    }
    Ok(child.wait_with_output()?)
}
