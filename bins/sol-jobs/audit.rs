//! sol-audit: coverage from one listing and the top of SOLROOT, then the content audit of
//! the sols picked (sol-audit-one), and the report with the problems first.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::process::{Command, Stdio};

use anyhow::{anyhow, Result};

use crate::changes::{self, Then};
use crate::cli::Audit;
use crate::common::{self, say, usage, Work};
use crate::copies::{self, Held};
use crate::engine::Engine;
use crate::locks;
use crate::report::{self, Kind, Report};

/// What the listing and SOLROOT say, and the problems found.
#[derive(Default)]
struct Coverage {
    root: String,
    from: String,
    skew: i64,
    now: i64,
    /// Stored sols: the archive's Last-Modified and size.
    archived: BTreeMap<String, (i64, u64)>,
    audited: BTreeMap<String, i64>,
    local: BTreeSet<String>,
    unreadable: HashSet<String>,
    newest: Option<(String, i64)>,
    problems: Vec<String>,
    counts: [usize; 3],
    newest_words: String,
    /// What each target holds (T1, then each --also).
    held: Vec<Held>,
    /// Problems that are differences: copies of a sol that are not the same bytes.
    differ: bool,
    /// --locks: the tail's lines on the archives' locks.
    locks: String,
}

impl Coverage {
    fn problem(&mut self, p: String) {
        self.problems.push(p);
    }
}

/// The operands and options, checked, and sol-crypt's options.
struct Options {
    root: String,
    from: String,
    also: Vec<String>,
    budget: Option<u64>,
    thaw_budget: Option<u64>,
    max_age: Option<i64>,
    keys: Vec<OsString>,
    enc: Vec<OsString>,
}

pub fn main(a: Audit) -> Result<u8> {
    let o = options(&a)?;
    let work = Work::new()?;
    let (skew, clock) = common::clock(&format!("{}/", o.from));
    let mut cov = Coverage {
        root: o.root.clone(),
        from: o.from.clone(),
        skew,
        now: common::now(),
        ..Default::default()
    };
    survey(&mut cov, &o.also, a.max_age.as_deref(), o.max_age)?;
    if a.locks || a.check_lock || a.extend_locks.is_some() || a.lock_warn.is_some() {
        check_locks(&mut cov, &a)?;
    }
    let picked = pick(&cov, &a, o.budget);
    // Sols in cold storage: skipped, or a thaw asked for within --thaw-budget.
    let urls: Vec<String> = std::iter::once(&o.from).chain(&o.also).cloned().collect();
    let source = |s: &str| urls[copies::source_of(&cov.held, s)].clone();
    let named = !a.sol.is_empty();
    let (picked, cold, cold_code) = crate::thaw::audit_cold(picked, source, o.thaw_budget, named);
    let mut from = HashMap::new();
    if !picked.is_empty() {
        from = content_audit(&a, &cov, &o, &work, &picked)?;
    }
    let rows = fs::read_to_string(work.path("rows"))?;
    let tail = tail(&cov, &rows, a.days, &from) + &cold + &cov.locks;
    let r = Report {
        targets: 0,
        from,
        kind: Kind::Audit,
        title: format!("sol-audit of {} against {}", cov.root, against(&cov.held)),
        skipped: "none",
        head: head(&cov, &rows, clock),
        engine: fs::read_to_string(work.path("engine")).unwrap_or_default(),
        tail,
        no_rows_no_summary: a.coverage_only,
        started: common::started(),
    };
    let (text, mut code) = report::render(&r, &rows);
    if code == 0 {
        code = cold_code;
    }
    // 130 beats 3 beats 4 (a protection gap) beats 1.
    if !cov.problems.is_empty() && (code == 0 || code == 1) {
        code = if cov.differ { 3 } else { 4 };
    }
    if !a.quiet || code != 0 {
        report::emit(&text);
    }
    Ok(code)
}

/// FLAG's SIZE (N, NK, NM, NG), more than 0.
fn size_of(flag: &str, text: Option<&str>) -> Result<Option<u64>> {
    let Some(b) = text else {
        return Ok(None);
    };
    let size = sol_common::parse_size(b).ok().filter(|&n| n > 0);
    let size = size.ok_or_else(|| usage(format!("{flag}: '{b}' is not a size (N, NK, NM, NG)")))?;
    Ok(Some(size))
}

