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
            ([class, tier, time, _, _], Some(per_gb), Some(per_1000))
                if TIERS.contains(tier)
                    && class.chars().all(|c| c.is_ascii_uppercase() || c == '_') =>
            {
                table.push(Price {
                class: class.to_string(),
                tier: tier.to_string(),
                time: time.to_string(),
                per_gb,
                per_1000,
                })
            }
            _ => {
                return Err(usage(format!(
                    "{what}, line {}: not CLASS TIER TIME USD/GB USD/1000-REQUESTS (CLASS in capitals, TIER one of {})",
                    n + 1,
                    TIERS.join(", ")
                )))
            }
        }
    }
    if table.is_empty() {
        return Err(usage(format!("{what}: no prices in it")));
    }
    Ok(table)
}

/// The restore tiers, fastest first.
const TIERS: [&str; 3] = ["Expedited", "Standard", "Bulk"];

/// A sol's archive as s3-ls --head --classes sees it.
pub struct Cold {
    pub size: u64,
    /// Last-Modified, RFC 3339 UTC.
    pub modified: String,
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
        [_, size, modified, _, class, state] => Ok(Some(Cold {
            size: size.parse().unwrap_or(0),
            modified: modified.to_string(),
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
            true => format!("${:.2}", costs.iter().flatten().sum::<f64>() + 0.0),
            false => "n/a".into(),
        };
        let _ = writeln!(out, "{tier:<11} {total:<9} {}", times.join(", "));
    }
    out
}

/// `sol-restore --thaw URL SOL...`: the tiers' time and cost, then each sol asked for. A
/// sol that cannot be asked for is a FAILED row (and a line on stderr); the others go on.
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
    let states: Vec<(String, Result<Option<Cold>>)> = sols
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .map(|name| {
            let st = state_of(&archive(&from, &name));
            (name, st)
        })
        .collect();
    let mut out = format!(
        "sol-restore --thaw from {from}/ ({tier}, {days} days)\nstarted {}\n",
        common::started()
    );
    out.push_str(&tiers(&table, &set_of(&states)));
    let (mut code, mut rows, mut total) = (0, String::new(), 0.0);
    for (name, st) in &states {
        let (word, note, c, price) = thaw_one(&from, name, st, (tier, days), &table);
        if c != 0 {
            common::say(format!("{name}: {note}"));
        }
        code = code.max(c);
        total += price;
        let _ = writeln!(rows, "{name:<16} {word:<24} {note}");
    }
    let _ = writeln!(out, "SOL              {:<24} NOTE", "STATE");
    out.push_str(&rows);
    let _ = writeln!(
        out,
        "finished {}\nsummary: {} sols; requested now: ${total:.2} ({tier}); run sol-restore (or make -f restore.mk) once they are ready: a sol still thawing is WAITING (status 5)",
        common::utc(common::now()),
        states.len()
    );
    report::emit(&out);
    Ok(code)
}

