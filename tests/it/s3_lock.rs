//! Object Lock (issue 25, item 1): s3-mput --retain, --retain-until, --lock-mode,
//! --legal-hold on buckets created with Object Lock (moto and Ceph RGW; the in-process
//! s3s-fs has none, so those tests say SKIPPED there).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::s3::{clock_off, working_faketime};
use crate::s3env::S3;
use crate::util::*;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The bucket with Object Lock, or the test skipped.
fn locked() -> Option<S3> {
    let s = S3::start_locked();
    if s.is_none() {
        skip("the in-process s3s-fs has no Object Lock (moto and Ceph RGW run this)");
    }
    s
}

/// A locked bucket, a temp dir and a key file in it (for the scripts' tests).
fn locked_site() -> Option<(S3, tempfile::TempDir, std::path::PathBuf)> {
    let s3 = locked()?;
    let (t, key) = tmp_with_key(256);
    Some((s3, t, key))
}

/// The lock a HEAD shows on KEY: mode, retain-until (epoch seconds), legal hold, version.
fn lock_of(s3: &S3, key: &str) -> (Option<String>, Option<i64>, bool, Option<String>) {
    let key = key.to_string();
    s3.sdk(|c, b| async move {
        let h = c.head_object().bucket(b).key(key).send().await.unwrap();
        (
            h.object_lock_mode().map(|m| m.as_str().to_string()),
            h.object_lock_retain_until_date().map(|d| d.secs()),
            h.object_lock_legal_hold_status().map(|s| s.as_str()) == Some("ON"),
            h.version_id().map(str::to_string),
        )
    })
}

/// A delete of KEY's version VERSION: refused (true) or done.
fn delete_refused(s3: &S3, key: &str, version: &str) -> bool {
    let (key, version) = (key.to_string(), version.to_string());
    s3.sdk(|c, b| async move {
        c.delete_object()
            .bucket(b)
            .key(key)
            .version_id(version)
            .send()
            .await
            .is_err()
    })
}

#[test]
fn s3_mput_locks_single_and_multipart_uploads_and_their_deletes_are_refused() {
    let Some(s3) = locked() else { return };
    let big = Rng::new(1).bytes(12 << 20);
    for (key, data, extra) in [
        ("single", b"one PUT".to_vec(), vec![]),
        ("multi", big, vec!["--part-size", "5M", "--legal-hold"]),
    ] {
        let mut args = vec!["--retain", "2d"];
        args.extend(extra.iter().copied());
        s3.mput(key, &data, &args).ok();
        let (mode, until, hold, version) = lock_of(&s3, key);
        assert_eq!(mode.as_deref(), Some("COMPLIANCE"), "{key}");
        let until = until.expect("a retain-until date");
        assert!((until - (now() + 2 * 86_400)).abs() < 120, "{key}: {until}");
        assert_eq!(hold, key == "multi", "{key}");
        assert!(
            delete_refused(&s3, key, &version.unwrap()),
            "{key}: deleted"
        );
        assert_eq!(s3.get(key).as_deref(), Some(&data[..]));
    }
}

#[test]
fn s3_mput_retain_until_and_governance_mode() {
    let Some(s3) = locked() else { return };
    s3.mput(
        "g",
        b"governed",
        &[
            "--retain-until",
            "2031-01-01T00:00:00Z",
            "--lock-mode",
            "GOVERNANCE",
        ],
    )
    .ok();
    let (mode, until, _, _) = lock_of(&s3, "g");
    assert_eq!(mode.as_deref(), Some("GOVERNANCE"));
    assert_eq!(until, Some(1_924_992_000));
    s3.mput("x", b"x", &["--retain-until", "next tuesday"])
        .code(2)
        .stderr_has("expected an RFC 3339 time");
}

/// AWS refuses a locked write without a body checksum; moto checks it too. With
/// `--checksum none` a locked write still carries Content-MD5.
#[test]
fn s3_mput_a_locked_write_carries_a_checksum_even_with_checksum_none() {
    let Some(s3) = locked() else { return };
    s3.mput(
        "n",
        b"no checksum asked",
        &["--checksum", "none", "--retain", "1d"],
    )
    .ok();
    assert_eq!(lock_of(&s3, "n").0.as_deref(), Some("COMPLIANCE"));
}

