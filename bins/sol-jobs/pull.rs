//! sol-pull s3://B/P DIR: keep in DIR every version of the objects under P. The steps: take
//! DIR's lock, list every version (s3-ls --versions; a bucket without versions lists each
//! object as its `null` version), pick the versions not fetched yet that were modified since
//! the last run's high-water mark less the overlap, fetch each (s3-mget, its ETag checked)
//! as DIR/KEY~YYYYMMDDTHHMMSSZ, log what vanished upstream, move the mark, report.
//!
//! DIR/.sol-pull/ holds the run's state: `fetched` (a line per version kept: KEY, VERSION,
//! ETAG, LAST-MODIFIED, NAME), `high-water` (the newest Last-Modified seen, on the
//! server's clock), `live` (the keys that existed at the last run), `deletions.log`
//! (TIME, KEY, HOW) and `refused.log` (the versions whose keys may not name a file). `--as-of TIME DEST` reads only these and the files.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{anyhow, Context, Result};

use crate::cli::Pull;
use crate::common::{self, say};
use crate::pull_state::{self, append, State, STATE};
use crate::transfers::{self, Ended, Stop, Tool, Window};

/// One version from the listing.
#[derive(Clone)]
struct Version {
    rel: String,
    id: String,
    size: u64,
    modified: i64,
    etag: String,
    kind: String,
    /// Why its key may not name a file under DIR, if it may not.
    hostile: Option<&'static str>,
}

