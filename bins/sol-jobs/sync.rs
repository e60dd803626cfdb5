//! sol-sync DIR s3://B/P: mirror the regular files under DIR to objects under P, one s3-mput
//! each, as they are. The steps: take the lock, wait the jitter, walk DIR, list P with each
//! object's metadata, plan (upload, replace, keep, delete), run the uploads N at a time in
//! the window, delete within the guards, report. What a file's object keeps: `mtime`
//! (seconds since the epoch with a fraction) and, with --checksum, `md5chksum` (the MD5 in
//! base64), the metadata rclone keeps, so a bucket either tool filled is read by the other.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use md5::{Digest, Md5};

use crate::cli::Sync;
use crate::common::{self, say, usage};
use crate::transfers::{self, Ended, Stop, Tool, Window};

/// A regular file under DIR: its key below the prefix, path, size and modification time.
struct Local {
    rel: String,
    path: PathBuf,
    size: u64,
    mtime: (i64, u32),
}

/// A stored object, from `s3-ls --relative --metadata`.
struct Stored {
    size: u64,
    etag: String,
    mtime: Option<String>,
    md5: Option<String>,
    part_size: Option<u64>,
}

#[derive(Clone, Copy, PartialEq)]
enum Act {
    Upload,
    Replace,
    Keep,
    /// Its object cannot be judged (--checksum could not read the file): left as it is.
    Unread,
}

/// One file's part of the plan: its MD5 in base64 when --checksum read it; for a
/// replacement, the stored object's ETag and the name its copy is kept under.
struct Step {
    file: Local,
    act: Act,
    md5: Option<String>,
    etag: String,
    /// The stored object's part size (s3-mput's sol-part-size), when it has one.
    part_size: Option<u64>,
    /// Where the stored object is kept; `kept` when a .replaced- copy of that ETag exists
    /// already (an earlier run was cut after making it).
    copy: String,
    kept: bool,
}

/// What the walk of DIR found besides regular files.
#[derive(Default)]
struct Walk {
    files: Vec<Local>,
    skipped: Vec<String>,
    /// The names skipped (a symbolic link now where a file was): their objects stay.
    skipped_keys: Vec<String>,
    unreadable: Vec<String>,
}

pub fn main(a: Sync) -> Result<u8> {
    if let Some(u) = &a.endpoint_url {
        std::env::set_var("AWS_ENDPOINT_URL", u);
    }
    let url = common::check_url(&a.url)?;
    if !a.dir.is_dir() {
        return Err(usage(format!("{}: not a directory", a.dir.display())));
    }
    check(&a)?;
    let window = window(&a)?;
    common::need_tools(&["s3-ls", "s3-mput", "s3-mget"])?;
    let Some(_lock) = take_lock(&a)? else {
        return Ok(0);
    };
    if let Some(req) = &a.require {
        if !a.dir.join(req).exists() {
            return Err(anyhow!(
                "{}: no {} (the volume is not mounted?): nothing done",
                a.dir.display(),
                req.display()
            ));
        }
    }
    let waited = if a.dry_run {
        Duration::ZERO
    } else {
        jitter(&a, &window)
    };
    if common::stopped() {
        say("interrupted before it began: nothing done");
        return Ok(130);
    }
    let mut walk = walk(&a.dir, a.lock.as_deref())?;
    let stored = stored(&url)?;
    let steps = plan(
        &a,
        std::mem::take(&mut walk.files),
        &stored,
        &mut walk.unreadable,
    );
    let (doomed, odd) = doomed(&steps, &walk.skipped_keys, &stored);
    let mut r = Report::new(&a, &url, waited, &window);
    r.walked(&walk, &odd);
    if a.dry_run {
        let guard = guard(&a, &doomed, &steps, r.failed);
        return Ok(r.dry_run(&steps, &doomed, guard));
    }
    let todo: Vec<&Step> = (steps.iter())
        .filter(|s| matches!(s.act, Act::Upload | Act::Replace))
        .collect();
    let ended = transfers::run_all(&todo, a.jobs as usize, window, |s, w| send(&a, &url, s, w));
    r.sent(&steps, &todo, ended);
    r.deleted(delete(&a, &url, &doomed, &steps, &r)?);
    Ok(r.finish())
}

