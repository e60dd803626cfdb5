//! sol-prune: a retention policy for keys that carry a UTC time stamp in their name
//! (`db-20261201T020000Z.sql.gz.sc`, the `.replaced-<UTC time>` archives of --changed).
//! Keys equal once the stamp is removed form a series; the stamp is the time (never
//! Last-Modified). restic's `forget` rules decide what each series keeps; the newest key
//! of a series is always kept; keys without a stamp are never touched. A dry run by default;
//! with --delete every version of each pruned key is deleted by its id (`s3-ls
//! --delete-versions`), and a version Object Lock keeps is reported, not an error.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;

use anyhow::{anyhow, Result};

use crate::cli::Prune;
use crate::common::{self, usage};

/// A stamped key and every version of it.
struct Key {
    key: String,
    time: i64,
    versions: Vec<String>,
    /// Its latest version is data, not a delete marker.
    live: bool,
}

pub fn main(a: Prune) -> Result<u8> {
    if let Some(u) = &a.endpoint_url {
        std::env::set_var("AWS_ENDPOINT_URL", u);
    }
    let url = common::check_url(&a.url)?;
    let within = a
        .keep_within
        .as_deref()
        .map(|d| sol_common::time::parse_duration(d).map_err(usage))
        .transpose()?;
    let counts = [
        a.keep_last,
        a.keep_hourly,
        a.keep_daily,
        a.keep_weekly,
        a.keep_monthly,
    ];
    if counts.iter().all(Option::is_none) && within.is_none() {
        return Err(usage(
            "no policy: give at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-within",
        ));
    }
    common::need_tools(&["s3-ls"])?;
    let (series, unstamped) = series(&url)?;
    let mut out = format!("sol-prune of {url}/ ({})\n", policy(&a));
    let mut doomed = Vec::new();
    for (name, mut keys) in series {
        keys.sort_by(|x, y| y.time.cmp(&x.time).then(y.key.cmp(&x.key)));
        let why = keep(&keys, counts, within.map(|d| d.as_secs() as i64));
        for (k, reasons) in keys.into_iter().zip(why) {
            match reasons.is_empty() {
                false => writeln!(out, "keep    {}  ({})", k.key, reasons.join(", "))?,
                true => {
                    writeln!(
                        out,
                        "delete  {}  ({} version(s); series {name})",
                        k.key,
                        k.versions.len()
                    )?;
                    doomed.push(k);
                }
            }
        }
    }
    writeln!(
        out,
        "{unstamped} key(s) without a time stamp, sols' own archives and indexes, or \
         deleted (a delete marker latest): never touched"
    )?;
    act(&a, &url, doomed, out)
}

/// The stamped keys under URL by series (the key without its stamp), and how many keys
/// have none. Keys printed escaped (a control character or backslash) are left alone.
fn series(url: &str) -> Result<(BTreeMap<String, Vec<Key>>, usize)> {
    let mut c = Command::new("s3-ls");
    c.args(["--versions", "--", &format!("{url}/")]);
    let listing = common::run(c, |first| {
        format!("cannot list the versions under {url}/: {first}")
    })?;
    let prefix = format!("{}/", common::prefix_of(url));
    let prefix = if prefix == "/" { String::new() } else { prefix };
    let mut keys: BTreeMap<String, Key> = BTreeMap::new();
    let mut unstamped = std::collections::BTreeSet::new();
    for line in String::from_utf8_lossy(&listing).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (Some(full), Some(version)) = (f.first(), f.get(1)) else {
            continue;
        };
        let rel = full.strip_prefix(prefix.as_str()).unwrap_or(full);
        match stamp(rel) {
            Some(t) if !full.contains('\\') && !a_sols_own(rel) => {
                let k = keys.entry(full.to_string()).or_insert_with(|| Key {
                    key: full.to_string(),
                    time: t,
                    versions: Vec::new(),
                    live: false,
                });
                k.versions.push(version.to_string());
                k.live |= f.get(5) == Some(&"latest");
            }
            _ => {
                unstamped.insert(full.to_string());
            }
        }
    }
    // A key whose latest version is a delete marker is not a member of its series (it is
    // not the newest dump, whatever its stamp): it and its versions are left alone.
    let mut series: BTreeMap<String, Vec<Key>> = BTreeMap::new();
    for (full, k) in keys {
        match k.live {
            true => series.entry(without_stamp(&full)).or_default().push(k),
            false => {
                unstamped.insert(full);
            }
        }
    }
    Ok((series, unstamped.len()))
}