/// A version refused: its full key, version, Last-Modified and why.
type Refused = (String, String, i64, &'static str);

/// A version to fetch, and the name it is kept under (relative to DIR).
struct Fetch {
    v: Version,
    name: String,
    /// How many versions of the key listed in the same second are older.
    rank: u32,
}

pub fn main(a: Pull) -> Result<u8> {
    if let Some(u) = &a.endpoint_url {
        std::env::set_var("AWS_ENDPOINT_URL", u);
    }
    let url = common::check_url(&a.url)?;
    let state_dir = a.dir.join(STATE);
    let source = pull_state::source(&url);
    pull_state::check_url(&state_dir, &source)?;
    if let Some(as_of) = &a.as_of {
        return crate::as_of::main(&a.dir, &as_of[0], Path::new(&as_of[1]));
    }
    common::need_tools(&["s3-ls", "s3-mget"])?;
    if !a.dry_run {
        fs::create_dir_all(&state_dir)
            .with_context(|| format!("cannot make {}", state_dir.display()))?;
    }
    // The lock before the listing: a run that listed before another finished would log
    // deletions from its old listing.
    let Some(_lock) = lock(&state_dir, a.dry_run)? else {
        return Ok(0);
    };
    let (versions, folders) = listing(&url)?;
    let state = pull_state::read(&state_dir)?;
    if !a.dry_run {
        let _ = fs::remove_dir_all(state_dir.join("tmp"));
    }
    let since = state.high_water.map(|h| h - a.overlap.as_secs() as i64);
    let (todo, refused) = pick(&versions, &state, since, &a.dir);
    let events = vanished(&versions, &state, common::clock(&url).0);
    let mut r = Report::new(&url, &a.dir, &versions, since, folders);
    r.refused(&refused);
    if a.dry_run {
        return Ok(r.dry_run(&todo, &events));
    }
    pull_state::write_url(&state_dir, &source)?;
    // Each version is recorded as soon as it is in place, so a run killed midway does not
    // fetch it again.
    let recording = std::sync::Mutex::new(());
    let ended = transfers::run_all(&todo, a.jobs as usize, Window::open(), |f, w| {
        let n = fetch(&url, &a.dir, f, w)?;
        let _one = recording.lock().map_err(|_| anyhow!("a recorder died"))?;
        record(&state_dir, &[f], &[])?;
        Ok(n)
    });
    let kept = r.fetched(&todo, ended);
    record(&state_dir, &[], &refused)?;
    r.logged(log_events(&state_dir, &events)?);
    write_live(&state_dir, &versions)?;
    let mark = high_water(&versions, &todo, &kept, state.high_water);
    pull_state::replace(
        &state_dir.join("high-water"),
        &format!("{}\n", common::utc(mark)),
    )?;
    Ok(r.finish(mark))
}

/// DIR's flock (DIR/.sol-pull/lock), or None (one line said) when another run holds it. A
/// dry run of a DIR never pulled into takes none.
fn lock(state_dir: &Path, dry_run: bool) -> Result<Option<Option<File>>> {
    if dry_run && !state_dir.exists() {
        return Ok(Some(None));
    }
    let path = state_dir.join("lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("{}", path.display()))?;
    if !common::try_flock(&file) {
        say(format!(
            "another sol-pull holds {}: nothing done",
            path.display()
        ));
        return Ok(None);
    }
    Ok(Some(Some(file)))
}

/// Every version under URL/ (keys relative to the prefix; the full key of one that would
/// land outside DIR, or that s3-ls prints escaped), and how many empty "folder" objects
/// (`KEY/`, as consoles make them) were passed over.
fn listing(url: &str) -> Result<(Vec<Version>, usize)> {
    let mut c = Command::new("s3-ls");
    c.args(["--versions", "--", &format!("{url}/")]);
    let out = common::run(c, |first| {
        format!("cannot list the versions under {url}/: {first}")
    })?;
    let prefix = common::prefix_of(url);
    let (mut versions, mut folders) = (Vec::new(), 0);
    for line in String::from_utf8_lossy(&out).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [key, id, size, when, etag, kind] = f[..] else {
            continue;
        };
        let rel = match prefix {
            "" => key,
            p => key
                .strip_prefix(p)
                .and_then(|k| k.strip_prefix('/'))
                .unwrap_or(""),
        };
        if (rel.is_empty() || rel.ends_with('/')) && size == "0" {
            folders += 1;
            continue;
        }
        let why = hostile(rel);
        versions.push(Version {
            rel: if why.is_some() { key } else { rel }.to_string(),
            hostile: why,
            id: id.to_string(),
            size: size.parse().unwrap_or(0),
            modified: common::epoch(when).unwrap_or(0),
            etag: etag.to_string(),
            kind: kind.to_string(),
        });
    }
    Ok((versions, folders))
}

/// Why a key (relative to the prefix) may not name a file under DIR, if it may not.
pub fn hostile(rel: &str) -> Option<&'static str> {
    if rel.is_empty() {
        return Some("no name below the prefix");
    }
    if rel.contains('\\') {
        return Some("a control character or backslash in the key");
    }
    if rel.starts_with('/') {
        return Some("a leading /");
    }
    let segments: Vec<&str> = rel.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Some("an empty path segment (//, or a trailing /)");
    }
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return Some("a . or .. path segment");
    }
    if segments.iter().any(|s| s.len() > 200) {
        return Some("a name over 200 bytes (too long for a file with its ~TIME)");
    }
    if segments[0] == STATE {
        return Some("it would land in DIR/.sol-pull, sol-pull's own state");
    }
    None
}

