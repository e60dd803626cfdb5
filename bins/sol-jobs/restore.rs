//! sol-restore: whole sols (sol-restore-one per sol), the report of restore.mk's rows, and
//! the names of the newest sols stored; paths of one sol are [`crate::paths`].

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

use crate::cli::Restore;
use crate::common::{self, say, usage, Work};
use crate::engine::Engine;
use crate::report::{self, Kind, Report};

pub fn main(a: Restore) -> Result<u8> {
    if let Some(u) = &a.common.endpoint_url {
        std::env::set_var("AWS_ENDPOINT_URL", u);
    }
    if let Some(dir) = &a.report_of {
        return report_of(dir, &a.operands);
    }
    if let Some(n) = a.last {
        if a.operands.len() != 1 {
            return Err(usage("--last needs s3://BUCKET/PREFIX"));
        }
        return last_sols(n as usize, &a.operands[0]);
    }
    if a.thaw {
        return crate::thaw::main(&a);
    }
    if a.cold {
        return crate::thaw::cold_row(&a);
    }
    if a.list || !a.path.is_empty() {
        if !a.also.is_empty() {
            return Err(usage(
                "--also goes with whole sols (--path and --list read one target)",
            ));
        }
        return crate::paths::main(&a);
    }
    restore_sols(&a)
}

/// The tools a restore of a sol runs (its pipeline, and s3-ls for its state).
pub const TOOLS: [&str; 5] = ["sol-tar", "sol-zip", "sol-crypt", "s3-mget", "s3-ls"];

/// A path that is never an option to another program.
pub fn not_an_option(p: &OsString) -> PathBuf {
    let s = p.to_string_lossy();
    if s.starts_with('-') {
        return PathBuf::from(format!("./{s}"));
    }
    PathBuf::from(p)
}

/// DEST and its missing parents, or one line saying why not (as mkdir -p says it).
pub fn make_dest(dest: &Path) -> Result<()> {
    fs::create_dir_all(dest).map_err(|e| {
        anyhow!(
            "cannot create directory '{}': {}",
            dest.display(),
            sol_common::io_msg(&e)
        )
    })
}

/// Whole sols: sol-restore-one per sol under GNU parallel, then the report.
fn restore_sols(a: &Restore) -> Result<u8> {
    let c = &a.common;
    if a.force {
        return Err(usage("--force goes with --path"));
    }
    if a.operands.len() < 3 {
        return Err(usage("need s3://BUCKET/PREFIX, SOL... and DEST"));
    }
    if let Some(h) = &c.hosts {
        common::check_hosts(h)?;
    }
    let from = common::check_url(&a.operands[0])?;
    let also = a
        .also
        .iter()
        .map(|t| common::check_url(t))
        .collect::<Result<Vec<String>>>()?;
    let dest = not_an_option(&a.operands[a.operands.len() - 1]);
    let sols = &a.operands[1..a.operands.len() - 1];
    check_sols(sols)?;
    let keys = common::key_args(false, c.key.as_deref(), a.identity.as_deref())?;
    crate::thaw::prices(a.prices.as_deref())?; // a bad table is a usage error before any work
    common::need_tools(&[&TOOLS[..], &["parallel"]].concat())?;
    make_dest(&dest)?;
    let work = Work::new()?;
    let list = not_in_dest(&dest, sols, &work)?;
    if !list.is_empty() {
        let mut cmd = vec![common::scripts().join("sol-restore-one").into_os_string()];
        cmd.extend(keys);
        for t in &also {
            cmd.extend(["--also".into(), t.into()]);
        }
        if let Some(p) = &a.prices {
            cmd.extend(["--prices".into(), common::absolute(p).into_os_string()]);
        }
        cmd.extend(["--".into(), from.clone().into(), "{}".into()]);
        cmd.push(common::absolute(&dest).into_os_string()); // the same path on every host
        let hosts = c.hosts.as_ref().map(|h| common::absolute(h));
        Engine::new(&work, c.jobs, hosts, cmd).run(&list)?;
    }
    let then: String = also.iter().map(|t| format!(", then {t}/")).collect();
    let title = format!("sol-restore from {from}/{then} to {}", dest.display());
    Report::of(Kind::Restore, title, "in DEST already", &work).print(&work)
}

