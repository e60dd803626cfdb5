//! sol-audit with several targets (--also): what each target holds, coverage per target (a
//! sol one target lacks is a protection gap naming it), the copies of a sol compared by
//! size and ETag (from the listings; by HEAD where a listing has no ETag, never by
//! downloading), and which target each audited sol is read from (the least recently
//! audited there, so the content audit rotates through the targets).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use sol_common::exit::status_of;
use sol_common::Status;

use crate::common::{self, Listed};

/// What one target holds: per sol its archive's (Last-Modified, size, ETag), when it was
/// last content-audited there (.sol-audit/SOL), and its mark of a change made while it was
/// backed up (.sol-changed/SOL).
#[derive(Default)]
pub struct Held {
    pub url: String,
    pub sols: BTreeMap<String, (i64, u64, String)>,
    pub audited: BTreeMap<String, i64>,
    pub marked: BTreeMap<String, i64>,
    /// Why it could not be listed (then it holds nothing known).
    pub dead: Option<String>,
}

impl Held {
    /// From a listing of the target's prefix (only safe sol names).
    pub fn of(url: &str, listing: &[Listed]) -> Held {
        let mut h = Held {
            url: url.to_string(),
            ..Default::default()
        };
        for l in listing {
            let Some(t) = l.modified else { continue };
            if let Some(sol) = l.key.strip_suffix(".tar.gz.sc") {
                if common::listed_name_ok(sol) {
                    h.sols.insert(sol.into(), (t, l.size, l.etag.clone()));
                }
            } else if let Some(sol) = l.key.strip_prefix(".sol-audit/") {
                if common::listed_name_ok(sol) {
                    h.audited.insert(sol.into(), t);
                }
            } else if let Some(sol) = l.key.strip_prefix(".sol-changed/") {
                if common::listed_name_ok(sol) {
                    h.marked.insert(sol.into(), t);
                }
            }
        }
        h
    }

    /// When SOL was last audited here, if since its archive was stored (else 0: never).
    pub fn audited_since(&self, sol: &str) -> i64 {
        let stored = self.sols.get(sol).map_or(i64::MAX, |s| s.0);
        self.audited
            .get(sol)
            .copied()
            .filter(|&a| a >= stored)
            .unwrap_or(0)
    }
}

/// Each --also target, listed; one that cannot be listed is dead (a problem), one named
/// wrong (its profile in neither AWS file) a usage error.
pub fn list_others(urls: &[String]) -> anyhow::Result<Vec<Held>> {
    let mut out = Vec::new();
    for u in urls {
        let what = format!("{u}/");
        out.push(match common::listing(&what, &what) {
            Ok(l) => Held::of(u, &l),
            Err(e) if status_of(&e) == Status::Usage => return Err(e),
            Err(e) => Held {
                url: u.clone(),
                dead: Some(format!("{e:#}")),
                ..Default::default()
            },
        });
    }
    Ok(out)
}

/// The problems of several targets: a target that cannot be listed, a sol stored on some
/// targets but not all (a gap), and copies that differ (the second list: status 3).
pub fn compare(held: &[Held]) -> (Vec<String>, Vec<String>) {
    let (mut gaps, mut differ) = (Vec::new(), Vec::new());
    let label = |i: usize| format!("T{} {}/", i + 1, held[i].url);
    let mut all: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, h) in held.iter().enumerate() {
        if let Some(why) = &h.dead {
            gaps.push(format!("{}: cannot check its copies: {why}", label(i)));
        }
        for sol in h.sols.keys() {
            all.entry(sol).or_default().push(i);
        }
    }
    for (sol, on) in &all {
        for (i, h) in held.iter().enumerate() {
            if h.dead.is_none() && !on.contains(&i) {
                gaps.push(format!(
                    "{sol}: not on {} (stored on {} of {} targets; sol-backup --also catches it up)",
                    label(i),
                    on.len(),
                    held.len()
                ));
            }
        }
        let first = on[0];
        for &i in &on[1..] {
            let (a, b) = (copy_of(&held[first], sol), copy_of(&held[i], sol));
            if a.1 == "?" || b.1 == "?" {
                gaps.push(format!(
                    "{sol}: cannot compare its copies on {} and {}: no ETag (HEAD failed)",
                    label(first),
                    label(i)
                ));
            } else if a != b {
                differ.push(format!(
                    "{sol}: the copies differ: {} has {} bytes, ETag {}; {} has {} bytes, ETag {}",
                    label(first),
                    a.0,
                    a.1,
                    label(i),
                    b.0,
                    b.1
                ));
            }
        }
    }
    (gaps, differ)
}

/// A sol's archive at a target: size and ETag, from the listing, or a HEAD when the
/// listing had no ETag.
fn copy_of(h: &Held, sol: &str) -> (u64, String) {
    let (_, size, etag) = h.sols[sol].clone();
    if !etag.is_empty() {
        return (size, etag);
    }
    let out = Command::new("s3-ls")
        .args(["--head", "--", &format!("{}/{sol}.tar.gz.sc", h.url)])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let line = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let etag = line
        .ok()
        .and_then(|l| l.trim_end().split('\t').nth(3).map(str::to_string))
        .unwrap_or_default();
    (size, if etag.is_empty() { "?".into() } else { etag })
}

/// The target to read SOL from: of those holding it, the least recently audited there
/// (the first on a tie); the first target when none holds it.
pub fn source_of(held: &[Held], sol: &str) -> usize {
    (0..held.len())
        .filter(|&i| held[i].sols.contains_key(sol))
        .min_by_key(|&i| held[i].audited_since(sol))
        .unwrap_or(0)
}
