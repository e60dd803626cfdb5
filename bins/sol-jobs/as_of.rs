//! sol-pull --as-of TIME DEST: the tree as it was at TIME, from DIR's kept versions and its
//! deletion log alone. A key's state at TIME is its latest event at or before TIME: a
//! version kept (present), a deletion (absent) or its coming back (present, with its newest
//! version). In one second a version comes after a deletion (a key deleted and written again
//! in that second is kept, never hidden), and versions of one second are ordered as the
//! listing ordered them (newest first), then as they were fetched.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, Context, Result};

use crate::common::{self, say, usage};
use crate::pull_state::{self, Kept, STATE};

pub fn main(dir: &Path, time: &OsStr, dest: &Path) -> Result<u8> {
    let t = time.to_str().and_then(parse_time).ok_or_else(|| {
        usage(format!(
            "--as-of '{}': expected a UTC time (2026-12-01T00:00:00Z, or +00:00) or a date",
            time.to_string_lossy()
        ))
    })?;
    let state_dir = dir.join(STATE);
    if !state_dir.is_dir() {
        return Err(anyhow!(
            "{}: nothing pulled here (no {STATE})",
            dir.display()
        ));
    }
    check_dest(dir, dest)?;
    let state = pull_state::read(&state_dir)?;
    let (mut copied, mut problems) = (0, 0);
    for (key, kept) in as_of(&state, t) {
        let to = dest.join(&key);
        let done = to
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fs::copy(dir.join(&kept.name), &to).map(|_| ()));
        match done {
            Ok(()) => copied += 1,
            Err(e) => {
                say(format!("{key}: not written ({}: {e})", to.display()));
                problems += 1;
            }
        }
    }
    let verdict = match problems {
        0 => "ok".to_string(),
        n => format!("FAILED: {n} key(s) not written"),
    };
    crate::report::emit(&format!(
        "sol-pull: {copied} file(s) as they were at {} written to {}\nresult: {verdict}\n",
        common::utc(t),
        dest.display()
    ));
    Ok(u8::from(problems > 0))
}

/// Each key present at T, with the version it had.
fn as_of(state: &pull_state::State, t: i64) -> BTreeMap<String, &Kept> {
    let mut newest: BTreeMap<&str, &Kept> = BTreeMap::new();
    for k in state.kept.iter().filter(|k| k.modified <= t) {
        let order = |k: &Kept| (k.modified, k.rank, k.line);
        match newest.get(k.key.as_str()) {
            Some(n) if order(n) >= order(k) => {}
            _ => {
                newest.insert(&k.key, k);
            }
        }
    }
    let mut last_event: BTreeMap<&str, (i64, bool)> = BTreeMap::new();
    for (when, key, deleted) in state.events.iter().filter(|e| e.0 <= t) {
        // Later lines were logged later: they win in the same second.
        if last_event
            .get(key.as_str())
            .map_or(true, |(w, _)| when >= w)
        {
            last_event.insert(key, (*when, *deleted));
        }
    }
    newest
        .into_iter()
        .filter(|(key, k)| match last_event.get(key) {
            Some((when, true)) => *when <= k.modified,
            _ => true,
        })
        .map(|(key, k)| (key.to_string(), k))
        .collect()
}

/// A UTC time: `YYYY-MM-DD` (midnight), or `YYYY-MM-DDTHH:MM:SS` with an optional fraction
/// and `Z` or an offset `+HH:MM`; a date that is no date (2026-02-30) is refused.
pub fn parse_time(text: &str) -> Option<i64> {
    if text.len() == 10 {
        return exact(&format!("{text}T00:00:00Z"));
    }
    let (clock, rest) = (text.get(..19)?, text.get(19..)?);
    let rest = match rest.strip_prefix('.') {
        Some(r) => r.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => rest,
    };
    let offset = match rest {
        "Z" => 0,
        _ => {
            let (sign, hm) = match rest.split_at_checked(1)? {
                ("+", hm) => (1, hm),
                ("-", hm) => (-1, hm),
                _ => return None,
            };
            let (h, m) = hm
                .split_once(':')
                .filter(|(h, m)| h.len() == 2 && m.len() == 2)?;
            let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
            (digits(h) && digits(m)).then_some(())?;
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    Some(exact(&format!("{clock}Z"))? - offset)
}

fn exact(rfc: &str) -> Option<i64> {
    common::epoch(rfc).filter(|&t| common::utc(t) == rfc)
}

/// DEST is new or empty, and neither DIR nor inside it, by the real paths (`..` and
/// symbolic links resolved, also for the part of DEST that does not exist yet).
fn check_dest(dir: &Path, dest: &Path) -> Result<()> {
    let real_dir = fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    let real_dest = resolve(dest)?;
    if real_dest.starts_with(&real_dir) {
        return Err(usage(format!(
            "--as-of: {} is {} or inside it: never written into",
            dest.display(),
            dir.display()
        )));
    }
    if dest.exists() && !dest.is_dir() {
        return Err(usage(format!(
            "--as-of: {} is not a directory",
            dest.display()
        )));
    }
    if dest.exists() {
        let mut entries =
            fs::read_dir(dest).with_context(|| format!("--as-of {}", dest.display()))?;
        if entries.next().is_some() {
            return Err(usage(format!("--as-of: {} is not empty", dest.display())));
        }
    }
    fs::create_dir_all(dest).with_context(|| format!("--as-of {}", dest.display()))
}

/// The real path P names: its longest existing part resolved, then the rest (which may not
/// hold `..`).
fn resolve(p: &Path) -> Result<PathBuf> {
    let p = common::absolute(p);
    let mut base = p.as_path();
    let mut rest = Vec::new();
    while !base.exists() {
        rest.push(base.file_name().map(|n| n.to_os_string()));
        base = base.parent().unwrap_or(Path::new("/"));
    }
    let mut real = fs::canonicalize(base).with_context(|| format!("{}", base.display()))?;
    for part in rest.into_iter().rev() {
        match part {
            Some(name)
                if Path::new(&name)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))) =>
            {
                real.push(name)
            }
            _ => {
                return Err(usage(format!(
                    "--as-of {}: a path that does not exist yet may not hold . or ..",
                    p.display()
                )))
            }
        }
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_are_dates_that_exist() {
        // One instant, as each form accepted writes it.
        let midnight = Some(1_796_083_200);
        for good in [
            "2026-12-01",
            "2026-12-01T00:00:00Z",
            "2026-12-01T00:00:00+00:00",
            "2026-12-01T01:00:00.5+01:00",
            "2026-11-30T19:00:00-05:00",
        ] {
            assert_eq!(parse_time(good), midnight, "{good}");
        }
        for bad in [
            "2026-02-30",
            "2026-13-45",
            "2026-12-01T24:00:00Z",
            "2026-12-01T00:00:00",
            "2026-12-01T00:00:00+0100",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