/// --retain counts from the server's clock: a host whose clock is 10 minutes behind still
/// locks until the server's now plus the duration.
#[test]
fn s3_mput_retention_counts_from_the_servers_clock() {
    let Some(s3) = locked() else { return };
    let Some(lib) = working_faketime() else {
        return;
    };
    let run = s3.tool("s3-mput").args(["--retain", "1d"]).arg(s3.url("c"));
    clock_off(run, &lib, -600)
        .stdin(b"clocked".to_vec())
        .run()
        .ok();
    let until = lock_of(&s3, "c").1.unwrap();
    assert!((until - (now() + 86_400)).abs() < 120, "{until}");
}

/// A bucket without Object Lock: one line, status 1, the hint; nothing stored.
#[test]
fn s3_mput_a_bucket_without_object_lock_is_one_line() {
    let s3 = S3::start();
    s3.mput("k", b"data", &["--retain", "1d"])
        .code(1)
        .one_line_with("has no Object Lock (GetObjectLockConfiguration); a bucket must be created with Object Lock enabled");
    assert!(s3.get("k").is_none());
}

/// Item 2: sol-backup --retain stores each archive and its index locked.
#[test]
fn s3_sol_backup_retain_locks_each_archive_and_its_index() {
    let Some((s3, t, key)) = locked_site() else {
        return;
    };
    let sol = t.path().join("sol0001/inst");
    std::fs::create_dir_all(&sol).unwrap();
    std::fs::write(sol.join("a.txt"), "locked sol").unwrap();
    let script = crate::scripts::call(
        "sol-backup",
        &format!(
            "-k '{}' --retain 3d '{}' {}",
            key.display(),
            t.path().join("sol0001").display(),
            s3.url("sols")
        ),
    );
    s3.env(sh(&script))
        .run()
        .ok()
        .stdout_has("sol0001          ok");
    for k in ["sols/sol0001.tar.gz.sc", "sols/sol0001.index.gz.sc"] {
        let (mode, until, _, _) = lock_of(&s3, k);
        assert_eq!(mode.as_deref(), Some("COMPLIANCE"), "{k}");
        assert!((until.unwrap() - (now() + 3 * 86_400)).abs() < 120, "{k}");
    }
    // A bad duration is a usage error before any work.
    s3.env(sh(&crate::scripts::call(
        "sol-backup",
        "--retain 3x /tmp s3://b/p",
    )))
    .run()
    .code(2);
}

/// Item 2: sol-audit --locks reports an archive that is not locked, and one whose lock ends
/// within --lock-warn, as gaps (status 4); --extend-locks renews them (never a new lock on
/// an archive without one), after which only the unlocked one is a gap.
#[test]
fn s3_sol_audit_reports_and_extends_locks() {
    let Some((s3, t, key)) = locked_site() else {
        return;
    };
    let root = t.path().join("m");
    for sol in ["sol0001", "sol0002"] {
        std::fs::create_dir_all(root.join(sol)).unwrap();
        std::fs::write(root.join(sol).join("f"), sol).unwrap();
    }
    let k = key.display();
    let run = |script: &str, args: String| {
        s3.env(sh(&crate::scripts::call(
            script,
            &format!("-k '{k}' {args}"),
        )))
        .run()
    };
    let (r, url) = (root.display(), s3.url("s"));
    run("sol-backup", format!("--retain 3d '{r}'/sol0001 {url}")).ok();
    run("sol-backup", format!("'{r}'/sol0002 {url}")).ok();
    run(
        "sol-audit",
        format!("--coverage-only --locks --lock-warn 5d '{r}' {url}"),
    )
    .code(4)
    .stdout_has("problems (2):")
    .stdout_has("  sol0001: its lock ends ")
    .stdout_has(", within --lock-warn 5d (sol-audit --extend-locks renews it)")
    .stdout_has("  sol0002: not locked (no Object Lock retention or legal hold")
    .stdout_has("locks: 1 of 2 archives locked; the earliest retention ends ")
    .stdout_has("\n  sol0001: until ")
    .stdout_has("\n  sol0002: NOT LOCKED\n");
    run(
        "sol-audit",
        format!("--coverage-only --extend-locks 10d --lock-warn 5d '{r}' {url}"),
    )
    .code(4)
    .stdout_has("problems (1):")
    .stdout_has("  sol0002: not locked");
    let until = lock_of(&s3, "s/sol0001.tar.gz.sc").1.unwrap();
    assert!((until - (now() + 10 * 86_400)).abs() < 120, "{until}");
    assert_eq!(lock_of(&s3, "s/sol0002.tar.gz.sc").0, None);
}