fn options(a: &Audit) -> Result<Options> {
    if let Some(u) = &a.common.endpoint_url {
        std::env::set_var("AWS_ENDPOINT_URL", u);
    }
    let budget = size_of("--budget", a.budget.as_deref())?;
    let thaw_budget = size_of("--thaw-budget", a.thaw_budget.as_deref())?;
    let max_age = a.max_age.as_ref().map(|m| {
        let secs = sol_common::time::parse_duration(m)
            .ok()
            .map(|d| d.as_secs() as i64);
        let bad = || {
            usage(format!(
                "--max-age: '{m}' is not a duration (N, Ns, Nm, Nh, Nd)"
            ))
        };
        secs.filter(|&s| s > 0).ok_or_else(bad)
    });
    let max_age = max_age.transpose()?;
    if let Some(h) = &a.common.hosts {
        common::check_hosts(h)?;
    }
    let mut root = a.operands[0].to_string_lossy().into_owned();
    if root.starts_with('-') {
        root = format!("./{root}"); // never an option to find
    }
    let from = common::check_url(&a.operands[1])?;
    let also = targets(&from, &a.also)?;
    if !std::path::Path::new(&root).is_dir() {
        return Err(usage(format!("'{root}': not a directory")));
    }
    for n in &a.sol {
        if !common::operand_name_ok(n.as_ref()) {
            return Err(usage(format!(
                "--sol '{n}': not a sol name (no slash, backslash or control character)"
            )));
        }
    }
    let (keys, enc) = if a.coverage_only {
        common::need_tools(&["s3-ls"])?;
        (Vec::new(), Vec::new())
    } else {
        keys(a)?
    };
    Ok(Options {
        root,
        from,
        also,
        budget,
        thaw_budget,
        max_age,
        keys,
        enc,
    })
}

/// --locks: each target's archives' Object Lock (renewed first with --extend-locks).
fn check_locks(cov: &mut Coverage, a: &Audit) -> Result<()> {
    let warn_text = a.lock_warn.as_deref().unwrap_or("30d");
    let warn = sol_common::time::parse_duration(warn_text).map_err(usage)?;
    let now = cov.now + cov.skew;
    let several = cov.held.len() > 1;
    for (i, h) in cov.held.iter().enumerate() {
        if h.dead.is_some() {
            continue;
        }
        let sols: Vec<String> = h.sols.keys().cloned().collect();
        let w = (warn.as_secs() as i64, warn_text);
        let l = locks::check(&h.url, &sols, now, w, a.extend_locks.as_deref())?;
        let label = if several {
            format!("T{} ", i + 1)
        } else {
            String::new()
        };
        cov.problems
            .extend(l.problems.into_iter().map(|p| format!("{label}{p}")));
        cov.locks.push_str(&format!("{label}{}", l.line));
        if a.check_lock {
            let (problem, line) = locks::canary(&h.url);
            cov.problems.extend(problem.map(|p| format!("{label}{p}")));
            cov.locks.push_str(&format!("{label}{line}"));
        }
    }
    Ok(())
}

/// The --also targets, checked: each a target, none named twice.
fn targets(from: &str, also: &[OsString]) -> Result<Vec<String>> {
    let mut urls = vec![from.to_string()];
    for t in also {
        let u = common::check_url(t)?;
        if urls.contains(&u) {
            return Err(usage(format!("'{u}' is named twice: each target once")));
        }
        urls.push(u);
    }
    Ok(urls.split_off(1))
}

/// Coverage: the listing, the sols here, their changes, and the problems found.
fn survey(
    cov: &mut Coverage,
    also: &[String],
    max_age_text: Option<&str>,
    max_age: Option<i64>,
) -> Result<()> {
    read_listing(cov)?;
    if !also.is_empty() {
        several(cov, also)?;
    }
    local_sols(cov)?;
    if cov.archived.is_empty() && cov.local.is_empty() {
        return Err(anyhow!(
            "no sols in {} and no archives under {}/",
            cov.root,
            cov.from
        ));
    }
    let changes = newest_changes(cov)?;
    coverage(cov, &changes, max_age_text, max_age);
    Ok(())
}