/// The versions to fetch: modified at or after SINCE (all on a first run), not fetched yet,
/// each named KEY~STAMP, or KEY~STAMP~VERSION when another version of the key shares that
/// second (or the name is taken in DIR).
/// A version in that window whose key may not name a file is refused, once (DIR/.sol-pull/
/// refused.log keeps it).
fn pick(
    versions: &[Version],
    state: &State,
    since: Option<i64>,
    dir: &Path,
) -> (Vec<Fetch>, Vec<Refused>) {
    // The versions of each (key, second), in listing order (newest first).
    let mut seconds: BTreeMap<(&str, i64), Vec<&Version>> = BTreeMap::new();
    for v in versions.iter().filter(|v| v.kind != "marker") {
        seconds.entry((&v.rel, v.modified)).or_default().push(v);
    }
    let kept_seconds: BTreeSet<(&str, i64)> = state
        .kept
        .iter()
        .map(|k| (k.key.as_str(), k.modified))
        .collect();
    let (mut todo, mut refused) = (Vec::new(), BTreeSet::new());
    for v in versions.iter().filter(|v| v.kind != "marker") {
        let id = (
            v.rel.clone(),
            v.id.clone(),
            v.etag.clone(),
            v.size,
            v.modified,
        );
        if since.is_some_and(|s| v.modified < s) || state.ids.contains(&id) {
            continue;
        }
        if let Some(why) = v.hostile {
            if !state
                .refused
                .contains(&(v.rel.clone(), v.id.clone(), v.modified))
            {
                refused.insert((v.rel.clone(), v.id.clone(), v.modified, why));
            }
            continue;
        }
        let same = &seconds[&(v.rel.as_str(), v.modified)];
        let older = same.iter().skip_while(|o| !std::ptr::eq(**o, v)).count() - 1;
        let plain = format!("{}~{}", v.rel, common::stamp(v.modified));
        let shared = same.len() > 1 || kept_seconds.contains(&(v.rel.as_str(), v.modified));
        let name = if shared || dir.join(&plain).exists() {
            let tag = match v.id.as_str() {
                "null" if v.etag.is_empty() => v.size.to_string(),
                "null" => v.etag.clone(),
                id => id.to_string(),
            };
            format!("{plain}~{tag}")
        } else {
            plain
        };
        todo.push(Fetch {
            v: v.clone(),
            name,
            rank: older as u32,
        });
    }
    (todo, refused.into_iter().collect())
}

/// What vanished upstream since the last run, and what came back: each delete marker not
/// logged yet (TIME: its Last-Modified); each key live at the last run and not now, and each
/// key logged deleted that is live again (TIME: now on the server's clock, this host's
/// plus SKEW).
fn vanished(versions: &[Version], state: &State, skew: i64) -> Vec<(i64, String, String)> {
    let live: BTreeSet<&str> = versions
        .iter()
        .filter(|v| v.kind == "latest")
        .map(|v| v.rel.as_str())
        .collect();
    let mut events = Vec::new();
    for v in versions.iter().filter(|v| v.kind == "marker") {
        if !state.markers.contains(&(v.rel.clone(), v.id.clone())) {
            events.push((v.modified, v.rel.clone(), format!("delete marker {}", v.id)));
        }
    }
    let marked: BTreeSet<String> = events.iter().map(|(_, k, _)| k.clone()).collect();
    let now = common::now() + skew;
    let Some(was) = &state.live else {
        return events;
    };
    for key in was {
        if !live.contains(key.as_str()) && !marked.contains(key) {
            events.push((now, key.clone(), "gone from the listing".into()));
        }
    }
    let mut deleted: BTreeMap<&str, bool> = BTreeMap::new();
    for (_, key, d) in &state.events {
        deleted.insert(key, *d);
    }
    for key in live {
        if !was.contains(key) && deleted.get(key) == Some(&true) {
            events.push((now, key.to_string(), "back in the listing".into()));
        }
    }
    events
}

