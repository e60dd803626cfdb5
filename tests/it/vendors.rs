//! Three vendors at once (issue 24, item 6): the in-process s3s-fs, moto and Ceph RGW, each
//! a profile of the shared AWS files, in one sol-backup, sol-audit and sol-restore. The
//! server matrix runs one server at a time, so these run in a CI step of their own, which
//! starts moto and Ceph RGW together and names them in SOL_TEST_VENDORS (a file of lines
//! `NAME ENDPOINT ACCESS-KEY SECRET-KEY`); elsewhere they say SKIPPED.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::s3env::{Faults, Proxy, S3};
use crate::targets::{size_etag, target, Mission};
use crate::util::*;

/// The vendors SOL_TEST_VENDORS names, each with a fresh bucket; None (and the test
/// skipped) without it.
fn vendors() -> Option<Vec<(String, S3)>> {
    let Some(file) = std::env::var_os("SOL_TEST_VENDORS") else {
        skip("SOL_TEST_VENDORS is not set: .ci/run's three-vendor step sets it");
        return None;
    };
    let text = fs::read_to_string(file).expect("SOL_TEST_VENDORS names a readable file");
    static N: AtomicU64 = AtomicU64::new(0);
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let n = N.fetch_add(1, Ordering::Relaxed);
        let bucket = format!("sol-vendor-{}-{n}", std::process::id());
        out.push((f[0].to_string(), S3::at(f[1], f[2], f[3], &bucket, tmp())));
    }
    Some(out)
}

/// Six sols of a few MB each (sol0001 and sol0002 from Mission, four more).
fn six_sols(m: &Mission) -> String {
    for i in 3..=6 {
        let d = m.root.join(format!("sol000{i}/data"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("x.raw"), Rng::new(i).bytes(6 << 20)).unwrap();
    }
    let r = m.root.display();
    (1..=6).map(|i| format!("'{r}'/sol000{i} ")).collect()
}

/// A vendor killed in the middle of a nightly run with --min-ok 2: the run is ok, the
/// report names that vendor, the sols after it skip it at once (found dead), the audit
/// names each sol it lacks, a restore whose first target is that vendor fails over, and
/// the next night catches it up with the same bytes, after which the audit is clean.
#[test]
fn a_vendor_killed_mid_backup_is_caught_up_the_next_night() {
    let Some(v) = vendors() else { return };
    let t = tmp();
    let dir = t.path();
    let fs3 = S3::start_local();
    let mut proxy = Proxy::start(fs3.addr, Faults::NONE, 24);
    fs3.add_profile_at(dir, "fs", &proxy.endpoint);
    fs3.add_profile_at(dir, "fsback", &fs3.endpoint);
    for (name, s3) in &v {
        s3.add_profile(dir, name);
    }
    let m = Mission::new(dir, 6);
    let sols = six_sols(&m);
    let others: String = v
        .iter()
        .map(|(n, s3)| format!("--also {} ", target(n, s3, "s")))
        .collect();
    let (killed, back) = (target("fs", &fs3, "s"), target("fsback", &fs3, "s"));

    // The vendor dies once the first sol is stored there (its index is stored after its
    // archive was confirmed).
    let first = fs3
        .root
        .clone()
        .unwrap()
        .join(&fs3.bucket)
        .join("s/sol0001.index.gz.sc");
    let out = std::thread::scope(|scope| {
        let run =
            scope.spawn(|| m.run("sol-backup", &format!("--min-ok 2 {others}{sols}{killed}")));
        let start = Instant::now();
        while !first.exists() && start.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(5));
        }
        proxy.kill();
        run.join().unwrap()
    });
    out.ok()
        .stdout_has("sol0001          ok")
        .stdout_has("stored  stored  stored  ")
        .stdout_has("sol0006          ok")
        .stdout_has("DEAD    stored  stored  ");
    let missing: Vec<String> = (1..=6)
        .map(|i| format!("sol000{i}"))
        .filter(|s| fs3.get(&format!("s/{s}.tar.gz.sc")).is_none())
        .collect();
    assert!(missing.len() >= 4, "{missing:?}");

    // The audit names each sol the vendor lacks.
    let r = m.root.display();
    let audit = m.run(
        "sol-audit",
        &format!("--coverage-only {others}'{r}' {back}"),
    );
    audit.code(4);
    for s in &missing {
        audit.stdout_has(&format!("{s}: not on T1 {back}/ (stored on 2 of 3 targets"));
    }

    // A restore whose first target is the dead vendor.
    let dest = dir.join("restored");
    let out = m.run(
        "sol-restore",
        &format!("{others}{killed} sol0006 '{}'", dest.display()),
    );
    out.ok().stdout_has("sol0006: restored from ");
    assert_same_tree(&m.root.join("sol0006"), &dest.join("sol0006"));

    // The next night: caught up, the same bytes and ETags at all three; the audit is clean.
    let out = m.run("sol-backup", &format!("{others}{sols}{back}"));
    out.ok().stdout_has("copied  had     had     ");
    for s in &missing {
        let key = format!("s/{s}.tar.gz.sc");
        for (name, s3) in &v {
            assert_eq!(size_etag(s3, &key), size_etag(&fs3, &key), "{name} {key}");
        }
    }
    let audit = m.run("sol-audit", &format!("-n 6 {others}'{r}' {back}"));
    audit.ok().stdout_has("no problems");
}