/// What clap cannot check: --require names a file inside DIR; no cold storage class (a
/// changed file's object could not be read to keep it as .replaced-).
fn check(a: &Sync) -> Result<()> {
    if let Some(req) = &a.require {
        let inside = req
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !inside {
            return Err(usage(format!(
                "--require '{}': a path inside DIR (no leading /, no ..)",
                req.display()
            )));
        }
    }
    if let Some(class) = &a.storage_class {
        if ["GLACIER", "DEEP_ARCHIVE"].contains(&class.as_str()) {
            return Err(usage(format!(
                "--storage-class {class}: a changed file's object must be read to be kept as \
                 .replaced-, and {class} cannot be read without a thaw; use GLACIER_IR, or a \
                 lifecycle rule that moves old objects"
            )));
        }
    }
    Ok(())
}

/// The window: the deadline (--for from now, or the next --until HH:MM local time) and the
/// hard limit past it.
fn window(a: &Sync) -> Result<Window> {
    let from_now = match (&a.for_, &a.until) {
        (Some(d), _) => Some(*d),
        (None, Some(hhmm)) => Some(until(hhmm)?),
        (None, None) => None,
    };
    let now = Instant::now();
    let too_long = || usage("--for or --hard-limit: too long a time");
    let deadline = from_now
        .map(|d| now.checked_add(d).ok_or_else(too_long))
        .transpose()?;
    let hard = deadline
        .map(|d| d.checked_add(a.hard_limit).ok_or_else(too_long))
        .transpose()?;
    Ok(Window { deadline, hard })
}

/// How long until the next HH:MM on this host's local clock.
fn until(hhmm: &str) -> Result<Duration> {
    let bad = || usage(format!("--until '{hhmm}': expected HH:MM (05:30)"));
    let (h, m) = hhmm.split_once(':').ok_or_else(bad)?;
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let digits = hhmm
        .bytes()
        .enumerate()
        .all(|(i, b)| i == 2 || b.is_ascii_digit());
    if !(0..24).contains(&h) || !(0..60).contains(&m) || hhmm.len() != 5 || !digits {
        return Err(bad());
    }
    let now = common::now();
    Ok(Duration::from_secs(
        (next_local(now, h as i32, m as i32) - now) as u64,
    ))
}

extern "C" {
    /// POSIX: read TZ again (localtime_r need not).
    fn tzset();
}

/// The next H:M after NOW on this host's local clock: today's, else tomorrow's, by mktime,
/// so that the night the clocks change it is the real time to it, not the difference of
/// two clock readings.
fn next_local(now: i64, h: i32, m: i32) -> i64 {
    let at = |days: i32| {
        // SAFETY: tzset, localtime_r and mktime on a struct we own.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        unsafe {
            tzset();
            libc::localtime_r(&now, &mut tm);
        }
        (tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec) = (tm.tm_mday + days, h, m, 0);
        tm.tm_isdst = -1;
        unsafe { libc::mktime(&mut tm) }
    };
    [at(0), at(1)]
        .into_iter()
        .find(|&t| t > now)
        .unwrap_or(now + 86_400)
}

