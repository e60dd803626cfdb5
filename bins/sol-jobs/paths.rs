//! sol-restore --path and --list: one sol's paths, or its members, through its restore
//! index (sol-index(1)): the index fetched and opened, bound to the stored archive, the
//! plan's byte ranges fetched into a staging directory of this run's own, checked against
//! the index, and put in place by sol-tar (which never follows a link in DEST and keeps the
//! files there unless --force). Without an index (older archives) the whole archive
//! streams. Each step's failure is one line naming its tool, and the run's status.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, Result};

use crate::cli::Restore;
use crate::common::{self, prog, say, usage, Work};
use crate::restore::{make_dest, not_an_option};

/// An end of the run whose cause was printed already: its status.
#[derive(Debug)]
struct Quit(u8);
impl std::fmt::Display for Quit {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "status {}", self.0)
    }
}
impl std::error::Error for Quit {}

fn quit(code: u8) -> anyhow::Error {
    Quit(code).into()
}

/// The sol, its archive and index, and this run's work directory.
struct Sol {
    name: String,
    url: String,
    size: u64,
    etag: String,
    stored_index: Option<u64>,
    /// The index is fetched and bound to the stored archive (work/idx).
    indexed: bool,
    /// An index was there but describes another archive.
    stale: bool,
    names: Vec<OsString>,
    keys: Vec<OsString>,
    work: Work,
}

pub fn main(a: &Restore) -> Result<u8> {
    match run(a) {
        Err(e) => match e.downcast_ref::<Quit>() {
            Some(q) => Ok(q.0),
            None => Err(e),
        },
        ok => ok,
    }
}

fn run(a: &Restore) -> Result<u8> {
    let (from, name, names) = path_args(a)?;
    let mut sol = archive(a, &from, name, names)?;
    if a.list {
        return list(&mut sol);
    }
    let dest = not_an_option(&a.operands[2]);
    make_dest(&dest)?;
    // A staging directory of this run's own, beside DEST/SOL (same file system), removed
    // when the run ends: two runs into one DEST never share one.
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}.path.", sol.name))
        .rand_bytes(6)
        .tempdir_in(&dest)
        .map_err(|e| {
            anyhow!(
                "{}: cannot create a staging directory in {}: {e}",
                sol.name,
                dest.display()
            )
        })?;
    let how = fetch(&mut sol, staging.path())?;
    into_place(&sol, staging.path(), &dest, a.force, &how)
}

/// The operands checked, PATHs as names inside the sol (SOL/...).
fn path_args(a: &Restore) -> Result<(String, String, Vec<OsString>)> {
    let ops = &a.operands;
    if a.common.jobs != 1 {
        return Err(usage("-j goes with whole sols, not --path or --list"));
    }
    if a.common.hosts.is_some() {
        return Err(usage("--hosts goes with whole sols, not --path or --list"));
    }
    if a.list && a.force {
        return Err(usage("--force goes with --path"));
    }
    if a.list && ops.len() != 2 {
        return Err(usage("--list needs s3://BUCKET/PREFIX and SOL"));
    }
    if !a.list && ops.len() != 3 {
        return Err(usage("--path needs s3://BUCKET/PREFIX, one SOL and DEST"));
    }
    let from = common::check_url(&ops[0])?;
    if !common::operand_name_ok(&ops[1]) || ops[1].to_str().is_none() {
        return Err(usage(format!(
            "'{}': not a sol name (a name, not a path: no slash, backslash or control character)",
            ops[1].to_string_lossy()
        )));
    }
    let sol = ops[1].to_string_lossy().into_owned();
    let mut names = Vec::new();
    for given in &a.path {
        let mut p = given.as_bytes();
        while let Some(rest) = p.strip_prefix(b"./") {
            p = rest;
        }
        while let Some(rest) = p.strip_suffix(b"/") {
            p = rest;
        }
        if p.is_empty() || p.starts_with(b"/") {
            return Err(usage(format!(
                "--path '{}': a name inside the sol, not empty or absolute",
                given.to_string_lossy()
            )));
        }
        let s = sol.as_bytes();
        let inside = p == s || (p.starts_with(s) && p.get(s.len()) == Some(&b'/'));
        let full = if inside {
            p.to_vec()
        } else {
            [s, b"/", p].concat()
        };
        names.push(OsString::from_vec(full));
    }
    Ok((from, sol, names))
}