/// A sol's own archive or restore index (`<sol>.tar.gz.sc`, `<sol>.index.gz.sc`): never
/// pruned, even when the sol's name holds a time stamp (its `.replaced-` copies may be).
fn a_sols_own(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.ends_with(".tar.gz.sc") || name.ends_with(".index.gz.sc")
}

/// The last `YYYYMMDDTHHMMSSZ` in a key that is a real UTC time: where it starts, and its
/// epoch seconds.
fn stamp_at(key: &str) -> Option<(usize, i64)> {
    let b = key.as_bytes();
    (0..b.len().saturating_sub(15)).rev().find_map(|i| {
        let s = &b[i..i + 16];
        let digits = |r: std::ops::Range<usize>| s[r].iter().all(u8::is_ascii_digit);
        if !(digits(0..8) && s[8] == b'T' && digits(9..15) && s[15] == b'Z') {
            return None;
        }
        let t = &key[i..i + 16]; // ASCII: on char boundaries
        let text = format!(
            "{}-{}-{}T{}:{}:{}Z",
            &t[0..4],
            &t[4..6],
            &t[6..8],
            &t[9..11],
            &t[11..13],
            &t[13..15]
        );
        let secs = common::epoch(&text)?;
        (common::utc(secs) == text).then_some((i, secs))
    })
}

fn stamp(key: &str) -> Option<i64> {
    stamp_at(key).map(|(_, t)| t)
}

/// The key with its last stamp replaced by `*`: the series' name.
fn without_stamp(key: &str) -> String {
    match stamp_at(key) {
        Some((i, _)) => format!("{}*{}", &key[..i], &key[i + 16..]),
        None => key.to_string(),
    }
}

/// Why each key (newest first) is kept: restic's rules. --keep-last N the N newest; the
/// --keep-hourly/daily/weekly/monthly N the newest key of each of the N newest calendar
/// hours, days, ISO weeks, months (UTC) that have one; --keep-within D each key within D
/// of the newest. The newest is always kept. An empty list: deleted.
fn keep(keys: &[Key], counts: [Option<u32>; 5], within: Option<i64>) -> Vec<Vec<String>> {
    let mut why: Vec<Vec<String>> = keys.iter().map(|_| Vec::new()).collect();
    // A key stamped more than a day ahead of this host's clock is a typo or another clock:
    // kept, and no rule counts it or from it (restic ignores snapshots in the future).
    let now = common::now() + 86_400;
    let present = keys
        .iter()
        .position(|k| k.time <= now)
        .unwrap_or(keys.len());
    for w in why.iter_mut().take(present) {
        w.push("in the future".into());
    }
    if let Some(n) = counts[0] {
        for w in why.iter_mut().skip(present).take(n as usize) {
            w.push("last".into());
        }
    }
    let rules: [(&str, Period); 4] = [
        ("hourly", |t| common::utc(t)[..13].to_string()),
        ("daily", |t| common::utc(t)[..10].to_string()),
        ("weekly", iso_week),
        ("monthly", |t| common::utc(t)[..7].to_string()),
    ];
    for ((rule, period), n) in rules.into_iter().zip(&counts[1..]) {
        let Some(n) = n else { continue };
        let (mut seen, mut taken) = (None::<String>, 0);
        for (k, w) in keys.iter().zip(why.iter_mut()).skip(present) {
            let p = period(k.time);
            if seen.as_deref() != Some(p.as_str()) && taken < *n {
                w.push(format!("{rule} {p}"));
                taken += 1;
            }
            seen = Some(p);
        }
    }
    if let (Some(d), Some(newest)) = (within, keys.get(present)) {
        for (k, w) in keys.iter().zip(why.iter_mut()).skip(present) {
            if k.time >= newest.time - d {
                w.push("within".into());
            }
        }
    }
    if let Some(w) = why.get_mut(present) {
        if w.is_empty() {
            w.push("the newest of its series".into());
        }
    }
    why
}