/// The --also targets: what each holds (a sol held only there counts as stored), the gaps
/// between them and the copies that differ.
fn several(cov: &mut Coverage, also: &[String]) -> Result<()> {
    cov.held.extend(copies::list_others(also)?);
    // A sol's time is its oldest copy's: a copy made by a catch-up is newer than the sol it
    // holds, and a change since the oldest is not in it.
    for h in &cov.held[1..] {
        for (sol, &(t, size, _)) in &h.sols {
            let e = cov.archived.entry(sol.clone()).or_insert((t, size));
            e.0 = e.0.min(t);
        }
    }
    let (gaps, differ) = copies::compare(&cov.held);
    cov.differ = !differ.is_empty();
    cov.problems.extend(gaps.into_iter().chain(differ));
    Ok(())
}

/// sol-audit-one for each sol picked, under GNU parallel, reading each from its target
/// (copies::source_of; --refresh stores it again at every target). Returns, with several
/// targets, the label of the target each sol was read from.
fn content_audit(
    a: &Audit,
    cov: &Coverage,
    o: &Options,
    work: &Work,
    picked: &[OsString],
) -> Result<HashMap<String, String>> {
    let hosts = a.common.hosts.as_ref().map(|h| common::absolute(h));
    let mut engine = Engine::new(work, a.common.jobs, hosts, Vec::new());
    engine.bytes_field = 6;
    let urls: Vec<&String> = std::iter::once(&o.from).chain(&o.also).collect();
    let mut from = HashMap::new();
    for (i, url) in urls.iter().enumerate() {
        let sols: Vec<OsString> = picked
            .iter()
            .filter(|s| copies::source_of(&cov.held, &s.to_string_lossy()) == i)
            .cloned()
            .collect();
        if sols.is_empty() || engine.interrupted {
            continue;
        }
        let mut cmd = vec![common::scripts().join("sol-audit-one").into_os_string()];
        cmd.extend(o.keys.iter().cloned());
        cmd.extend(o.enc.iter().cloned());
        for other in urls.iter().filter(|u| *u != url) {
            cmd.extend(["--also".into(), OsString::from(other.as_str())]);
        }
        cmd.push("--".into());
        // The same path on every host.
        cmd.push(common::absolute(std::path::Path::new(&o.root)).into_os_string());
        cmd.extend([url.to_string(), "{}".into()].map(OsString::from));
        engine.cmd = cmd;
        engine.run(&sols)?;
        if urls.len() > 1 {
            from.extend(
                sols.iter()
                    .map(|s| (s.to_string_lossy().into(), format!("T{}", i + 1))),
            );
        }
    }
    Ok(from)
}

/// sol-crypt's options for opening archives, and --refresh's for sealing the new one.
fn keys(a: &Audit) -> Result<(Vec<OsString>, Vec<OsString>)> {
    let mut enc = Vec::new();
    if let Some(r) = &a.recipients {
        enc = vec!["-R".into(), common::absolute(r).into_os_string()];
    }
    if a.refresh && a.common.key.is_none() && a.recipients.is_none() {
        return Err(usage("--refresh with an identity needs -R RECIPIENTS-FILE (or -k KEYFILE) to seal the new archive"));
    }
    if a.refresh {
        enc.push("--refresh".into());
    }
    let keys = common::key_args(false, a.common.key.as_deref(), a.identity.as_deref())?;
    if let Some(r) = &a.recipients {
        common::key_args(true, None, Some(r))?;
    }
    common::need_tools(&[
        "sol-zip",
        "sol-crypt",
        "s3-mget",
        "s3-mput",
        "s3-ls",
        "tar-md5",
        "parallel",
    ])?;
    Ok((keys, enc))
}

/// The stored sols, the audit history and the change marks, from one listing; only safe
/// names are ever used.
fn read_listing(cov: &mut Coverage) -> Result<()> {
    let url = format!("{}/", cov.from);
    let listing = common::listing(&url, &url)?;
    cov.held = vec![Held::of(&cov.from, &listing)];
    for l in listing {
        if let Some(sol) = l.key.strip_suffix(".tar.gz.sc") {
            if !common::listed_name_ok(sol) {
                say(format!(
                    "skipped key '{}': its sol name does not match [A-Za-z0-9][A-Za-z0-9._-]*",
                    l.key
                ));
                continue;
            }
            let Some(t) = l.modified else {
                say(format!(
                    "skipped key '{}': unreadable time '{}'",
                    l.key, l.modified_text
                ));
                continue;
            };
            cov.archived.insert(sol.to_string(), (t, l.size));
            if !cov.newest.as_ref().is_some_and(|n| t <= n.1) {
                cov.newest = Some((sol.to_string(), t));
            }
        } else if let Some((kind, sol)) = l.key.split_once('/') {
            if let (".sol-audit", true, Some(t)) = (kind, common::listed_name_ok(sol), l.modified) {
                cov.audited.insert(sol.to_string(), t);
            }
        }
    }
    Ok(())
}

