//! The nightly-job scripts end to end against the in-process S3 server.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::s3env::S3;
use crate::util::*;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

/// A mission of `n` small sols under `root`.
fn mission(root: &Path, n: usize) {
    let mut r = Rng::new(77);
    for s in 1..=n {
        let sol = root.join(format!("sol{s:04}"));
        for i in 0..60 {
            let d = sol.join(format!("inst{}/seq{:02}", i % 3, i % 7));
            fs::create_dir_all(&d).unwrap();
            let n = r.below(4000) as usize;
            fs::write(d.join(format!("log{i:03}.txt")), r.text(n)).unwrap();
        }
        fs::create_dir_all(sol.join("images")).unwrap();
        fs::write(sol.join("images/frame.raw"), r.bytes(2 << 20)).unwrap();
        fs::create_dir_all(sol.join("empty")).unwrap();
        std::os::unix::fs::symlink("images/frame.raw", sol.join("latest")).unwrap();
    }
}

fn copy_tree(from: &Path, to: &Path) {
    sh(&format!("cp -a '{}' '{}'", from.display(), to.display()))
        .run()
        .ok();
}

/// A directory of fake tools that shadow the real ones on PATH.
fn fake(dir: &Path, name: &str, body: &str) {
    fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    fs::write(&p, format!("#!/usr/bin/env bash\n{body}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn backup_skip_audit_and_restore_by_script_and_by_make() {
    let s3 = S3::start();
    let t = tmp();
    let root = t.path().join("mission");
    mission(&root, 3);
    let pristine = t.path().join("pristine");
    copy_tree(&root, &pristine);
    let key = keyfile(t.path(), "site.key", 256);
    let k = key.display();
    let dest = s3.url("sols");
    let r = root.display();

    let out = s3
        .env(sh(&format!(
            "'{}' -j 2 -k '{k}' '{r}'/sol* {dest}",
            script("sol-backup").display()
        )))
        .run();
    out.ok();
    assert!(
        out.stdout_str()
            .contains("summary: 3 sols: 3 ok, 0 skipped, 0 failed"),
        "{}",
        out.stdout_str()
    );
    let ls = s3
        .tool("s3-ls")
        .args(["--relative"])
        .arg(s3.url("sols/"))
        .run();
    assert_eq!(ls.stdout_str().lines().count(), 3);
    assert!(ls.stdout_str().contains("sol0001.tar.gz.sc\t"));

    // The second night does nothing.
    let again = s3
        .env(sh(&format!(
            "'{}' -k '{k}' '{r}'/sol* {dest}",
            script("sol-backup").display()
        )))
        .run();
    again.ok();
    assert!(
        again.stdout_str().contains("3 sols: 0 ok, 3 skipped"),
        "{}",
        again.stdout_str()
    );

    let audit = format!(
        "'{}' -n 3 -k '{k}' '{r}' {dest}",
        script("sol-audit").display()
    );
    s3.env(sh(&audit)).run().ok();
    // Changed, missing and extra files are caught and named.
    fs::write(root.join("sol0001/inst0/seq00/log000.txt"), b"tampered").unwrap();
    fs::remove_file(root.join("sol0002/images/frame.raw")).unwrap();
    fs::write(root.join("sol0003/intruder.txt"), b"new").unwrap();
    let out = s3.env(sh(&audit)).run();
    out.code(3);
    let report = out.stdout_str();
    for want in [
        "sol0001: changed: inst0/seq00/log000.txt",
        "sol0002: missing: images/frame.raw",
        "sol0003: extra: intruder.txt",
        "3 sols: 0 ok, 0 skipped, 3 failed",
    ] {
        assert!(
            report.contains(want),
            "audit report lacks {want:?}:\n{report}"
        );
    }

    // Restore by script ...
    let restored = t.path().join("restored");
    let out = s3
        .env(sh(&format!(
            "'{}' -j 2 -k '{k}' {dest} sol0001 sol0002 sol0003 '{}'",
            script("sol-restore").display(),
            restored.display()
        )))
        .run();
    out.ok();
    assert_same_tree(&pristine, &restored);
    // ... and by make -j, which then says it is up to date.
    let made = t.path().join("made");
    let mk = format!(
        "make -f '{}' FROM={dest} DEST='{}' LAST=3 KEY='{k}'",
        script("restore.mk").display(),
        made.display()
    );
    s3.env(sh(&format!("{mk} -j 4"))).run().ok();
    s3.env(sh(&format!("{mk} -q"))).run().ok();
    for s in ["sol0001", "sol0002", "sol0003"] {
        assert_same_tree(&pristine.join(s), &made.join(s));
    }
}

#[test]
fn a_failing_stage_fails_its_sol_and_stores_nothing() {
    let s3 = S3::start();
    let t = tmp();
    let root = t.path().join("mission");
    mission(&root, 2);
    let key = keyfile(t.path(), "site.key", 256);
    let backup = script("sol-backup");

    // An unusable key: a clear line, status 1, no object.
    let out = s3
        .env(sh(&format!(
            "'{}' -k /nonexistent.key '{}'/sol0001 {}",
            backup.display(),
            root.display(),
            s3.url("s")
        )))
        .run();
    out.code(1);
    assert!(
        out.stderr.contains("key file '/nonexistent.key'"),
        "{}",
        out.stderr
    );

    // sol-zip dies mid-stream; sol-crypt seals what it got into a complete stream, but the
    // pipeline's verdict keeps s3-mput from completing. The other sol goes on.
    let fakes = t.path().join("fakes");
    fake(
        &fakes,
        "sol-zip",
        "head -c 100000; echo 'sol-zip: simulated crash' >&2; exit 1",
    );
    let out = s3
        .env(sh(&format!(
            "PATH='{}':$PATH '{}' -k '{}' '{}'/sol0001 {}",
            fakes.display(),
            backup.display(),
            key.display(),
            root.display(),
            s3.url("s")
        )))
        .run();
    out.code(1);
    assert!(
        out.stdout_str().contains("sol0001          FAILED"),
        "{}",
        out.stdout_str()
    );
    assert!(
        out.stderr.contains("sol0001: sol-zip: simulated crash"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("not stored: the pipeline upstream failed"),
        "{}",
        out.stderr
    );
    assert!(s3.get("s/sol0001.tar.gz.sc").is_none());
    assert!(s3.pending_uploads().is_empty());
    // Without the fake, both sols go through.
    let out = s3
        .env(sh(&format!(
            "'{}' -k '{}' '{}'/sol* {}",
            backup.display(),
            key.display(),
            root.display(),
            s3.url("s")
        )))
        .run();
    out.ok();
    assert!(out.stdout_str().contains("2 ok"));
}

#[test]
fn a_killed_restore_is_completed_by_a_rerun() {
    let s3 = S3::start();
    let t = tmp();
    let root = t.path().join("mission");
    mission(&root, 2);
    let key = keyfile(t.path(), "site.key", 256);
    let k = key.display();
    s3.env(sh(&format!(
        "'{}' -k '{k}' '{}'/sol* {}",
        script("sol-backup").display(),
        root.display(),
        s3.url("s")
    )))
    .run()
    .ok();
    let dest = t.path().join("dest");
    let mk = format!(
        "make -f '{}' FROM={} DEST='{}' SOLS='sol0001 sol0002' KEY='{k}' -j 2",
        script("restore.mk").display(),
        s3.url("s"),
        dest.display()
    );
    // A slow s3-mget, so the kill lands mid-restore.
    let fakes = t.path().join("fakes");
    let real = bin("s3-mget");
    fake(
        &fakes,
        "s3-mget",
        &format!("sleep 3; exec '{}' \"$@\"", real.display()),
    );
    let killed = s3
        .env(sh(&format!(
            "PATH='{}':$PATH timeout -s KILL 1 {mk}",
            fakes.display()
        )))
        .run();
    assert_ne!(killed.code, 0, "the restore should have been killed");
    assert!(
        !dest.join("sol0001").exists() && !dest.join("sol0002").exists(),
        "a half sol was left in place"
    );
    s3.env(sh(&mk)).run().ok();
    s3.env(sh(&format!("{mk} -q"))).run().ok();
    for sol in ["sol0001", "sol0002"] {
        assert_same_tree(&root.join(sol), &dest.join(sol));
    }
}

#[test]
fn audit_refresh_keeps_the_old_archive_and_uploads_the_new_one() {
    let s3 = S3::start();
    let t = tmp();
    let root = t.path().join("mission");
    mission(&root, 1);
    let key = keyfile(t.path(), "site.key", 256);
    let (k, r, d) = (key.display(), root.display(), s3.url("s"));
    s3.env(sh(&format!(
        "'{}' -k '{k}' '{r}'/sol0001 {d}",
        script("sol-backup").display()
    )))
    .run()
    .ok();
    fs::write(
        root.join("sol0001/inst1/seq01/log001.txt"),
        b"changed on purpose",
    )
    .unwrap();
    let audit = format!(
        "'{}' --sol sol0001 -k '{k}' '{r}' {d}",
        script("sol-audit").display()
    );
    let out = s3.env(sh(&format!("{audit} --refresh"))).run();
    out.code(3);
    assert!(
        out.stdout_str()
            .contains("sol0001: refreshed (the old archive is kept as"),
        "{}",
        out.stdout_str()
    );
    let ls = s3
        .tool("s3-ls")
        .args(["--relative"])
        .arg(s3.url("s/"))
        .run()
        .stdout_str();
    assert!(
        ls.lines()
            .any(|l| l.starts_with("sol0001.tar.gz.sc.replaced-")),
        "{ls}"
    );
    // The stored archive is now the new content; the audit passes.
    s3.env(sh(&audit)).run().ok();
}