/// The flock on --lock FILE, or None (one line said) when another job holds it.
fn take_lock(a: &Sync) -> Result<Option<Option<File>>> {
    let Some(path) = &a.lock else {
        return Ok(Some(None));
    };
    // A dry run makes no lock file: one that is not there is held by nobody.
    if a.dry_run && !path.exists() {
        return Ok(Some(None));
    }
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("--lock {}", path.display()))?;
    let until = Instant::now() + a.wait_lock.unwrap_or_default();
    loop {
        if common::try_flock(&file) {
            return Ok(Some(Some(file)));
        }
        if Instant::now() >= until || common::stopped() {
            let waited = a.wait_lock.map_or(String::new(), |d| {
                format!(" after waiting {} s", d.as_secs())
            });
            say(format!(
                "{} is held by another job{waited}: nothing done",
                path.display()
            ));
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Wait a random time up to --jitter, never past the deadline; how long.
fn jitter(a: &Sync, window: &Window) -> Duration {
    let Some(max) = a.jitter else {
        return Duration::ZERO;
    };
    let mut bytes = [0u8; 8];
    let _ = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    let mut wait = Duration::from_millis(u64::from_le_bytes(bytes) % (max.as_millis() as u64 + 1));
    if let Some(d) = window.deadline {
        wait = wait.min(d.saturating_duration_since(Instant::now()));
    }
    let (start, end) = (Instant::now(), Instant::now() + wait);
    while Instant::now() < end && !common::stopped() {
        std::thread::sleep(Duration::from_millis(100).min(end - Instant::now()));
    }
    start.elapsed()
}

/// Every regular file under DIR but the lock file; symbolic links and special files are
/// skipped, and a directory, entry or name that cannot be read is noted (a failure).
fn walk(dir: &Path, lock: Option<&Path>) -> Result<Walk> {
    let lock = lock
        .and_then(|l| fs::metadata(l).ok())
        .map(|m| (m.dev(), m.ino()));
    let mut w = Walk::default();
    let mut dirs = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, rel)) = dirs.pop() {
        let entries = match fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if rel.is_empty() => return Err(anyhow!("{}: {e}", path.display())),
            Err(e) => {
                w.unreadable.push(format!("{}: {e}", join(&rel, "")));
                continue;
            }
        };
        for entry in entries {
            match entry {
                Ok(e) => dirs.extend(w.entry(&e, &rel, lock)),
                Err(e) => w.unreadable.push(format!("{}: {e}", join(&rel, ""))),
            }
        }
    }
    w.files.sort_by(|x, y| x.rel.cmp(&y.rel));
    Ok(w)
}

impl Walk {
    /// Note one entry of the directory REL; a directory to walk is returned.
    fn entry(
        &mut self,
        entry: &fs::DirEntry,
        rel: &str,
        lock: Option<(u64, u64)>,
    ) -> Option<(PathBuf, String)> {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            let name = escaped(&name.to_string_lossy()).into_owned();
            let line = format!("{}: a name that is not UTF-8", join(rel, &name));
            self.unreadable.push(line);
            return None;
        };
        let child = match rel {
            "" => name.to_string(),
            _ => format!("{rel}/{name}"),
        };
        let meta = match fs::symlink_metadata(entry.path()) {
            Ok(m) => m,
            Err(e) => {
                self.unreadable.push(format!("{}: {e}", escaped(&child)));
                return None;
            }
        };
        if meta.is_dir() {
            return Some((entry.path(), child));
        }
        if meta.is_file() && lock != Some((meta.dev(), meta.ino())) {
            let mtime = (meta.mtime(), meta.mtime_nsec() as u32);
            let (path, size) = (entry.path(), meta.len());
            self.files.push(Local {
                rel: child,
                path,
                size,
                mtime,
            });
        } else if !meta.is_file() {
            let kind = match meta.file_type().is_symlink() {
                true => "symbolic link",
                false => "special file",
            };
            self.skipped.push(format!("{} ({kind})", escaped(&child)));
            self.skipped_keys.push(escaped(&child).into_owned());
        }
        None
    }
}

/// The objects under URL/ by key (below the prefix), with their metadata.
fn stored(url: &str) -> Result<BTreeMap<String, Stored>> {
    let mut c = Command::new("s3-ls");
    c.args(["--relative", "--metadata", "--", &format!("{url}/")]);
    let out = common::run(c, |first| format!("cannot list {url}/: {first}"))?;
    let mut found = BTreeMap::new();
    for line in String::from_utf8_lossy(&out).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 4 {
            continue;
        }
        let meta = |name: &str| {
            f[4..]
                .iter()
                .find_map(|p| p.strip_prefix(name)?.strip_prefix('=').map(str::to_string))
        };
        found.insert(
            f[0].to_string(),
            Stored {
                size: f[1].parse().unwrap_or(u64::MAX),
                etag: f[3].to_string(),
                mtime: meta("mtime"),
                md5: meta("md5chksum"),
                part_size: meta("sol-part-size").and_then(|p| p.parse().ok()),
            },
        );
    }
    Ok(found)
}

