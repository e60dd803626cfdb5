//! sol-sync and sol-pull (issue 27): a backup-set directory mirrored up without deleting by
//! accident, inside a window; a bucket pulled down keeping every version. On the server
//! under test (s3s-fs, moto with a versioned bucket, Ceph RGW).

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use crate::s3env::{server, Faults, Proxy, S3};
use crate::scripts::call;
use crate::util::*;

fn sync(s3: &S3, args: &str) -> Out {
    s3.env(sh(&call("sol-sync", args))).run()
}

fn sync_at(s3: &S3, endpoint: &str, args: &str) -> Out {
    s3.env_at(sh(&call("sol-sync", args)), endpoint).run()
}

fn pull(s3: &S3, args: &str) -> Out {
    s3.env(sh(&call("sol-pull", args))).run()
}

/// A bucket (with versions, where the server keeps them and VERSIONS asks) and the
/// directory to pull into (not made yet): the server, the temporary directory, the
/// directory, and whether the bucket keeps versions.
fn pull_site(versions: bool) -> (S3, tempfile::TempDir, std::path::PathBuf, bool) {
    let s3 = S3::start();
    let versioned = versions && server() != "s3s-fs";
    if versioned {
        s3.sdk(|c, b| async move {
            let on = aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build();
            c.put_bucket_versioning()
                .bucket(b)
                .versioning_configuration(on)
                .send()
                .await
                .unwrap();
        });
    }
    let d = tmp();
    let dir = d.path().join("pulled");
    (s3, d, dir, versioned)
}

/// DIR's files by path: (bytes, mtime).
fn tree(dir: &Path) -> Vec<(String, Vec<u8>, i64)> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() && !p.ends_with(".sol-pull") {
                dirs.push(p);
            } else if meta.is_file() {
                use std::os::unix::fs::MetadataExt;
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap(), meta.mtime()));
            }
        }
    }
    out.sort();
    out
}

/// A backup set: small files, a nested one, a 20 MiB file (a multipart upload), a symbolic
/// link and the mount sentinel.
fn backup_set(dir: &Path) {
    let mut rng = Rng::new(27);
    std::fs::create_dir_all(dir.join("groom/deep")).unwrap();
    std::fs::write(dir.join("MOUNTED"), b"").unwrap();
    std::fs::write(dir.join("1-chunk.rdb"), rng.bytes(300_000)).unwrap();
    std::fs::write(dir.join("2-chunk.rdb"), rng.bytes(70_000)).unwrap();
    std::fs::write(dir.join("groom/deep/3-chunk.rdb"), rng.bytes(20 << 20)).unwrap();
    std::os::unix::fs::symlink("1-chunk.rdb", dir.join("link.rdb")).unwrap();
}

/// A server, a backup set, and the DIR and URL operands of sol-sync.
fn sync_site() -> (S3, tempfile::TempDir, String, String) {
    let s3 = S3::start();
    let d = tmp();
    backup_set(d.path());
    let (dir, url) = (d.path().display().to_string(), s3.url("set"));
    (s3, d, dir, url)
}

