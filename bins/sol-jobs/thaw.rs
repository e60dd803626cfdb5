//! Cold storage. `sol-restore --thaw`: the time and cost of each tier for the whole set,
//! then a RestoreObject for each sol's archive (s3-ls --thaw) and its state. Before a plain
//! restore, sol-restore-one asks each sol's state (`--cold`: s3-ls --head --classes on the
//! first target): a thawing sol is WAITING
//! (status 5: nothing failed, come back later), a cold one that was never asked for is
//! FAILED naming --thaw, and one whose restored copy expired before it was fetched is asked
//! again, with the tier and days it was asked with (PREFIX/.sol-thaw/SOL records them).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{anyhow, Result};

use crate::cli::Restore;
use crate::common::{self, usage};
use crate::report;

/// WAITING's status: nothing failed; run again once the thaws are served.
pub const WAITING: u8 = sol_common::Status::Waiting as u8;

/// One line of the price table: a class's tier, how long it takes, what it costs.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub class: String,
    pub tier: String,
    pub time: String,
    pub per_gb: f64,
    pub per_1000: f64,
}

/// The default table: AWS list prices in us-east-1 (S3 pricing page, 2024), in USD. A site
/// replaces them with --prices FILE, the same five fields a line.
pub const DEFAULT_PRICES: &str = "\
# CLASS       TIER       TIME        USD/GB  USD/1000-REQUESTS
GLACIER       Expedited  1-5min      0.03    10.00
GLACIER       Standard   3-5h        0.01    0.05
GLACIER       Bulk       5-12h       0.00    0.00
DEEP_ARCHIVE  Standard   12h         0.02    0.10
DEEP_ARCHIVE  Bulk       48h         0.0025  0.025
";

/// A price table's text: `CLASS TIER TIME USD/GB USD/1000` a line, `#` comments.
pub fn parse_prices(text: &str, what: &str) -> Result<Vec<Price>> {
    let mut table = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |s: &str| s.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0);
        match (
            f.as_slice(),
            f.get(3).and_then(|s| num(s)),
            f.get(4).and_then(|s| num(s)),
        ) {
            ([class, tier, time, _, _], Some(per_gb), Some(per_1000)) => table.push(Price {
                class: class.to_string(),
                tier: tier.to_string(),
                time: time.to_string(),
                per_gb,
                per_1000,
            }),
            _ => {
                return Err(usage(format!(
                    "{what}, line {}: not CLASS TIER TIME USD/GB USD/1000-REQUESTS",
                    n + 1
                )))
            }
        }
    }
    Ok(table)
}

/// A sol's archive as s3-ls --head --classes sees it.
pub struct Cold {
    pub size: u64,
    pub class: String,
    /// `-`, `cold`, `thawing`, `ready-until-T`, `expired-T`.
    pub state: String,
}

/// The state of the object at URL; None when there is no such object.
pub fn state_of(url: &str) -> Result<Option<Cold>> {
    let out = Command::new("s3-ls")
        .args(["--head", "--classes", "--", url])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| anyhow!("s3-ls: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if err.contains(": no such object") {
            return Ok(None);
        }
        let first = err.lines().next().unwrap_or("s3-ls failed").to_string();
        return Err(anyhow!("{first}"));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.trim_end().split('\t').collect();
    match f.as_slice() {
        [_, size, _, _, class, state] => Ok(Some(Cold {
            size: size.parse().unwrap_or(0),
            class: class.to_string(),
            state: state.to_string(),
        })),
        _ => Err(anyhow!(
            "s3-ls --head --classes printed '{}'",
            text.trim_end()
        )),
    }
}

/// Ask for URL to be restored for DAYS days at TIER; its state after (`requested`, ...).
pub fn ask(url: &str, days: u32, tier: &str) -> Result<String> {
    let mut c = Command::new("s3-ls");
    c.args(["--thaw", &days.to_string(), "--tier", tier, "--", url]);
    let out = common::run(c, |first| first.to_string())?;
    let text = String::from_utf8_lossy(&out);
    Ok(text
        .trim_end()
        .rsplit('\t')
        .next()
        .unwrap_or("")
        .to_string())
}