/// The archive's size and ETag and whether it has an index (one listing of PREFIX/SOL.),
/// and the index fetched and opened when it has one.
fn archive(a: &Restore, from: &str, name: String, names: Vec<OsString>) -> Result<Sol> {
    let keys = common::key_args(false, a.common.key.as_deref(), a.identity.as_deref())?;
    common::need_tools(&[&crate::restore::TOOLS[..], &["sol-index"]].concat())?;
    let work = Work::new()?;
    let url = format!("{from}/{name}.tar.gz.sc");
    let mut sol = Sol {
        name,
        url,
        size: 0,
        etag: String::new(),
        stored_index: None,
        indexed: false,
        stale: false,
        names,
        keys,
        work,
    };
    let mut found = false;
    for l in common::listing(&format!("{from}/{}.", sol.name), &format!("{from}/"))? {
        match l.key.as_str() {
            "tar.gz.sc" => (found, sol.size, sol.etag) = (true, l.size, l.etag),
            "index.gz.sc" => sol.stored_index = Some(l.size),
            _ => {}
        }
    }
    if !found {
        say(format!("{}: no archive {}", sol.name, sol.url));
        return Err(quit(1));
    }
    if sol.stored_index.is_some() {
        let index_url = format!("{from}/{}.index.gz.sc", sol.name);
        let idx = fs::File::create(sol.work.path("idx"))?;
        let stages = [
            cmd("s3-mget", ["--no-md5", "--", &index_url]),
            cmd("sol-crypt", ["-d"]).args(&sol.keys).take(),
            cmd("sol-zip", ["-d"]),
        ];
        let st = pipeline(stages, &sol.work, "i", Stdio::from(idx))?;
        let tools = [
            "s3-mget (restore index)",
            "sol-crypt (restore index)",
            "sol-zip (restore index)",
        ];
        fail_on(&sol, &st, &tools, "i")?;
        sol.indexed = true;
    }
    Ok(sol)
}

/// The index describes one archive (its `archive SIZE ETAG` record). Before anything is
/// read from it, that must be the stored one: its size from the listing, its ETag from a
/// HEAD of the object itself (another ETag: as status 3). Otherwise
/// the index is not used, and INSTEAD is what happens.
fn bind_index(sol: &mut Sol, instead: &str) -> Result<()> {
    if !sol.indexed {
        return Ok(());
    }
    let text = fs::read(sol.work.path("idx"))?;
    let text = String::from_utf8_lossy(&text);
    let rec = text
        .lines()
        .find_map(|l| l.strip_prefix("archive\t"))
        .unwrap_or("");
    let mut f = rec.split('\t');
    let (isize, ietag) = (f.next().unwrap_or(""), f.next().unwrap_or("").to_string());
    let mut code = 1;
    let pin = sol.work.path("pin");
    if isize.parse::<u64>().ok() == Some(sol.size) {
        // A HEAD, which an archive in cold storage answers too (--list needs no thaw).
        let out = Command::new("s3-ls")
            .args(["--head", "--", &sol.url])
            .stdin(Stdio::null())
            .stderr(Stdio::from(fs::File::create(&pin)?))
            .output()?;
        code = status_code(out.status);
        let line = String::from_utf8_lossy(&out.stdout);
        if code == 0 && line.trim_end().rsplit('\t').next() != Some(ietag.as_str()) {
            code = 3;
        }
    }
    if code == 0 {
        sol.etag = ietag;
        return Ok(());
    }
    if code != 3 && fs::metadata(&pin).is_ok_and(|m| m.len() > 0) {
        blame(&sol.name, &pin, "s3-mget", code);
        return Err(quit(code_of(code)));
    }
    say(format!(
        "{}: warning: the restore index describes another archive (size {isize}, ETag {ietag}; stored: {} bytes): {instead}",
        sol.name, sol.size
    ));
    sol.indexed = false;
    sol.stale = true;
    Ok(())
}