/// One sol of --thaw: its state word, note, code and the price of what was asked now.
fn thaw_one(
    from: &str,
    name: &str,
    st: &Result<Option<Cold>>,
    (tier, days): (&str, u32),
    table: &[Price],
) -> (String, String, u8, f64) {
    let failed = |note: String| ("FAILED".to_string(), note, 1, 0.0);
    let c = match st {
        Err(e) => return failed(format!("cannot read its storage class: {e}")),
        Ok(None) => return failed(format!("not stored ({name}.tar.gz.sc)")),
        Ok(Some(c)) => c,
    };
    let class = &c.class;
    match c.state.as_str() {
        "-" => {
            return (
                "ready".into(),
                format!("in {class}: no thaw needed"),
                0,
                0.0,
            )
        }
        "thawing" => {
            let note = format!("in {class}: asked before, not served yet; not asked again");
            return ("in progress".into(), note, 0, 0.0);
        }
        _ => {}
    }
    let Some(price) = cost(table, class, tier, c.size, 1) else {
        return failed(format!(
            "in {class}: the price table has no {tier} tier for {class}; not asked"
        ));
    };
    let word = match ask(&archive(from, name), days, tier) {
        Ok(w) => w,
        Err(e) => return failed(format!("in {class}: asking for a {tier} thaw: {e}")),
    };
    let note = format!("in {class}, {} bytes, ${price:.2}", c.size);
    if let Err(e) = record(from, name, tier, days) {
        let note = format!("{note}; {e} (an expiry will not be asked again)");
        return (spoken(&word), note, 1, price);
    }
    let price = if word == "requested" { price } else { 0.0 };
    (spoken(&word), note, 0, price)
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
fn set_of(states: &[(String, Result<Option<Cold>>)]) -> Vec<(String, u64, usize)> {
    let mut set: Vec<(String, u64, usize)> = Vec::new();
    for (_, c) in states {
        let Ok(Some(c)) = c else {
            continue;
        };
        if c.state == "-" || c.state == "thawing" {
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
    let url = format!("{from}/.sol-thaw/{sol}");
    let mut put = Command::new("s3-mput");
    put.args(["--overwrite", "--", &url]);
    let out = common::feed(put, format!("{tier} {days}\n").as_bytes())?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or("s3-mput failed");
        return Err(anyhow!("{sol}: recording the thaw: {first}"));
    }
    Ok(())
}

/// The tier and days a thaw of SOL was asked with, and when (RFC 3339), if one was.
fn recorded(from: &str, sol: &str) -> Option<(String, u32, String)> {
    let url = format!("{from}/.sol-thaw/{sol}");
    let quiet = |args: &[&str], tool: &str| {
        Command::new(tool)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    let head = quiet(&["--head", "--", &url], "s3-ls")?;
    let head = String::from_utf8_lossy(&head.stdout).into_owned();
    let when = head.split('\t').nth(2)?.to_string();
    let out = quiet(&["--", &url], "s3-mget")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = text.split_whitespace();
    let tier = f.next()?.to_string();
    let days = f.next()?.parse().ok()?;
    Some((tier, days, when))
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
    let (status, code, note) = waiting(&from, &name, &c, &table);
    report::emit(&format!("{status}\t{code}\t{note}\n"));
    Ok(0)
}

/// sol-audit: the picked sols that can be read now, the report's lines about the others
/// (none when all can), and the status they make: each cold one is skipped, unless
/// --thaw-budget has room for it, when a Bulk thaw of 3 days is asked for (and recorded),
/// so a later run audits it. A thaw that cannot be asked for, or a sol named (`named`)
/// and not read, is status 1; the audit goes on.
pub fn audit_cold(
    picked: Vec<OsString>,
    source: impl Fn(&str) -> String,
    thaw_budget: Option<u64>,
    named: bool,
) -> (Vec<OsString>, String, u8) {
    let (mut kept, mut lists, mut room) = (Vec::new(), [vec![], vec![], vec![]], thaw_budget);
    for s in picked {
        let name = s.to_string_lossy().into_owned();
        let from = source(&name);
        // Not stored, or its state not known: the audit of it says what is wrong.
        let Ok(Some(c)) = state_of(&archive(&from, &name)) else {
            kept.push(s);
            continue;
        };
        if c.state == "-" || c.state.starts_with("ready") {
            kept.push(s);
            continue;
        }
        let fits = room.is_some_and(|r| c.size <= r) && c.state != "thawing";
        if !fits {
            lists[0].push(format!("{name} ({}, {})", c.class, c.state));
            continue;
        }
        let asked =
            ask(&archive(&from, &name), 3, "Bulk").and_then(|_| record(&from, &name, "Bulk", 3));
        match asked {
            Ok(()) => {
                room = room.map(|r| r - c.size);
                lists[1].push(format!("{name} ({}, {} bytes)", c.class, c.size));
            }
            Err(e) => {
                common::say(format!("{name}: asking for a thaw: {e}"));
                lists[2].push(format!("{name} ({e})"));
            }
        }
    }
    let line = cold_lines(&lists, thaw_budget.is_some());
    if named && !lists[0].is_empty() {
        let n = lists[0].join(", ");
        common::say(format!(
            "not audited, in cold storage: {n} (--thaw-budget asks for a thaw)"
        ));
    }
    let code = u8::from(!lists[2].is_empty() || (named && !lists[0].is_empty()));
    (kept, line, code)
}

/// sol-audit's `cold:` lines: the sols not read, those thawed now, those whose thaw failed.
fn cold_lines(lists: &[Vec<String>; 3], budget: bool) -> String {
    let budget = match budget {
        true => "not in this run's --thaw-budget",
        false => "--thaw-budget asks for thaws",
    };
    let whats = [
        format!("picked sol(s) in cold storage not read ({budget})"),
        "sol(s) of which a thaw was asked, audited by a later run once ready".into(),
        "sol(s) whose thaw could not be asked for".into(),
    ];
    let mut line = String::new();
    for (list, what) in lists.iter().zip(whats) {
        if !list.is_empty() {
            let _ = writeln!(line, "cold: {} {what}: {}", list.len(), list.join(", "));
        }
    }
    line
}

/// The row of a sol that cannot be read yet: WAITING while its thaw is served, or once a
/// thaw asked for this archive (recorded after it was stored) expired unfetched and is
/// asked again; else FAILED naming --thaw.
fn waiting(from: &str, name: &str, c: &Cold, table: &[Price]) -> (&'static str, u8, String) {
    let class = &c.class;
    if c.state == "thawing" {
        let note = format!("in {class}: restore in progress; run again later");
        return ("WAITING", WAITING, note);
    }
    let hint = format!(
        "sol-restore --thaw {} {}",
        sol_common::shell_word(from),
        sol_common::shell_word(name)
    );
    // A record older than the archive was for an archive stored before this one.
    let Some((tier, days, _)) = recorded(from, name).filter(|r| r.2 >= c.modified) else {
        let note = format!("in {class} and not restored: thaw it first ({hint})");
        return ("FAILED", 1, note);
    };
    let when = match c.state.strip_prefix("expired-") {
        Some(t) => format!(" at {t}"),
        None => String::new(),
    };
    let price = cost(table, class, &tier, c.size, 1).map_or("n/a".into(), |p| format!("${p:.2}"));
    match ask(&archive(from, name), days, &tier) {
        Ok(state) => {
            let note = format!(
                "in {class}: its restored copy expired{when} before it was fetched; asked again ({tier}, {days} days, about {price}): {}",
                spoken(&state)
            );
            ("WAITING", WAITING, note)
        }
        Err(e) => {
            let note = format!(
                "in {class}: its restored copy expired{when} before it was fetched, and asking again failed: {e} ({hint})"
            );
            ("FAILED", 1, note)
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
        // Found by a helper: a file of comments priced everything at $0.00, a misspelled
        // tier was taken, and a set with nothing cold cost $-0.00.
        assert!(parse_prices("# nothing\n\n", "f").is_err());
        assert!(parse_prices("GLACIER bulk 5h 0 0", "f").is_err());
        assert!(parse_prices("glacier Bulk 5h 0 0", "f").is_err());
        assert!(
            tiers(&t, &[]).contains("Bulk        $0.00 "),
            "{}",
            tiers(&t, &[])
        );
    }
}