/// What to do with each file.
fn plan(
    a: &Sync,
    files: Vec<Local>,
    stored: &BTreeMap<String, Stored>,
    failed: &mut Vec<String>,
) -> Vec<Step> {
    let mut steps = Vec::with_capacity(files.len());
    for file in files {
        let key = escaped(&file.rel).into_owned();
        let (act, md5, etag) = match stored.get(&key) {
            None => (Act::Upload, None, String::new()),
            Some(s) => match same(a, &file, s) {
                Ok((true, md5)) => (Act::Keep, md5, s.etag.clone()),
                Ok((false, md5)) => (Act::Replace, md5, s.etag.clone()),
                Err(e) => {
                    failed.push(format!("{key}: {e:#}"));
                    (Act::Unread, None, s.etag.clone())
                }
            },
        };
        let part_size = stored.get(&key).and_then(|s| s.part_size);
        let (copy, kept) = match act {
            Act::Replace => copy_name(&key, &etag, stored),
            _ => (String::new(), false),
        };
        steps.push(Step {
            file,
            act,
            md5,
            etag,
            part_size,
            copy,
            kept,
        });
    }
    steps
}

/// Whether the stored object is the file: the same size and time and, with --checksum, the
/// same MD5 (its md5chksum, or its ETag: a single part's MD5, or a multipart ETag made
/// again with its sol-part-size). The file's MD5 in base64 when it was read.
fn same(a: &Sync, file: &Local, s: &Stored) -> Result<(bool, Option<String>)> {
    let same_time = s.mtime.as_deref().and_then(nanos) == Some(nanos_of(file.mtime));
    if s.size != file.size || !same_time || !a.checksum {
        return Ok((s.size == file.size && same_time, None));
    }
    let (whole, etag) = md5_of(&file.path, s.part_size)?;
    let md5 = base64(&whole);
    let same = match &s.md5 {
        Some(m) => *m == md5,
        None if !s.etag.contains('-') => s.etag == sol_common::hex(&whole),
        None => etag.as_deref() == Some(s.etag.as_str()),
    };
    Ok((same, Some(md5)))
}

/// Where the stored object (ETAG) is kept: an existing KEY.replaced-<time> copy of that ETag
/// (true: made by an earlier run that was cut), else KEY.replaced-<UTC time of now>, a
/// second later while that name is taken.
fn copy_name(key: &str, etag: &str, stored: &BTreeMap<String, Stored>) -> (String, bool) {
    let copies = stored
        .range(format!("{key}.replaced-")..)
        .take_while(|(k, _)| {
            k.strip_prefix(key)
                .is_some_and(|r| r.starts_with(".replaced-"))
        });
    let same = copies
        .filter(|(k, s)| a_replaced_copy(k) && !etag.is_empty() && s.etag == etag)
        .last();
    if let Some((k, _)) = same {
        return (k.clone(), true);
    }
    let mut t = common::now();
    loop {
        let name = format!("{key}.replaced-{}", common::stamp(t));
        if !stored.contains_key(&name) {
            return (name, false);
        }
        t += 1;
    }
}

/// The objects with no file: every stored key but the files', the names skipped (a link or
/// a special file now) and the .replaced- copies.
/// A key printed escaped (a control character or backslash) cannot be named to s3-ls
/// --delete-versions: it is left alone, and said (the second list).
fn doomed(
    steps: &[Step],
    skipped: &[String],
    stored: &BTreeMap<String, Stored>,
) -> (Vec<String>, Vec<String>) {
    let mut files: BTreeSet<String> = steps
        .iter()
        .map(|s| escaped(&s.file.rel).into_owned())
        .collect();
    files.extend(skipped.iter().cloned());
    stored
        .keys()
        .filter(|k| !files.contains(*k) && !a_replaced_copy(k))
        .cloned()
        .partition(|k| !k.contains('\\'))
}