/// The sols here: directories (not links) at the top of SOLROOT with a sol name; any other
/// directory is a problem (lost+found and hidden ones aside).
fn local_sols(cov: &mut Coverage) -> Result<()> {
    let mut names: Vec<String> = fs::read_dir(&cov.root)
        .map_err(|e| anyhow!("cannot read {}: {}", cov.root, sol_common::io_msg(&e)))?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && n != "lost+found")
        .collect();
    names.sort();
    for n in names {
        if common::listed_name_ok(&n) {
            cov.local.insert(n);
        } else {
            cov.problem(format!(
                "{}: not checked: a directory whose name does not match [A-Za-z0-9][A-Za-z0-9._-]* is not a sol sol-audit can check",
                sol_common::shell_quoted(&n)
            ));
        }
    }
    Ok(())
}

/// The newest inode change time inside each stored sol that is here, from one find over
/// them all (this host's clock); a sol that find cannot read all of is "cannot check".
fn newest_changes(cov: &mut Coverage) -> Result<BTreeMap<String, f64>> {
    let both: Vec<&String> = cov
        .local
        .iter()
        .filter(|n| cov.archived.contains_key(*n))
        .collect();
    let mut newest = BTreeMap::new();
    if both.is_empty() {
        return Ok(newest);
    }
    let prefix = format!("{}/", cov.root);
    let out = Command::new("find")
        .args(both.iter().map(|n| format!("{prefix}{n}")))
        .args(["-printf", "%C@\\t%p\\0"])
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    for rec in out.stdout.split(|&c| c == 0) {
        let rec = String::from_utf8_lossy(rec);
        let Some((t, p)) = rec.split_once('\t') else {
            continue;
        };
        let (Ok(t), Some(rest)) = (t.parse::<f64>(), p.strip_prefix(&prefix)) else {
            continue;
        };
        let n = rest.split('/').next().unwrap_or(rest).to_string();
        let e = newest.entry(n).or_insert(f64::MIN);
        *e = e.max(t);
    }
    let head = format!("find: '{prefix}");
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        let n = line
            .strip_prefix(&head)
            .map(|r| r.split(['/', '\'']).next().unwrap_or(r).to_string());
        match n {
            Some(n) if cov.archived.contains_key(&n) => {
                if cov.unreadable.insert(n.clone()) {
                    cov.problem(format!("{n}: cannot check: {}", &line["find: ".len()..]));
                }
            }
            _ => cov.problem(format!("cannot check coverage: {line}")),
        }
    }
    Ok(newest)
}

/// The target holding SOL's oldest copy (stored at `t`): the first target when none does.
fn oldest_copy<'a>(cov: &'a Coverage, sol: &str, t: i64) -> &'a str {
    let oldest = cov
        .held
        .iter()
        .find(|h| h.sols.get(sol).is_some_and(|s| s.0 == t));
    oldest.map_or(cov.from.as_str(), |h| h.url.as_str())
}

/// Does a mark of a change made while SOL was backed up apply, at any target? Each target's
/// mark is judged against its own archive, or the oldest copy (time `t`) where it has none:
/// a target that was dead during that backup, and caught up since, holds a copy of the
/// marked archive without the mark (found by a review).
fn marked(cov: &Coverage, sol: &str, t: i64) -> bool {
    let oldest_url = oldest_copy(cov, sol, t);
    cov.held.iter().any(|h| {
        let Some(&m) = h.marked.get(sol) else {
            return false;
        };
        let (at, url) = match h.sols.get(sol) {
            Some(s) => (s.0, h.url.as_str()),
            None => (t, oldest_url),
        };
        let (mark_url, archive_url) = (
            format!("{}/.sol-changed/{sol}", h.url),
            format!("{url}/{sol}.tar.gz.sc"),
        );
        changes::mark_applies(m, at, &mark_url, &archive_url)
    })
}

