//! DIR/.sol-pull: what sol-pull keeps between runs. Each file is read strictly: a line that
//! does not parse, or a file that is not text, stops the run with one line naming it (the
//! state is damaged), never read as empty, which would fetch everything again or give a
//! wrong tree as of a time.
//!
//! - `url`: the prefix this DIR pulls and the server it is on (a plain `s3://` URL's
//!   endpoint: AWS_ENDPOINT_URL, or AWS's); another one is refused.
//! - `fetched`: a line per version kept: KEY, VERSION, ETAG, SIZE, LAST-MODIFIED, RANK (how
//!   many versions of the key listed in the same second are older), NAME.
//! - `high-water`: the newest Last-Modified the server listed (RFC 3339).
//! - `live`: the keys of the last listing.
//! - `deletions.log`: TIME, KEY, HOW: `delete marker ID` (TIME: its Last-Modified),
//!   `gone from the listing` or `back in the listing` (TIME: when a run saw it, on the
//!   server's clock).
//! - `refused.log`: NOW, KEY, VERSION, LAST-MODIFIED, WHY for each version not kept.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::path::Path;

use anyhow::{anyhow, Context, Result};

use crate::common::{self, usage};

pub const STATE: &str = ".sol-pull";

/// A version kept in DIR, and its line in `fetched` (later lines were fetched later).
pub struct Kept {
    pub key: String,
    pub modified: i64,
    pub rank: u32,
    pub name: String,
    pub line: usize,
}

/// A version's identity: KEY, VERSION, ETAG, SIZE, LAST-MODIFIED.
pub type Id = (String, String, String, u64, i64);

#[derive(Default)]
pub struct State {
    pub kept: Vec<Kept>,
    pub ids: BTreeSet<Id>,
    pub high_water: Option<i64>,
    pub live: Option<BTreeSet<String>>,
    /// The delete markers logged: KEY, VERSION.
    pub markers: BTreeSet<(String, String)>,
    /// The versions refused: KEY, VERSION, LAST-MODIFIED.
    pub refused: BTreeSet<(String, String, i64)>,
    /// TIME, KEY, and whether the key was deleted (else: back).
    pub events: Vec<(i64, String, bool)>,
}

/// The state in DIR/.sol-pull (empty when there is none yet).
pub fn read(state_dir: &Path) -> Result<State> {
    let mut s = State::default();
    s.read_fetched(state_dir)?;
    for (n, f) in fields(state_dir, "refused.log")? {
        let [_, key, id, when, _] = &f[..] else {
            return Err(damaged(state_dir, "refused.log", n));
        };
        let when = time(when).ok_or_else(|| damaged(state_dir, "refused.log", n))?;
        s.refused.insert((key.clone(), id.clone(), when));
    }
    s.read_events(state_dir)?;
    let mark = fields(state_dir, "high-water")?;
    s.high_water = match &mark[..] {
        [] => None,
        [(n, f)] => Some(
            Some(f)
                .filter(|f| f.len() == 1)
                .and_then(|f| time(&f[0]))
                .ok_or_else(|| damaged(state_dir, "high-water", *n))?,
        ),
        _ => return Err(damaged(state_dir, "high-water", 2)),
    };
    if state_dir.join("live").exists() {
        let mut live = std::collections::BTreeSet::new();
        for (n, f) in fields(state_dir, "live")? {
            match &f[..] {
                [key] if crate::pull::hostile(key).is_none() => live.insert(key.clone()),
                _ => return Err(damaged(state_dir, "live", n)),
            };
        }
        s.live = Some(live);
    }
    Ok(s)
}