/// Fetch one version into DIR/.sol-pull/tmp, give it its Last-Modified as its time, and
/// move it to its name (never over a file).
fn fetch(url: &str, dir: &Path, f: &Fetch, w: &Window) -> Result<u64, Stop> {
    let tmp_dir = dir.join(STATE).join("tmp");
    fs::create_dir_all(&tmp_dir).map_err(anyhow::Error::from)?;
    let tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(anyhow::Error::from)?;
    let mut c = Command::new("s3-mget");
    // A bucket without versions: the object, pinned by its listed ETag where there is one.
    match f.v.id.as_str() {
        "null" if f.v.etag.is_empty() => &mut c,
        // One word each: a version id or ETag from the listing may begin with '-' (Ceph
        // RGW's do), which as a word of its own would be read as an option.
        "null" => c.arg(format!("--if-match={}", f.v.etag)),
        id => c.arg(format!("--version-id={id}")),
    };
    c.args(["--", &format!("{url}/{}", f.v.rel)])
        .stdin(Stdio::null())
        .stdout(tmp.reopen().map_err(anyhow::Error::from)?);
    transfers::wait(&mut [Tool::start(c)?], w)?;
    // Where nothing pinned the version (no ETag listed, no version id), the object may have
    // been written again since the listing: the size tells most such cases.
    let got = tmp.as_file().metadata().map_err(anyhow::Error::from)?.len();
    if got != f.v.size {
        return Err(Stop::Failed(format!(
            "{} bytes came where the listing said {}: written again since; the next run \
             fetches it",
            got, f.v.size
        )));
    }
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(f.v.modified.max(0) as u64);
    tmp.as_file()
        .set_modified(when)
        .map_err(anyhow::Error::from)?;
    let to = dir.join(&f.name);
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(|e| anyhow!("{}: {e}", parent.display()))?;
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::Permissions::from_mode(0o644);
        tmp.as_file()
            .set_permissions(mode)
            .map_err(anyhow::Error::from)?;
    }
    tmp.persist_noclobber(&to)
        .map_err(|e| anyhow!("{}: {}", to.display(), e.error))?;
    Ok(f.v.size)
}

/// Append each fetched version to DIR/.sol-pull/fetched, and each refused one to
/// refused.log.
fn record(state_dir: &Path, kept: &[&Fetch], refused: &[Refused]) -> Result<()> {
    let mut text = String::new();
    for f in kept {
        let v = &f.v;
        let when = common::utc(v.modified);
        let (id, etag, size, rank, name) = (&v.id, &v.etag, v.size, f.rank, &f.name);
        writeln!(
            text,
            "{}\t{id}\t{etag}\t{size}\t{when}\t{rank}\t{name}",
            v.rel
        )?;
    }
    append(&state_dir.join("fetched"), &text)?;
    let mut text = String::new();
    let now = common::utc(common::now());
    for (key, id, when, why) in refused {
        writeln!(text, "{now}\t{key}\t{id}\t{}\t{why}", common::utc(*when))?;
    }
    append(&state_dir.join("refused.log"), &text)
}

/// Log each deletion and return in DIR/.sol-pull/deletions.log; their report lines.
fn log_events(state_dir: &Path, gone: &[(i64, String, String)]) -> Result<Vec<String>> {
    let mut text = String::new();
    for (when, key, how) in gone {
        writeln!(text, "{}\t{key}\t{how}", common::utc(*when))?;
    }
    append(&state_dir.join("deletions.log"), &text)?;
    Ok(gone
        .iter()
        .map(|(_, k, how)| format!("{k} ({how})"))
        .collect())
}

fn write_live(state_dir: &Path, versions: &[Version]) -> Result<()> {
    let live: BTreeSet<&str> = versions
        .iter()
        .filter(|v| v.kind == "latest" && v.hostile.is_none())
        .map(|v| v.rel.as_str())
        .collect();
    let text: String = live.into_iter().map(|k| format!("{k}\n")).collect();
    pull_state::replace(&state_dir.join("live"), &text)
}

/// The newest Last-Modified listed, but never past a version that was to be fetched and
/// was not (the next run's window must still hold it), nor behind the last mark.
fn high_water(versions: &[Version], todo: &[Fetch], kept: &[&Fetch], last: Option<i64>) -> i64 {
    let newest = versions.iter().map(|v| v.modified).max().unwrap_or(0);
    let kept: BTreeSet<(&str, &str, i64)> = kept
        .iter()
        .map(|f| (f.v.rel.as_str(), f.v.id.as_str(), f.v.modified))
        .collect();
    let missed = todo
        .iter()
        .filter(|f| !kept.contains(&(f.v.rel.as_str(), f.v.id.as_str(), f.v.modified)))
        .map(|f| f.v.modified)
        .min();
    let mark = missed.map_or(newest, |m| m.min(newest));
    last.map_or(mark, |l| if missed.is_some() { mark } else { mark.max(l) })
}