/// The estimated cost of thawing `bytes` in `objects` objects of CLASS at TIER; None when
/// the table has no such tier for the class.
fn cost(table: &[Price], class: &str, tier: &str, bytes: u64, objects: usize) -> Option<f64> {
    let p = table.iter().find(|p| p.class == class && p.tier == tier)?;
    Some(bytes as f64 / 1e9 * p.per_gb + objects as f64 / 1000.0 * p.per_1000)
}

/// The table of each tier's time and cost for the set: `(class, bytes, objects)` each.
fn tiers(table: &[Price], set: &[(String, u64, usize)]) -> String {
    let mut out = String::from("TIER        COST      TIME\n");
    for tier in ["Expedited", "Standard", "Bulk"] {
        let costs: Vec<Option<f64>> = set
            .iter()
            .map(|(c, b, n)| cost(table, c, tier, *b, *n))
            .collect();
        let times: Vec<String> = set
            .iter()
            .map(|(c, _, _)| {
                let t = table.iter().find(|p| &p.class == c && p.tier == tier);
                format!("{c} {}", t.map_or("-", |p| p.time.as_str()))
            })
            .collect();
        let total = match costs.iter().all(Option::is_some) {
            true => format!("${:.2}", costs.iter().flatten().sum::<f64>()),
            false => "n/a".into(),
        };
        let _ = writeln!(out, "{tier:<11} {total:<9} {}", times.join(", "));
    }
    out
}

/// `sol-restore --thaw URL SOL...`: the tiers' time and cost, then each sol asked for.
pub fn main(a: &Restore) -> Result<u8> {
    if a.operands.len() < 2 {
        return Err(usage("--thaw needs s3://BUCKET/PREFIX and SOL..."));
    }
    let table = prices(a.prices.as_deref())?;
    let from = common::check_url(&a.operands[0])?;
    let sols = &a.operands[1..];
    crate::restore::check_sols(sols)?;
    common::need_tools(&["s3-ls", "s3-mput"])?;
    let (tier, days) = (a.tier.as_str(), a.days);
    let mut states = Vec::new();
    for s in sols {
        let name = s.to_string_lossy().into_owned();
        states.push((name.clone(), state_of(&archive(&from, &name))?));
    }
    let mut out = format!(
        "sol-restore --thaw from {from}/ ({tier}, {days} days)\nstarted {}\n",
        common::started()
    );
    out.push_str(&tiers(&table, &set_of(&states)));
    let (mut code, mut rows, mut total) = (0, String::new(), 0.0);
    for (name, st) in &states {
        let (word, note) = match st {
            None => {
                code = 1;
                (
                    "FAILED".to_string(),
                    format!("not stored ({name}.tar.gz.sc)"),
                )
            }
            Some(c) if c.state == "-" => {
                ("ready".into(), format!("in {}: no thaw needed", c.class))
            }
            Some(c) => {
                let word = ask(&archive(&from, name), days, tier)?;
                record(&from, name, tier, days)?;
                let price = cost(&table, &c.class, tier, c.size, 1).unwrap_or(0.0);
                if word == "requested" {
                    total += price;
                }
                (
                    spoken(&word),
                    format!("in {}, {} bytes, ${price:.2}", c.class, c.size),
                )
            }
        };
        let _ = writeln!(rows, "{name:<16} {word:<40} {note}");
    }
    out.push_str(&format!("SOL              STATE{:36}NOTE\n", ""));
    out.push_str(&rows);
    let _ = writeln!(
        out,
        "summary: {} sols; requested now: ${total:.2} ({tier}); run sol-restore (or make -f restore.mk) once they are ready: a sol still thawing is WAITING (status 5)",
        states.len()
    );
    report::emit(&out);
    Ok(code)
}