/// Item 4: sol-audit --check-lock stores a canary locked for a day, fails to delete and
/// overwrite it with the host's credentials, reads it back: all holds, status 0 (the
/// archives locked beyond --lock-warn).
#[test]
fn s3_sol_audit_check_lock_proves_the_lock_holds() {
    let Some(s3) = locked() else { return };
    let (t, url) = (tmp(), s3.url("s"));
    let site = LockSite::new(t.path(), &s3);
    site.back_up_locked("40d", &url);
    site.run(
        "sol-audit",
        &format!("--coverage-only --check-lock '{}' {url}", site.r()),
    )
    .ok()
    .stdout_has("no problems")
    .stdout_has("locks: 1 of 1 archives locked")
    .stdout_has(&format!("lock canary: {url}/.sol-lock-canary version "))
    .stdout_has("held (its delete and overwrite were refused)");
    // Run again: a new version of the same key; the first one still reads back.
    site.run(
        "sol-audit",
        &format!("--coverage-only --check-lock '{}' {url}", site.r()),
    )
    .ok();
    assert_eq!(lock_of(&s3, "s/.sol-lock-canary").0.as_deref(), None);
}

/// Item 4 on a bucket without Object Lock: the canary cannot be locked and the archives
/// are not: gaps, status 4; nothing of the sols is touched.
#[test]
fn s3_sol_audit_check_lock_on_a_bucket_without_object_lock_is_a_gap() {
    let s3 = S3::start();
    let (t, url) = (tmp(), s3.url("s"));
    let site = LockSite::new(t.path(), &s3);
    site.run("sol-backup", &format!("'{}'/sol0001 {url}", site.r()))
        .ok();
    let before = s3.get("s/sol0001.tar.gz.sc");
    site.run(
        "sol-audit",
        &format!("--coverage-only --check-lock '{}' {url}", site.r()),
    )
    .code(4)
    .stdout_has("  sol0001: not locked")
    .stdout_has("  lock canary: s3-mput: ")
    .stdout_has("has no Object Lock");
    assert_eq!(s3.get("s/sol0001.tar.gz.sc"), before);
}

/// Item 2, sol-audit(1): --locks alone warns at the default --lock-warn, 30 days: a lock that
/// ends in 29 days is a gap (status 4), one that ends in 31 days is not.
#[test]
fn s3_sol_audit_locks_warns_within_30_days_by_default() {
    let Some(s3) = locked() else { return };
    let (t, url) = (tmp(), s3.url("s"));
    let site = LockSite::new(t.path(), &s3);
    std::fs::create_dir_all(t.path().join("m/sol0002")).unwrap();
    std::fs::write(t.path().join("m/sol0002/f"), "longer").unwrap();
    let r = site.r();
    site.run("sol-backup", &format!("--retain 29d '{r}'/sol0001 {url}"))
        .ok();
    site.run("sol-backup", &format!("--retain 31d '{r}'/sol0002 {url}"))
        .ok();
    let out = site.run("sol-audit", &format!("--coverage-only --locks '{r}' {url}"));
    out.code(4)
        .stdout_has("problems (1):")
        .stdout_has("  sol0001: its lock ends ")
        .stdout_has(", within --lock-warn 30d (sol-audit --extend-locks renews it)")
        .stdout_has("locks: 2 of 2 archives locked; the earliest retention ends ");
    assert!(
        !out.stdout_str().contains("sol0002: its lock ends"),
        "{}",
        out.stdout_str()
    );
}

/// A gateway in front of the server that says COMPLIANCE where it holds only GOVERNANCE:
/// it asks the server for GOVERNANCE wherever a client asks for COMPLIANCE, and answers
/// COMPLIANCE wherever the server says GOVERNANCE (words of the same length: the framing
/// stays right). Only a server that checks no signatures (moto) takes the rewritten
/// requests. Ends with the test.
struct Liar {
    endpoint: String,
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Liar {
    fn start(upstream: std::net::SocketAddr) -> Liar {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || swap_word(c2, s2, b"COMPLIANCE", b"GOVERNANCE"));
                std::thread::spawn(move || swap_word(server, client, b"GOVERNANCE", b"COMPLIANCE"));
            }
        });
        Liar {
            endpoint: format!("http://{addr}"),
            addr,
            stop,
        }
    }
}

