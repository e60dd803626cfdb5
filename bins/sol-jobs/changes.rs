//! Has a sol changed since its archive was stored? One rule for `sol-backup --changed` and
//! `sol-audit`'s coverage. A sol's files' inode change times (this host's clock) are set
//! against the archive's Last-Modified: the server's whole second, read through a skew that
//! is itself good to about a second. A change clearly after those seconds is a change; one
//! clearly before them is in the archive, or was marked by sol-backup-one as made while it
//! was read. One within them cannot be told by the second alone (it was missed: a change
//! in the archive's own second was taken for part of it), and is judged on the instant
//! sol-backup-one began reading the sol, which it stores with the archive as the metadata
//! `sol-read-start`: a change after that instant may be missing from the archive. An
//! archive without it (stored by an earlier version) counts as changed: a needless store,
//! never a missed change.

use std::collections::HashMap;
use std::process::{Command, Stdio};

/// The archive's metadata sol-backup-one stores the instant it began reading in.
pub const READ_START: &str = "sol-read-start";

/// Where a change falls against an archive's Last-Modified.
#[derive(Debug, PartialEq)]
pub enum Then {
    After,
    Before,
    /// Within the seconds the archive's time cannot tell apart: see [`read_start`].
    Within,
}

/// The seconds (this host's clock) `[lo, hi)` within which a change cannot be told from an
/// archive Last-Modified `modified` (the server's clock, `skew` s ahead of this host's):
/// that whole second, and a second either side for the skew.
pub fn window(modified: i64, skew: i64) -> (i64, i64) {
    let t = modified - skew;
    (t - 2, t + 2)
}

/// Whether a read-start `r` can be that of an archive stored at `modified`: the reading
/// began before the archive was stored. One after it (a clock set wrong, metadata edited)
/// tells nothing, and the sol counts as changed (found by a helper: a read-start in the
/// future hid a change).
pub fn plausible(r: f64, modified: i64, skew: i64) -> bool {
    r < window(modified, skew).1 as f64
}

/// Where a change at `ctime` (this host's clock, with its fraction) falls.
pub fn against(ctime: f64, modified: i64, skew: i64) -> Then {
    let (lo, hi) = window(modified, skew);
    if ctime >= hi as f64 {
        Then::After
    } else if ctime < lo as f64 {
        Then::Before
    } else {
        Then::Within
    }
}

/// The instant (seconds since the epoch, with a fraction) sol-backup-one began reading the
/// sol whose archive is at URL; None when the archive has none or it cannot be read (the
/// caller then counts the sol as changed).
pub fn read_start(url: &str) -> Option<f64> {
    // The object itself: its key relative to the URL is empty.
    metadata_listing(url)?.remove("")
}

/// Does sol-backup-one's mark of a change made while a sol was read (`.sol-changed/SOL`,
/// stored at `mark`) belong to its archive stored at `t` (both the server's seconds), and
/// not to an earlier backup's? After it, yes; long before, no; in the same second or up to
/// [`EARLY_MARK`] before (the mark made just before the commit, or a store again right
/// after a marked backup), when it was made by the backup that stored this archive or a
/// later one: the mark keeps that backup's read-start too (and counts when either
/// read-start cannot be read).
pub fn mark_applies(mark: i64, t: i64, mark_url: &str, archive_url: &str) -> bool {
    // Made after the archive: whatever backup made it, the archive may not hold the change
    // (found by a helper: an older backup's mark written last was ignored).
    if mark > t {
        return true;
    }
    if mark < t - EARLY_MARK {
        return false;
    }
    // A read-start that cannot be read tells nothing: the mark counts (a needless store at
    // worst, never a change hidden).
    match (read_start(mark_url), read_start(archive_url)) {
        (Some(m), Some(a)) => m >= a,
        _ => true,
    }
}

/// The read-start instants of the archives of the sols NAMES under the prefix URL: one
/// request each for a few, else one listing of the prefix with every object's metadata.
/// A sol missing from the map has none (changed).
pub fn read_starts(url: &str, names: &[&str]) -> HashMap<String, f64> {
    if names.len() <= 16 {
        return names
            .iter()
            .filter_map(|n| Some((n.to_string(), read_start(&format!("{url}/{n}{ARCHIVE}"))?)))
            .collect();
    }
    let all = metadata_listing(&format!("{url}/")).unwrap_or_default();
    names
        .iter()
        .filter_map(|n| Some((n.to_string(), *all.get(&format!("{n}{ARCHIVE}"))?)))
        .collect()
}

const ARCHIVE: &str = ".tar.gz.sc";

/// How long before its archive's time a mark may have been made for that archive (seconds):
/// sol-backup-one marks a change just before the commit, which a slow target can hold
/// back. Older marks are an earlier backup's without a request; within it, the read-starts
/// decide.
const EARLY_MARK: i64 = 600;

/// Each object's sol-read-start under URL, by its key relative to URL (`s3-ls --relative
/// --metadata`); None when the listing fails.
fn metadata_listing(url: &str) -> Option<HashMap<String, f64>> {
    let out = Command::new("s3-ls")
        .args(["--relative", "--metadata", "--", url])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.lines()
            .filter_map(|line| {
                let mut f = line.split('\t');
                let key = f.next()?;
                let start = f
                    .skip(3)
                    .find_map(|f| f.strip_prefix(READ_START)?.strip_prefix('='))?;
                let t = start.parse::<f64>().ok().filter(|t| t.is_finite())?;
                Some((key.to_string(), t))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_in_the_archives_second_or_the_skews_is_within() {
        // Archive at 1000 on a server 1 s ahead: 999 here, give or take.
        assert_eq!(against(1001.0, 1000, 1), Then::After);
        assert_eq!(against(1000.999, 1000, 1), Then::Within);
        assert_eq!(against(999.5, 1000, 1), Then::Within);
        assert_eq!(against(997.0, 1000, 1), Then::Within);
        assert_eq!(against(996.999, 1000, 1), Then::Before);
    }
}