/// A state as the report says it: `in progress`, `ready until T`, or the word itself.
fn spoken(word: &str) -> String {
    match word {
        "thawing" => "in progress".into(),
        w => match w.strip_prefix("ready-until-") {
            Some(t) => format!("ready until {t}"),
            None => w.to_string(),
        },
    }
}

/// The price table: --prices FILE, else the defaults.
pub fn prices(file: Option<&Path>) -> Result<Vec<Price>> {
    match file {
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| {
                usage(format!(
                    "--prices '{}': {}",
                    f.display(),
                    sol_common::io_msg(&e)
                ))
            })?;
            parse_prices(&text, &format!("--prices '{}'", f.display()))
        }
        None => parse_prices(DEFAULT_PRICES, "the default prices"),
    }
}

/// The archives' classes, bytes and counts, a class each (warm ones left out).
fn set_of(states: &[(String, Option<Cold>)]) -> Vec<(String, u64, usize)> {
    let mut set: Vec<(String, u64, usize)> = Vec::new();
    for c in states.iter().filter_map(|(_, c)| c.as_ref()) {
        if c.state == "-" {
            continue;
        }
        match set.iter_mut().find(|(k, _, _)| *k == c.class) {
            Some(e) => {
                e.1 += c.size;
                e.2 += 1;
            }
            None => set.push((c.class.clone(), c.size, 1)),
        }
    }
    set
}

fn archive(from: &str, sol: &str) -> String {
    format!("{from}/{sol}.tar.gz.sc")
}