/// --list: the members from the index, else from the whole archive.
fn list(sol: &mut Sol) -> Result<u8> {
    bind_index(sol, "listing the whole archive")?;
    if sol.indexed {
        let st = Command::new("sol-index")
            .arg("list")
            .arg(sol.work.path("idx"))
            .stdin(Stdio::null())
            .status()?;
        return Ok(status_code(st) as u8);
    }
    whole(
        sol,
        "listing",
        cmd("sol-tar", ["list", "-v"]),
        Stdio::inherit(),
    )?;
    Ok(0)
}

/// The plan of what to fetch for the PATHs (sol-index plan): numbers and range lists only,
/// never anything else.
fn plan(sol: &Sol) -> Result<HashMap<String, String>> {
    let out = Command::new("sol-index")
        .args(["plan", "--"])
        .arg(sol.work.path("idx"))
        .args(&sol.names)
        .stdin(Stdio::null())
        .output()?;
    let code = status_code(out.status);
    if code != 0 {
        prefixed(&sol.name, &out.stderr);
        if code == 1 {
            escaped_path_hint(sol);
        }
        return Err(quit(code_of(code)));
    }
    let mut plan = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (k, v) = line.split_once('\t').unwrap_or((line, ""));
        let v = v.split('\t').next().unwrap_or("");
        if k == "archive" {
            continue; // bound to the stored archive before the plan (bind_index)
        }
        if v.is_empty()
            || !v
                .bytes()
                .all(|c| c.is_ascii_digit() || c == b',' || c == b'-')
        {
            say(format!("{}: unexpected plan line '{k}'", sol.name));
            return Err(quit(3));
        }
        plan.insert(k.to_string(), v.to_string());
    }
    for k in ["fetch", "chunks", "zip", "tar", "fetch-bytes"] {
        if !plan.contains_key(k) {
            say(format!("{}: the plan has no '{k}' line", sol.name));
            return Err(quit(3));
        }
    }
    Ok(plan)
}

/// The PATHs into STAGING, checked against the index; returns how they were fetched.
fn fetch(sol: &mut Sol, staging: &Path) -> Result<String> {
    bind_index(sol, "streaming the whole archive")?;
    let how = if sol.indexed {
        fetch_planned(sol, staging)?
    } else {
        fetch_whole(sol, staging)?
    };
    if sol.indexed {
        let out = Command::new("sol-index")
            .args(["verify", "--"])
            .arg(sol.work.path("idx"))
            .arg(staging)
            .args(&sol.names)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            prefixed(&sol.name, &out.stderr);
            return Err(quit(3));
        }
    }
    Ok(how)
}

/// The plan's byte ranges only, each chunk authenticated, each stage cut to what it needs.
fn fetch_planned(sol: &Sol, staging: &Path) -> Result<String> {
    let p = plan(sol)?;
    let (size, index) = (sol.size, sol.stored_index.unwrap_or(0));
    let how = format!(
        "fetched {} of the archive's {size} bytes, and its index of {index} bytes",
        p["fetch-bytes"]
    );
    // One word: an ETag from the server is never read as an option.
    let pinned = format!("--if-match={}", sol.etag);
    let mget = ["--no-md5", &pinned, "--range", &p["fetch"], "--", &sol.url];
    let stages = [
        cmd("s3-mget", mget),
        cmd("sol-crypt", ["-d"])
            .args(&sol.keys)
            .args(["--chunks", &p["chunks"]])
            .take(),
        cmd("sol-index", ["cut", &p["zip"]]),
        cmd("sol-zip", ["-d"]),
        cmd("sol-index", ["cut", "--tar-end", &p["tar"]]),
        // The plan's members only, hard link targets included.
        cmd("sol-tar", ["extract", "-C"]).arg(staging).take(),
    ];
    let st = pipeline(stages, &sol.work, "", Stdio::null())?;
    let tools = [
        "s3-mget",
        "sol-crypt",
        "sol-index",
        "sol-zip",
        "sol-index",
        "sol-tar",
    ];
    fail_on(sol, &st, &tools, "")?;
    Ok(how)
}

