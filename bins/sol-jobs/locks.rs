//! sol-audit --locks, --lock-warn D, --extend-locks D: each stored archive's Object Lock,
//! from `s3-ls --locks` (a HEAD of each object, 16 at a time), or `s3-ls --extend-locks D`
//! (renewed first). An archive without a retention or legal hold, or whose retention ends
//! within --lock-warn, is a protection gap; the tail says until when the sols are protected.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::Result;

use crate::common;

/// What the archives' locks say: the problems, and the tail's line.
pub struct Locks {
    pub problems: Vec<String>,
    pub line: String,
}

/// The locks of the archives of `sols` under `url` (epoch seconds `now` on the server's
/// clock), renewed first to `extend` seconds from now when asked.
pub fn check(
    url: &str,
    sols: &[String],
    now: i64,
    warn: (i64, &str),
    extend: Option<&str>,
) -> Result<Locks> {
    let mut c = Command::new("s3-ls");
    c.arg("--relative");
    match extend {
        Some(d) => c.args(["--extend-locks", d]),
        None => c.arg("--locks"),
    };
    c.args(["--", &format!("{url}/")]);
    let out = common::run(c, |first| {
        format!("cannot read the locks under {url}/: {first}")
    })?;
    let text = String::from_utf8_lossy(&out);
    let mut until: BTreeMap<&str, (Option<i64>, bool)> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if let (Some(sol), 7) = (f[0].strip_suffix(".tar.gz.sc"), f.len()) {
            until.insert(sol, (common::epoch(f[5]), f[6] == "ON"));
        }
    }
    let (mut problems, mut locked, mut earliest) = (Vec::new(), 0, None::<(i64, &str)>);
    for sol in sols {
        match until.get(sol.as_str()) {
            Some((Some(t), false)) if *t <= now => problems.push(format!(
                "{sol}: not locked (its retention ended {})",
                common::utc(*t)
            )),
            Some((Some(t), _)) => {
                locked += 1;
                if !earliest.is_some_and(|e| *t >= e.0) {
                    earliest = Some((*t, sol.as_str()));
                }
                if *t - now < warn.0 {
                    problems.push(format!(
                        "{sol}: its lock ends {}, within --lock-warn {} (sol-audit --extend-locks renews it)",
                        common::utc(*t),
                        warn.1
                    ));
                }
            }
            Some((None, true)) => locked += 1,
            _ => problems.push(format!(
                "{sol}: not locked (no Object Lock retention or legal hold on {sol}.tar.gz.sc)"
            )),
        }
    }
    let line = summary(locked, sols.len(), earliest);
    let line = line + &per_sol(sols, &until, now);
    Ok(Locks { problems, line })
}

/// The tail's first line on locks: how many are locked, the earliest end.
fn summary(locked: usize, total: usize, earliest: Option<(i64, &str)>) -> String {
    match earliest {
        Some((t, sol)) => format!(
            "locks: {locked} of {total} archives locked; the earliest retention ends {} ({sol})\n",
            common::utc(t)
        ),
        None => format!("locks: {locked} of {total} archives locked\n"),
    }
}

/// Until when each sol is protected, runs of sols with the same end day on one line:
/// `  sol0001 .. sol0120: until 2027-01-05`.
fn per_sol(sols: &[String], until: &BTreeMap<&str, (Option<i64>, bool)>, now: i64) -> String {
    let state = |sol: &str| match until.get(sol) {
        Some((Some(t), false)) if *t <= now => "NOT LOCKED (ended)".to_string(),
        Some((Some(t), hold)) => {
            let day = &common::utc(*t)[..10];
            format!(
                "until {day}{}",
                if *hold { ", and a legal hold" } else { "" }
            )
        }
        Some((None, true)) => "a legal hold".to_string(),
        _ => "NOT LOCKED".to_string(),
    };
    let mut runs: Vec<(&str, &str, String)> = Vec::new();
    for sol in sols {
        let s = state(sol);
        match runs.last_mut() {
            Some(last) if last.2 == s => last.1 = sol,
            _ => runs.push((sol, sol, s)),
        }
    }
    runs.iter()
        .map(|(a, b, s)| match a == b {
            true => format!("  {a}: {s}\n"),
            false => format!("  {a} .. {b}: {s}\n"),
        })
        .collect()
}

/// --check-lock: a canary stored locked for a day under `url` (`s3-mput --lock-canary`: a
/// new version of PREFIX/.sol-lock-canary each run), which this host's credentials then
/// fail to delete or overwrite. A problem when the lock did not hold or could not be
/// tried; the tail's line either way.
pub fn canary(url: &str) -> (Option<String>, String) {
    let key = format!("{url}/.sol-lock-canary");
    let text = format!("sol-audit lock canary, {}\n", common::utc(common::now()));
    let out = Command::new("s3-mput")
        .args(["--overwrite", "--retain", "1d", "--lock-canary", "--", &key])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(text.as_bytes())?;
            }
            child.wait_with_output()
        });
    match out {
        Ok(o) if o.status.success() => {
            let said = String::from_utf8_lossy(&o.stdout);
            let version = said
                .trim_end()
                .split('\t')
                .nth(1)
                .unwrap_or("?")
                .to_string();
            (
                None,
                format!("lock canary: {key} version {version} held (its delete and overwrite were refused)\n"),
            )
        }
        Ok(o) => {
            let why = String::from_utf8_lossy(&o.stderr);
            let why = why.lines().next().unwrap_or("s3-mput failed").to_string();
            let p = format!("lock canary: {why}");
            (Some(p.clone()), format!("{p}\n"))
        }
        Err(e) => {
            let p = format!("lock canary: cannot run s3-mput: {e}");
            (Some(p.clone()), format!("{p}\n"))
        }
    }
}