impl State {
    /// `fetched`: each line a key that names a file in DIR and the name sol-pull gave it
    /// (KEY~TIME...).
    fn read_fetched(&mut self, state_dir: &Path) -> Result<()> {
        for (n, f) in fields(state_dir, "fetched")? {
            let bad = || damaged(state_dir, "fetched", n);
            let [key, id, etag, size, when, rank, name] = &f[..] else {
                return Err(bad());
            };
            let named = (name.strip_prefix(key.as_str()))
                .is_some_and(|r| r.starts_with('~') && !r.contains('/'));
            if crate::pull::hostile(key).is_some() || !named {
                return Err(bad());
            }
            let size = size.parse().map_err(|_| bad())?;
            let when = time(when).ok_or_else(bad)?;
            let rank = rank.parse().map_err(|_| bad())?;
            self.ids
                .insert((key.clone(), id.clone(), etag.clone(), size, when));
            let (key, name, line) = (key.clone(), name.clone(), n);
            self.kept.push(Kept {
                key,
                modified: when,
                rank,
                name,
                line,
            });
        }
        Ok(())
    }

    /// `deletions.log`: each line one of the three events sol-pull logs.
    fn read_events(&mut self, state_dir: &Path) -> Result<()> {
        for (n, f) in fields(state_dir, "deletions.log")? {
            let bad = || damaged(state_dir, "deletions.log", n);
            let [when, key, how] = &f[..] else {
                return Err(bad());
            };
            let marker = how.strip_prefix("delete marker ");
            let back = how == "back in the listing";
            if marker.is_none() && !back && how != "gone from the listing" {
                return Err(bad());
            }
            if let Some(id) = marker {
                self.markers.insert((key.clone(), id.to_string()));
            }
            self.events
                .push((time(when).ok_or_else(bad)?, key.clone(), !back));
        }
        Ok(())
    }
}

fn time(text: &str) -> Option<i64> {
    common::epoch(text).filter(|&t| common::utc(t) == text)
}

/// FILE's lines split at tabs, numbered from 1 (none when it does not exist).
fn fields(state_dir: &Path, name: &str) -> Result<Vec<(usize, Vec<String>)>> {
    let path = state_dir.join(name);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow!("{}: {e}", path.display())),
    };
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow!(
            "{}: not text: the state is damaged; nothing done",
            path.display()
        )
    })?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('\t').map(str::to_string).collect()))
        .collect())
}

fn damaged(state_dir: &Path, name: &str, line: usize) -> anyhow::Error {
    anyhow!(
        "{}/{name} line {line}: not what sol-pull writes: the state is damaged; nothing done \
         (move {} aside to start again)",
        state_dir.display(),
        state_dir.display()
    )
}

/// What a DIR is bound to: URL, and for a plain s3:// URL the endpoint it reaches (a
/// PROFILE: target names its profile, whose endpoint is its own).
pub fn source(url: &str) -> String {
    if sol_common::target::split(url).0.is_some() {
        return url.to_string();
    }
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(e) if !e.is_empty() => format!("{url} at {}", e.trim_end_matches('/')),
        _ => format!("{url} at AWS"),
    }
}

/// DIR pulls one prefix: a first run records URL, a later run with another is refused.
pub fn check_url(state_dir: &Path, url: &str) -> Result<()> {
    let path = state_dir.join("url");
    match fs::read_to_string(&path) {
        Ok(text) if text.trim_end_matches('\n') == url => Ok(()),
        Ok(text) => Err(usage(format!(
            "{} pulls {} ({}), not {url}",
            state_dir.parent().unwrap_or(state_dir).display(),
            text.trim_end(),
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow!("{}: {e}", path.display())),
    }
}

pub fn write_url(state_dir: &Path, url: &str) -> Result<()> {
    let path = state_dir.join("url");
    match path.exists() {
        true => Ok(()),
        false => replace(&path, &format!("{url}\n")),
    }
}

/// Append TEXT to PATH, synced.
pub fn append(path: &Path, text: &str) -> Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("{}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Replace PATH by TEXT through a rename.
pub fn replace(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text)
        .and_then(|()| fs::rename(&tmp, path))
        .with_context(|| format!("writing {}", path.display()))
}