/// `KEY.replaced-YYYYMMDDTHHMMSSZ`, the form sol-backup --changed keeps too.
fn a_replaced_copy(key: &str) -> bool {
    let Some((_, stamp)) = key.rsplit_once(".replaced-") else {
        return false;
    };
    let b = stamp.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// REL/NAME as the report prints a name (`.` for DIR itself, a directory with a slash).
fn join(rel: &str, name: &str) -> String {
    match (rel, name) {
        ("", "") => ".".into(),
        ("", n) => escaped(n).into_owned(),
        (r, n) => format!("{}/{}", escaped(r), escaped(n)),
    }
}

/// A key as s3-ls prints it (control characters and backslashes escaped).
fn escaped(rel: &str) -> std::borrow::Cow<'_, str> {
    sol_common::escape_key(rel)
}

/// `1733000000.123456789` (rclone's mtime: seconds since the epoch, maybe negative, with a
/// fraction) in nanoseconds.
fn nanos(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (secs, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(secs) || !all_digits(frac) {
        return None;
    }
    let secs: i128 = secs.parse().ok()?;
    let frac: i128 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    let n = secs.checked_mul(1_000_000_000)?.checked_add(frac)?;
    Some(if negative { -n } else { n })
}

/// A file's time (seconds and the nanoseconds after them, as stat gives it) in nanoseconds.
fn nanos_of((secs, ns): (i64, u32)) -> i128 {
    secs as i128 * 1_000_000_000 + ns as i128
}

/// A file's time as rclone writes `mtime`: stat's (-2 s, 500000000 ns) is -1.5 s, written
/// `-1.500000000`.
fn mtime_text(t: (i64, u32)) -> String {
    let n = nanos_of(t);
    let sign = if n < 0 { "-" } else { "" };
    let a = n.abs();
    format!("{sign}{}.{:09}", a / 1_000_000_000, a % 1_000_000_000)
}

/// The file's MD5 and, given the part size it would be uploaded with, its multipart ETag
/// (s3-mput's schedule of part sizes).
fn md5_of(path: &Path, part: Option<u64>) -> Result<([u8; 16], Option<String>)> {
    let mut f = File::open(path).with_context(|| format!("{}", path.display()))?;
    let (mut whole, mut buf) = (Md5::new(), vec![0u8; 1 << 20]);
    let (mut parts, mut this, mut left): (Vec<[u8; 16]>, Md5, u64) = (Vec::new(), Md5::new(), 0);
    let size_of = |n: usize| part.map_or(u64::MAX, |p| sol_s3::part_size(p, n as u64 + 1));
    left += size_of(0);
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("{}", path.display()))?;
        if n == 0 {
            break;
        }
        whole.update(&buf[..n]);
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            let take = chunk.len().min(left.min(usize::MAX as u64) as usize);
            this.update(&chunk[..take]);
            (chunk, left) = (&chunk[take..], left - take as u64);
            if left == 0 {
                parts.push(std::mem::take(&mut this).finalize().into());
                left = size_of(parts.len());
            }
        }
    }
    if left != size_of(parts.len()) {
        parts.push(this.finalize().into());
    }
    let etag = part.map(|_| sol_s3::etag::multipart(parts.iter()));
    Ok((whole.finalize().into(), etag))
}

fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            s.push(if i <= c.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    s
}

/// One file sent: a changed file's object first kept as KEY.replaced-<UTC time> (s3-mget
/// of the compared ETag into s3-mput --copy-of, which stores nothing unless it is the same
/// bytes), then the file stored with its time (and MD5). A file that changed while it was
/// read is a failure: its object carries the old time, so the next run sends it again.
fn send(a: &Sync, url: &str, s: &Step, w: &Window) -> Result<String, Stop> {
    let key = format!("{url}/{}", s.file.rel);
    let input = File::open(&s.file.path).map_err(|e| anyhow!("{}: {e}", s.file.path.display()))?;
    let kept = match s.act {
        Act::Replace if s.kept => Some(s.copy.rsplit('/').next().unwrap_or("").to_string()),
        Act::Replace => Some(keep_old(&key, &format!("{url}/{}", s.copy), s, w)?),
        _ => None,
    };
    let md5 = match (&s.md5, a.checksum) {
        (Some(m), _) => Some(m.clone()),
        (None, true) => Some(base64(&md5_of(&s.file.path, None)?.0)),
        (None, false) => None,
    };
    let mut c = Command::new("s3-mput");
    c.args(["--metadata", &format!("mtime={}", mtime_text(s.file.mtime))]);
    if let Some(m) = md5 {
        c.args(["--metadata", &format!("md5chksum={m}")]);
    }
    if s.act == Act::Replace {
        c.arg("--overwrite");
    }
    if let Some(class) = &a.storage_class {
        c.args(["--storage-class", class]);
    }
    c.args(["--", &key]).stdin(input).stdout(Stdio::null());
    match transfers::wait(&mut [Tool::start(c)?], w) {
        // The signal came after the commit: stored all the same (s3-mput says so).
        Err(Stop::Cut(_, said)) if said.contains("the object is stored") => {}
        r => r?,
    }
    let now = fs::symlink_metadata(&s.file.path).map_err(anyhow::Error::from)?;
    if now.len() != s.file.size || (now.mtime(), now.mtime_nsec() as u32) != s.file.mtime {
        return Err(Stop::Failed(
            "changed while it was sent: the next run sends it again".into(),
        ));
    }
    Ok(kept.unwrap_or_default())
}