/// The sols not in DEST yet; each of the others gets its `skipped` row.
fn not_in_dest(dest: &Path, sols: &[OsString], work: &Work) -> Result<Vec<OsString>> {
    let mut list = Vec::new();
    for s in sols {
        let d = dest.join(s);
        // A directory that holds something (or cannot be read) is in DEST already.
        let full = !d.is_symlink()
            && d.is_dir()
            && fs::read_dir(&d).map_or(true, |mut r| r.next().is_some());
        if full {
            work.row(&s.to_string_lossy(), "skipped", 0, "")?;
        } else {
            list.push(s.clone());
        }
    }
    Ok(list)
}

/// Each SOL a name, not a path, and named once.
pub fn check_sols(sols: &[OsString]) -> Result<()> {
    let mut seen = HashSet::new();
    for s in sols {
        let shown = s.to_string_lossy();
        if !common::operand_name_ok(s) {
            return Err(usage(format!(
                "'{shown}': not a sol name (a name, not a path: no slash, backslash or control character)"
            )));
        }
        if !seen.insert(s) {
            return Err(usage(format!("sol '{shown}' is named twice")));
        }
    }
    Ok(())
}

/// The report of restore.mk's rows (DIR/rows/*), with the time its run started.
fn report_of(dir: &Path, operands: &[OsString]) -> Result<u8> {
    let Ok(entries) = fs::read_dir(dir.join("rows")) else {
        return Ok(0);
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut rows = String::new();
    for f in files {
        let row = String::from_utf8_lossy(&fs::read(&f)?).into_owned();
        if row.trim().is_empty() {
            // Its sol-restore-one ended before its row (killed, or it could not start).
            let sol = f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let why = "sol-restore-one ended without a row (killed, or it could not start: see make's messages)";
            let host = common::hostname();
            rows.push_str(&format!("{sol}\t{host}\tFAILED\t1\t0\t0\t0\t0\t{why}\n"));
        }
        rows.push_str(&row);
    }
    let started = common::first_line(&dir.join("started"));
    let arg = |i: usize| {
        operands
            .get(i)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let r = Report {
        targets: 0,
        from: Default::default(),
        kind: Kind::Restore,
        title: format!("restore.mk from {}/ to {}", arg(0), arg(1)),
        skipped: "in DEST already",
        head: String::new(),
        engine: String::new(),
        tail: String::new(),
        no_rows_no_summary: false,
        started: if started.is_empty() {
            common::started()
        } else {
            started
        },
    };
    let (text, code) = report::render(&r, &rows);
    report::emit(&text);
    Ok(code)
}

/// The names of the N newest sols stored under PREFIX (by name), one a line.
fn last_sols(n: usize, url: &OsString) -> Result<u8> {
    let from = common::check_url(url)?;
    common::need_tools(&["s3-ls"])?;
    let what = format!("{from}/");
    let mut names: Vec<String> = Vec::new();
    for l in common::listing(&what, &what)? {
        let Some(sol) = l.key.strip_suffix(".tar.gz.sc") else {
            continue;
        };
        if common::listed_name_ok(sol) {
            names.push(sol.to_string());
        } else {
            say(format!(
                "skipped key '{}': its sol name does not match [A-Za-z0-9][A-Za-z0-9._-]*",
                l.key
            ));
        }
    }
    names.sort();
    let out: String = names[names.len().saturating_sub(n)..]
        .iter()
        .map(|s| format!("{s}\n"))
        .collect();
    report::emit(&out);
    Ok(0)
}