/// No index (older archives), or one that describes another archive: the whole archive
/// streams, and sol-tar keeps the PATHs.
fn fetch_whole(sol: &Sol, staging: &Path) -> Result<String> {
    let mut extract = cmd("sol-tar", ["extract", "-C"]);
    extract.arg(staging).arg("--").args(&sol.names);
    whole(sol, "streaming", extract, Stdio::null())?;
    Ok(format!("streamed the whole archive, {} bytes", sol.size))
}

/// The whole archive through LAST (DOING it: listing, streaming), its stdout to OUT.
fn whole(sol: &Sol, doing: &str, last: Command, out: Stdio) -> Result<()> {
    if !sol.stale {
        say(format!(
            "{}: no restore index (archived before sol-backup wrote one): {doing} the whole archive",
            sol.name
        ));
    }
    let tool = last.get_program().to_string_lossy().into_owned();
    let stages = [
        cmd("s3-mget", ["--no-md5", "--", &sol.url]),
        cmd("sol-crypt", ["-d"]).args(&sol.keys).take(),
        cmd("sol-zip", ["-d"]),
        last,
    ];
    let st = pipeline(stages, &sol.work, "", out)?;
    fail_on(sol, &st, &["s3-mget", "sol-crypt", "sol-zip", &tool], "")
}

/// The staged PATHs into DEST, through sol-tar again, which never follows a symlink in
/// DEST and, without --force, keeps every file already there.
fn into_place(sol: &Sol, staging: &Path, dest: &Path, force: bool, how: &str) -> Result<u8> {
    let (files, bytes) = count(&staging.join(&sol.name));
    let mut extract = cmd("sol-tar", ["extract"]);
    if !force {
        extract.arg("--keep-old-files");
    }
    extract.arg("-C").arg(dest);
    let stages = [
        cmd("sol-tar", ["create", "-C"])
            .arg(staging)
            .arg("--")
            .arg(&sol.name)
            .take(),
        extract,
    ];
    let st = pipeline(stages, &sol.work, "m", Stdio::null())?;
    let mut code = 0;
    // What extract said first (the reader's SIGPIPE that follows is not news).
    for i in [1, 0] {
        if st[i] != 0 && code == 0 {
            blame(
                &sol.name,
                &sol.work.path(&format!("m{i}")),
                "sol-tar",
                st[i],
            );
            code = code_of(st[i]);
        }
    }
    let d = dest.display();
    if code == 0 {
        println!(
            "{}: restored {files} files ({bytes} bytes) of {} path(s) into {d}/{}; {how}",
            sol.name,
            sol.names.len(),
            sol.name
        );
    } else if !force
        && fs::read_to_string(sol.work.path("m1"))
            .unwrap_or_default()
            .contains("not replaced (--keep-old-files)")
    {
        say(format!(
            "{}: files already in {d} were kept (named above); --force replaces them",
            sol.name
        ));
    } else {
        say(format!(
            "{}: not all of the {files} files were put in place under {d}/{} (see above)",
            sol.name, sol.name
        ));
    }
    Ok(code)
}

/// Entries that are not directories, and the bytes of the regular files among them.
fn count(dir: &Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(e.path()),
                Ok(t) => {
                    files += 1;
                    if t.is_file() {
                        bytes += e.metadata().map_or(0, |m| m.len());
                    }
                }
                Err(_) => {}
            }
        }
    }
    (files, bytes)
}

/// After "not in the archive": a PATH with a backslash was likely copied from --list.
fn escaped_path_hint(sol: &Sol) {
    if sol.names.iter().any(|n| n.as_bytes().contains(&b'\\')) {
        say(format!(
            "{}: a PATH is the name itself, not escaped as --list prints it: for a tab, newline or other byte write $'...' (bash), e.g. --path $'a\\tb'",
            sol.name
        ));
    }
}

fn cmd<const N: usize>(tool: &str, args: [&str; N]) -> Command {
    let mut c = Command::new(tool);
    c.args(args);
    c
}

trait Take {
    fn take(&mut self) -> Command;
}
impl Take for Command {
    /// The command built so far, by value.
    fn take(&mut self) -> Command {
        let mut c = Command::new(self.get_program());
        c.args(self.get_args());
        c
    }
}