impl Drop for Liar {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr); // wakes the accepting thread
    }
}

/// Copy FROM to TO with every WORD replaced by WITH (the same length); a read's end that
/// may begin a WORD waits for the next read.
fn swap_word(mut from: std::net::TcpStream, mut to: std::net::TcpStream, word: &[u8], with: &[u8]) {
    use std::io::{Read, Write};
    let (mut buf, mut carry) = (vec![0u8; 64 << 10], Vec::new());
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        carry.extend_from_slice(&buf[..n]);
        let mut i = 0;
        while let Some(at) = carry[i..].windows(word.len()).position(|w| w == word) {
            carry[i + at..i + at + word.len()].copy_from_slice(with);
            i += at + word.len();
        }
        let hold = (1..word.len())
            .rev()
            .find(|&k| carry.ends_with(&word[..k]))
            .unwrap_or(0);
        let ready: Vec<u8> = carry.drain(..carry.len() - hold).collect();
        if to.write_all(&ready).is_err() {
            return;
        }
    }
    let _ = to.write_all(&carry);
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// Item 4 at the audit's level: where the canary's lock does not hold (a server that says
/// COMPLIANCE but holds GOVERNANCE, so these credentials delete the locked version with the
/// governance bypass), sol-audit --check-lock reports the gap, status 4, and says so in its
/// problems and its last lines; the archive, locked by the server itself, is untouched.
/// moto alone always holds the canary (COMPLIANCE): the gateway is a proxy in front of it.
#[test]
fn s3_sol_audit_check_lock_reports_a_canary_that_was_deleted() {
    let Some(s3) = locked() else { return };
    if std::env::var("SOL_TEST_S3_SERVER").as_deref() != Ok("moto") {
        return skip("the lying gateway rewrites signed headers: only moto checks no signatures");
    }
    let (t, url) = (tmp(), s3.url("s"));
    let site = LockSite::new(t.path(), &s3);
    site.back_up_locked("40d", &url);
    let before = s3.get("s/sol0001.tar.gz.sc");
    let liar = Liar::start(s3.addr);
    let out = site.run_at(
        &liar.endpoint,
        "sol-audit",
        &format!("--coverage-only --check-lock '{}' {url}", site.r()),
    );
    let said = format!(
        "lock canary: s3-mput: {url}/.sol-lock-canary: the lock does not hold: its locked \
         version was deleted with this host's credentials"
    );
    out.code(4)
        .stdout_has("problems (1):")
        .stdout_has(&format!("  {said}\n"))
        .stdout_has("locks: 1 of 1 archives locked")
        .stdout_has(&format!("\n{said}\n"));
    assert!(
        !out.stdout_str().contains(" held ("),
        "{}",
        out.stdout_str()
    );
    assert_eq!(s3.get("s/sol0001.tar.gz.sc"), before);
    assert_eq!(
        lock_of(&s3, "s/sol0001.tar.gz.sc").0.as_deref(),
        Some("COMPLIANCE")
    );
}

/// A key and one sol under DIR/m, and the scripts run with the server's environment.
struct LockSite<'a> {
    s3: &'a S3,
    key: std::path::PathBuf,
    root: std::path::PathBuf,
}

impl LockSite<'_> {
    fn new<'a>(dir: &std::path::Path, s3: &'a S3) -> LockSite<'a> {
        let root = dir.join("m");
        std::fs::create_dir_all(root.join("sol0001")).unwrap();
        std::fs::write(root.join("sol0001/f"), "canary site").unwrap();
        LockSite {
            s3,
            key: keyfile(dir, "k", 256),
            root,
        }
    }

    fn r(&self) -> String {
        self.root.display().to_string()
    }

    /// `sol-backup --retain RETAIN` of sol0001 to URL, which must succeed.
    fn back_up_locked(&self, retain: &str, url: &str) {
        let args = format!("--retain {retain} '{}'/sol0001 {url}", self.r());
        self.run("sol-backup", &args).ok();
    }

    fn run(&self, script: &str, args: &str) -> Out {
        self.run_at(&self.s3.endpoint, script, args)
    }

    /// `run` with the S3 endpoint at ENDPOINT (a proxy in front of the server).
    fn run_at(&self, endpoint: &str, script: &str, args: &str) -> Out {
        let k = self.key.display();
        let cmd = crate::scripts::call(script, &format!("-k '{k}' {args}"));
        self.s3.env_at(sh(&cmd), endpoint).run()
    }
}

