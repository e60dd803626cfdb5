//! Issue 22: no false success. Each test here failed on the scripts before GNU parallel
//! became their engine: a rename that failed, two runs at once, a user who cannot read part
//! of a sol, an audit racing a replace, a stage killed by SIGKILL, a SIGKILLed run's work
//! directory; then the failure paths that had no test.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::s3env::S3;
use crate::scripts::*;
use crate::util::*;

/// A sol `big` of `mb` MiB of random bytes (more than s3-mput's 16 MiB part when asked, so
/// its upload is multipart) under `root`.
fn big_sol(root: &Path, name: &str, mb: usize) {
    let d = root.join(name).join("data");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("image.raw"), Rng::new(5).bytes(mb << 20)).unwrap();
    fs::write(d.join("notes.txt"), b"notes").unwrap();
}

/// A site whose one sol, sol0001, is a [`big_sol`] of `mb` MiB.
fn site_with_big_sol0001(mb: usize) -> Site {
    let at = site(0);
    big_sol(&at.root, "sol0001", mb);
    at
}

/// A fake s3-mget that waits SECS before the real one runs.
fn slow_mget(at: &Site, secs: f32) {
    at.fake_after("s3-mget", &format!("sleep {secs}"));
}

/// DEST/SOL a dangling link: the rename fails, the sol is FAILED (status 1), the link is
/// untouched and no staged copy is left; restore.mk gives it no stamp.
#[test]
fn a_restore_onto_a_dangling_link_fails_and_says_so() {
    let Site { s3, t, key, .. } = site_with_sol0001_stored(1);
    let (k, d) = (key.display(), s3.url("s"));
    let dest = t.path().join("dest");
    fs::create_dir_all(&dest).unwrap();
    std::os::unix::fs::symlink("/nonexistent", dest.join("sol0001")).unwrap();
    let out = restore(&s3, &format!("-k '{k}' {d} sol0001 '{}'", dest.display()));
    out.code(1);
    let o = out.stdout_str();
    assert!(rows_for(&o, "sol0001")[0].contains("FAILED"), "{o}");
    assert!(!o.contains(" ok "), "{o}");
    assert!(out.stderr.contains("sol0001"), "{}", out.stderr);
    assert_eq!(
        fs::read_link(dest.join("sol0001")).unwrap(),
        Path::new("/nonexistent")
    );
    no_staging_left(&dest);
    let mk = make_restore(&format!(
        "FROM={d} DEST='{}' SOLS=sol0001 KEY='{k}'",
        dest.display()
    ));
    assert_ne!(run_sh(&s3, &mk).code, 0);
    assert!(!dest.join(".sol0001.restored").exists());
    assert_ne!(
        run_sh(&s3, &format!("{mk} -q")).code,
        0,
        "make -q: up to date"
    );
}

/// A non-empty DEST/SOL that appears while the sol is restored: nothing is merged into it
/// or renamed over it, the sol is FAILED, and no staged copy is left.
#[test]
fn a_sol_that_appears_in_dest_during_the_restore_is_kept_and_the_restore_fails() {
    let at = site_with_sol0001_stored(1);
    let Site { s3, t, key, .. } = &at;
    let (k, d) = (key.display(), s3.url("s"));
    let dest = t.path().join("dest");
    slow_mget(&at, 2.0);
    let theirs = dest.join("sol0001");
    let one = call(
        "sol-restore",
        &format!("-k '{k}' {d} sol0001 '{}'", dest.display()),
    );
    let cmd = format!(
        "( sleep 1; mkdir -p '{0}'; echo theirs > '{0}/mine.txt' ) & {1}; rc=$?; wait; exit $rc",
        theirs.display(),
        at.with_fakes(&one)
    );
    let out = run_sh(s3, &format!("set +e; {cmd}"));
    out.code(1);
    let o = out.stdout_str();
    assert!(rows_for(&o, "sol0001")[0].contains("FAILED"), "{o}");
    assert!(out.stderr.contains("not put in place"), "{}", out.stderr);
    assert_eq!(names_in(&theirs), vec!["mine.txt".to_string()]);
    no_staging_left(&dest);
}

/// Two restores of one sol into one DEST at once: each stages in a directory of its own;
/// one restores it, the other fails or skips it, and DEST/SOL is the whole sol.
#[test]
fn two_restores_of_one_sol_into_one_dest() {
    let at = site_with_sol0001_stored(1);
    let Site { s3, t, root, key } = &at;
    let (k, d) = (key.display(), s3.url("s"));
    let dest = t.path().join("dest");
    slow_mget(&at, 1.0);
    let one = call(
        "sol-restore",
        &format!("-k '{k}' {d} sol0001 '{}'", dest.display()),
    );
    let one = at.with_fakes(&one);
    let out = run_sh(
        s3,
        &format!(
            "set +e; {one} > '{0}/a.out' 2>&1 & {one} > '{0}/b.out' 2>&1 & a=$!; wait %1; x=$?; wait $a; y=$?; echo \"$x $y\"",
            t.path().display()
        ),
    );
    out.ok();
    let codes = out.stdout_str();
    let a = fs::read_to_string(t.path().join("a.out")).unwrap();
    let b = fs::read_to_string(t.path().join("b.out")).unwrap();
    let oks = [&a, &b]
        .iter()
        .filter(|o| rows_for(o, "sol0001").iter().any(|r| r.contains(" ok ")))
        .count();
    assert_eq!(oks, 1, "codes {codes}\n{a}\n{b}");
    assert_same_tree(&root.join("sol0001"), &dest.join("sol0001"));
    no_staging_left(&dest);
}