/// The sols here whose newest change (this host's clock) is after their archive (the
/// oldest copy's) was stored ([`changes`]: within the archive's seconds, after the
/// instant its backup began reading the sol).
fn changed_sols(cov: &Coverage, newest_c: &BTreeMap<String, f64>) -> BTreeSet<String> {
    let mut changed = BTreeSet::new();
    let mut within: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for n in &cov.local {
        let (Some(&(t, _)), Some(&c)) = (cov.archived.get(n), newest_c.get(n)) else {
            continue;
        };
        match changes::against(c, t, cov.skew) {
            Then::After => {
                changed.insert(n.clone());
            }
            Then::Before => {}
            Then::Within => {
                within.entry(oldest_copy(cov, n, t)).or_default().push(n);
            }
        }
    }
    for (url, names) in within {
        let starts = changes::read_starts(url, &names);
        for n in names {
            let t = cov.archived[n].0;
            let judged = starts
                .get(n)
                .filter(|&&r| changes::plausible(r, t, cov.skew));
            if judged.map_or(true, |&r| newest_c[n] > r) {
                changed.insert(n.to_string());
            }
        }
    }
    changed
}

/// Each sol here not stored, changed since stored, or changed while it was backed up; each
/// stored sol missing here; the newest archive and its age (overdue past --max-age).
fn coverage(
    cov: &mut Coverage,
    newest_c: &BTreeMap<String, f64>,
    max_age_text: Option<&str>,
    max_age: Option<i64>,
) {
    let local: Vec<String> = cov.local.iter().cloned().collect();
    let changed = changed_sols(cov, newest_c);
    for n in &local {
        let Some(&(t, _)) = cov.archived.get(n) else {
            cov.problem(format!(
                "{n}: not stored (no {n}.tar.gz.sc under {}/)",
                cov.from
            ));
            cov.counts[0] += 1;
            continue;
        };
        let c = newest_c.get(n).copied().unwrap_or(f64::MIN);
        // The mark first: a change it records is also one after the reading began.
        if marked(cov, n, t) {
            cov.problem(format!(
                "{n}: changed while it was backed up (the archive of {} may not hold the change; sol-backup --changed stores it again)",
                common::utc(t)
            ));
            cov.counts[1] += 1;
        } else if !cov.unreadable.contains(n) && changed.contains(n) {
            let when = common::utc(c as i64 + cov.skew);
            let after = if when > common::utc(t) {
                String::new()
            } else {
                " and was made after its backup began reading the sol, or the archive does not say when that was".into()
            };
            cov.problem(format!(
                "{n}: changed since stored (a change at {when}, the archive is of {}{after}; sol-backup --changed stores it again)",
                common::utc(t)
            ));
            cov.counts[1] += 1;
        }
    }
    let stored: Vec<(String, i64)> = cov.archived.iter().map(|(n, v)| (n.clone(), v.0)).collect();
    for (n, t) in stored {
        if !cov.local.contains(&n) {
            cov.problem(format!(
                "{n}: stored, missing locally (archive of {}; no directory {}/{n})",
                common::utc(t),
                cov.root
            ));
            cov.counts[2] += 1;
        }
    }
    newest(cov, max_age_text, max_age);
}

/// The newest archive and its age (overdue past --max-age).
fn newest(cov: &mut Coverage, max_age_text: Option<&str>, max_age: Option<i64>) {
    cov.newest_words = "no archive stored".into();
    let max = max_age_text.unwrap_or("");
    let Some((newest, t)) = cov.newest.clone() else {
        if max_age.is_some() {
            cov.problem(format!(
                "overdue: no archive stored under {}/ (--max-age {max}; is the nightly backup running?)",
                cov.from
            ));
        }
        return;
    };
    let age = cov.now + cov.skew - t;
    let ago = if age < 7200 {
        format!("{}m", age / 60)
    } else {
        format!("{}h", age / 3600)
    };
    let b = common::utc(t);
    cov.newest_words = format!("newest archive {newest}.tar.gz.sc stored {b} ({ago} ago)");
    if max_age.is_some_and(|m| age > m) {
        cov.problem(format!(
            "overdue: the newest archive {newest}.tar.gz.sc was stored {b}, {ago} ago: older than --max-age {max} (is the nightly backup running?)"
        ));
    }
}