/// Keep the stored object at KEY (the version with ETAG) as COPY (KEY.replaced-<UTC time>).
fn keep_old(key: &str, copy: &str, s: &Step, w: &Window) -> Result<String, Stop> {
    let etag = s.etag.as_str();
    let mut get = Command::new("s3-mget");
    // Pinned to the object compared (a server that lists no ETags: the one there now).
    if !etag.is_empty() {
        get.arg(format!("--if-match={etag}"));
    }
    get.args(["--", key])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut get = Tool::start(get)?;
    let pipe = get
        .child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("s3-mget: no stdout"))?;
    // s3-mput --copy-of lays the parts out as the source's, which it knows from the
    // sol-part-size s3-mput recorded; an object another tool stored in parts (rclone) is
    // copied as a new upload, checked by s3-mget against the source's ETag and by s3-mput
    // against what it sent.
    let mut put = Command::new("s3-mput");
    if s.part_size.is_some() || !etag.contains('-') {
        put.args(["--copy-of", key]);
    }
    put.args(["--", copy]).stdin(pipe).stdout(Stdio::null());
    let put = Tool::start(put)?;
    match transfers::wait(&mut [get, put], w) {
        Err(Stop::Failed(why)) => Err(Stop::Failed(format!(
            "cannot keep the stored object before replacing it: {why}; not replaced"
        ))),
        r => r.map(|()| copy.rsplit('/').next().unwrap_or("").to_string()),
    }
}

/// Delete the doomed objects (a plain DeleteObject each: on a versioned bucket a delete
/// marker, the versions kept) if --delete and every guard allow it.
fn delete(a: &Sync, url: &str, doomed: &[String], steps: &[Step], r: &Report) -> Result<Deleted> {
    if let Err(d) = guard(a, doomed, steps, r.failed + r.left) {
        return Ok(d);
    }
    let prefix = common::prefix_of(url);
    let mut input = String::new();
    for k in doomed {
        match prefix {
            "" => writeln!(input, "{k}\tnull")?,
            p => writeln!(input, "{p}/{k}\tnull")?,
        }
    }
    let mut c = Command::new("s3-ls");
    c.args(["--delete-versions", "--", &format!("{url}/")]);
    Ok(Deleted::Done(common::feed(c, input.as_bytes())?))
}

/// Whether the deletions may go ahead: none asked, or a guard that refuses them all (DIR
/// empty, a file failed or left, an interruption, more than --max-delete).
fn guard(a: &Sync, doomed: &[String], steps: &[Step], problems: usize) -> Result<(), Deleted> {
    if doomed.is_empty() || !a.delete {
        return Err(Deleted::NotAsked);
    }
    let refuse = |why: String| Err(Deleted::Refused(format!("{why}: nothing deleted")));
    if steps.is_empty() {
        return refuse(format!("{} has no file", a.dir.display()));
    }
    if common::stopped() {
        return refuse("interrupted".into());
    }
    if problems > 0 {
        return refuse("not every file was read or sent".into());
    }
    let max = a.max_delete.unwrap_or(0) as usize;
    if doomed.len() > max {
        return refuse(format!(
            "{} objects to delete, more than --max-delete {max}",
            doomed.len()
        ));
    }
    Ok(())
}

