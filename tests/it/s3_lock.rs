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
    let Some(s3) = locked() else { return };
    let t = tmp();
    let key = keyfile(t.path(), "k", 256);
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
    let Some(s3) = locked() else { return };
    let t = tmp();
    let key = keyfile(t.path(), "k", 256);
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
    site.run(
        "sol-backup",
        &format!("--retain 40d '{}'/sol0001 {url}", site.r()),
    )
    .ok();
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

    fn run(&self, script: &str, args: &str) -> Out {
        let k = self.key.display();
        let cmd = crate::scripts::call(script, &format!("-k '{k}' {args}"));
        self.s3.env(sh(&cmd)).run()
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
    site.run(
        "sol-backup",
        &format!("--retain 2s '{}'/sol0001 {url}", site.r()),
    )
    .ok();
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