/// A calendar period of a time: the hour, day, ISO week or month it falls in.
type Period = fn(i64) -> String;

/// The ISO 8601 week of epoch seconds T: `2026-W49`.
fn iso_week(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let weekday = (days + 3).rem_euclid(7); // 1970-01-01 was a Thursday: Monday is 0
    let thursday = days - weekday + 3;
    let year = &common::utc(thursday * 86_400)[..4];
    let jan1 = common::epoch(&format!("{year}-01-01T00:00:00Z")).unwrap_or(0) / 86_400;
    format!("{year}-W{:02}", (thursday - jan1) / 7 + 1)
}

/// The policy as the report's title shows it.
fn policy(a: &Prune) -> String {
    let mut p = Vec::new();
    let rules = [
        ("last", a.keep_last),
        ("hourly", a.keep_hourly),
        ("daily", a.keep_daily),
        ("weekly", a.keep_weekly),
        ("monthly", a.keep_monthly),
    ];
    for (name, n) in rules {
        if let Some(n) = n {
            p.push(format!("--keep-{name} {n}"));
        }
    }
    if let Some(d) = &a.keep_within {
        p.push(format!("--keep-within {d}"));
    }
    p.join(" ")
}

/// The dry run's end, or the deletion (every version of each doomed key, by id) and its
/// report; --max-delete refuses a plan larger than it, before any deletion.
fn act(a: &Prune, url: &str, doomed: Vec<Key>, mut out: String) -> Result<u8> {
    let n = doomed.len();
    if !a.delete {
        writeln!(
            out,
            "dry run: {n} key(s) would be deleted; nothing was (sol-prune --delete deletes them)"
        )?;
        crate::report::emit(&out);
        return Ok(0);
    }
    if let Some(max) = a.max_delete.filter(|&m| n > m as usize) {
        writeln!(
            out,
            "refused: {n} keys to delete, more than --max-delete {max}: nothing deleted"
        )?;
        crate::report::emit(&out);
        return Err(anyhow!(
            "{n} keys to delete, more than --max-delete {max}: nothing deleted"
        ));
    }
    let done = delete_versions(a, url, &doomed)?;
    for line in String::from_utf8_lossy(&done.stderr).lines() {
        common::say(line);
    }
    let said = String::from_utf8_lossy(&done.stdout);
    let first = |word: &str| {
        said.lines()
            .filter(|l| l.split('\t').next() == Some(word))
            .count()
    };
    let (deleted, retained) = (first("deleted"), first("retained"));
    for line in said.lines().filter(|l| l.starts_with("retained\t")) {
        let f: Vec<&str> = line.split('\t').collect();
        writeln!(
            out,
            "retained until {}: {} version {}",
            f.get(3).unwrap_or(&"?"),
            f[1],
            f[2]
        )?;
    }
    writeln!(
        out,
        "deleted {deleted} version(s) of {n} key(s); {retained} retained by Object Lock"
    )?;
    crate::report::emit(&out);
    Ok(if done.status.success() { 0 } else { 1 })
}