/// What came of the deletions.
enum Deleted {
    NotAsked,
    Refused(String),
    Done(std::process::Output),
}

/// The report, built as the run goes, for a person reading cron's mail.
struct Report {
    head: String,
    body: String,
    failed: usize,
    left: usize,
    bytes: u64,
    started: Instant,
}

impl Report {
    fn new(a: &Sync, url: &str, waited: Duration, window: &Window) -> Report {
        let mut head = format!("sol-sync {} -> {url}/\n", a.dir.display());
        let _ = writeln!(
            head,
            "started {}{}",
            common::started(),
            match a.jitter {
                None => String::new(),
                Some(_) => format!(" (after a jitter of {:.3} s)", waited.as_secs_f64()),
            }
        );
        if let (Some(d), Some(h)) = (window.deadline, window.hard) {
            // A time passed already (the lock was waited for past it) as it was, not now.
            let at = |i: Instant| {
                let (now, wall) = (Instant::now(), std::time::SystemTime::now());
                let t = match i.checked_duration_since(now) {
                    Some(ahead) => wall + ahead,
                    None => wall - now.duration_since(i),
                };
                let t = t.duration_since(std::time::UNIX_EPOCH);
                common::utc(t.map_or(0, |d| d.as_secs() as i64))
            };
            let (d, h) = (at(d), at(h));
            let _ = writeln!(
                head,
                "window: no file starts after {d}; uploads still running at {h} are cut"
            );
        }
        Report {
            head,
            body: String::new(),
            failed: 0,
            left: 0,
            bytes: 0,
            started: Instant::now(),
        }
    }

    fn walked(&mut self, w: &Walk, odd: &[String]) {
        for s in &w.skipped {
            let _ = writeln!(self.body, "skipped {s}: not a regular file");
        }
        for u in &w.unreadable {
            let _ = writeln!(self.body, "FAILED  {u}");
            self.failed += 1;
        }
        for k in odd {
            let _ = writeln!(
                self.body,
                "left    {k}: no file, but a key with a control character or backslash is \
                 never deleted here (s3-ls --delete-versions by hand)"
            );
        }
    }

    fn dry_run(mut self, steps: &[Step], doomed: &[String], guard: Result<(), Deleted>) -> u8 {
        for s in steps {
            let what = match s.act {
                Act::Upload => "upload ",
                Act::Replace => "replace",
                Act::Keep => "keep   ",
                Act::Unread => continue,
            };
            let rel = escaped(&s.file.rel);
            let _ = writeln!(self.body, "{what} {rel} ({} bytes)", s.file.size);
        }
        let how = match guard {
            Ok(()) => "would delete",
            Err(Deleted::Refused(why)) => {
                let _ = writeln!(self.body, "deletions REFUSED: {why}");
                "no file  "
            }
            Err(_) => "no file  ",
        };
        for k in doomed {
            let _ = writeln!(self.body, "{how} {k}");
        }
        let _ = writeln!(self.body, "dry run: nothing was changed");
        crate::report::emit(&format!("{}{}", self.head, self.body));
        u8::from(self.failed > 0)
    }

    fn sent(&mut self, steps: &[Step], todo: &[&Step], ended: Vec<Ended<String>>) {
        let (mut up, mut rep) = (0, 0);
        for (s, e) in todo.iter().zip(ended) {
            let (rel, size) = (escaped(&s.file.rel), s.file.size);
            let line = match e {
                Ended::Done(kept) if s.act == Act::Replace => {
                    (rep, self.bytes) = (rep + 1, self.bytes + size);
                    format!("replaced {rel} ({size} bytes; the old one kept as {kept})")
                }
                Ended::Done(_) => {
                    (up, self.bytes) = (up + 1, self.bytes + size);
                    format!("uploaded {rel} ({size} bytes)")
                }
                Ended::Failed(why) => {
                    self.failed += 1;
                    format!("FAILED  {rel}: {why}")
                }
                Ended::NotStarted => {
                    self.left += 1;
                    match common::stopped() {
                        true => format!("left    {rel}: not started (interrupted)"),
                        false => format!("left    {rel}: not started before the deadline"),
                    }
                }
                Ended::Cut(why, said) => {
                    self.left += 1;
                    format!("left    {rel}: cut ({why}): {said}; the next run sends it")
                }
            };
            let _ = writeln!(self.body, "{line}");
        }
        let kept = steps.iter().filter(|s| s.act == Act::Keep).count();
        let _ = writeln!(
            self.head,
            "files {}: {up} uploaded, {rep} replaced, {kept} unchanged, {} left, {} failed",
            steps.len(),
            self.left,
            self.failed
        );
    }