/// The thaw asked for SOL, so a later restore asks again when the copy expired unfetched:
/// PREFIX/.sol-thaw/SOL holds `TIER DAYS`.
fn record(from: &str, sol: &str, tier: &str, days: u32) -> Result<()> {
    use std::io::Write;
    use std::process::Stdio;
    let url = format!("{from}/.sol-thaw/{sol}");
    let mut child = Command::new("s3-mput")
        .args(["--overwrite", "--", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow!("s3-mput: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(format!("{tier} {days}\n").as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or("s3-mput failed");
        return Err(anyhow!("{sol}: recording the thaw: {first}"));
    }
    Ok(())
}

/// The tier and days a thaw of SOL was asked with, if one was.
fn recorded(from: &str, sol: &str) -> Option<(String, u32)> {
    let out = Command::new("s3-mget")
        .args(["--", &format!("{from}/.sol-thaw/{sol}")])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = text.split_whitespace();
    let tier = f.next()?.to_string();
    let days = f.next()?.parse().ok()?;
    Some((tier, days))
}

/// sol-restore-one's question before a restore (hidden: `sol-jobs restore --cold FROM
/// SOL`): nothing when SOL's archive can be read now (or is not stored: the restore says
/// so), else its row's STATUS<TAB>CODE<TAB>NOTE: WAITING 5 (thawing, or asked again after
/// its copy expired unfetched) or FAILED 1 (cold, never asked for).
pub fn cold_row(a: &Restore) -> Result<u8> {
    let [from, sol] = &a.operands[..] else {
        return Err(usage("--cold needs s3://BUCKET/PREFIX and SOL"));
    };
    let from = common::check_url(from)?;
    crate::restore::check_sols(std::slice::from_ref(sol))?;
    let name = sol.to_string_lossy().into_owned();
    let table = prices(a.prices.as_deref())?;
    let Some(c) = state_of(&archive(&from, &name))? else {
        return Ok(0);
    };
    if c.state == "-" || c.state.starts_with("ready") {
        return Ok(0);
    }
    let (status, code, note) = waiting(&from, &name, &c, &table)?;
    report::emit(&format!("{status}\t{code}\t{note}\n"));
    Ok(0)
}

/// sol-audit: the picked sols that can be read now, and the report's line about the others
/// (none when all can): each cold one is skipped, unless --thaw-budget has room for it, when
/// a Bulk thaw of 3 days is asked for (and recorded), so a later run audits it.
pub fn audit_cold(
    picked: Vec<OsString>,
    source: impl Fn(&str) -> String,
    thaw_budget: Option<u64>,
) -> Result<(Vec<OsString>, String)> {
    let (mut kept, mut skipped, mut asked, mut room) =
        (Vec::new(), Vec::new(), Vec::new(), thaw_budget.unwrap_or(0));
    for s in picked {
        let name = s.to_string_lossy().into_owned();
        let from = source(&name);
        let c = match state_of(&archive(&from, &name)) {
            // Not stored, or not to be asked now: the audit of it says what is wrong.
            Ok(None) | Err(_) => None,
            Ok(Some(c)) => Some(c),
        };
        let Some(c) = c.filter(|c| c.state != "-" && !c.state.starts_with("ready")) else {
            kept.push(s);
            continue;
        };
        if c.state != "thawing" && thaw_budget.is_some() && c.size <= room {
            ask(&archive(&from, &name), 3, "Bulk")?;
            record(&from, &name, "Bulk", 3)?;
            room -= c.size;
            asked.push(format!("{name} ({}, {} bytes)", c.class, c.size));
        } else {
            skipped.push(format!("{name} ({}, {})", c.class, c.state));
        }
    }
    let mut line = String::new();
    for (list, what) in [
        (
            &skipped,
            "picked sol(s) in cold storage not read (--thaw-budget asks for thaws)",
        ),
        (
            &asked,
            "sol(s) of which a thaw was asked, audited by a later run once ready",
        ),
    ] {
        if !list.is_empty() {
            let _ = writeln!(line, "cold: {} {what}: {}", list.len(), list.join(", "));
        }
    }
    Ok((kept, line))
}

/// The row of a sol that cannot be read yet.
fn waiting(
    from: &str,
    name: &str,
    c: &Cold,
    table: &[Price],
) -> Result<(&'static str, u8, String)> {
    let class = &c.class;
    if c.state == "thawing" {
        let note = format!("in {class}: restore in progress; run again later");
        return Ok(("WAITING", WAITING, note));
    }
    match recorded(from, name) {
        Some((tier, days)) => {
            let state = ask(&archive(from, name), days, &tier)?;
            let price = cost(table, class, &tier, c.size, 1).unwrap_or(0.0);
            let when = c
                .state
                .strip_prefix("expired-")
                .unwrap_or("before it was fetched");
            let note = format!(
                "in {class}: the restored copy expired ({when}) before it was fetched; asked again ({tier}, {days} days, about ${price:.2}): {state}"
            );
            Ok(("WAITING", WAITING, note))
        }
        None => {
            let note = format!(
                "in {class} and not restored: thaw it first (sol-restore --thaw {from} {name})"
            );
            Ok(("FAILED", 1, note))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_price_table_parses_and_prices_a_set() {
        let t = parse_prices(DEFAULT_PRICES, "d").unwrap();
        assert_eq!(t.len(), 5);
        let c = cost(&t, "GLACIER", "Standard", 100_000_000_000, 100).unwrap();
        assert!((c - 1.005).abs() < 1e-9, "{c}");
        assert_eq!(cost(&t, "DEEP_ARCHIVE", "Expedited", 1, 1), None);
        let table = tiers(&t, &[("DEEP_ARCHIVE".into(), 10_000_000_000, 10)]);
        assert!(table.contains("Expedited   n/a"), "{table}");
        assert!(
            table.contains("Bulk        $0.03     DEEP_ARCHIVE 48h"),
            "{table}"
        );
        for bad in [
            "GLACIER Bulk 5h",
            "GLACIER Bulk 5h x 1",
            "GLACIER Bulk 5h -1 0",
        ] {
            assert!(parse_prices(bad, "f").is_err(), "{bad}");
        }
        assert!(parse_prices("# nothing\n\n", "f").unwrap().is_empty());
    }
}