/// A process's status as a shell gives it: the exit status, or 128 + the signal.
fn status_code(st: std::process::ExitStatus) -> i32 {
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

/// A stage's status as the run's: 3 integrity, 130 interrupted, else 1.
fn code_of(st: i32) -> u8 {
    match st {
        0 => 0,
        3 => 3,
        129 | 130 | 131 | 143 => 130,
        _ => 1,
    }
}

/// Run STAGES connected by pipes, each one's stderr into work/ERR<i>, the last one's
/// stdout to OUT; INT, TERM or HUP stop them all. Returns their statuses.
fn pipeline<const N: usize>(
    stages: [Command; N],
    work: &Work,
    err: &str,
    out: Stdio,
) -> Result<Vec<i32>> {
    let mut children: Vec<Child> = Vec::new();
    let mut out = Some(out);
    let mut prev: Option<Stdio> = Some(Stdio::null());
    for (i, mut c) in stages.into_iter().enumerate() {
        c.stdin(prev.take().unwrap_or_else(Stdio::null));
        c.stdout(if i + 1 == N {
            out.take().unwrap_or_else(Stdio::null)
        } else {
            Stdio::piped()
        });
        c.stderr(Stdio::from(fs::File::create(
            work.path(&format!("{err}{i}")),
        )?));
        let mut child = c
            .spawn()
            .map_err(|e| anyhow!("{}: {e}", c.get_program().to_string_lossy()))?;
        prev = child.stdout.take().map(Stdio::from);
        children.push(child);
    }
    let mut st = vec![None; N];
    let mut stopped = false;
    while st.iter().any(Option::is_none) {
        for (i, c) in children.iter_mut().enumerate() {
            if st[i].is_none() {
                st[i] = c.try_wait()?.map(status_code);
            }
        }
        if common::stopped() && !stopped {
            stopped = true;
            for c in &children {
                // SAFETY: a signal to our own child.
                unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut st: Vec<i32> = st.into_iter().map(Option::unwrap_or_default).collect();
    if common::stopped() && st.iter().all(|&s| s == 0) {
        st[0] = 130;
    }
    Ok(st)
}

/// The cause of a pipeline's failure from its stages' statuses (upstream first): the first
/// that is neither 0 nor 141 (a closed pipe follows a failure downstream), else the first
/// non-zero one.
fn cause(st: &[i32]) -> Option<usize> {
    st.iter()
        .position(|&s| s != 0 && s != 141)
        .or_else(|| st.iter().position(|&s| s != 0))
}

/// When a stage failed: what it said (or how it ended), and the end of the run.
fn fail_on(sol: &Sol, st: &[i32], tools: &[&str], err: &str) -> Result<()> {
    let Some(i) = cause(st) else { return Ok(()) };
    blame(
        &sol.name,
        &sol.work.path(&format!("{err}{i}")),
        tools[i],
        st[i],
    );
    if st[i] == 1 && tools[i] == "sol-tar" {
        escaped_path_hint(sol);
    }
    Err(quit(code_of(st[i])))
}

/// What the causing stage said, prefixed with the sol, or how it ended.
fn blame(sol: &str, errfile: &Path, tool: &str, st: i32) {
    let text = fs::read(errfile).unwrap_or_default();
    if !text.is_empty() {
        prefixed(sol, &text);
        return;
    }
    let how = if st > 128 {
        format!("was killed by signal {}", signal_name(st - 128))
    } else {
        format!("exited with status {st}")
    };
    say(format!("{sol}: {tool} {how}"));
}

fn prefixed(sol: &str, text: &[u8]) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    for line in text.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        let _ = err.write_all(&[format!("{}: {sol}: ", prog()).as_bytes(), line, b"\n"].concat());
    }
}

fn signal_name(sig: i32) -> String {
    let names = [
        (1, "HUP"),
        (2, "INT"),
        (3, "QUIT"),
        (6, "ABRT"),
        (9, "KILL"),
        (13, "PIPE"),
        (15, "TERM"),
    ];
    names
        .iter()
        .find(|n| n.0 == sig)
        .map_or(sig.to_string(), |n| n.1.to_string())
}
