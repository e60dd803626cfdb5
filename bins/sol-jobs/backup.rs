//! sol-backup: each SOLDIR backed up (sol-backup-one), stored again (--changed) or skipped,
//! decided from one listing of the prefix.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Result;

use crate::changes;
use crate::cli::Backup;
use crate::common::{self, say, usage, Work};
use crate::engine::{sol_of, Engine};
use crate::report::{Kind, Report};
use crate::targets::{self, Cells, Targets};

/// The tools sol-backup and sol-backup-one run.
const NEEDS: [&str; 8] = [
    "sol-tar",
    "sol-zip",
    "sol-crypt",
    "s3-mput",
    "s3-mget",
    "s3-ls",
    "sol-index",
    "parallel",
];

pub fn main(a: Backup) -> Result<u8> {
    let c = &a.common;
    if let Some(u) = &c.endpoint_url {
        std::env::set_var("AWS_ENDPOINT_URL", u);
    }
    let (dirs, url) = a.operands.split_at(a.operands.len() - 1);
    if let Some(h) = &c.hosts {
        common::check_hosts(h)?;
    }
    let mut urls = vec![common::check_url(&url[0])?];
    for t in &a.also {
        let u = common::check_url(t)?;
        if urls.contains(&u) {
            return Err(usage(format!("'{u}' is named twice: each target once")));
        }
        urls.push(u);
    }
    let k = a.min_ok.map_or(urls.len(), usize::from);
    if k > urls.len() {
        return Err(usage(format!(
            "--min-ok {k} is more than the {} target(s) given",
            urls.len()
        )));
    }
    let keys = common::key_args(true, c.key.as_deref(), a.recipients.as_deref())?;
    common::need_tools(&NEEDS)?;
    let dirs = soldirs(dirs)?;
    let work = Work::new()?;
    let targets = Targets::list(urls)?;
    let (groups, cells, clock) = plan(&a, &dirs, &targets, k, &work)?;
    for i in targets.live() {
        let dest = &targets.urls[i];
        // Uploads a killed run left pending over a day keep their parts stored (and billed).
        common::abort_uploads(
            &format!("{dest}/"),
            "24h",
            &format!("warning: cleaning pending uploads under {dest}/"),
        );
    }
    run(&a, &keys, &targets, &groups, &work)?;
    if targets.urls.len() > 1 {
        targets::merge_rows(&work, &cells)?;
    }
    let names: Vec<String> = targets.urls.iter().map(|u| format!("{u}/")).collect();
    let mut r = Report::of(
        Kind::Backup,
        format!("sol-backup to {}", names.join(", ")),
        "stored already",
        &work,
    );
    r.targets = if names.len() > 1 { names.len() } else { 0 };
    r.head = clock.map(|l| l + "\n").unwrap_or_default() + &targets.legend();
    let code = r.print(&work)?;
    Ok(if targets.live().len() < k {
        code.max(1)
    } else {
        code
    })
}

/// The groups of sols, each one engine run of sol-backup-one with its arguments; the
/// replacements last.
fn run(
    a: &Backup,
    keys: &[OsString],
    targets: &Targets,
    groups: &[Group],
    work: &Work,
) -> Result<()> {
    let one = common::scripts().join("sol-backup-one");
    let mut engine = Engine::new(
        work,
        a.common.jobs,
        a.common.hosts.as_ref().map(|h| common::absolute(h)),
        Vec::new(),
    );
    engine.abort_under = targets
        .live()
        .iter()
        .map(|&i| targets.urls[i].clone())
        .collect();
    for g in groups {
        if engine.interrupted {
            break;
        }
        let mut cmd = vec![one.clone().into_os_string()];
        cmd.extend(keys.iter().cloned());
        if let Some(r) = &a.retain {
            cmd.extend(["--retain".into(), OsString::from(r)]);
        }
        if let Some(c) = &a.storage_class {
            cmd.extend(["--storage-class".into(), OsString::from(c)]);
        }
        cmd.extend(g.args.iter().map(OsString::from));
        engine.cmd = cmd;
        engine.run(&g.dirs)?;
    }
    Ok(())
}