/// Which sols to content-audit: --sol's, or random, or by budget (never audited first, then
/// the least recently audited, until the archives' sizes reach it), among the stored sols
/// that are here. An archive stored after its last audit counts as never audited.
fn pick(cov: &Coverage, a: &Audit, budget: Option<u64>) -> Vec<OsString> {
    if a.coverage_only {
        return Vec::new();
    }
    if !a.sol.is_empty() {
        return a.sol.iter().map(OsString::from).collect();
    }
    let mut candidates: Vec<(i64, &String, u64)> = cov
        .archived
        .iter()
        .filter(|(n, _)| cov.local.contains(*n))
        .map(|(n, &(_, size))| {
            let audited = cov.held[copies::source_of(&cov.held, n)].audited_since(n);
            (audited, n, size)
        })
        .collect();
    candidates.sort();
    let Some(budget) = budget else {
        shuffle(&mut candidates);
        return candidates
            .iter()
            .take(a.count.unwrap_or(1) as usize)
            .map(|c| OsString::from(c.1))
            .collect();
    };
    let mut total = 0;
    let mut out = Vec::new();
    for (_, n, size) in candidates {
        if total >= budget {
            break;
        }
        out.push(OsString::from(n));
        total += size;
    }
    out
}

fn shuffle<T>(v: &mut [T]) {
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        ^ ((std::process::id() as u64) << 32)
        | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

/// The problems (coverage's, then each audited sol's differences and causes) and the clock.
fn head(cov: &Coverage, rows: &str, clock: Option<String>) -> String {
    let mut problems = cov.problems.clone();
    for row in rows.lines() {
        let f: Vec<&str> = row.split('\t').collect();
        if f.get(2).is_some_and(|s| *s != "ok") {
            problems.extend(f.iter().skip(8).map(|note| format!("{}: {note}", f[0])));
        }
    }
    let mut out = if problems.is_empty() {
        "no problems\n".to_string()
    } else {
        format!("problems ({}):\n", problems.len())
            + &problems
                .iter()
                .map(|p| format!("  {p}\n"))
                .collect::<String>()
    };
    if let Some(c) = clock {
        out += &c;
        out.push('\n');
    }
    if cov.held.len() > 1 {
        out += "targets:";
        for (i, h) in cov.held.iter().enumerate() {
            let _ = write!(out, " T{} {}/", i + 1, h.url);
        }
        out.push('\n');
    }
    out
}

/// The coverage line and how many sols were content-audited in the last D days (an audit
/// of an archive stored since does not count); with several targets, a line per target
/// (`from`: the target each sol of this run was read from).
fn tail(cov: &Coverage, rows: &str, days: u32, from: &HashMap<String, String>) -> String {
    let ok_now: HashSet<&str> = rows
        .lines()
        .filter_map(|r| {
            let f: Vec<&str> = r.split('\t').collect();
            (f.get(2) == Some(&"ok")).then_some(f[0])
        })
        .collect();
    let [not, changed, missing] = cov.counts;
    let mut out = format!(
        "coverage: {} sols in {}, {} stored; {not} not stored, {changed} changed since stored, {missing} missing locally; {}\n",
        cov.local.len(),
        cov.root,
        cov.archived.len(),
        cov.newest_words,
    );
    let several = cov.held.len() > 1;
    for (i, h) in cov.held.iter().enumerate() {
        let label = format!("T{}", i + 1);
        let recent = h
            .sols
            .keys()
            .filter(|n| {
                let audited = h.audited_since(n);
                let here = !several || from.get(*n) == Some(&label);
                (here && ok_now.contains(n.as_str()))
                    || (audited > 0 && cov.now + cov.skew - audited <= days as i64 * 86_400)
            })
            .count();
        if several {
            let _ = write!(out, "{label} {}/: ", h.url);
        }
        let _ = writeln!(
            out,
            "{recent} of {} sols content-audited in the last {days} days",
            h.sols.len()
        );
    }
    out
}

/// The title's targets: PREFIX/, or each target's.
fn against(held: &[Held]) -> String {
    let urls: Vec<String> = held.iter().map(|h| format!("{}/", h.url)).collect();
    urls.join(", ")
}