/// What s3-mput's checksum is for: moto, like AWS, refuses a locked PUT that carries no body
/// checksum (Ceph RGW and MinIO accept one; s3-mput(1), OBJECT LOCK).
#[test]
fn s3_a_locked_put_without_a_checksum_is_refused_by_moto() {
    let Some(s3) = locked() else { return };
    if std::env::var("SOL_TEST_S3_SERVER").as_deref() != Ok("moto") {
        return skip("only moto (and AWS) refuse a locked write without a checksum");
    }
    let refused = s3.sdk(|c, b| async move {
        use aws_sdk_s3::config::RequestChecksumCalculation;
        let conf = c
            .config()
            .to_builder()
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .build();
        let bare = aws_sdk_s3::Client::from_conf(conf);
        let until = aws_sdk_s3::primitives::DateTime::from_secs(now() + 86_400);
        bare.put_object()
            .bucket(b)
            .key("bare")
            .object_lock_mode(aws_sdk_s3::types::ObjectLockMode::Compliance)
            .object_lock_retain_until_date(until)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(
                b"no checksum",
            ))
            .send()
            .await
            .is_err()
    });
    assert!(refused, "moto stored a locked PUT without a checksum");
    s3.mput(
        "with",
        b"s3-mput sends one",
        &["--checksum", "none", "--retain", "1d"],
    )
    .ok();
}

/// Found by a helper: what is not a lock is not reported as one, and what cannot lock is
/// refused before anything is stored.
#[test]
fn s3_lock_refusals_and_ended_retentions() {
    let Some(s3) = locked() else { return };
    // A retain-until in the past: status 1, nothing stored.
    s3.mput("p", b"past", &["--retain-until", "2020-01-01T00:00:00Z"])
        .code(1)
        .one_line_with("--retain-until 2020-01-01T00:00:00Z is not in the future");
    assert!(s3.get("p").is_none());
    // Out of range, and a mode without a retention: usage errors.
    s3.mput("x", b"x", &["--retain", "100000y"]).code(2);
    s3.mput("x", b"x", &["--lock-mode", "GOVERNANCE"])
        .code(2)
        .stderr_has("--lock-mode needs --retain or --retain-until");
    assert!(s3.get("x").is_none());
    // A GOVERNANCE canary does not hold against credentials that may bypass it.
    s3.mput(
        "gc",
        b"canary",
        &[
            "--overwrite",
            "--retain",
            "1d",
            "--lock-mode",
            "GOVERNANCE",
            "--lock-canary",
        ],
    )
    .code(3)
    .one_line_with("the lock does not hold: its locked version was deleted");
    // A retention that ended is not a lock (--lock-warn implies --locks).
    let (t, url) = (tmp(), s3.url("s"));
    let site = LockSite::new(t.path(), &s3);
    site.back_up_locked("2s", &url);
    std::thread::sleep(std::time::Duration::from_secs(4));
    site.run(
        "sol-audit",
        &format!("--coverage-only --lock-warn 1d '{}' {url}", site.r()),
    )
    .code(4)
    .stdout_has("  sol0001: not locked (its retention ended ")
    .stdout_has("locks: 0 of 1 archives locked")
    .stdout_has("  sol0001: NOT LOCKED (ended)");
}

/// Profile `dead` in the shared files of `s3`'s environment: keys, and an endpoint where
/// nothing listens. Its target is `dead:s3://BUCKET/KEY`.
fn add_dead_profile(s3: &S3) {
    let dead = "[profile dead]\nendpoint_url = http://127.0.0.1:9\nregion = us-east-1\n\n";
    let keys = "[dead]\naws_access_key_id = a\naws_secret_access_key = b\n\n";
    for (file, text) in [("config", dead), ("credentials", keys)] {
        let path = s3.home().join(file);
        let was = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(path, was + text).unwrap();
    }
}