/// Every SOLDIR checked before any work: a real directory, a usable name, no two alike;
/// absolute (the same path on every host).
fn soldirs(given: &[OsString]) -> Result<Vec<OsString>> {
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut dirs = Vec::new();
    for s in given {
        let shown = s.to_string_lossy().into_owned();
        let mut b = s.as_bytes();
        while b.len() > 1 && b.ends_with(b"/") {
            b = &b[..b.len() - 1];
        }
        let d = Path::new(std::ffi::OsStr::from_bytes(b));
        if d.is_symlink() {
            return Err(usage(format!(
                "'{shown}': a symbolic link; name the directory it points to (a sol is stored as its directory, never as a link)"
            )));
        }
        if !d.is_dir() {
            return Err(usage(format!("'{shown}': not a directory")));
        }
        let name = sol_of(&d.as_os_str().to_os_string());
        if !common::operand_name_ok(std::ffi::OsStr::from_bytes(
            b.rsplit(|&c| c == b'/').next().unwrap_or(b),
        )) {
            return Err(usage(format!("'{shown}': '{name}' cannot be a sol name")));
        }
        if let Some(first) = seen.get(&name) {
            return Err(usage(format!(
                "'{first}' and '{shown}' are both sol '{name}'; back them up in separate runs or to separate prefixes"
            )));
        }
        seen.insert(name, shown);
        dirs.push(common::absolute(d).into_os_string());
    }
    Ok(dirs)
}

/// One engine run: sol-backup-one ARGS (its options, then `-- {} TARGET`) for each DIR.
pub struct Group {
    args: Vec<String>,
    dirs: Vec<OsString>,
}

/// The plan: the groups to run, each sol's known cells, the clock warning.
type Plan = (Vec<Group>, HashMap<String, Cells>, Option<String>);

/// What to do with each sol, from one listing per target (its first field is one whole
/// key): back it up to every live target (new, or --force), store it again where it is
/// stored (--changed, and changed since stored), copy it to the live targets that lack it
/// from the first that has it (catch up), or skip it (a row). --changed judges changes on
/// the first holder's server clock.
fn plan(a: &Backup, dirs: &[OsString], t: &Targets, k: usize, work: &Work) -> Result<Plan> {
    let live = t.live();
    let stored: Vec<HashMap<&str, Option<i64>>> = (0..t.urls.len())
        .map(|i| match &t.lists[i] {
            Ok(l) => l.iter().map(|l| (l.key.as_str(), l.modified)).collect(),
            Err(_) => HashMap::new(),
        })
        .collect();
    let (skew, warning) = if a.changed {
        common::clock(&format!("{}/", t.urls[live[0]]))
    } else {
        (0, None)
    };
    let (mut groups, mut cells): (Vec<Group>, HashMap<String, Cells>) = Default::default();
    // The targets found dead during the run (sol-backup-one --dead-dir).
    let dead = work.path("dead").to_string_lossy().into_owned();
    std::fs::create_dir_all(&dead)?;
    for d in dirs {
        let name = sol_of(d);
        let archive = format!("{name}.tar.gz.sc");
        let have: Vec<usize> = live
            .iter()
            .copied()
            .filter(|&i| !a.force && stored[i].contains_key(archive.as_str()))
            .collect();
        let missing: Vec<usize> = live.iter().copied().filter(|i| !have.contains(i)).collect();
        // Judged against the oldest copy: a copy made by a catch-up is newer than the sol
        // it holds.
        let oldest = have
            .iter()
            .min_by_key(|&&i| stored[i].get(archive.as_str()).copied());
        let stale = match oldest {
            Some(&h) if a.changed => changed(&stored[h], d, &name, (&t.urls[h], skew), work)?,
            _ => Some(false),
        };
        let Some((mode, to, held)) = decide(a, t, &name, (&have, missing, stale), work)? else {
            continue;
        };
        let args = one_args(mode, &to, t, k.saturating_sub(held), &dead);
        match groups.iter_mut().find(|g| g.args == args) {
            Some(g) => g.dirs.push(d.clone()),
            None => groups.push(Group {
                args,
                dirs: vec![d.clone()],
            }),
        }
        cells.insert(name, Cells::of(t, &have, to));
    }
    groups.sort_by_key(|g| g.args.contains(&"--replace".to_string()));
    Ok((groups, cells, warning))
}