/// `flock LOCK sleep SECS` (another job holding the lock), once it holds it.
fn hold_lock(lock: &Path, secs: u32) -> std::process::Child {
    let mut child = std::process::Command::new("flock")
        .arg(lock)
        .args(["sleep", &secs.to_string()])
        .spawn()
        .unwrap();
    for _ in 0..200 {
        let free = std::process::Command::new("flock")
            .args(["-n"])
            .arg(lock)
            .arg("true")
            .status()
            .unwrap();
        if !free.success() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("flock {} never held it", lock.display());
}

/// Every key under the prefix with its size, ETag and metadata.
fn listing(s3: &S3) -> String {
    let out = s3.ls(&["--relative", "--metadata"], "set/");
    out.ok();
    out.stdout_str()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            format!("{} {} {} {}", f[0], f[1], f[3], f[4..].join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn s3_sync_uploads_skips_and_replaces_keeping_the_old_copy() {
    let s3 = S3::start();
    let d = tmp();
    backup_set(d.path());
    let dir = d.path().display().to_string();
    let url = s3.url("set");
    let first = sync(&s3, &format!("-j 2 {dir} {url}"));
    first
        .ok()
        .stdout_has("files 4: 4 uploaded, 0 replaced, 0 unchanged, 0 left, 0 failed")
        .stdout_has("skipped link.rdb (symbolic link): not a regular file")
        .stdout_has("result: ok");
    for (rel, bytes, _) in tree(d.path()) {
        assert_eq!(
            s3.get(&format!("set/{rel}")).as_deref(),
            Some(&bytes[..]),
            "{rel}"
        );
    }
    assert!(
        listing(&s3).contains("groom/deep/3-chunk.rdb 20971520"),
        "{}",
        listing(&s3)
    );
    sync(&s3, &format!("{dir} {url}"))
        .ok()
        .stdout_has("files 4: 0 uploaded, 0 replaced, 4 unchanged, 0 left, 0 failed");
    // Grooming rewrites a chunk (same size, a new time): it is replaced, the old one kept.
    let old = std::fs::read(d.path().join("2-chunk.rdb")).unwrap();
    let new = Rng::new(99).bytes(70_000);
    std::fs::write(d.path().join("2-chunk.rdb"), &new).unwrap();
    set_mtime(&d.path().join("2-chunk.rdb"), 1_900_000_000);
    let out = sync(&s3, &format!("{dir} {url}"));
    out.ok()
        .stdout_has("files 4: 0 uploaded, 1 replaced, 3 unchanged")
        .stdout_has("replaced 2-chunk.rdb (70000 bytes; the old one kept as 2-chunk.rdb.replaced-");
    assert_eq!(s3.get("set/2-chunk.rdb"), Some(new));
    let keys = listing(&s3);
    let copy = keys
        .lines()
        .find(|l| l.starts_with("2-chunk.rdb.replaced-"))
        .unwrap_or_else(|| panic!("no .replaced- copy: {keys}"));
    let copy = copy.split(' ').next().unwrap();
    assert_eq!(s3.get(&format!("set/{copy}")), Some(old));
    assert!(
        keys.contains("2-chunk.rdb 70000") && keys.contains("mtime=1900000000.000000000"),
        "{keys}"
    );
}

/// A change that keeps size and time is seen only with --checksum: by the MD5 kept as
/// metadata, by a single part's ETag, or by a multipart ETag made again.
#[test]
fn s3_sync_checksum_catches_a_same_size_same_time_change() {
    let (s3, d, dir, url) = sync_site();
    sync(&s3, &format!("{dir} {url}")).ok();
    sync(&s3, &format!("--checksum {dir} {url}"))
        .ok()
        .stdout_has("0 uploaded, 0 replaced, 4 unchanged");
    for rel in ["1-chunk.rdb", "groom/deep/3-chunk.rdb"] {
        let p = d.path().join(rel);
        let mut bytes = std::fs::read(&p).unwrap();
        let t = std::fs::metadata(&p).unwrap().modified().unwrap();
        bytes[1000] ^= 0xff;
        std::fs::write(&p, &bytes).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    sync(&s3, &format!("{dir} {url}"))
        .ok()
        .stdout_has("0 uploaded, 0 replaced, 4 unchanged");
    sync(&s3, &format!("--checksum {dir} {url}"))
        .ok()
        .stdout_has("0 uploaded, 2 replaced, 2 unchanged");
    assert_eq!(
        s3.get("set/groom/deep/3-chunk.rdb").unwrap(),
        std::fs::read(d.path().join("groom/deep/3-chunk.rdb")).unwrap()
    );
    assert!(listing(&s3).contains("md5chksum="), "{}", listing(&s3));
    sync(&s3, &format!("--checksum {dir} {url}"))
        .ok()
        .stdout_has("0 uploaded, 0 replaced, 4 unchanged");
}

#[test]
fn s3_sync_deletes_only_within_every_guard() {
    let (s3, d, dir, url) = sync_site();
    sync(&s3, &format!("{dir} {url}")).ok();
    std::fs::write(d.path().join("2-chunk.rdb"), b"groomed").unwrap();
    sync(&s3, &format!("{dir} {url}")).ok(); // a .replaced- copy now exists
    let before = listing(&s3);
    sync(&s3, &format!("--delete {dir} {url}"))
        .code(2)
        .stderr_has("--max-delete");
    for f in ["1-chunk.rdb", "2-chunk.rdb", "groom/deep/3-chunk.rdb"] {
        std::fs::remove_file(d.path().join(f)).unwrap();
    }
    // Without --delete the objects whose file is gone stay, and the run is ok.
    sync(&s3, &format!("{dir} {url}"))
        .ok()
        .stdout_has("result: ok");
    sync(&s3, &format!("--delete --max-delete 2 {dir} {url}"))
        .code(1)
        .stdout_has(
            "deletions REFUSED: 3 objects to delete, more than --max-delete 2: nothing deleted",
        );
    sync(
        &s3,
        &format!("--dry-run --delete --max-delete 5 {dir} {url}"),
    )
    .ok()
    .stdout_has("would delete groom/deep/3-chunk.rdb");
    assert_eq!(listing(&s3), before);
    // The volume not mounted: no sentinel, nothing done at all.
    let empty = tmp();
    let e = empty.path().display();
    sync(
        &s3,
        &format!("--require MOUNTED --delete --max-delete 9 {e} {url}"),
    )
    .code(1)
    .stderr_has("no MOUNTED (the volume is not mounted?): nothing done");
    // An empty directory deletes nothing even with a sentinel-less run allowed.
    sync(&s3, &format!("--delete --max-delete 9 {e} {url}"))
        .code(1)
        .stdout_has("deletions REFUSED:")
        .stdout_has("has no file: nothing deleted");
    assert_eq!(listing(&s3), before);
    sync(
        &s3,
        &format!("--require MOUNTED --delete --max-delete 3 {dir} {url}"),
    )
    .ok()
    .stdout_has("deleted 3 object(s) whose file is gone");
    let after = listing(&s3);
    assert!(
        after.contains("2-chunk.rdb.replaced-"),
        "a .replaced- copy was deleted: {after}"
    );
    assert!(!after.contains("1-chunk.rdb "), "{after}");
}

#[test]
fn s3_sync_dry_run_changes_nothing() {
    let (s3, d, dir, url) = sync_site();
    sync(&s3, &format!("{dir} {url}")).ok();
    std::fs::write(d.path().join("2-chunk.rdb"), b"groomed").unwrap();
    std::fs::write(d.path().join("4-new.rdb"), b"new").unwrap();
    std::fs::remove_file(d.path().join("1-chunk.rdb")).unwrap();
    let (keys, files) = (listing(&s3), tree(d.path()));
    sync(
        &s3,
        &format!("-n --checksum --delete --max-delete 1 {dir} {url}"),
    )
    .ok()
    .stdout_has("upload  4-new.rdb (3 bytes)")
    .stdout_has("replace 2-chunk.rdb (7 bytes)")
    .stdout_has("keep    groom/deep/3-chunk.rdb")
    .stdout_has("would delete 1-chunk.rdb")
    .stdout_has("dry run: nothing was changed");
    assert_eq!(listing(&s3), keys);
    assert_eq!(tree(d.path()), files);
}

/// The window: with uploads slowed by a proxy, no file starts after the deadline and the
/// running one finishes (status 4, the rest left); past the hard limit the running upload
/// is aborted (no pending upload, no object) and the next run sends it.
#[test]
fn s3_sync_window_deadline_and_hard_limit() {
    let s3 = S3::start();
    let slow = Proxy::start(
        s3.addr,
        Faults {
            delay: Duration::from_millis(100),
            ..Faults::NONE
        },
        27,
    );
    let d = tmp();
    let mut rng = Rng::new(5);
    for i in 0..4 {
        std::fs::write(d.path().join(format!("{i}.rdb")), rng.bytes(1_200_000)).unwrap();
    }
    let (dir, url) = (d.path().display().to_string(), s3.url("set"));
    let out = sync_at(&s3, &slow.endpoint, &format!("-j 1 --for 1s {dir} {url}"));
    out.code(4)
        .stdout_has("not started before the deadline")
        .stdout_has("result: INCOMPLETE");
    let text = out.stdout_str();
    let uploaded = text.matches("uploaded ").count();
    assert!((1..4).contains(&uploaded), "{text}");
    // The hard limit cuts a 20 MiB multipart upload.
    std::fs::write(d.path().join("9-big.rdb"), rng.bytes(20 << 20)).unwrap();
    let out = sync_at(
        &s3,
        &slow.endpoint,
        &format!("-j 4 --for 1s --hard-limit 1s {dir} {url}"),
    );
    out.code(4)
        .stdout_has("left    9-big.rdb: cut (the hard limit): s3-mput: ");
    s3.assert_no_pending_uploads();
    assert!(s3.get("set/9-big.rdb").is_none());
    sync(&s3, &format!("{dir} {url}"))
        .ok()
        .stdout_has("0 left, 0 failed");
    assert_eq!(
        s3.get("set/9-big.rdb").unwrap(),
        std::fs::read(d.path().join("9-big.rdb")).unwrap()
    );
}

#[test]
fn s3_sync_lock_and_jitter() {
    if !has("flock") {
        return skip("no flock(1) here");
    }
    let s3 = S3::start();
    let d = tmp();
    backup_set(d.path());
    // The lock file may sit in DIR: it is never sent.
    let lock = d.path().join("groom.lock");
    let (dir, url) = (d.path().display().to_string(), s3.url("set"));
    let mut groom = hold_lock(&lock, 3);
    let l = lock.display();
    sync(&s3, &format!("--lock {l} {dir} {url}"))
        .ok()
        .one_line_with("is held by another job: nothing done");
    assert_eq!(listing(&s3), "");
    sync(&s3, &format!("--lock {l} --wait-lock 30s {dir} {url}"))
        .ok()
        .stdout_has("4 uploaded");
    groom.wait().unwrap();
    // The jitter is at most --jitter, and never past the deadline.
    for (args, max) in [("--jitter 2s", 2.0), ("--jitter 1h --for 1s", 1.0)] {
        let out = sync(&s3, &format!("{args} {dir} {url}"));
        let text = out.ok().stdout_str();
        if let Some(rest) = text.split("(after a jitter of ").nth(1) {
            let s: f64 = rest.split(' ').next().unwrap().parse().unwrap();
            assert!(s <= max, "{args}: {text}");
        }
    }
}

/// sol-pull keeps every version (a versioned bucket on moto and Ceph RGW; on s3s-fs the
/// versions a run sees), never overwrites one, logs deletions, and --as-of gives a tree as
/// it was.
#[test]
fn s3_pull_keeps_every_version_logs_deletions_and_gives_a_past_tree() {
    let (s3, d, dir, _) = pull_site(true);
    let (url, dd) = (s3.url("app"), dir.display().to_string());
    s3.mput("app/a.txt", b"one", &[]).ok();
    s3.mput("app/d/b.txt", b"bee", &[]).ok();
    pull(&s3, &format!("{url} {dd}"))
        .ok()
        .stdout_has("fetched 2 version(s), 6 bytes");
    let t1 = now_utc();
    std::thread::sleep(Duration::from_millis(1100));
    s3.mput("app/a.txt", b"two", &["--overwrite"]).ok();
    s3.tool("s3-ls")
        .args(["--delete-versions"])
        .arg(s3.url("app/"))
        .stdin("app/d/b.txt\tnull\n")
        .run()
        .ok();
    let first = tree(&dir);
    let out = pull(&s3, &format!("{url} {dd}"));
    out.ok()
        .stdout_has("fetched 1 version(s), 3 bytes")
        .stdout_has("logged 1 deletion(s) or return(s)");
    for f in &first {
        assert!(tree(&dir).contains(f), "{} changed", f.0);
    }
    let files = tree(&dir);
    let a: Vec<&[u8]> = files
        .iter()
        .filter(|f| f.0.starts_with("a.txt~"))
        .map(|f| &f.1[..])
        .collect();
    assert_eq!(a.len(), 2, "{files:?}");
    assert!(a.contains(&&b"one"[..]) && a.contains(&&b"two"[..]));
    let log = std::fs::read_to_string(dir.join(".sol-pull/deletions.log")).unwrap();
    assert!(log.contains("\td/b.txt\t"), "{log}");
    pull(&s3, &format!("{url} {dd}"))
        .ok()
        .stdout_has("fetched 0 version(s)")
        .stdout_has("logged 0 deletion(s) or return(s)");
    // The tree as it was at t1, and as it is.
    let past = d.path().join("past");
    pull(&s3, &format!("--as-of {t1} {} {url} {dd}", past.display())).ok();
    let got: Vec<(String, Vec<u8>)> = tree(&past).into_iter().map(|(p, b, _)| (p, b)).collect();
    assert_eq!(
        got,
        [
            ("a.txt".into(), b"one".to_vec()),
            ("d/b.txt".into(), b"bee".to_vec())
        ]
    );
    let now = d.path().join("now");
    pull(
        &s3,
        &format!("--as-of {} {} {url} {dd}", now_utc(), now.display()),
    )
    .ok();
    let got: Vec<(String, Vec<u8>)> = tree(&now).into_iter().map(|(p, b, _)| (p, b)).collect();
    assert_eq!(got, [("a.txt".into(), b"two".to_vec())]);
    pull(&s3, &format!("--as-of {t1} {dd}/x {url} {dd}"))
        .code(2)
        .stderr_has("never written into");
}

fn now_utc() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    now_from(t.as_secs() as i64)
}

/// Keys that would land outside DIR, or in its state, are refused with a line each and
/// never written; a dry run changes nothing; a second run at once does nothing.
#[test]
fn s3_pull_refuses_hostile_keys_and_a_dry_run_changes_nothing() {
    let (s3, d, dir, _) = pull_site(false);
    let (url, dd) = (s3.url("app"), dir.display().to_string());
    s3.mput("app/ok.txt", b"fine", &[]).ok();
    let hostile = [
        "app/.sol-pull/fetched",
        "app/../escape",
        "app/x//y",
        "app/./dot",
    ];
    let stored: Vec<&str> = hostile
        .iter()
        .copied()
        .filter(|k| s3.mput(k, b"evil", &[]).code == 0)
        .collect();
    assert!(stored.contains(&"app/.sol-pull/fetched"), "{stored:?}");
    let n = tree(d.path()).len();
    pull(&s3, &format!("--dry-run {url} {dd}"))
        .code(1)
        .stdout_has("fetch   ok.txt~");
    assert_eq!(tree(d.path()).len(), n);
    assert!(!dir.exists());
    let out = pull(&s3, &format!("{url} {dd}"));
    out.code(1);
    // What the server kept of each key (s3-local makes app/x//y app/x/y) is judged.
    let listed = s3.ls(&[], "app/").stdout_str();
    let keys: Vec<&str> = listed
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    let bad = |k: &str| k.contains("//") || k.contains("/./") || k.contains("/../");
    for k in keys
        .iter()
        .filter(|k| bad(k) || k.starts_with("app/.sol-pull/"))
    {
        out.stdout_has(&format!("REFUSED {k} (version "));
    }
    out.stdout_has("): it would land in DIR/.sol-pull, sol-pull's own state: never written");
    let outside: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, ["pulled"], "written outside DIR");
    let fetched = std::fs::read_to_string(dir.join(".sol-pull/fetched")).unwrap();
    assert!(
        fetched.lines().any(|l| l.starts_with("ok.txt\t")) && !fetched.contains("evil"),
        "{fetched}"
    );
    // Refused once (refused.log keeps them), though the window still holds them.
    pull(&s3, &format!("--overlap 0s {url} {dd}")).ok();
    if has("flock") {
        let lock = dir.join(".sol-pull/lock");
        let mut other = hold_lock(&lock, 3);
        pull(&s3, &format!("{url} {dd}"))
            .ok()
            .one_line_with("another sol-pull holds");
        other.wait().unwrap();
    }
}

/// An object whose Last-Modified is older than the last run's high-water mark (AWS stamps a
/// multipart upload with its start) is still pulled inside the overlap: a proxy rewrites
/// its Last-Modified in the listing to 10 minutes before the mark. With a 5-minute overlap
/// it is missed, which shows the test can fail.
#[test]
fn s3_pull_overlap_catches_an_upload_stamped_before_the_mark() {
    let (s3, _d, dir, _) = pull_site(false);
    let (url, dd) = (s3.url("app"), dir.display().to_string());
    s3.mput("app/y.txt", b"why", &[]).ok();
    // Every run goes through a proxy that shows y.txt 10 minutes later than it is, so the
    // first run's mark is 10 minutes ahead of x.txt, stored after it.
    let listed = s3.ls(&["--relative"], "app/").stdout_str();
    let y_time = listed.split('\t').nth(2).unwrap().to_string();
    let later = now_from(epoch_of(&y_time) + 600);
    let from: &'static [u8] = Box::leak(y_time.as_bytes()[..19].to_vec().into_boxed_slice());
    let to: &'static [u8] = Box::leak(later.as_bytes()[..19].to_vec().into_boxed_slice());
    let rewrite = Some((from, to));
    let rewriting = Proxy::start(
        s3.addr,
        Faults {
            rewrite,
            ..Faults::NONE
        },
        1,
    );
    let run = |args: &str| {
        let cmd = call("sol-pull", &format!("{args} {url} {dd}"));
        s3.env_at(sh(&cmd), &rewriting.endpoint).run()
    };
    run("").ok().stdout_has("fetched 1 version(s)");
    let mark = std::fs::read_to_string(dir.join(".sol-pull/high-water")).unwrap();
    assert_eq!(mark.trim(), later, "the proxy did not move the mark");
    std::thread::sleep(Duration::from_millis(1100));
    s3.mput("app/x.txt", b"late", &[]).ok();
    let missed = run("--dry-run --overlap 5m").stdout_str();
    assert!(
        !missed.contains("x.txt~"),
        "a 5-minute overlap should miss it: {missed}"
    );
    run("")
        .ok()
        .stdout_has("fetched 1 version(s)")
        .stdout_has("fetched x.txt~");
}

fn now_from(secs: i64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// SIGTERM during the jitter (or any time before the deletions) deletes nothing and the run
/// says INTERRUPTED, status 130 (found by a helper: it went on, deleted and said ok).
#[test]
fn s3_sync_a_signal_stops_the_run_before_any_deletion() {
    let (s3, d, dir, url) = sync_site();
    sync(&s3, &format!("{dir} {url}")).ok();
    std::fs::remove_file(d.path().join("2-chunk.rdb")).unwrap();
    let before = listing(&s3);
    let child = s3
        .command("sol-jobs")
        .env("PATH", path_with_tools())
        .args([
            "sync",
            "--jitter",
            "1h",
            "--delete",
            "--max-delete",
            "5",
            &dir,
            &url,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("sol-sync: interrupted before it began: nothing done"),
        "{err}"
    );
    assert_eq!(listing(&s3), before);
}

/// One entry that cannot be read (a path longer than PATH_MAX) is a FAILED line; the other
/// files are still sent, and no deletion is made while a file failed. A name with a newline
/// cannot forge a report line.
#[test]
fn s3_sync_an_unreadable_entry_fails_alone() {
    let s3 = S3::start();
    let d = tmp();
    backup_set(d.path());
    let deep = format!(
        "cd '{}' && for i in $(seq 120); do mkdir {n} && cd {n}; done && echo deep > f",
        d.path().display(),
        n = "d".repeat(40)
    );
    sh(&deep).run().ok();
    std::fs::write(d.path().join("x\nuploaded forged.rdb (9 bytes)"), b"odd").unwrap();
    let (dir, url) = (d.path().display().to_string(), s3.url("set"));
    let out = sync(&s3, &format!("--delete --max-delete 5 {dir} {url}"));
    out.code(1)
        .stdout_has("FAILED  dddd")
        .stdout_has("File name too long");
    let text = out.stdout_str();
    assert!(
        !text.lines().any(|l| l == "uploaded forged.rdb (9 bytes)"),
        "{text}"
    );
    assert!(text.contains("x\\nuploaded forged.rdb"), "{text}");
    for rel in ["1-chunk.rdb", "2-chunk.rdb", "groom/deep/3-chunk.rdb"] {
        assert!(
            s3.get(&format!("set/{rel}")).is_some(),
            "{rel} not sent: {text}"
        );
    }
}

/// Operands that could not work are usage errors before any work: --require outside DIR, an
/// archive class (a changed file's object could not be kept), a window too long, a bad
/// --until; a dry run applies the deletion guards as the run does.
#[test]
fn s3_sync_refuses_what_cannot_work_and_the_dry_run_applies_the_guards() {
    let (s3, d, dir, url) = sync_site();
    for (args, says) in [
        ("--require /etc/passwd", "a path inside DIR"),
        ("--require ../MOUNTED", "a path inside DIR"),
        (
            "--storage-class DEEP_ARCHIVE",
            "cannot be read without a thaw",
        ),
        ("--for 2562047788015215h", "too long a time"),
        ("--until +5:30", "expected HH:MM"),
        ("--until 24:00", "expected HH:MM"),
    ] {
        sync(&s3, &format!("{args} {dir} {url}"))
            .code(2)
            .stderr_has(says);
    }
    assert_eq!(listing(&s3), "");
    sync(&s3, &format!("{dir} {url}")).ok();
    std::fs::remove_file(d.path().join("2-chunk.rdb")).unwrap();
    sync(&s3, &format!("-n --delete --max-delete 0 {dir} {url}"))
        .ok()
        .stdout_has("deletions REFUSED: 1 objects to delete, more than --max-delete 0")
        .stdout_has("no file   2-chunk.rdb");
}

/// A key deleted and back again is in the tree as of now: undeleted by removing its delete
/// marker (a bucket with versions), or written again (s3-local). Two versions of one second
/// are ordered as the listing orders them.
#[test]
fn s3_pull_a_key_deleted_and_back_is_in_the_tree_again() {
    let (s3, d, dir, versioned) = pull_site(true);
    let (url, dd) = (s3.url("app"), dir.display().to_string());
    s3.mput("app/doc", b"the doc", &[]).ok();
    pull(&s3, &format!("{url} {dd}")).ok();
    s3.tool("s3-ls")
        .args(["--delete-versions"])
        .arg(s3.url("app/"))
        .stdin("app/doc\tnull\n")
        .run()
        .ok();
    pull(&s3, &format!("{url} {dd}"))
        .ok()
        .stdout_has("logged 1 deletion(s)");
    if versioned {
        let listed = s3.ls(&["--versions"], "app/").stdout_str();
        let marker = listed.lines().find(|l| l.ends_with("\tmarker")).unwrap();
        let id = marker.split('\t').nth(1).unwrap();
        s3.tool("s3-ls")
            .args(["--delete-versions"])
            .arg(s3.url("app/"))
            .stdin(format!("app/doc\t{id}\n"))
            .run()
            .ok();
    } else {
        std::thread::sleep(Duration::from_millis(1100));
        s3.mput("app/doc", b"the doc", &[]).ok();
    }
    pull(&s3, &format!("{url} {dd}"))
        .ok()
        .stdout_has("upstream: doc (back in the listing)");
    let now = d.path().join("now");
    pull(
        &s3,
        &format!("--as-of 2100-01-01 {} {url} {dd}", now.display()),
    )
    .ok();
    assert_eq!(std::fs::read(now.join("doc")).unwrap(), b"the doc");
    // Two versions in one second: the newer is the tree's.
    if versioned {
        s3.mput("app/ss", b"OLD", &[]).ok();
        s3.mput("app/ss", b"NEW", &["--overwrite"]).ok();
        pull(&s3, &format!("{url} {dd}")).ok();
        let later = d.path().join("later");
        pull(
            &s3,
            &format!("--as-of 2100-01-01 {} {url} {dd}", later.display()),
        )
        .ok();
        assert_eq!(std::fs::read(later.join("ss")).unwrap(), b"NEW");
    }
}

/// A damaged state stops the run in one line (never read as empty); DIR pulls one prefix;
/// --as-of never writes into DIR (also through .. of a path that does not exist yet) and
/// takes only times that exist.
#[test]
fn s3_pull_guards_its_state_and_its_tree() {
    let (s3, d, dir, _) = pull_site(false);
    let (url, dd) = (s3.url("app"), dir.display().to_string());
    s3.mput("app/a.txt", b"a", &[]).ok();
    pull(&s3, &format!("{url} {dd}")).ok();
    pull(&s3, &format!("{} {dd}", s3.url("other")))
        .code(2)
        .stderr_has(&format!("pulls {url}"));
    let inside = format!("{}/../pulled/new", dd);
    for (t, dest, says) in [
        ("2100-01-01", inside.as_str(), "never written into"),
        ("2026-02-30", "/tmp/nowhere-sol-test", "expected a UTC time"),
        (
            "2026-12-01T00:00:00",
            "/tmp/nowhere-sol-test",
            "expected a UTC time",
        ),
    ] {
        pull(&s3, &format!("--as-of {t} {dest} {url} {dd}"))
            .code(2)
            .stderr_has(says);
    }
    assert!(!dir.join("new").exists());
    let fetched = dir.join(".sol-pull/fetched");
    let mut text = std::fs::read(&fetched).unwrap();
    text.extend_from_slice(b"\xff garbage\n");
    std::fs::write(&fetched, &text).unwrap();
    pull(&s3, &format!("{url} {dd}"))
        .code(1)
        .one_line_with("the state is damaged; nothing done");
    let out = d.path().join("out");
    pull(
        &s3,
        &format!("--as-of 2100-01-01 {} {url} {dd}", out.display()),
    )
    .code(1)
    .one_line_with("the state is damaged; nothing done");
}

/// On s3-local, whose listing has no ETags and whose Last-Modified is a file's mtime, an
/// overwrite in the same second is still a new version (its size tells it).
#[test]
fn s3_pull_a_same_second_overwrite_on_s3_local() {
    let s3 = S3::start();
    let Some(root) = s3.root.clone() else {
        return skip("needs the in-process s3-local, whose Last-Modified is the file's mtime");
    };
    let d = tmp();
    let dir = d.path().join("pulled");
    let (url, dd) = (s3.url("app"), dir.display().to_string());
    s3.mput("app/k", b"v1", &[]).ok();
    let file = root.join(&s3.bucket).join("app/k");
    let t = filetime::FileTime::from_unix_time(1_796_083_200, 0);
    filetime::set_file_mtime(&file, t).unwrap();
    pull(&s3, &format!("{url} {dd}")).ok();
    s3.mput("app/k", b"v2, different and longer", &["--overwrite"])
        .ok();
    let t = filetime::FileTime::from_unix_time(1_796_083_200, 700_000_000);
    filetime::set_file_mtime(&file, t).unwrap();
    pull(&s3, &format!("{url} {dd}"))
        .ok()
        .stdout_has("fetched 1 version(s), 24 bytes");
}

/// An object another tool stored in parts without s3-mput's sol-part-size (rclone's chunks)
/// is kept as .replaced- all the same, and replaced; a .replaced- copy of the same ETag
/// left by a run that was cut is used, not made twice; a name that is a link now keeps its
/// object under --delete; a dry run makes no lock file (found by a helper).
#[test]
fn s3_sync_replaces_another_tools_multipart_object_and_keeps_it_once() {
    let (s3, d, dir, url) = sync_site();
    let old: Vec<u8> = Rng::new(8).bytes(6 << 20);
    let key = "set/1-chunk.rdb".to_string();
    let part2 = old[5 << 20..].to_vec();
    let part1 = old[..5 << 20].to_vec();
    s3.sdk(|c, b| async move {
        let up = c
            .create_multipart_upload()
            .bucket(&b)
            .key(&key)
            .metadata("mtime", "1.0");
        let id = up.send().await.unwrap().upload_id.unwrap();
        let mut parts = Vec::new();
        for (n, body) in [(1, part1), (2, part2)] {
            let p = c
                .upload_part()
                .bucket(&b)
                .key(&key)
                .upload_id(&id)
                .part_number(n);
            let etag = p.body(body.into()).send().await.unwrap().e_tag.unwrap();
            let done = aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n)
                .e_tag(etag);
            parts.push(done.build());
        }
        let all = aws_sdk_s3::types::CompletedMultipartUpload::builder().set_parts(Some(parts));
        let fin = c
            .complete_multipart_upload()
            .bucket(&b)
            .key(&key)
            .upload_id(&id);
        // moto answers with a root the SDK does not read: the object is there all the same
        // (the HEAD below).
        let _ = fin.multipart_upload(all.build()).send().await;
    });
    assert!(size_and_etag(&s3, "set/1-chunk.rdb").ends_with("-2"));
    let lock = d.path().join("new.lock");
    sync(&s3, &format!("-n --lock {} {dir} {url}", lock.display()))
        .ok()
        .stdout_has("replace 1-chunk.rdb");
    assert!(!lock.exists(), "a dry run made the lock file");
    let out = sync(&s3, &format!("{dir} {url}"));
    out.ok().stdout_has("replaced 1-chunk.rdb");
    let keys = listing(&s3);
    let copy = keys
        .lines()
        .find(|l| l.starts_with("1-chunk.rdb.replaced-"))
        .unwrap();
    let copy = copy.split(' ').next().unwrap().to_string();
    assert_eq!(s3.get(&format!("set/{copy}")), Some(old));
    // A cut run had kept the stored object already: that copy is used.
    std::fs::write(d.path().join("1-chunk.rdb"), b"groomed again").unwrap();
    let stored = s3.get("set/1-chunk.rdb").unwrap();
    let etag = size_and_etag(&s3, "set/1-chunk.rdb");
    let earlier = "set/1-chunk.rdb.replaced-20260101T000000Z";
    s3.mput(earlier, &stored, &[]).ok();
    assert_eq!(size_and_etag(&s3, earlier), etag);
    sync(&s3, &format!("{dir} {url}"))
        .ok()
        .stdout_has("the old one kept as 1-chunk.rdb.replaced-20260101T000000Z");
    assert_eq!(listing(&s3).matches("1-chunk.rdb.replaced-").count(), 2);
    // A file that is a link now: skipped, and its object stays under --delete.
    std::fs::remove_file(d.path().join("2-chunk.rdb")).unwrap();
    std::os::unix::fs::symlink("1-chunk.rdb", d.path().join("2-chunk.rdb")).unwrap();
    sync(&s3, &format!("--delete --max-delete 5 {dir} {url}")).ok();
    assert!(s3.get("set/2-chunk.rdb").is_some());
}

fn size_and_etag(s3: &S3, key: &str) -> String {
    let head = s3.tool("s3-ls").arg("--head").arg(s3.url(key)).run();
    let line = head.ok().stdout_str();
    let f: Vec<&str> = line.trim_end().split('\t').collect();
    format!("{} {}", f[1], f[3])
}

/// A run waits for DIR's lock before it lists (a held lock: one line, status 0, even with the
/// server gone); --as-of and a pull through another endpoint are held to the URL and the
/// server DIR pulls; a fetched-list line that names a path outside DIR is damage; a key too
/// long for a file name is refused once (found by a helper).
#[test]
fn s3_pull_locks_before_listing_and_holds_dir_to_its_source() {
    let (s3, d, dir, _) = pull_site(false);
    let (url, dd) = (s3.url("app"), dir.display().to_string());
    s3.mput("app/a.txt", b"a", &[]).ok();
    let long = format!("app/{}", "n".repeat(230));
    s3.mput(&long, b"long", &[]).ok();
    let out = pull(&s3, &format!("{url} {dd}"));
    out.code(1).stdout_has("a name over 200 bytes");
    pull(&s3, &format!("{url} {dd}")).ok();
    if has("flock") {
        // An s3-ls that fails: a run that listed before it waited for the lock says so.
        let fakes = d.path().join("fakes");
        crate::scripts::fake(
            &fakes,
            "s3-ls",
            "echo 's3-ls: listed before the lock' >&2; exit 9",
        );
        let mut other = hold_lock(&dir.join(".sol-pull/lock"), 3);
        let cmd = crate::scripts::faked(&fakes, &call("sol-pull", &format!("{url} {dd}")));
        s3.env(sh(&cmd))
            .run()
            .ok()
            .one_line_with("another sol-pull holds");
        other.wait().unwrap();
    }
    let other = s3.url("elsewhere");
    let past = d.path().join("past");
    pull(
        &s3,
        &format!("--as-of 2100-01-01 {} {other} {dd}", past.display()),
    )
    .code(2)
    .stderr_has("pulls ");
    let port = s3.endpoint.rsplit(':').next().unwrap().to_string();
    let moved = s3.env_at(
        sh(&call("sol-pull", &format!("{url} {dd}"))),
        &format!("http://localhost:{port}"),
    );
    moved.run().code(2).stderr_has("pulls ");
    let fetched = dir.join(".sol-pull/fetched");
    let mut text = std::fs::read_to_string(&fetched).unwrap();
    text.push_str("zz\tnull\t\t3\t2026-12-06T20:50:19Z\t0\t../../../etc/hostname\n");
    std::fs::write(&fetched, text).unwrap();
    pull(
        &s3,
        &format!("--as-of 2100-01-01 {} {url} {dd}", past.display()),
    )
    .code(1)
    .one_line_with("the state is damaged");
}

/// An object written again while it is fetched, where nothing pins the version (a server
/// that lists no ETags and keeps no versions), is never kept under the old version's name.
#[test]
fn s3_pull_an_object_written_again_during_its_fetch_is_not_kept_as_the_old_one() {
    let (s3, d, dir, _) = pull_site(false);
    let (url, dd) = (s3.url("app"), dir.display().to_string());
    s3.mput("app/k", b"old-content", &[]).ok();
    // An s3-mget that lets the object be written again first.
    let fakes = d.path().join("fakes");
    let body = format!(
        "printf 'new content, longer' | '{}' --overwrite '{}' || exit 9\nexec '{}' \"$@\"",
        bin("s3-mput").display(),
        s3.url("app/k"),
        bin("s3-mget").display()
    );
    crate::scripts::fake(&fakes, "s3-mget", &body);
    let cmd = crate::scripts::faked(&fakes, &call("sol-pull", &format!("{url} {dd}")));
    let out = s3.env(sh(&cmd)).run();
    for f in tree(&dir) {
        if f.0.starts_with("k~") {
            assert_eq!(f.1, b"old-content", "{} holds another version", f.0);
        }
    }
    if server() == "s3s-fs" {
        out.code(1).stdout_has("written again since");
    }
}

/// The deadline the report's head gives (`window: no file starts after TIME; ...`), in
/// seconds since the epoch.
fn deadline_of(report: &str) -> i64 {
    let at = report
        .split("no file starts after ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .unwrap_or_else(|| panic!("no window in the report:\n{report}"));
    epoch_of(at)
}

fn epoch_now() -> i64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    t.unwrap().as_secs() as i64
}

/// HH:MM of SECS (UTC).
fn hhmm(secs: i64) -> String {
    let m = secs.rem_euclid(86_400) / 60;
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// --until HH:MM is the next such time on the local clock. A grooming job that holds the
/// lock until past it: no file is started (each "not started before the deadline"),
/// nothing is stored, status 4, and the head gives that deadline (found by this test: it
/// gave the time the report was made). A time an hour ago is tomorrow's: the run
/// completes; one 3 hours ahead completes too. TZ, an offset with seconds, puts a local
/// minute a few seconds ahead, so the test waits seconds, not a minute; a run that had not
/// read its deadline in time is tried again with more room.
#[test]
fn s3_sync_until_starts_no_file_once_passed_and_counts_to_the_next_such_time() {
    let (s3, d, dir, url) = sync_site();
    let locks = tmp();
    let lock = locks.path().join("groom.lock");
    let mut closed = None;
    for room in [5, 20, 60] {
        let deadline = epoch_now() + room;
        let off = (60 - deadline % 60) % 60;
        let held = std::fs::File::create(&lock).unwrap();
        // SAFETY: flock on a descriptor we own.
        assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
        let child = s3
            .command("sol-jobs")
            .env("PATH", path_with_tools())
            .env("TZ", format!("SOL-0:00:{off:02}"))
            .args(["sync", "--until", &hhmm(deadline + off), "--lock"])
            .arg(&lock)
            .args(["--wait-lock", "10m", &dir, &url])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // It opens the lock file once it has read its deadline.
        let fds = format!("/proc/{}/fd", child.id());
        let opened = || {
            std::fs::read_dir(&fds)
                .into_iter()
                .flatten()
                .any(|e| std::fs::read_link(e.unwrap().path()).is_ok_and(|p| p == lock))
        };
        let mut waited = 0;
        while !opened() {
            assert!(waited < 1200, "sol-sync never opened {}", lock.display());
            std::thread::sleep(Duration::from_millis(50));
            waited += 1;
        }
        if epoch_now() >= deadline {
            // SAFETY: a signal to our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            child.wait_with_output().unwrap();
            continue;
        }
        while epoch_now() < deadline + 3 {
            std::thread::sleep(Duration::from_millis(200));
        }
        drop(held);
        closed = Some((deadline, child.wait_with_output().unwrap()));
        break;
    }
    let (deadline, out) = closed.expect("sol-sync never read its deadline in time");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{text}{err}");
    for rel in [
        "1-chunk.rdb",
        "2-chunk.rdb",
        "MOUNTED",
        "groom/deep/3-chunk.rdb",
    ] {
        let line = format!("left    {rel}: not started before the deadline");
        assert!(text.contains(&line), "{text}");
    }
    assert!(
        text.contains("files 4: 0 uploaded, 0 replaced, 0 unchanged, 4 left, 0 failed")
            && text.contains("result: INCOMPLETE: 4 file(s) left for the next run"),
        "{text}"
    );
    let shown = deadline_of(&text);
    assert!((deadline - 1..=deadline + 1).contains(&shown), "{text}");
    assert_eq!(listing(&s3), "");
    s3.assert_no_pending_uploads();
    // An hour ago is tomorrow's: 23 hours to go; 3 hours ahead is today's (both on a clock
    // without summer time, the day wrapping at midnight UTC).
    let utc = |args: &str| s3.env(sh(&call("sol-sync", args)).env("TZ", "UTC0")).run();
    let now = epoch_now();
    let out = utc(&format!("--until {} {dir} {url}", hhmm(now - 3600)));
    out.ok()
        .stdout_has("files 4: 4 uploaded, 0 replaced, 0 unchanged, 0 left, 0 failed")
        .stdout_has("result: ok");
    let tomorrow = (now - 3600) / 60 * 60 + 86_400;
    let shown = deadline_of(&out.stdout_str());
    assert!((tomorrow - 1..=tomorrow + 1).contains(&shown), "{shown}");
    std::fs::write(d.path().join("4-new.rdb"), b"new").unwrap();
    let now = epoch_now();
    let out = utc(&format!("--until {} {dir} {url}", hhmm(now + 3 * 3600)));
    out.ok()
        .stdout_has("files 5: 1 uploaded, 0 replaced, 4 unchanged, 0 left, 0 failed")
        .stdout_has("result: ok");
    let today = (now + 3 * 3600) / 60 * 60;
    let shown = deadline_of(&out.stdout_str());
    assert!((today - 1..=today + 1).contains(&shown), "{shown}");
}

/// Two versions of one key written in the same second are kept as KEY~STAMP~VERSIONID each
/// (a bucket with versions), each file holding its version's bytes; a key whose versions
/// fell in two seconds keeps plain KEY~STAMP names.
#[test]
fn s3_pull_two_versions_of_one_second_are_named_by_their_version_ids() {
    let (s3, _d, dir, versioned) = pull_site(true);
    if !versioned {
        return skip("needs a bucket with versions (s3s-fs keeps none)");
    }
    let (url, dd) = (s3.url("app"), dir.display().to_string());
    // Written again until a pair lands in one second.
    let mut same = None;
    for i in 0..20 {
        let key = format!("app/ss{i}");
        s3.mput(&key, b"OLD", &[]).ok();
        s3.mput(&key, b"NEW, longer", &["--overwrite"]).ok();
        let listed = s3.ls(&["--versions"], &key).stdout_str();
        // KEY, VERSION, SIZE, LAST-MODIFIED, ETAG, KIND
        let v: Vec<Vec<String>> = (listed.lines())
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect();
        assert_eq!(v.len(), 2, "{listed}");
        if v[0][3] == v[1][3] {
            same = Some((i, v));
            break;
        }
    }
    let (i, v) = same.expect("no two writes in one second in 20 tries");
    pull(&s3, &format!("{url} {dd}"))
        .ok()
        .stdout_has(&format!("fetched {} version(s)", 2 * (i + 1)));
    let stamp = v[0][3].replace(['-', ':'], "");
    let mut want: Vec<(String, Vec<u8>)> = v
        .iter()
        .map(|f| {
            let bytes = if f[2] == "3" {
                &b"OLD"[..]
            } else {
                b"NEW, longer"
            };
            (format!("ss{i}~{stamp}~{}", f[1]), bytes.to_vec())
        })
        .collect();
    want.sort();
    let got: Vec<(String, Vec<u8>)> = tree(&dir)
        .into_iter()
        .filter(|f| f.0.starts_with(&format!("ss{i}~")))
        .map(|(p, b, _)| (p, b))
        .collect();
    assert_eq!(got, want);
    for j in 0..i {
        let names: Vec<String> = (tree(&dir).into_iter())
            .map(|f| f.0)
            .filter(|p| p.starts_with(&format!("ss{j}~")))
            .collect();
        assert!(
            names.iter().all(|n| n.matches('~').count() == 1),
            "{names:?}"
        );
    }
}

/// A key with a leading / below the prefix (PREFIX//ABSOLUTE/PATH, which joined to DIR as a
/// path would replace it) is refused with one REFUSED line saying why, status 1; nothing is
/// written at that path or anywhere outside DIR, and the next run does not refuse it again.
/// s3-local makes such a key another (app/tmp/...): there a proxy shows it in the listing.
#[test]
fn s3_pull_refuses_a_key_with_a_leading_slash_below_the_prefix() {
    let (s3, d, dir, _) = pull_site(false);
    let (url, dd) = (s3.url("app"), dir.display().to_string());
    let target = d.path().join("outside/abs");
    let rest = target.display().to_string()[1..].to_string();
    let key = format!("app//{rest}");
    s3.mput("app/ok.txt", b"fine", &[]).ok();
    let mut endpoint = s3.endpoint.clone();
    let mut _proxy = None;
    if server() == "s3s-fs" {
        s3.mput(&format!("app/X{rest}"), b"evil", &[]).ok();
        let from: &'static [u8] = format!("app/X{rest}").into_bytes().leak();
        let to: &'static [u8] = key.clone().into_bytes().leak();
        let rewrite = Some((from, to));
        let p = Proxy::start(
            s3.addr,
            Faults {
                rewrite,
                ..Faults::NONE
            },
            3,
        );
        endpoint = p.endpoint.clone();
        _proxy = Some(p);
    } else {
        s3.mput(&key, b"evil", &[]).ok();
    }
    let pull = |args: &str| {
        let cmd = call("sol-pull", &format!("{args} {url} {dd}"));
        s3.env_at(sh(&cmd), &endpoint).run()
    };
    let listed = s3
        .env_at(s3.tool("s3-ls"), &endpoint)
        .arg(s3.url("app/"))
        .run();
    assert!(
        listed.ok().stdout_str().contains(&format!("{key}\t")),
        "{}",
        listed.stdout_str()
    );
    let out = pull("");
    let text = out.stdout_str();
    let refused: Vec<&str> = text.lines().filter(|l| l.contains("REFUSED")).collect();
    assert_eq!(refused.len(), 1, "{text}");
    assert!(
        refused[0].starts_with(&format!("REFUSED {key} (version "))
            && refused[0].contains("): a leading /: never written"),
        "{text}"
    );
    out.code(1).stdout_has("fetched 1 version(s)");
    pull("").ok().stdout_has("fetched 0 version(s)");
    assert!(!d.path().join("outside").exists(), "written outside DIR");
    let outside: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, ["pulled"], "written outside DIR");
}

/// A FIFO and a socket in DIR are skipped with a line each, never opened (reading a FIFO
/// would hang the run: `timeout` turns that into a failure); the regular files are sent and
/// the run is ok. An object whose name is a FIFO now stays under --delete.
#[test]
fn s3_sync_skips_fifos_and_sockets_and_sends_the_rest() {
    let (s3, d, dir, url) = sync_site();
    s3.mput("set/groom/pipe", b"was a file", &[]).ok();
    let fifo = d.path().join("groom/pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success());
    let _sock = std::os::unix::net::UnixListener::bind(d.path().join("sock")).unwrap();
    let cmd = call("sol-sync", &format!("--delete --max-delete 5 {dir} {url}"));
    let out = s3.env(sh(&format!("timeout 300 {cmd}"))).run();
    out.ok()
        .stdout_has("skipped groom/pipe (special file): not a regular file")
        .stdout_has("skipped sock (special file): not a regular file")
        .stdout_has("skipped link.rdb (symbolic link): not a regular file")
        .stdout_has("files 4: 4 uploaded, 0 replaced, 0 unchanged, 0 left, 0 failed")
        .stdout_has("result: ok");
    let keys = listing(&s3);
    let names: Vec<&str> = keys.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "1-chunk.rdb",
            "2-chunk.rdb",
            "MOUNTED",
            "groom/deep/3-chunk.rdb",
            "groom/pipe"
        ]
    );
    assert_eq!(
        s3.get("set/groom/pipe").as_deref(),
        Some(&b"was a file"[..])
    );
}