/// `CMD` run as the user nobody (65534), or None when this machine cannot (not root, or
/// no setpriv).
fn as_nobody(cmd: &str) -> Option<String> {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    let setpriv = std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    (root && setpriv).then(|| {
        format!(
            "setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp TMPDIR=/tmp {cmd}"
        )
    })
}

/// A copy of KEY owned by the user nobody (sol-crypt refuses a key others can read).
fn nobody_key(dir: &Path, key: &Path) -> std::path::PathBuf {
    let nkey = dir.join("nobody.key");
    fs::copy(key, &nkey).unwrap();
    std::os::unix::fs::chown(&nkey, Some(65534), Some(65534)).unwrap();
    nkey
}

/// Open the temp dir to other users (tempfile makes it 0700).
fn open_to_all(p: &Path) {
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A user who cannot enter part of a sol (a 0700 directory, NFS root_squash, a cron user):
/// coverage says "cannot check: WHY" for that sol and exits 4, never "no problems"; and
/// sol-backup --changed fails that sol the same way instead of skipping it.
#[test]
fn coverage_by_a_user_who_cannot_read_part_of_a_sol_is_cannot_check() {
    let Site { s3, t, root, key } = site(2);
    let (r, d) = (root.display(), s3.url("s"));
    // A directory only its owner (root) may enter, backed up by root.
    let private = root.join("sol0001/private");
    fs::create_dir_all(&private).unwrap();
    fs::write(private.join("data.txt"), b"as stored").unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    backup(&s3, &format!("-k '{}' '{r}'/sol* {d}", key.display())).ok();
    // A change inside it after the backup: only its owner can see it.
    std::thread::sleep(Duration::from_millis(1100));
    fs::write(private.join("data.txt"), b"changed after the backup").unwrap();
    open_to_all(t.path());
    let coverage = call("sol-audit", &format!("--coverage-only '{r}' {d}"));
    let Some(cmd) = as_nobody(&coverage) else {
        skip("running as another user needs root and setpriv");
        return;
    };
    // As root, the change is seen.
    run_sh(&s3, &coverage)
        .code(4)
        .stdout_has("sol0001: changed since stored");
    let out = run_sh(&s3, &cmd);
    out.code(4);
    let o = out.stdout_str();
    assert!(o.contains("sol0001: cannot check:"), "{o}\n{}", out.stderr);
    assert!(o.contains("Permission denied"), "{o}");
    assert!(!o.contains("no problems"), "{o}");
    // sol-backup --changed as that user: FAILED, "cannot check", status 1.
    let nkey = nobody_key(t.path(), &key);
    let changed = call(
        "sol-backup",
        &format!("--changed -k '{}' '{r}'/sol* {d}", nkey.display()),
    );
    let out = run_sh(&s3, &as_nobody(&changed).unwrap());
    out.code(1);
    let o = out.stdout_str();
    assert!(rows_for(&o, "sol0001")[0].contains("FAILED"), "{o}");
    assert!(o.contains("cannot check"), "{o}\n{}", out.stderr);
}

/// An audit that runs while the archive is replaced (sol-backup --force): s3-mget says the
/// object changed (its status 3), and sol-audit, seeing by a HEAD that another archive is
/// stored, reports "replaced during the audit", status 1: no false integrity alarm.
#[test]
fn an_audit_racing_a_replace_is_status_1_not_an_integrity_failure() {
    let at = site_with_big_sol0001(24);
    let Site { s3, root, key, .. } = &at;
    let (k, r, d) = (key.display(), root.display(), s3.url("s"));
    backup(s3, &at.sols("sol0001")).ok();
    // The audit's download stalls after its first ranges until the replace is done.
    at.fake(
        "s3-mget",
        &format!(
            "set -o pipefail; '{}' --part-size 1M --concurrency 1 \"$@\" | {{ sleep 4; cat; }}",
            bin("s3-mget").display()
        ),
    );
    let audit = call("sol-audit", &format!("--sol sol0001 -k '{k}' '{r}' {d}"));
    let audit = at.with_fakes(&audit);
    let replace = call("sol-backup", &format!("--force {}", at.sols("sol0001")));
    let out = run_sh(
        s3,
        &format!("set +e; {audit} & a=$!; sleep 1; {replace} > /dev/null; wait $a"),
    );
    let o = out.stdout_str();
    assert!(
        o.contains("replaced during the audit"),
        "{o}\n{}",
        out.stderr
    );
    assert!(rows_for(&o, "sol0001")[0].contains("FAILED"), "{o}");
    out.code(1);
    // The archive itself is sound.
    audit_ok(s3, &format!("--sol sol0001 -k '{k}' '{r}' {d}"));
}

fn audit_ok(s3: &S3, args: &str) {
    audit(s3, args).ok();
}

/// A stage killed by SIGKILL: one line prefixed with the script's name that says so, no
/// job dump of script source, and the sol FAILED.
#[test]
fn a_stage_killed_by_sigkill_is_one_prefixed_line() {
    let at = site(1);
    at.fake("sol-zip", "head -c 100000 > /dev/null; kill -KILL $$");
    let out = at.run_faked("sol-backup", &at.sols("sol0001"));
    out.code(1);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(lines[0].starts_with("sol-backup"), "{}", out.stderr);
    assert!(
        lines[0].contains("sol-zip was killed by signal KILL"),
        "{}",
        out.stderr
    );
    assert!(rows_for(&out.stdout_str(), "sol0001")[0].contains("FAILED"));
    assert!(at.s3.get("s/sol0001.tar.gz.sc").is_none());
}

/// A run killed by SIGKILL (no trap runs): its GNU parallel and jobs stop (their parent is
/// gone), its multipart upload is aborted, and its work directory is removed by the next
/// run once its owner is gone; a live run's directory never is.
#[test]
fn a_sigkilled_run_leaves_nothing_for_good() {
    let at = site_with_big_sol0001(20);
    let Site { s3, t, .. } = &at;
    let tmpdir = t.path().join("tmp");
    fs::create_dir_all(&tmpdir).unwrap();
    let d = s3.url("s");
    let one = call("sol-backup", &at.sols("sol0001"));
    let one = format!("TMPDIR='{}' {one}", tmpdir.display());
    let run = at.with_slow_mput("2M", &one);
    // Killed while its upload is pending.
    let killed = run_sh(
        s3,
        &format!(
            "set +e; {run} > /dev/null 2>&1 & pid=$!; for i in $(seq 100); do \
             s3-ls --uploads {d}/ | grep -q . && break; sleep 0.1; done; kill -KILL $pid; wait $pid; echo killed"
        ),
    );
    killed.ok().stdout_has("killed");
    // GNU parallel (its arguments name the work directory) and every stage end.
    let started = Instant::now();
    while !processes_mentioning(t.path()).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "orphans: {:?}",
            processes_mentioning(t.path())
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    s3.assert_no_pending_uploads();
    assert!(s3.get("s/sol0001.tar.gz.sc").is_none());
    let dead = names_in(&tmpdir);
    assert_eq!(dead.len(), 1, "{dead:?}");
    // A live run's directory: its pid is alive and its lock held.
    let live = run_sh(
        s3,
        &format!(
            "cd '{}'; sleep 60 > /dev/null 2>&1 & d=sol-backup.$!.abcdef; mkdir $d; \
             flock $d/.lock sleep 60 > /dev/null 2>&1 & echo \"$d $!\"",
            tmpdir.display()
        ),
    );
    live.ok();
    let o = live.stdout_str();
    let (live_dir, holder) = o.trim().split_once(' ').unwrap();
    let sleeper = live_dir.split('.').nth(1).unwrap();
    let rerun = run_sh(s3, &one);
    sh(&format!("kill {sleeper} {holder}")).run();
    rerun.ok();
    assert_eq!(names_in(&tmpdir), vec![live_dir.to_string()]);
}

/// moto's S3 server run under libfaketime with the clock OFFSET (e.g. +600s): its Date
/// header and Last-Modified both move, a server with a skewed clock.
pub(crate) struct SkewedMoto {
    child: std::process::Child,
    pub endpoint: String,
}

impl SkewedMoto {
    fn start(offset: &str) -> Result<SkewedMoto, String> {
        let offset = offset.to_string();
        SkewedMoto::start_with(move || {
            let mut c = std::process::Command::new("faketime");
            c.args(["-f", &offset, "moto_server"]);
            c
        })
    }

    /// moto with its clock read from FILE (libfaketime's FAKETIME_TIMESTAMP_FILE: `+3700s`
    /// written there moves it at once), so a test can move its time.
    pub(crate) fn with_clock_file(file: &std::path::Path) -> Result<SkewedMoto, String> {
        fs::write(file, "+0s").map_err(|e| e.to_string())?;
        let lib = crate::s3::working_faketime().ok_or("no working libfaketime")?;
        let file = file.to_path_buf();
        SkewedMoto::start_with(move || {
            let mut c = std::process::Command::new("moto_server");
            c.env("LD_PRELOAD", &lib)
                .env("FAKETIME_TIMESTAMP_FILE", &file)
                .env("FAKETIME_NO_CACHE", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
            c
        })
    }

    /// moto_server (the command `make` gives runs it) on a free port, answering. A server
    /// that exits (its port taken between our probe and its bind) or does not answer within
    /// 90 s is tried again on another port, three times in all (found by a CI rehearsal: on
    /// a loaded machine one did not answer within 30 s, and the test skipped).
    fn start_with(make: impl Fn() -> std::process::Command) -> Result<SkewedMoto, String> {
        for tool in ["moto_server", "faketime", "curl"] {
            if sh(&format!("command -v {tool}")).run().code != 0 {
                return Err(format!("no {tool} (CI's moto run installs moto)"));
            }
        }
        let mut why = String::new();
        for _ in 0..3 {
            match SkewedMoto::try_start(make()) {
                Ok(m) => return Ok(m),
                Err(e) => why = e,
            }
        }
        Err(format!("{why} (three tries)"))
    }

    /// One try of [`SkewedMoto::start_with`].
    fn try_start(mut c: std::process::Command) -> Result<SkewedMoto, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // A process group of its own: faketime runs moto_server as its child, and both go.
        use std::os::unix::process::CommandExt;
        let child = c
            .args(["-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("faketime moto_server: {e}"))?;
        let mut moto = SkewedMoto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while sh(&format!("curl -s -o /dev/null {}/", moto.endpoint))
            .run()
            .code
            != 0
        {
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(format!("moto_server exited ({status}) before it answered"));
            }
            if started.elapsed() > Duration::from_secs(90) {
                return Err("moto_server did not answer within 90 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(moto)
    }
}

impl Drop for SkewedMoto {
    fn drop(&mut self) {
        std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status()
            .ok();
        self.child.wait().ok();
    }
}

/// The server's clock 10 minutes ahead of this host's (inside SigV4's 15 minutes): a file
/// written after the backup is "changed since stored" (changes are judged on the server's
/// clock), the report warns of the skew with its size, and --changed stores it again.
#[test]
fn scripts_judge_changes_on_the_servers_clock() {
    let moto = match SkewedMoto::start("+600s") {
        Ok(m) => m,
        Err(why) => {
            skip(&format!("a server with a skewed clock: {why}"));
            return;
        }
    };
    let s3 = S3::at(
        &moto.endpoint,
        "testaccesskey",
        "testsecretkey",
        "skewed",
        tmp(),
    );
    let t = tmp();
    let root = t.path().join("mission");
    mission(&root, 1);
    let key = keyfile(t.path(), "site.key", 256);
    let (k, r, d) = (key.display(), root.display(), s3.url("s"));
    backup(&s3, &format!("-k '{k}' '{r}'/sol0001 {d}")).ok();
    std::thread::sleep(Duration::from_millis(1100));
    fs::write(root.join("sol0001/late.txt"), b"after the backup").unwrap();
    let out = audit(&s3, &format!("--coverage-only '{r}' {d}"));
    let o = out.stdout_str();
    assert!(
        o.contains("sol0001: changed since stored"),
        "{o}\n{}",
        out.stderr
    );
    assert!(o.contains("s ahead of this host's"), "{o}");
    out.code(4);
    backup(&s3, &format!("--changed -k '{k}' '{r}'/sol0001 {d}"))
        .ok()
        .stdout_has("1 sols: 1 ok");
}

// ---- item 6: every failure path, black-box ------------------------------------------------

/// The listing failing (a bucket that does not exist): backup, audit and restore --last
/// say so in one line, status 1, and do nothing else.
#[test]
fn scripts_a_failing_listing_is_one_line_and_status_1() {
    let at = site(1);
    let Site { s3, root, key, .. } = &at;
    let (k, r) = (key.display(), root.display());
    let none = "s3://no-such-bucket-sol-test/s";
    for (cmd, says) in [
        (
            call("sol-backup", &format!("-k '{k}' '{r}'/sol0001 {none}")),
            "cannot list",
        ),
        (
            call("sol-audit", &format!("-k '{k}' '{r}' {none}")),
            "cannot list",
        ),
        (call("sol-restore", &format!("--last 3 {none}")), "s3-ls:"),
    ] {
        let out = run_sh(s3, &cmd);
        out.code(1);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{cmd}: {}", out.stderr);
        assert!(lines[0].contains(says), "{cmd}: {}", out.stderr);
        assert!(!out.stdout_str().contains(" ok "), "{}", out.stdout_str());
    }
}

/// The restore index not stored: a warning of the sol, which is stored (ok, status 0).
#[test]
fn scripts_an_index_not_stored_is_a_warning_and_the_backup_stands() {
    let at = site(1);
    at.fake_after(
        "s3-mput",
        "case ${!#} in *.index.gz.sc) cat > /dev/null; echo 's3-mput: simulated refusal' >&2; exit 1 ;; esac",
    );
    let out = at.run_faked("sol-backup", &at.sols("sol0001"));
    out.ok().stdout_has("1 sols: 1 ok").stdout_has(
        "sol0001: warning: the restore index was not stored (s3-mput: simulated refusal)",
    );
    assert!(at.s3.get("s/sol0001.tar.gz.sc").is_some());
    assert!(at.s3.get("s/sol0001.index.gz.sc").is_none());
}

/// --changed cannot keep the stored archive (its copy fails): the sol is FAILED and the
/// stored archive is unchanged.
#[test]
fn scripts_a_failing_keep_step_replaces_nothing() {
    let at = site_with_sol0001_stored(1);
    let Site { s3, root, .. } = &at;
    let before = s3.get("s/sol0001.tar.gz.sc").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    fs::write(root.join("sol0001/late.txt"), b"late").unwrap();
    at.fake("s3-mget", "echo 's3-mget: simulated failure' >&2; exit 1");
    let out = at.run_faked("sol-backup", &format!("--changed {}", at.sols("sol0001")));
    out.code(1);
    let o = out.stdout_str();
    assert!(rows_for(&o, "sol0001")[0].contains("FAILED"), "{o}");
    assert!(o.contains("cannot keep the stored archive"), "{o}");
    assert_eq!(s3.get("s/sol0001.tar.gz.sc").unwrap(), before);
    assert_eq!(s3.ls(&["--relative"], "s/").stdout_str().lines().count(), 2);
}

/// sol-tar and sol-crypt failing mid-stream (fakes), and s3-mput failing mid-stream (every
/// answer to part 2 cut), each past the first 16 MiB part of a 20 MiB sol: FAILED with that
/// stage's message, nothing stored, the multipart upload aborted.
#[test]
fn scripts_a_stage_failing_mid_stream_stores_nothing_and_aborts_the_upload() {
    use crate::s3env::{Faults, Proxy, Trigger};
    let at = site_with_big_sol0001(20);
    let Site { s3, t, .. } = &at;
    let one = call("sol-backup", &at.sols("sol0001"));
    for (tool, says) in [
        ("sol-tar", "sol-tar: simulated"),
        ("sol-crypt", "sol-crypt: simulated"),
    ] {
        let fakes = t.path().join(format!("fakes-{tool}"));
        fake(
            &fakes,
            tool,
            &format!(
                "case \"$*\" in *--index*) ;; *) exec '{0}' \"$@\" ;; esac
                '{0}' \"$@\" | head -c 18000000; echo '{tool}: simulated read error' >&2; exit 1",
                bin(tool).display()
            ),
        );
        let out = run_sh(s3, &faked(&fakes, &one));
        assert!(
            out.stderr.contains(says),
            "{tool}: {}\n{}",
            out.stderr,
            out.stdout_str()
        );
        out.code(1);
        let o = out.stdout_str();
        assert!(
            rows_for(&o, "sol0001")
                .first()
                .is_some_and(|r| r.contains("FAILED")),
            "{tool}: {o}\n{}",
            out.stderr
        );
        assert!(s3.get("s/sol0001.tar.gz.sc").is_none(), "{tool}");
        s3.assert_no_pending_uploads();
    }
    let proxy = Proxy::start(
        s3.addr,
        Faults {
            on: Some(Trigger {
                pattern: b"partNumber=2",
                hold: Duration::ZERO,
                cut: true,
                times: 1000,
            }),
            ..Faults::NONE
        },
        7,
    );
    let out = s3.env_at(sh(&one), &proxy.endpoint).run();
    assert!(
        proxy.matched.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "part 2 was never sent"
    );
    out.code(1);
    assert!(out.stderr.contains("sol0001: s3-mput:"), "{}", out.stderr);
    assert!(s3.get("s/sol0001.tar.gz.sc").is_none());
    s3.assert_no_pending_uploads();
}

/// A whole-sol restore onto a full disk (a 1 MiB tmpfs) or a read-only DEST: FAILED, nothing
/// under the sol's name, no staging directory left.
#[test]
fn scripts_a_restore_onto_a_full_or_read_only_disk_renames_nothing() {
    let Site { s3, t, key, .. } = site_with_sol0001_stored(1);
    let (k, d) = (key.display(), s3.url("s"));
    for (what, opts) in [("full", "size=1m"), ("read-only", "ro")] {
        let dest = t.path().join(what);
        fs::create_dir_all(&dest).unwrap();
        let mounted = sh(&format!(
            "mount -t tmpfs -o {opts} tmpfs '{}'",
            dest.display()
        ))
        .run();
        if mounted.code != 0 {
            skip(&format!(
                "a {what} DEST needs a tmpfs mount: {}",
                mounted.stderr
            ));
            return;
        }
        let out = restore(&s3, &format!("-k '{k}' {d} sol0001 '{}'", dest.display()));
        let left = names_in(&dest);
        sh(&format!("umount '{}'", dest.display())).run().ok();
        out.code(1);
        let o = out.stdout_str();
        assert!(rows_for(&o, "sol0001")[0].contains("FAILED"), "{what}: {o}");
        assert!(left.is_empty(), "{what}: {left:?}");
        assert!(
            out.stderr.lines().all(|l| l.starts_with("sol-restore")),
            "{what}: {}",
            out.stderr
        );
    }
}

/// The stored archive corrupted in the middle (sol-crypt's authentication fails mid-stream):
/// the restore is status 3 with nothing renamed, the audit status 3 with its "not
/// content-audited" line.
#[test]
fn scripts_an_archive_corrupted_mid_stream_is_status_3_and_nothing_lands() {
    let Site { s3, t, root, key } = site_with_sol0001_stored(1);
    let mut bytes = s3.get("s/sol0001.tar.gz.sc").unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    s3.put("s/sol0001.tar.gz.sc", bytes);
    let (k, r, d) = (key.display(), root.display(), s3.url("s"));
    let dest = t.path().join("dest");
    let out = restore(&s3, &format!("-k '{k}' {d} sol0001 '{}'", dest.display()));
    out.code(3);
    assert!(out.stderr.contains("sol0001: sol-crypt:"), "{}", out.stderr);
    assert!(names_in(&dest).is_empty(), "{:?}", names_in(&dest));
    let out = audit(&s3, &format!("--sol sol0001 -k '{k}' '{r}' {d}"));
    out.code(3);
    out.stdout_has("sol0001: not content-audited: sol-crypt:");
}

/// The audit history cannot be written: the audit stands, with a warning; --refresh that
/// cannot keep the old archive says "refresh failed" and changes nothing.
#[test]
fn scripts_a_failing_history_write_or_refresh_is_reported() {
    let at = site_with_sol0001_stored(1);
    let Site { s3, root, key, .. } = &at;
    let (k, r, d) = (key.display(), root.display(), s3.url("s"));
    at.fake_after(
        "s3-mput",
        "case ${!#} in */.sol-audit/*) echo 's3-mput: simulated refusal' >&2; exit 1 ;; esac",
    );
    let one = format!("--sol sol0001 -k '{k}' '{r}' {d}");
    let out = at.run_faked("sol-audit", &one);
    out.ok()
        .stdout_has("sol0001: warning: the audit was not recorded");
    let before = s3.get("s/sol0001.tar.gz.sc").unwrap();
    fs::write(root.join("sol0001/inst1/seq01/log001.txt"), b"changed").unwrap();
    at.fake("s3-mget", &format!(
        "case \"$*\" in *--no-md5*) exec '{}' \"$@\" ;; esac; echo 's3-mget: simulated failure' >&2; exit 1",
        bin("s3-mget").display()
    ));
    fs::remove_file(at.fakes().join("s3-mput")).unwrap();
    let out = at.run_faked("sol-audit", &format!("{one} --refresh"));
    out.code(3);
    out.stdout_has("sol0001: refresh failed:");
    assert_eq!(s3.get("s/sol0001.tar.gz.sc").unwrap(), before);
}

/// A tool missing (sol-zip): one line naming it, status 1, before any work.
#[test]
fn scripts_a_missing_tool_is_one_line_and_status_1() {
    let Site { s3, t, root, key } = site(1);
    let here = t.path().join("bin");
    fs::create_dir_all(&here).unwrap();
    for e in fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), here.join(e.file_name())).unwrap();
    }
    for tool in [
        "sol-tar",
        "sol-crypt",
        "s3-mput",
        "s3-mget",
        "s3-ls",
        "sol-index",
        "tar-md5",
        "sol-jobs", // the drivers themselves
    ] {
        let tools = bin("sol-tar").parent().unwrap().to_path_buf();
        std::os::unix::fs::symlink(tools.join(tool), here.join(tool)).unwrap();
    }
    let out = run_sh(
        &s3,
        &format!(
            "PATH='{0}':/usr/bin:/bin '{0}/sol-backup' -k '{1}' '{2}' {3}",
            here.display(),
            key.display(),
            root.join("sol0001").display(),
            s3.url("s")
        ),
    );
    out.code(1);
    assert_eq!(
        out.stderr.trim(),
        format!(
            "sol-backup: 'sol-zip' not found on PATH or beside {}",
            here.join("sol-backup").display()
        )
    );
    assert!(s3.get("s/sol0001.tar.gz.sc").is_none());
}

/// A file in a sol that the backup user cannot read: the sol is FAILED with sol-tar's
/// line naming it, nothing is stored.
#[test]
fn scripts_an_unreadable_file_fails_its_sol() {
    let Site { s3, t, root, key } = site(2);
    let secret = root.join("sol0001/images/frame.raw");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
    open_to_all(t.path());
    let nkey = nobody_key(t.path(), &key);
    let (r, d) = (root.display(), s3.url("s"));
    let cmd = call(
        "sol-backup",
        &format!("-k '{}' '{r}'/sol* {d}", nkey.display()),
    );
    let Some(cmd) = as_nobody(&cmd) else {
        skip("running as another user needs root and setpriv");
        return;
    };
    let out = run_sh(&s3, &cmd);
    out.code(1);
    let o = out.stdout_str();
    assert!(rows_for(&o, "sol0001")[0].contains("FAILED"), "{o}");
    assert!(rows_for(&o, "sol0002")[0].contains(" ok "), "{o}");
    assert!(out.stderr.contains("frame.raw"), "{}", out.stderr);
    assert!(s3.get("s/sol0001.tar.gz.sc").is_none());
}

/// Item 7: on a terminal a long run shows each sol as it finishes with sols done of all,
/// bytes and an ETA (on stderr, prefixed); under cron (no terminal) nothing but the report.
#[test]
fn scripts_show_progress_on_a_terminal_only() {
    let at = site(2);
    let s3 = &at.s3;
    let cmd = call("sol-backup", &at.sols("sol*"));
    if sh("command -v script").run().code != 0 {
        skip("no script(1) to give the run a terminal");
        return;
    }
    let quoted = cmd.replace('\'', "'\\''");
    let out = run_sh(s3, &format!("script -qec '{quoted}' /dev/null"));
    out.ok();
    let o = out.stdout_str().replace('\r', "");
    assert!(o.contains("sol-backup: sol0001 ok on "), "{o}");
    assert!(o.contains(" of 2 sols, ") && o.contains(" MB, ETA "), "{o}");
    assert!(o.contains("summary: 2 sols"), "{o}");
    let cron = backup(s3, &format!("--force {}", at.sols("sol*")));
    cron.ok();
    assert!(cron.stderr.is_empty(), "{}", cron.stderr);
}

/// A staging directory that a SIGKILLed restore left (its PID gone) is removed by the next
/// restore of that sol on that host; a live run's is not.
#[test]
fn scripts_a_sigkilled_restores_staging_directory_is_removed_by_the_next() {
    let Site { s3, t, key, .. } = site_with_sol0001_stored(1);
    let dest = t.path().join("dest");
    let host = sh("hostname").run().stdout_str().trim().to_string();
    let live = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let dead_dir = format!(".sol0001.{host}.999999999.abcdef.partial");
    let live_dir = format!(".sol0001.{host}.{}.abcdef.partial", live.id());
    for d in [&dead_dir, &live_dir] {
        fs::create_dir_all(dest.join(d).join("sol0001")).unwrap();
    }
    let (k, d) = (key.display(), s3.url("s"));
    let out = restore(&s3, &format!("-k '{k}' {d} sol0001 '{}'", dest.display()));
    let mut live = live;
    live.kill().ok();
    live.wait().ok();
    out.ok();
    let mut left = names_in(&dest);
    left.sort();
    assert_eq!(left, vec![live_dir, "sol0001".to_string()]);
}

/// --hosts spreads whole sols; with --path or --list it is a usage error, not ignored.
#[test]
fn scripts_hosts_with_path_or_list_is_a_usage_error() {
    let Site { s3, t, key, .. } = site(0);
    let (k, d) = (key.display(), s3.url("s"));
    let dest = t.path().join("dest");
    for args in [
        format!("--hosts /dev/null --list -k '{k}' {d} sol0001"),
        format!(
            "--hosts /dev/null --path a -k '{k}' {d} sol0001 '{}'",
            dest.display()
        ),
    ] {
        restore(&s3, &args)
            .code(2)
            .stderr_has("sol-restore: --hosts goes with whole sols");
    }
}

// ---- found by trying the scripts as an operator would ---------------------------------------

/// The sweep of dead runs' work directories removes only the scripts' own (their names and
/// their lock file), never an operator's directory that looks alike.
#[test]
fn scripts_the_work_directory_sweep_keeps_what_is_not_ours() {
    let Site { s3, t, root, key } = site(1);
    let tmpdir = t.path().join("tmp");
    let theirs = tmpdir.join("sol-0042.2024.backup");
    fs::create_dir_all(&theirs).unwrap();
    fs::write(theirs.join("data"), b"precious").unwrap();
    let (k, r, d) = (key.display(), root.display(), s3.url("s"));
    let one = call("sol-backup", &format!("-k '{k}' '{r}'/sol0001 {d}"));
    let cmd = format!("TMPDIR='{}' {one}", tmpdir.display());
    run_sh(&s3, &cmd).ok();
    assert_eq!(fs::read(theirs.join("data")).unwrap(), b"precious");
}

/// Coverage names a directory it cannot check (a name outside [A-Za-z0-9][A-Za-z0-9._-]*),
/// status 4, instead of leaving it out; and an audit of an archive since replaced does not
/// count as a recent audit of the new one.
#[test]
fn scripts_coverage_names_what_it_skips_and_audits_of_replaced_archives_do_not_count() {
    let at = site_with_sol0001_stored(1);
    let Site { s3, root, key, .. } = &at;
    let (k, r, d) = (key.display(), root.display(), s3.url("s"));
    audit(s3, &format!("--sol sol0001 -k '{k}' '{r}' {d}")).ok();
    fs::create_dir_all(root.join("new one")).unwrap();
    let out = audit(s3, &format!("--coverage-only '{r}' {d}"));
    out.code(4);
    out.stdout_has("'new one': not checked");
    fs::remove_dir(root.join("new one")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    fs::write(root.join("sol0001/late.txt"), b"late").unwrap();
    backup(s3, &format!("--changed {}", at.sols("sol0001"))).ok();
    audit(s3, &format!("--coverage-only '{r}' {d}"))
        .ok()
        .stdout_has("0 of 1 sols content-audited in the last 30 days");
}

/// An empty DEST/SOL is not "in DEST already": the sol is restored into it; and restore.mk
/// restores again a sol deleted from DEST since its stamp was made.
#[test]
fn scripts_an_empty_or_deleted_sol_in_dest_is_restored_again() {
    let Site { s3, t, root, key } = site_with_sol0001_stored(1);
    let (k, d) = (key.display(), s3.url("s"));
    let dest = t.path().join("dest");
    fs::create_dir_all(dest.join("sol0001")).unwrap();
    restore(&s3, &format!("-k '{k}' {d} sol0001 '{}'", dest.display()))
        .ok()
        .stdout_has("1 sols: 1 ok");
    assert_same_tree(&root.join("sol0001"), &dest.join("sol0001"));
    let made = t.path().join("made");
    let mk = make_restore(&format!(
        "FROM={d} DEST='{}' SOLS=sol0001 KEY='{k}'",
        made.display()
    ));
    run_sh(&s3, &mk).ok();
    fs::remove_dir_all(made.join("sol0001")).unwrap();
    assert_ne!(
        run_sh(&s3, &format!("{mk} -q")).code,
        0,
        "make -q: up to date"
    );
    run_sh(&s3, &mk).ok();
    assert_same_tree(&root.join("sol0001"), &made.join("sol0001"));
}

/// A --hosts file that is not one: one line naming it, status 2, before any work.
#[test]
fn scripts_a_bad_hosts_file_is_a_usage_error() {
    let Site { s3, t, root, key } = site(1);
    let (k, r, d) = (key.display(), root.display(), s3.url("s"));
    let bad = t.path().join("hosts");
    for (text, says) in [
        ("garbage host!!\n", "line 1"),
        ("# only a comment\n", "no host"),
    ] {
        fs::write(&bad, text).unwrap();
        let out = backup(
            &s3,
            &format!("--hosts '{}' -k '{k}' '{r}'/sol0001 {d}", bad.display()),
        );
        out.code(2);
        assert!(
            out.stderr.lines().next().unwrap().contains(says),
            "{}",
            out.stderr
        );
    }
    audit(&s3, &format!("--hosts /nonexistent -k '{k}' '{r}' {d}"))
        .code(2)
        .stderr_has("--hosts '/nonexistent': not a readable file");
    assert!(s3.get("s/sol0001.tar.gz.sc").is_none());
}

/// GNU parallel killed outright in the middle of an upload: the per-sol commands stop too
/// (parent-death signal), nothing is stored after it, and the report does not say ok.
#[test]
fn scripts_gnu_parallel_killed_stops_its_jobs() {
    let at = site_with_big_sol0001(20);
    let Site { s3, t, .. } = &at;
    let run = at.with_slow_mput("3M", &call("sol-backup", &at.sols("sol0001")));
    let d = s3.url("s");
    let out = run_sh(
        s3,
        &format!(
            "set +e; {run} & pid=$!
            for i in $(seq 200); do s3-ls --uploads {d}/ | grep -q . && break; sleep 0.1; done
            pkill -KILL -f 'parallel -0 -q.*{}'; wait $pid; echo rc=$?",
            t.path().display()
        ),
    );
    let o = out.stdout_str();
    assert!(!o.contains("rc=0"), "{o}\n{}", out.stderr);
    assert!(
        rows_for(&o, "sol0001")
            .first()
            .is_some_and(|l| !l.contains(" ok ")),
        "{o}"
    );
    std::thread::sleep(Duration::from_secs(8));
    assert!(
        s3.get("s/sol0001.tar.gz.sc").is_none(),
        "stored after parallel was killed"
    );
    s3.assert_no_pending_uploads();
}

/// A file changed while its sol is backed up (after sol-tar read it): its change time is
/// older than the archive's Last-Modified, so coverage and --changed once never saw it.
/// The backup warns, coverage says "changed while it was backed up" (status 4) and
/// --changed stores the sol again; then coverage is clean.
#[test]
fn scripts_a_change_during_the_backup_is_not_lost() {
    let at = site_with_big_sol0001(20);
    let Site { s3, root, key, .. } = &at;
    fs::write(root.join("sol0001/0small"), b"original").unwrap();
    let (k, r, d) = (key.display(), root.display(), s3.url("s"));
    let run = at.with_slow_mput("6M", &call("sol-backup", &at.sols("sol0001")));
    let small = root.join("sol0001/0small");
    let out = run_sh(
        s3,
        &format!(
            "{run} & pid=$!; sleep 1.5; echo modified > '{}'; wait $pid",
            small.display()
        ),
    );
    out.ok()
        .stdout_has("sol0001: warning: changed while it was backed up (0small)");
    let cov = audit(s3, &format!("--coverage-only '{r}' {d}"));
    cov.code(4);
    cov.stdout_has("sol0001: changed while it was backed up");
    backup(s3, &format!("--changed {}", at.sols("sol0001")))
        .ok()
        .stdout_has("1 sols: 1 ok");
    audit(s3, &format!("--coverage-only '{r}' {d}")).ok();
    audit(s3, &format!("--sol sol0001 -k '{k}' '{r}' {d}")).ok();
}

/// A change made while the sol was backed up that cannot be recorded (the mark's upload
/// refused) fails the sol, status 1, saying so: no later run would see it (found by a
/// helper: the row said ok, and coverage and --changed never saw the change).
#[test]
fn scripts_a_change_during_the_backup_that_cannot_be_recorded_fails_the_sol() {
    let at = site(1);
    let file = at.root.join("sol0001/0small");
    fs::write(&file, b"original").unwrap();
    // The change once sol-tar has read the sol, before the end of the backup; the mark
    // refused.
    change_after_zip(&at.fakes(), &file, 0);
    at.fake_after(
        "s3-mput",
        "case \"$*\" in *.sol-changed/*) echo 's3-mput: refused' >&2; exit 1 ;; esac",
    );
    let out = at.run_faked("sol-backup", &at.sols("sol0001"));
    out.code(1);
    out.stdout_has("sol0001          FAILED");
    out.stderr_has("sol-backup-one: sol0001: changed while it was backed up (0small) and that could not be recorded");
    out.stdout_has("store the sol again with sol-backup --force");
}

/// A change made while a sol was read, then the backup killed between the archive's commit
/// and the mark after it (a crash, SIGKILL, power lost): the change is older than the
/// archive by more than the seconds coverage doubts, so without a mark coverage said ok and
/// --changed skipped the sol. The mark is made before the commit too, and counts for its
/// archive when the commit came late (here 3 s: a slow target can hold it back).
#[test]
fn scripts_a_crash_between_the_commit_and_the_mark_loses_no_change() {
    for slow_commit in [false, true] {
        crash_between_the_commit_and_the_mark(slow_commit);
    }
}

fn crash_between_the_commit_and_the_mark(slow_commit: bool) {
    let at = site(1);
    let Site { s3, root, .. } = &at;
    let file = root.join("sol0001/0small");
    fs::write(&file, b"original").unwrap();
    // The change once sol-tar has read the sol, 3 s before the stream ends.
    change_after_zip(&at.fakes(), &file, 3);
    // The mark made once the archive is stored kills sol-backup-one instead; with
    // slow_commit, the archive's upload waits 3 s after its stream ends.
    let hold = if slow_commit {
        "*--commit-file*) f=$(mktemp); cat > \"$f\"; sleep 3; exec < \"$f\"; rm -f \"$f\" ;;"
    } else {
        ""
    };
    at.fake_after(
        "s3-mput",
        &format!(
            "case \"$*\" in *.sol-changed/*) for a in \"$@\"; do u=$a; done; \
             if s3-ls --head -- \"${{u%/.sol-changed/*}}/sol0001.tar.gz.sc\" > /dev/null 2>&1; then \
             kill -9 $PPID; exit 1; fi ;; {hold} esac"
        ),
    );
    let out = at.run_faked("sol-backup", &at.sols("sol0001"));
    assert_ne!(out.code, 0, "{}", out.stdout_str());
    assert!(
        s3.get("s/sol0001.tar.gz.sc").is_some(),
        "the archive was not stored"
    );
    let (r, d) = (root.display(), s3.url("s"));
    audit(s3, &format!("--coverage-only '{r}' {d}"))
        .code(4)
        .stdout_has("sol0001: changed while it was backed up");
    backup(s3, &format!("--changed {}", at.sols("sol0001")))
        .ok()
        .stdout_has("1 sols: 1 ok");
    audit(s3, &format!("--coverage-only '{r}' {d}")).ok();
}

/// s3-mget's integrity failure (status 3) is "replaced during the audit" only when a HEAD
/// that answered shows another ETag; a HEAD that fails proves nothing and the failure
/// stays status 3.
#[test]
fn scripts_an_integrity_failure_is_not_called_a_replace_when_the_head_fails() {
    let at = site_with_sol0001_stored(1);
    let Site { s3, t, root, key } = &at;
    let mark = t.path().join("headed");
    at.fake_after(
        "s3-ls",
        &format!(
            "case \"$*\" in *--head*) [ ! -e '{0}' ] || exit 1; touch '{0}' ;; esac",
            mark.display()
        ),
    );
    at.fake(
        "s3-mget",
        "cat > /dev/null; echo 's3-mget: simulated integrity failure' >&2; exit 3",
    );
    let (k, r, d) = (key.display(), root.display(), s3.url("s"));
    let out = at.run_faked("sol-audit", &format!("--sol sol0001 -k '{k}' '{r}' {d}"));
    out.code(3);
    let o = out.stdout_str();
    assert!(!o.contains("replaced during the audit"), "{o}");
    assert!(
        o.contains("sol0001: not content-audited: s3-mget: simulated integrity failure"),
        "{o}"
    );
}