/// A sol's mode, the targets it goes to and how many hold it already, from the live
/// targets that `have` it, those `missing` it and whether it is `stale` (None: cannot
/// tell, its FAILED row written); None when there is nothing to do (a skipped row).
type Decision = Option<(Vec<String>, Vec<usize>, usize)>;
fn decide(
    a: &Backup,
    t: &Targets,
    name: &str,
    (have, missing, stale): (&[usize], Vec<usize>, Option<bool>),
    work: &Work,
) -> Result<Decision> {
    Ok(match stale {
        _ if have.is_empty() && a.force => Some((vec!["--force".into()], t.live(), 0)),
        _ if have.is_empty() => Some((vec![], t.live(), 0)),
        None => None,
        Some(true) => Some((vec!["--replace".into()], have.to_vec(), 0)),
        Some(false) if missing.is_empty() => {
            work.row(name, "skipped", 0, "")?;
            None
        }
        Some(false) => {
            let from = have
                .iter()
                .flat_map(|&i| ["--from".to_string(), t.urls[i].clone()]);
            Some((from.collect(), missing, have.len()))
        }
    })
}

/// sol-backup-one's arguments after the key options: MODE, each target of `to` after the
/// first as --also (and, when the run has several targets, --min-ok K and the directory
/// of targets found dead), then `-- {} FIRST`.
fn one_args(mode: Vec<String>, to: &[usize], t: &Targets, k: usize, dead: &str) -> Vec<String> {
    let mut args = mode;
    for &i in &to[1..] {
        args.extend(["--also".to_string(), t.urls[i].clone()]);
    }
    if t.urls.len() > 1 {
        args.extend(["--min-ok".to_string(), k.to_string(), "--dead-dir".into()]);
        args.push(dead.to_string());
    }
    args.extend(["--".into(), "{}".into(), t.urls[to[0]].clone()]);
    args
}

/// --changed: has the sol in DIR changed since its archive in `stored` (at `url`) was
/// stored? Its mark of a change during its backup, else its files' change times
/// ([`changes`]). None (and a FAILED row) when it cannot be told.
fn changed(
    stored: &HashMap<&str, Option<i64>>,
    d: &OsString,
    name: &str,
    (url, skew): (&str, i64),
    work: &Work,
) -> Result<Option<bool>> {
    let archive = format!("{name}.tar.gz.sc");
    let Some(&stored_at) = stored.get(archive.as_str()) else {
        return Ok(Some(false));
    };
    // Changed while it was backed up (sol-backup-one's mark, newer than the archive).
    let mark = stored
        .get(format!(".sol-changed/{name}").as_str())
        .copied()
        .flatten();
    // (A Last-Modified that cannot be read tells nothing: changed.)
    let Some(t) = stored_at else {
        return Ok(Some(true));
    };
    let marked = format!("{url}/.sol-changed/{name}");
    if mark.is_some_and(|m| changes::mark_applies(m, t, &marked, &format!("{url}/{archive}"))) {
        return Ok(Some(true));
    }
    let dir = Path::new(d);
    let (lo, hi) = changes::window(t, skew);
    // Clearly after the archive; clearly before it; else since the reading began.
    let at = |since: i64| format!("@{since}.999999999");
    match newer(dir, &at(hi - 1), name, work)? {
        Some(false) => {}
        other => return Ok(other),
    }
    match newer(dir, &at(lo - 1), name, work)? {
        Some(true) => {}
        other => return Ok(other),
    }
    match changes::read_start(&format!("{url}/{archive}")) {
        Some(r) if changes::plausible(r, t, skew) => newer(dir, &format!("@{r}"), name, work),
        _ => Ok(Some(true)),
    }
}

/// Has anything in DIR (DIR included) changed since SINCE (`find -newerct`: this host's
/// clock)? The inode change time, which no program can set back (cp -p, rsync -a and tar x
/// keep old mtimes). None (and a FAILED row) when part of DIR cannot be read to tell.
fn newer(dir: &Path, since: &str, name: &str, work: &Work) -> Result<Option<bool>> {
    let out = Command::new("find")
        .arg(dir)
        .args(["-newerct", since, "-printf", "%C@\\n", "-quit"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    if !out.stdout.is_empty() {
        return Ok(Some(true));
    }
    if out.status.success() {
        return Ok(Some(false));
    }
    let why = String::from_utf8_lossy(&out.stderr)
        .lines()
        .next()
        .unwrap_or("find failed")
        .to_string();
    say(format!(
        "{name}: cannot check whether it changed since stored: {why}"
    ));
    work.row(name, "FAILED", 1, &format!("cannot check: {why}"))?;
    Ok(None)
}