/// `s3-mput --retain 1d` of DATA to KEY at `s3` and at every TARGET of `also`, with ARGS.
fn mput_also(s3: &S3, key: &str, data: &[u8], also: &[String], args: &[&str]) -> Out {
    let mut run = s3.tool("s3-mput").args(["--retain", "1d"]).args(args);
    for t in also {
        run = run.args(["--also", t]);
    }
    run.arg(s3.url(key)).stdin(data.to_vec()).run()
}

/// Issue 24 with Object Lock: every target's Object Lock configuration is asked of it alone,
/// so a dead --also target fails alone (one stderr line naming it) and the live one stores
/// the object locked; --min-ok decides the status (by default every target must store it:
/// status 1 and the count line). A single PUT and a multipart upload alike.
#[test]
fn s3_mput_retain_with_a_dead_also_target_stores_locked_at_the_live_one() {
    let Some(s3) = locked() else { return };
    add_dead_profile(&s3);
    let big = Rng::new(25).bytes(6 << 20);
    for (key, data, min_ok, code) in [
        ("one", &b"one live target"[..], Some("1"), 0),
        ("all", &b"every target asked"[..], None, 1),
        ("multi", &big[..], Some("1"), 0),
    ] {
        let dead = format!("dead:s3://{}/{key}", s3.bucket);
        let mut args = vec!["--part-size", "5M", "--retries", "2", "--timeout", "2"];
        args.extend(min_ok.map(|k| ["--min-ok", k]).iter().flatten());
        let out = mput_also(&s3, key, data, std::slice::from_ref(&dead), &args);
        out.code(code);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert!(
            lines[0].starts_with(&format!("s3-mput: {dead}: ")),
            "{key}: {}",
            out.stderr
        );
        match code {
            0 => assert_eq!(lines.len(), 1, "{key}: {}", out.stderr),
            _ => assert_eq!(
                lines[1..],
                ["s3-mput: 1 of 2 targets stored the object (--min-ok 2)"],
                "{key}"
            ),
        }
        assert_eq!(s3.get(key).as_deref(), Some(data), "{key}");
        let (mode, until, _, _) = lock_of(&s3, key);
        assert_eq!(mode.as_deref(), Some("COMPLIANCE"), "{key}");
        assert!((until.unwrap() - (now() + 86_400)).abs() < 120, "{key}");
    }
}

/// A live --also target whose bucket has no Object Lock fails alone with the one-line hint
/// (first or second on the command line); the bucket with Object Lock stores the object
/// locked, and the other bucket holds nothing.
#[test]
fn s3_mput_retain_with_an_also_bucket_without_object_lock_fails_that_target_alone() {
    let Some(s3) = locked() else { return };
    let plain = S3::start();
    let hint = |key: &str| {
        format!(
            "s3-mput: {}: not stored: the bucket '{}' has no Object Lock \
             (GetObjectLockConfiguration); a bucket must be created with Object Lock enabled",
            plain.url(key),
            plain.bucket
        )
    };
    // --min-ok 1: status 0, the one line.
    let out = mput_also(&s3, "k1", b"locked", &[plain.url("k1")], &["--min-ok", "1"]);
    out.code(0).one_line_with(&hint("k1"));
    // By default every target must store it: status 1, the line, then the count.
    let out = mput_also(&s3, "k2", b"locked", &[plain.url("k2")], &[]);
    out.code(1);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stderr);
    assert!(lines[0].starts_with(&hint("k2")), "{}", out.stderr);
    assert_eq!(
        lines[1],
        "s3-mput: 1 of 2 targets stored the object (--min-ok 2)"
    );
    // The bucket without Object Lock named first, the locked one as --also.
    let out = plain
        .tool("s3-mput")
        .args(["--retain", "1d", "--min-ok", "1", "--also", &s3.url("k3")])
        .arg(plain.url("k3"))
        .stdin(b"locked".to_vec())
        .run();
    out.code(0).one_line_with(&hint("k3"));
    for key in ["k1", "k2", "k3"] {
        assert_eq!(s3.get(key).as_deref(), Some(&b"locked"[..]), "{key}");
        assert_eq!(lock_of(&s3, key).0.as_deref(), Some("COMPLIANCE"), "{key}");
        assert!(plain.get(key).is_none(), "{key}");
    }
}