    fn deleted(&mut self, d: Deleted) {
        let line = match d {
            Deleted::NotAsked => return,
            Deleted::Refused(why) => {
                self.failed += 1;
                format!("deletions REFUSED: {why}")
            }
            Deleted::Done(out) => {
                let said = String::from_utf8_lossy(&out.stdout);
                let gone: Vec<&str> = said
                    .lines()
                    .filter_map(|l| l.strip_prefix("deleted\t")?.split('\t').next())
                    .collect();
                for k in &gone {
                    let _ = writeln!(self.body, "deleted {k}");
                }
                for line in String::from_utf8_lossy(&out.stderr).lines() {
                    let _ = writeln!(self.body, "FAILED  deleting: {line}");
                }
                if !out.status.success() {
                    self.failed += 1;
                }
                format!("deleted {} object(s) whose file is gone", gone.len())
            }
        };
        let _ = writeln!(self.head, "{line}");
    }

    fn finish(self) -> u8 {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let (verdict, code) = match (self.failed, self.left) {
            _ if common::stopped() => ("INTERRUPTED".to_string(), 130),
            (0, 0) => ("ok".to_string(), 0),
            (0, n) => (format!("INCOMPLETE: {n} file(s) left for the next run"), 4),
            (n, _) => (format!("FAILED: {n} problem(s)"), 1),
        };
        let rate = self.bytes as f64 / secs / 1e6;
        crate::report::emit(&format!(
            "{}sent {} bytes in {secs:.0} s ({rate:.1} MB/s)\n{}result: {verdict}\n",
            self.head, self.bytes, self.body
        ));
        code
    }
}

#[cfg(test)]
mod tests {
    use super::{mtime_text, nanos, nanos_of, next_local};

    /// --until 03:01 at 01:59 in Paris: 62 minutes on a normal night, 2 minutes the night the
    /// clocks go forward (found by a helper: it was an hour late).
    #[test]
    fn until_counts_real_time_across_a_clock_change() {
        std::env::set_var("TZ", "Europe/Paris");
        let normal = 1_806_109_140; // 2027-03-27T00:59:00Z, 01:59 CET
        assert_eq!(next_local(normal, 3, 1) - normal, 3720);
        let spring = normal + 86_400; // 2027-03-28T00:59:00Z, 01:59 CET, 03:00 is CEST
        assert_eq!(next_local(spring, 3, 1) - spring, 120);
        assert_eq!(next_local(spring, 1, 0) - spring, 86_400 - 59 * 60 - 3600);
        std::env::remove_var("TZ");
    }

    #[test]
    fn mtimes_round_trip_as_rclone_writes_them() {
        for t in [
            (0, 0),
            (1_733_000_000, 123_456_789),
            (-2, 500_000_000),
            (-1, 0),
            (-1, 1),
        ] {
            let text = mtime_text(t);
            assert_eq!(nanos(&text), Some(nanos_of(t)), "{t:?} as {text}");
        }
        assert_eq!(mtime_text((-2, 500_000_000)), "-1.500000000");
        assert_eq!(nanos("-0.5"), Some(-500_000_000));
        assert_eq!(
            nanos("1522844812.235466147"),
            Some(1_522_844_812_235_466_147)
        );
        assert_eq!(nanos("1522844812"), Some(1_522_844_812_000_000_000));
        let huge = "99999999999999999999999999999999999.5";
        for bad in ["", "x", "1.x", "--1", "1.", ".5", "+1", huge] {
            assert_eq!(nanos(bad), None, "{bad}");
        }
    }
}