/// The report for cron's mail.
struct Report {
    head: String,
    body: String,
    failed: usize,
}

impl Report {
    fn new(
        url: &str,
        dir: &Path,
        versions: &[Version],
        since: Option<i64>,
        folders: usize,
    ) -> Report {
        let mut head = format!("sol-pull {url}/ -> {}\n", dir.display());
        let keys: BTreeSet<&str> = versions.iter().map(|v| v.rel.as_str()).collect();
        let markers = versions.iter().filter(|v| v.kind == "marker").count();
        let from = since.map_or("everything (a first run)".to_string(), |s| {
            format!("versions modified since {}", common::utc(s))
        });
        let _ = writeln!(
            head,
            "listed {} version(s) of {} key(s), {markers} delete marker(s); fetching {from}",
            versions.len() - markers,
            keys.len()
        );
        if folders > 0 {
            let _ = writeln!(head, "passed over {folders} empty folder object(s) (KEY/)");
        }
        Report {
            head,
            body: String::new(),
            failed: 0,
        }
    }

    fn refused(&mut self, refused: &[Refused]) {
        for (key, id, _, why) in refused {
            let _ = writeln!(
                self.body,
                "REFUSED {key} (version {id}): {why}: never written (logged in {STATE}/refused.log)"
            );
            self.failed += 1;
        }
    }

    fn dry_run(mut self, todo: &[Fetch], gone: &[(i64, String, String)]) -> u8 {
        for f in todo {
            let _ = writeln!(self.body, "fetch   {} ({} bytes)", f.name, f.v.size);
        }
        for (_, key, how) in gone {
            let _ = writeln!(self.body, "log     {key}: {how}");
        }
        let _ = writeln!(self.body, "dry run: nothing was changed");
        crate::report::emit(&format!("{}{}", self.head, self.body));
        u8::from(self.failed > 0)
    }

    fn fetched<'a>(&mut self, todo: &'a [Fetch], ended: Vec<Ended<u64>>) -> Vec<&'a Fetch> {
        let (mut kept, mut bytes) = (Vec::new(), 0);
        for (f, e) in todo.iter().zip(ended) {
            match e {
                Ended::Done(n) => {
                    let _ = writeln!(self.body, "fetched {} ({n} bytes)", f.name);
                    bytes += n;
                    kept.push(f);
                }
                Ended::Failed(why) => {
                    let _ = writeln!(self.body, "FAILED  {}: {why}", f.name);
                    self.failed += 1;
                }
                Ended::NotStarted | Ended::Cut(..) => {
                    let _ = writeln!(self.body, "FAILED  {}: interrupted", f.name);
                    self.failed += 1;
                }
            }
        }
        let _ = writeln!(
            self.head,
            "fetched {} version(s), {bytes} bytes; {} failed",
            kept.len(),
            todo.len() - kept.len()
        );
        kept
    }

    fn logged(&mut self, gone: Vec<String>) {
        for g in &gone {
            let _ = writeln!(self.body, "upstream: {g}");
        }
        let _ = writeln!(
            self.head,
            "logged {} deletion(s) or return(s) in {STATE}/deletions.log",
            gone.len()
        );
    }

    fn finish(self, mark: i64) -> u8 {
        let (verdict, code) = match self.failed {
            _ if common::stopped() => ("INTERRUPTED".to_string(), 130),
            0 => ("ok".to_string(), 0),
            n => (format!("FAILED: {n} problem(s)"), 1),
        };
        crate::report::emit(&format!(
            "{}high-water mark {}\n{}result: {verdict}\n",
            self.head,
            common::utc(mark),
            self.body
        ));
        code
    }
}