/// `s3-ls --delete-versions` fed every version of each doomed key: its output and status.
fn delete_versions(a: &Prune, url: &str, doomed: &[Key]) -> Result<std::process::Output> {
    let mut input = String::new();
    for k in doomed {
        for v in &k.versions {
            writeln!(input, "{}\t{v}", k.key)?;
        }
    }
    let mut c = Command::new("s3-ls");
    c.arg("--delete-versions");
    if a.bypass_governance {
        c.arg("--bypass-governance");
    }
    c.args(["--", &format!("{url}/")]);
    common::feed(c, input.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: [Option<u32>; 5] = [None; 5];

    /// A policy's counts: --keep-last, -hourly, -daily, -weekly, -monthly.
    fn counts(last: u32, hourly: u32, daily: u32, weekly: u32, monthly: u32) -> [Option<u32>; 5] {
        [last, hourly, daily, weekly, monthly].map(|n| (n > 0).then_some(n))
    }

    /// Keys named NAME with `*` replaced by each stamp, sorted newest first as `main` does.
    fn listed(names: &[String]) -> Vec<Key> {
        let mut keys: Vec<Key> = names
            .iter()
            .map(|key| Key {
                key: key.clone(),
                time: stamp(key).unwrap_or_else(|| panic!("{key}: no stamp")),
                versions: vec!["v1".into()],
                live: true,
            })
            .collect();
        keys.sort_by(|x, y| y.time.cmp(&x.time).then(y.key.cmp(&x.key)));
        keys
    }

    /// The plan for one series of STAMPS, newest first: `STAMP  reasons`, or `STAMP  delete`.
    fn plan(stamps: &[&str], counts: [Option<u32>; 5], within: Option<i64>) -> Vec<String> {
        let names: Vec<String> = stamps.iter().map(|s| format!("d/db-{s}.gz")).collect();
        let keys = listed(&names);
        let why = keep(&keys, counts, within);
        keys.iter()
            .zip(why)
            .map(|(k, w)| {
                let s = &k.key[5..21];
                match w.is_empty() {
                    true => format!("{s}  delete"),
                    false => format!("{s}  {}", w.join(", ")),
                }
            })
            .collect()
    }

    #[test]
    fn keep_last_keeps_the_n_newest() {
        let days = ["20261201", "20261205", "20261203", "20261202", "20261204"];
        let stamps: Vec<String> = days.iter().map(|d| format!("{d}T020000Z")).collect();
        let stamps: Vec<&str> = stamps.iter().map(String::as_str).collect();
        assert_eq!(
            plan(&stamps, counts(2, 0, 0, 0, 0), None),
            [
                "20261205T020000Z  last",
                "20261204T020000Z  last",
                "20261203T020000Z  delete",
                "20261202T020000Z  delete",
                "20261201T020000Z  delete",
            ]
        );
    }

    /// restic's --keep-hourly: the newest key of each of the N newest hours that have one;
    /// two keys in the same hour: the older goes; an hour without a key is not counted.
    #[test]
    fn keep_hourly_takes_the_newest_of_each_hour_that_has_one() {
        let stamps = [
            "20261206T100500Z",
            "20261206T104000Z",
            "20261206T095959Z",
            "20261206T080000Z",
            "20261206T063000Z",
            "20261206T061000Z",
            "20261205T235959Z",
            "20261205T230000Z",
        ];
        assert_eq!(
            plan(&stamps, counts(0, 3, 0, 0, 0), None),
            [
                "20261206T104000Z  hourly 2026-12-06T10",
                "20261206T100500Z  delete",
                "20261206T095959Z  hourly 2026-12-06T09",
                "20261206T080000Z  hourly 2026-12-06T08",
                "20261206T063000Z  delete",
                "20261206T061000Z  delete",
                "20261205T235959Z  delete",
                "20261205T230000Z  delete",
            ]
        );
        // No key at 07: the 4th hour is 06. More hours asked than there are: each hour's
        // newest, and (unlike restic 0.17) the oldest key is not kept for the unused count.
        let p = plan(&stamps, counts(0, 4, 0, 0, 0), None);
        assert_eq!(p[4], "20261206T063000Z  hourly 2026-12-06T06");
        assert_eq!(
            p[5..],
            [
                "20261206T061000Z  delete",
                "20261205T235959Z  delete",
                "20261205T230000Z  delete"
            ]
        );
        let p = plan(&stamps, counts(0, 100, 0, 0, 0), None);
        let kept: Vec<&str> = p
            .iter()
            .filter(|l| !l.ends_with("delete"))
            .map(|l| &l[..16])
            .collect();
        assert_eq!(
            kept,
            [
                "20261206T104000Z",
                "20261206T095959Z",
                "20261206T080000Z",
                "20261206T063000Z",
                "20261205T235959Z"
            ]
        );
    }

    /// --keep-daily: UTC calendar days (23:59:59 and 00:00:00 are two days), a day without
    /// a key not counted.
    #[test]
    fn keep_daily_takes_the_newest_of_each_day_that_has_one() {
        let stamps = [
            "20261206T000000Z",
            "20261206T020000Z",
            "20261205T235959Z",
            "20261205T000000Z",
            "20261203T120000Z",
            "20261201T020000Z",
        ];
        assert_eq!(
            plan(&stamps, counts(0, 0, 3, 0, 0), None),
            [
                "20261206T020000Z  daily 2026-12-06",
                "20261206T000000Z  delete",
                "20261205T235959Z  daily 2026-12-05",
                "20261205T000000Z  delete",
                "20261203T120000Z  daily 2026-12-03",
                "20261201T020000Z  delete",
            ]
        );
    }

    /// --keep-weekly: ISO 8601 weeks, Monday to Sunday.
    #[test]
    fn keep_weekly_takes_the_newest_of_each_iso_week() {
        let stamps = [
            "20261206T235959Z", // Sunday of W49
            "20261130T000000Z", // Monday of W49
            "20261129T235959Z", // Sunday of W48
            "20261115T020000Z",
            "20261110T020000Z",
        ];
        assert_eq!(
            plan(&stamps, counts(0, 0, 0, 3, 0), None),
            [
                "20261206T235959Z  weekly 2026-W49",
                "20261130T000000Z  delete",
                "20261129T235959Z  weekly 2026-W48",
                "20261115T020000Z  weekly 2026-W46",
                "20261110T020000Z  delete",
            ]
        );
    }

    #[test]
    fn iso_weeks_across_the_year_boundary() {
        let week = |day: &str| iso_week(common::epoch(&format!("{day}T12:00:00Z")).unwrap());
        for (day, want) in [
            ("2026-12-06", "2026-W49"),
            ("2026-11-30", "2026-W49"),
            ("2026-01-01", "2026-W01"),
            ("2024-12-29", "2024-W52"),
            ("2024-12-30", "2025-W01"),
            ("2020-12-31", "2020-W53"),
            ("2021-01-03", "2020-W53"),
            ("2021-01-04", "2021-W01"),
            ("1969-12-31", "1970-W01"),
        ] {
            assert_eq!(week(day), want, "{day}");
        }
    }

    #[test]
    fn keep_monthly_takes_the_newest_of_each_month_that_has_one() {
        let stamps = [
            "20261201T000000Z",
            "20261130T235959Z",
            "20261101T000000Z",
            "20260915T000000Z",
            "20260901T000000Z",
        ];
        assert_eq!(
            plan(&stamps, counts(0, 0, 0, 0, 3), None),
            [
                "20261201T000000Z  monthly 2026-12",
                "20261130T235959Z  monthly 2026-11",
                "20261101T000000Z  delete",
                "20260915T000000Z  monthly 2026-09",
                "20260901T000000Z  delete",
            ]
        );
    }

    /// --keep-within D counts back from the series' newest key (not from now); a key exactly
    /// D older is kept (sol-prune(1)).
    #[test]
    fn keep_within_counts_from_the_newest() {
        let stamps = ["20261206T020000Z", "20261202T020000Z", "20261202T015959Z"];
        assert_eq!(
            plan(&stamps, NONE, Some(4 * 86_400)),
            [
                "20261206T020000Z  within",
                "20261202T020000Z  within",
                "20261202T015959Z  delete",
            ]
        );
    }

    /// Rules are ORed, each counting on its own: a key kept by several says all of them.
    #[test]
    fn rules_combine_and_each_counts_on_its_own() {
        let stamps = [
            "20261206T020000Z",
            "20261205T020000Z",
            "20261130T020000Z",
            "20261101T020000Z",
            "20261031T020000Z",
        ];
        assert_eq!(
            plan(&stamps, counts(1, 0, 2, 2, 2), Some(86_400)),
            [
                "20261206T020000Z  last, daily 2026-12-06, weekly 2026-W49, monthly 2026-12, within",
                "20261205T020000Z  daily 2026-12-05, within",
                "20261130T020000Z  monthly 2026-11",
                "20261101T020000Z  weekly 2026-W44",
                "20261031T020000Z  delete",
            ]
        );
    }

    /// The newest key is kept even when no rule keeps it; a key stamped in the future is
    /// kept and neither counted nor counted from.
    #[test]
    fn the_newest_is_never_dropped_and_the_future_does_not_count() {
        let stamps = ["20261206T020000Z", "20261205T020000Z"];
        assert_eq!(
            plan(&stamps, NONE, None),
            [
                "20261206T020000Z  the newest of its series",
                "20261205T020000Z  delete",
            ]
        );
        let stamps = [
            "20991231T000000Z",
            "20261206T020000Z",
            "20261205T020000Z",
            "20261204T020000Z",
        ];
        assert_eq!(
            plan(&stamps, counts(1, 0, 0, 0, 0), Some(86_400)),
            [
                "20991231T000000Z  in the future",
                "20261206T020000Z  last, within",
                "20261205T020000Z  within",
                "20261204T020000Z  delete",
            ]
        );
        assert_eq!(
            plan(
                &["20991231T000000Z", "20991230T000000Z"],
                counts(1, 0, 0, 0, 0),
                None
            ),
            [
                "20991231T000000Z  in the future",
                "20991230T000000Z  in the future"
            ]
        );
    }

    /// Series: keys equal once their last stamp is replaced by `*`; each keeps by itself.
    #[test]
    fn series_are_judged_apart() {
        for (key, series) in [
            ("d/db-20261201T020000Z.sql.gz.sc", "d/db-*.sql.gz.sc"),
            ("e/db-20261201T020000Z.sql.gz.sc", "e/db-*.sql.gz.sc"),
            (
                "d/obs-20260101T000000Z.tar.gz.sc.replaced-20261130T120000Z",
                "d/obs-20260101T000000Z.tar.gz.sc.replaced-*",
            ),
            ("d/20261201T020000Z/db.gz", "d/*/db.gz"),
        ] {
            assert_eq!(without_stamp(key), series, "{key}");
        }
        let names: Vec<String> = [
            "d/db-20261206T020000Z.gz",
            "d/db-20261205T020000Z.gz",
            "d/db-20261204T020000Z.gz",
            "d/logs-20261201T020000Z.gz",
            "d/logs-20261130T020000Z.gz",
            "e/db-20261203T020000Z.gz",
        ]
        .map(String::from)
        .to_vec();
        let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for n in names {
            by.entry(without_stamp(&n)).or_default().push(n);
        }
        let mut kept = Vec::new();
        for keys in by.values() {
            let keys = listed(keys);
            for (k, w) in keys.iter().zip(keep(&keys, counts(1, 0, 0, 0, 0), None)) {
                if !w.is_empty() {
                    kept.push(k.key.as_str().to_owned());
                }
            }
        }
        assert_eq!(
            kept,
            [
                "d/db-20261206T020000Z.gz",
                "d/logs-20261201T020000Z.gz",
                "e/db-20261203T020000Z.gz"
            ]
        );
    }

    /// Keys without a real UTC stamp, and the sols' own archives, are no series' members.
    #[test]
    fn keys_without_a_stamp_are_never_members() {
        for key in [
            "d/sol0001.tar.gz.sc",
            "d/.sol-lock-canary",
            "d/audit-history.gz",
            "d/db-20261301T020000Z.gz", // month 13
            "d/db-20260230T020000Z.gz", // February 30
            "d/db-20261201T240000Z.gz", // hour 24
            "d/db-20261201T020000.gz",  // no Z
            "d/db-20261201t020000z.gz",
            "d/db-2026121T020000Z.gz",
        ] {
            assert_eq!(stamp(key), None, "{key}");
        }
        assert_eq!(
            stamp("20261201T020000Z"),
            common::epoch("2026-12-01T02:00:00Z")
        );
        // The last real stamp counts.
        assert_eq!(
            stamp("a-20261201T020000Z-20261301T020000Z"),
            common::epoch("2026-12-01T02:00:00Z")
        );
        assert!(a_sols_own("d/obs-20260101T000000Z.tar.gz.sc"));
        assert!(a_sols_own("d/obs-20260101T000000Z.index.gz.sc"));
        assert!(!a_sols_own(
            "d/obs-20260101T000000Z.tar.gz.sc.replaced-20261130T120000Z"
        ));
    }
}
