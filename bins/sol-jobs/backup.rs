//! sol-backup: each SOLDIR backed up (sol-backup-one), stored again (--changed) or skipped,
//! decided from one listing of the prefix.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Result;

use crate::cli::Backup;
use crate::common::{self, say, usage, Work};
use crate::engine::{sol_of, Engine};
use crate::report::{Kind, Report};

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
    let dest = common::check_url(&url[0])?;
    let keys = common::key_args(true, c.key.as_deref(), a.recipients.as_deref())?;
    common::need_tools(&NEEDS)?;
    let dirs = soldirs(dirs)?;
    let work = Work::new()?;
    let (new, replace, clock) = plan(&a, &dirs, &dest, &work)?;
    // Uploads a killed run left pending over a day keep their parts stored (and billed).
    common::abort_uploads(
        &format!("{dest}/"),
        "24h",
        &format!("warning: cleaning pending uploads under {dest}/"),
    );
    let one = common::scripts().join("sol-backup-one");
    let cmd = |mode: &[&str]| -> Vec<OsString> {
        let mut v = vec![one.clone().into_os_string()];
        v.extend(keys.iter().cloned());
        v.extend(mode.iter().map(OsString::from));
        v.extend(["--", "{}", &dest].map(OsString::from));
        v
    };
    let mut engine = Engine::new(
        &work,
        c.jobs,
        c.hosts.as_ref().map(|h| common::absolute(h)),
        Vec::new(),
    );
    engine.abort_under = Some(dest.clone());
    if !new.is_empty() {
        engine.cmd = cmd(if a.force { &["--force"] } else { &[] });
        engine.run(&new)?;
    }
    if !replace.is_empty() && !engine.interrupted {
        engine.cmd = cmd(&["--replace"]);
        engine.run(&replace)?;
    }
    let mut r = Report::of(
        Kind::Backup,
        format!("sol-backup to {dest}/"),
        "stored already",
        &work,
    );
    r.head = clock.map(|l| l + "\n").unwrap_or_default();
    r.print(&work)
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

/// What to do with each sol, from one listing (its first field is one whole key): back it
/// up (new), store it again (replace: --changed, and changed since stored), or skip it (a
/// row). Also the clock warning (--changed judges changes on the server's clock).
fn plan(
    a: &Backup,
    dirs: &[OsString],
    dest: &str,
    work: &Work,
) -> Result<(Vec<OsString>, Vec<OsString>, Option<String>)> {
    let stored: HashMap<String, Option<i64>> =
        common::listing(&format!("{dest}/"), &format!("{dest}/"))?
            .into_iter()
            .map(|l| (l.key, l.modified))
            .collect();
    let (skew, warning) = if a.changed {
        common::clock(&format!("{dest}/"))
    } else {
        (0, None)
    };
    let (mut new, mut replace) = (Vec::new(), Vec::new());
    for d in dirs {
        let name = sol_of(d);
        let Some(t) = stored
            .get(&format!("{name}.tar.gz.sc"))
            .filter(|_| !a.force)
        else {
            new.push(d.clone());
            continue;
        };
        let mut changed = None;
        if let (true, Some(t)) = (a.changed, t) {
            // Changed while it was backed up (sol-backup-one's mark, newer than the archive).
            let mark = stored
                .get(&format!(".sol-changed/{name}"))
                .copied()
                .flatten();
            changed = match mark {
                Some(m) if m >= *t => Some(true),
                _ => changed_since(Path::new(d), *t - skew, &name, work)?,
            };
        }
        match changed {
            None | Some(false) => work.row(&name, "skipped", 0, "")?,
            Some(true) => replace.push(d.clone()),
        }
    }
    Ok((new, replace, warning))
}

/// Has anything in DIR (DIR included) changed since an archive stored at EPOCH (on this
/// host's clock)? The inode change time, which no program can set back (cp -p, rsync -a
/// and tar x keep old mtimes). A change in the same second as the archive is not told apart
/// from it. None (and a FAILED row) when part of DIR cannot be read to tell.
fn changed_since(dir: &Path, epoch: i64, name: &str, work: &Work) -> Result<Option<bool>> {
    let out = Command::new("find")
        .arg(dir)
        .args([
            "-newerct",
            &format!("@{epoch}.999999999"),
            "-printf",
            "%C@\\n",
            "-quit",
        ])
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