/// Wrong keys for one vendor (Ceph RGW, or s3s-fs: moto accepts any): that target is one
/// line of the report, dead for the run, and --min-ok decides the status.
#[test]
fn wrong_keys_at_one_vendor_cost_one_line() {
    let Some(v) = vendors() else { return };
    let t = tmp();
    let dir = t.path();
    for (name, s3) in &v {
        s3.add_profile(dir, name);
    }
    let fs3 = S3::start_local();
    fs3.add_profile(dir, "fs");
    let config = format!(
        "[profile wrong]\nendpoint_url = {}\nregion = us-east-1\n",
        fs3.endpoint
    );
    let keys = "[wrong]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n";
    for (file, text) in [("config", config.as_str()), ("credentials", keys)] {
        let was = fs::read_to_string(dir.join(file)).unwrap_or_default();
        fs::write(dir.join(file), was + text).unwrap();
    }
    let m = Mission::new(dir, 8);
    let r = m.root.display();
    let all: String = v
        .iter()
        .map(|(n, s3)| format!("--also {} ", target(n, s3, "s")))
        .collect();
    let wrong = format!("wrong:s3://{}/s", fs3.bucket);
    let line = |out: &Out| {
        let s = out.stdout_str();
        let dead: Vec<&str> = s
            .lines()
            .filter(|l| l.contains("DEAD for this run"))
            .collect();
        assert_eq!(dead.len(), 1, "{s}");
        assert!(dead[0].starts_with("T4 DEAD for this run: "), "{s}");
    };
    let cmd = |k: &str| {
        let fs_t = target("fs", &fs3, "s");
        format!("{k}{all}--also {wrong} '{r}'/sol0001 '{r}'/sol0002 {fs_t}")
    };
    let out = m.run("sol-backup", &cmd("--min-ok 3 "));
    out.ok().stdout_has("stored  stored  stored  DEAD    ");
    line(&out);
    let out = m.run("sol-backup", &cmd(""));
    out.code(1);
    line(&out);
    assert!(Path::new(&dir.join("config")).exists());
}

/// The slow vendor (s3s-fs behind a proxy that delays every read) of three: dropped past
/// the window and its upload aborted, the two others store the stream at full speed, and
/// memory stays within s3-mput(1)'s bound for several targets.
#[test]
fn a_slow_vendor_of_three_is_dropped_and_memory_stays_bounded() {
    let Some(v) = vendors() else { return };
    if !Path::new("/usr/bin/time").exists() {
        return skip("no /usr/bin/time to measure peak RSS");
    }
    let t = tmp();
    let fs3 = S3::start_local();
    let delay = Duration::from_millis(40);
    let slow = Proxy::start(
        fs3.addr,
        Faults {
            delay,
            ..Faults::NONE
        },
        7,
    );
    fs3.add_profile_at(t.path(), "slow", &slow.endpoint);
    for (name, s3) in &v {
        s3.add_profile(t.path(), name);
    }
    let data = Rng::new(12).bytes(100 << 20);
    let others: String = v
        .iter()
        .map(|(n, s3)| format!("--also '{}' ", target(n, s3, "k")))
        .collect();
    let cmd = format!(
        "/usr/bin/time -v '{}' --part-size 5M --concurrency 2 --min-ok 2 {others}'{}'",
        bin("s3-mput").display(),
        target("slow", &fs3, "k"),
    );
    let run = sh(&cmd)
        .env("AWS_CONFIG_FILE", t.path().join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", t.path().join("credentials"));
    let out = run.stdin(data.clone()).run();
    out.ok();
    let dropped = format!(
        "s3-mput: slow:s3://{}/k: fell more than 8 parts behind the fastest target: dropped from this upload",
        fs3.bucket
    );
    assert!(out.stderr.contains(&dropped), "{}", out.stderr);
    for (name, s3) in &v {
        assert_eq!(s3.get("k").as_deref(), Some(&data[..]), "{name}");
    }
    assert!(fs3.get("k").is_none());
    assert!(fs3.pending_uploads().is_empty());
    let bound = (12 * 5 + 40) << 10;
    let rss = crate::targets::peak_rss_kib(&out.stderr);
    assert!(rss < bound, "peak RSS {rss} KiB, bound {bound} KiB");
}
