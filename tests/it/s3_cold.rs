//! Cold storage (issue 26): sol-backup --storage-class, s3-mget on an archived object,
//! s3-ls --classes and --thaw, sol-restore --thaw, WAITING (status 5) across runs, and the
//! thaw asked again when a restored copy expired unfetched. The thaw tests run on a moto of
//! their own whose clock a file moves (libfaketime) and whose restores take an hour of that
//! clock (its state manager); the class test runs on the server under test.

use std::fs;
use std::path::{Path, PathBuf};

use crate::s3env::S3;
use crate::scripts::{
    audit, backup, call, fake_after, faked, make_restore, mission, restore, run_sh,
};
use crate::scripts_faults::SkewedMoto;
use crate::util::*;

/// A moto whose clock `move_to` sets, its restores held in progress for an hour of it
/// (`hold`), or served at once.
struct ColdMoto {
    /// Stopped when dropped.
    _moto: SkewedMoto,
    clock: std::path::PathBuf,
    s3: S3,
}

impl ColdMoto {
    fn start(dir: &Path, hold: bool) -> Option<ColdMoto> {
        let clock = dir.join("clock");
        let moto = match SkewedMoto::with_clock_file(&clock) {
            Ok(m) => m,
            Err(why) => {
                skip(&format!("a moto with a movable clock: {why}"));
                return None;
            }
        };
        if hold {
            let set = r#"{"model_name": "s3::keyrestore", "transition": {"progression": "time", "seconds": 3600}}"#;
            sh(&format!(
                "curl -sf -X POST -d '{set}' {}/moto-api/state-manager/set-transition",
                moto.endpoint
            ))
            .run()
            .ok();
        }
        let s3 = S3::at(
            &moto.endpoint,
            "testaccesskey",
            "testsecretkey",
            "cold",
            tmp(),
        );
        Some(ColdMoto {
            _moto: moto,
            clock,
            s3,
        })
    }

    /// moto's clock SECS after the start.
    fn move_to(&self, secs: i64) {
        fs::write(&self.clock, format!("+{secs}s")).unwrap();
    }
}

/// A ColdMoto (`hold`: its restores held in progress) and a mission of two sols in
/// `root`, backed up to s3://cold/s in CLASS with the key `key`.
fn cold_site(dir: &Path, hold: bool, class: &str) -> Option<(ColdMoto, PathBuf, PathBuf)> {
    let m = ColdMoto::start(dir, hold)?;
    let (root, key) = (dir.join("mission"), keyfile(dir, "site.key", 256));
    mission(&root, 2);
    let (k, r, d) = (key.display(), root.display(), m.s3.url("s"));
    backup(
        &m.s3,
        &format!("-k '{k}' --storage-class {class} '{r}'/sol* {d}"),
    )
    .ok()
    .stdout_has("2 sols: 2 ok");
    Some((m, root, key))
}

/// Sol names under DEST that are not hidden (what a restore left).
fn names(dest: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dest)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Items 1, 2, 3 and 5: a backup to GLACIER keeps its index in STANDARD; s3-mget and a
/// plain restore refuse the cold archive, naming the thaw; --thaw asks for each sol; run 1
/// while the restores are held says WAITING, exits 5 and leaves DEST untouched; run 2,
/// once they are served, restores exactly; with the clock past the copies' expiry, run 3
/// asks again (the thaw was asked for) and says so.
#[test]
fn s3_cold_sols_are_thawed_and_restored_across_runs() {
    let t = tmp();
    let Some((m, root, key)) = cold_site(t.path(), true, "GLACIER") else {
        return;
    };
    let s3 = &m.s3;
    let (k, d) = (key.display(), s3.url("s"));
    let ls = s3.ls(&["--classes", "--relative"], "s/").ok().stdout_str();
    for sol in ["sol0001", "sol0002"] {
        let line = |k: &str| {
            ls.lines()
                .find(|l| l.starts_with(k))
                .unwrap_or("")
                .to_string()
        };
        assert!(
            line(&format!("{sol}.tar.gz.sc\t")).ends_with("\tGLACIER\tcold"),
            "{ls}"
        );
        assert!(
            line(&format!("{sol}.index.gz.sc\t")).ends_with("\tSTANDARD\t-"),
            "{ls}"
        );
    }
    s3.tool("s3-mget")
        .arg(s3.url("s/sol0001.tar.gz.sc"))
        .run()
        .code(1)
        .stderr_has("stored in GLACIER and not restored")
        .stderr_has("--thaw");
    // The index is warm: listing a cold sol needs no thaw.
    restore(s3, &format!("-k '{k}' --list {d} sol0001"))
        .ok()
        .stdout_has("sol0001/images/frame.raw");

    let dest = t.path().join("dest");
    let plain = format!("-k '{k}' {d} sol0001 sol0002 '{}'", dest.display());
    restore(s3, &plain)
        .code(1)
        .stdout_has("sol0001          FAILED")
        .stdout_has(&format!("thaw it first (sol-restore --thaw {d} sol0001)"))
        .stderr_has("sol-restore-one: sol0001: in GLACIER and not restored");
    // A price table that cannot be read is a usage error before any work (found by a
    // helper: it was hidden, and the sol failed for another reason).
    restore(s3, &format!("--prices /nonexistent {plain}"))
        .code(2)
        .stderr_has("--prices '/nonexistent'");
    // Expedited does not exist for DEEP_ARCHIVE: that sol fails, the others are asked for
    // and the report is printed (a refusal used to end the run without one).
    let deep = t.path().join("deep");
    fs::create_dir_all(deep.join("sol0003/x")).unwrap();
    fs::write(deep.join("sol0003/x/y"), b"y").unwrap();
    let r3 = deep.display();
    backup(
        s3,
        &format!("-k '{k}' --storage-class DEEP_ARCHIVE '{r3}'/sol0003 {d}"),
    )
    .ok();
    restore(s3, &format!("--thaw --tier Expedited {d} sol0003 nosuch"))
        .code(1)
        .stdout_has("sol0003          FAILED")
        .stdout_has("no Expedited tier for DEEP_ARCHIVE; not asked")
        .stdout_has("nosuch           FAILED")
        .stdout_has("Expedited   n/a")
        .stdout_has("summary: 2 sols; requested now: $0.00")
        .stderr_has("sol-restore: sol0003: in DEEP_ARCHIVE");

    restore(
        s3,
        &format!("--thaw --tier Bulk --days 2 {d} sol0001 sol0002"),
    )
    .ok()
    .stdout_has("Expedited")
    .stdout_has("Bulk        $0.00     GLACIER 5-12h")
    .stdout_has("sol0001          requested")
    .stdout_has("sol0002          requested");
    // Asked again while in progress: no error, and no second request.
    m.move_to(3700);
    restore(s3, &format!("--thaw --tier Standard --days 5 {d} sol0001"))
        .ok()
        .stdout_has("sol0001          in progress");

    // Run 1: still thawing.
    restore(s3, &plain)
        .code(5)
        .stdout_has("sol0001          WAITING")
        .stdout_has("2 waiting")
        .stdout_has("sol0002: in GLACIER: restore in progress");
    assert!(names(&dest).is_empty(), "{:?}", names(&dest));

    // Run 2: served.
    m.move_to(7400);
    restore(s3, &plain).ok().stdout_has("2 sols: 2 ok");
    for sol in ["sol0001", "sol0002"] {
        assert_same_tree(&root.join(sol), &dest.join(sol));
    }

    // Run 3, three days on: the copies expired; the thaw was asked for, so it is again.
    m.move_to(3 * 86_400);
    let later = t.path().join("later");
    // sol0001 is asked again as first asked (Bulk, 2 days): the --thaw made while it was in
    // progress asked nothing, so it recorded nothing (found by a helper).
    restore(s3, &format!("-k '{k}' {d} sol0001 '{}'", later.display()))
        .code(5)
        .stdout_has("sol0001          WAITING")
        .stdout_has("its restored copy expired at ")
        .stdout_has("asked again (Bulk, 2 days");
    assert!(names(&later).is_empty(), "{:?}", names(&later));
    let ls = s3
        .ls(&["--classes", "--relative"], "s/sol0001.tar.gz.sc")
        .stdout_str();
    assert!(!ls.contains("expired"), "{ls}");

    // sol0002 stored again (a new archive, cold): the thaw recorded for the old one is not
    // this archive's, so nothing is paid for unasked (found by a helper).
    let r = root.display();
    backup(
        s3,
        &format!("-k '{k}' --force --storage-class GLACIER '{r}'/sol0002 {d}"),
    )
    .ok();
    restore(s3, &format!("-k '{k}' {d} sol0002 '{}'", later.display()))
        .code(1)
        .stdout_has("sol0002          FAILED")
        .stdout_has("thaw it first");
}

/// Item 3 by make, as cron runs it: `thaw`, then the restore, which while the thaws are
/// served prints the table with WAITING, exits 0 and stamps nothing (`make -q` exits 1),
/// then restores every sol once they are ready; `thaw` then has nothing to do.
#[test]
fn s3_cold_restore_mk_thaw_then_restore_from_cron() {
    let t = tmp();
    let Some((m, root, key)) = cold_site(t.path(), true, "DEEP_ARCHIVE") else {
        return;
    };
    let s3 = &m.s3;
    let (k, d) = (key.display(), s3.url("s"));
    let made = t.path().join("made");
    let mk = make_restore(&format!(
        "FROM={d} DEST='{}' LAST=2 KEY='{k}'",
        made.display()
    ));
    run_sh(s3, &format!("{mk} thaw TIER=Bulk DAYS=3 < /dev/null"))
        .ok()
        .stdout_has("Bulk        $0.00     DEEP_ARCHIVE 48h")
        .stdout_has("Expedited   n/a")
        .stdout_has("sol0002          requested");
    m.move_to(3700);
    run_sh(s3, &format!("{mk} -j 2 < /dev/null"))
        .ok()
        .stdout_has("sol0001          WAITING")
        .stdout_has("2 waiting");
    run_sh(s3, &format!("{mk} -q")).code(1);
    assert!(
        names(&made).iter().all(|n| n.starts_with(".restore")),
        "{:?}",
        names(&made)
    );
    m.move_to(7400);
    run_sh(s3, &format!("{mk} -j 2 < /dev/null"))
        .ok()
        .stdout_has("2 sols: 2 ok");
    run_sh(s3, &format!("{mk} -q")).ok();
    for sol in ["sol0001", "sol0002"] {
        assert_same_tree(&root.join(sol), &made.join(sol));
    }
    run_sh(s3, &format!("{mk} thaw"))
        .ok()
        .stdout_has("nothing to thaw");
    // A sol deleted from DEST since (its stamp stale) is thawed again (found by a helper).
    fs::remove_dir_all(made.join("sol0001")).unwrap();
    run_sh(s3, &format!("{mk} thaw"))
        .ok()
        .stdout_has("sol0001          ready until");
    // TIER is a value, never shell text.
    let evil = t.path().join("evil");
    let value = t.path().join("tier");
    fs::write(&value, format!("Bulk'$(touch {})'", evil.display())).unwrap();
    let tier = format!("TIER=\"$(cat '{}')\"", value.display());
    run_sh(s3, &format!("{mk} thaw {tier}")).code(2);
    assert!(!evil.exists());
}

/// restore.mk: a sol that fails while another waits is a failure (make exits 2, both in
/// the table), and a sol-restore-one that ends without its row is FAILED in the table
/// (found by a helper: make exited 0, and the failed sol was missing from the table).
#[test]
fn s3_cold_restore_mk_failing_beats_waiting() {
    let t = tmp();
    let Some((m, _root, key)) = cold_site(t.path(), true, "GLACIER") else {
        return;
    };
    let s3 = &m.s3;
    let (k, d) = (key.display(), s3.url("s"));
    restore(s3, &format!("--thaw {d} sol0001 sol0002")).ok();
    m.move_to(3700);
    let made = t.path().join("made");
    fs::create_dir_all(&made).unwrap();
    fs::write(made.join("sol0002"), b"a file where the sol goes").unwrap();
    let mk = make_restore(&format!(
        "FROM={d} DEST='{}' SOLS='sol0001 sol0002' KEY='{k}'",
        made.display()
    ));
    run_sh(s3, &format!("{mk} -k < /dev/null"))
        .code(2)
        .stdout_has("sol0001          WAITING")
        .stdout_has("sol0002          FAILED");
    fs::remove_file(made.join("sol0002")).unwrap();
    run_sh(s3, &format!("TMPDIR=/nonexistent {mk} < /dev/null"))
        .code(2)
        .stdout_has("sol0001          FAILED")
        .stdout_has("ended without a row");
}

/// Item 4: coverage works from the listing; the content audit skips cold sols (counted),
/// or with --thaw-budget asks for thaws and audits the sols once they are ready; what must
/// read an old archive (--changed keeping it) fails that sol with the line naming the thaw.
#[test]
fn s3_cold_audit_skips_cold_sols_or_thaws_them_within_a_budget() {
    let t = tmp();
    let Some((m, root, key)) = cold_site(t.path(), false, "GLACIER") else {
        return;
    };
    let s3 = &m.s3;
    let (k, r, d) = (key.display(), root.display(), s3.url("s"));
    audit(s3, &format!("-k '{k}' --budget 1G '{r}' {d}"))
        .ok()
        .stdout_has("coverage: 2 sols in")
        .stdout_has("cold: 2 picked sol(s) in cold storage not read (--thaw-budget asks for thaws): sol0001 (GLACIER, cold)");
    // Room for one archive: one thaw asked for.
    let one = fs::metadata(root.join("sol0001/images/frame.raw"))
        .unwrap()
        .len()
        * 3
        / 2;
    let thaw = format!("-k '{k}' --budget 1G --thaw-budget {one} '{r}' {d}");
    audit(s3, &thaw)
        .ok()
        .stdout_has("cold: 1 sol(s) of which a thaw was asked")
        .stdout_has("cold: 1 picked sol(s) in cold storage not read");
    // (This moto serves a restore at once: its clock stays, so coverage judges no change.)
    audit(s3, &format!("-k '{k}' --budget 1G '{r}' {d}"))
        .ok()
        .stdout_has("sol0001          ok")
        .stdout_has("cold: 1 picked sol(s)");

    // A sol named and not read is not a pass (found by a helper).
    audit(s3, &format!("-k '{k}' --sol sol0002 '{r}' {d}"))
        .code(1)
        .stdout_has("cold: 1 picked sol(s)")
        .stderr_has("sol-audit: not audited, in cold storage: sol0002");
    // A thaw that cannot be asked for (RestoreObject refused) is one line and status 1;
    // the audit and its report go on (found by a helper: the audit stopped).
    let fakes = t.path().join("fakes");
    let refuse = "case \"$*\" in *--thaw*) echo 's3-ls: refused' >&2; exit 1 ;; esac";
    fake_after(&fakes, "s3-ls", refuse);
    let budget = format!("-k '{k}' --sol sol0002 --thaw-budget 1G '{r}' {d}");
    run_sh(s3, &faked(&fakes, &call("sol-audit", &budget)))
        .code(1)
        .stdout_has("coverage: 2 sols")
        .stdout_has("cold: 1 sol(s) whose thaw could not be asked for: sol0002")
        .stderr_has("sol-audit: sol0002: asking for a thaw:");

    fs::write(root.join("sol0002/late.txt"), b"after the backup").unwrap();
    backup(s3, &format!("--changed -k '{k}' '{r}'/sol* {d}"))
        .code(1)
        .stdout_has("sol0002          FAILED")
        .stdout_has("stored in GLACIER and not restored");
}

/// A sol cold at the first target and warm at an --also target is restored from the
/// latter, the first target's state in its notes (found by a helper: it failed, "thaw it
/// first", with a STANDARD copy at hand).
#[test]
fn s3_cold_a_warm_copy_at_another_target_is_restored() {
    let t = tmp();
    let Some((m, root, key)) = cold_site(t.path(), false, "GLACIER") else {
        return;
    };
    let s3 = &m.s3;
    let (k, r, d, w) = (key.display(), root.display(), s3.url("s"), s3.url("w"));
    backup(s3, &format!("-k '{k}' '{r}'/sol0001 {w}")).ok();
    let dest = t.path().join("dest");
    restore(
        s3,
        &format!("-k '{k}' --also {w} {d} sol0001 '{}'", dest.display()),
    )
    .ok()
    .stdout_has("sol0001          ok")
    .stdout_has(&format!("restored from {w}, after:"))
    .stdout_has("in GLACIER and not restored");
    assert_same_tree(&root.join("sol0001"), &dest.join("sol0001"));
}

/// Item 5: a server without archive classes (s3s-fs; Ceph RGW as configured) gives one
/// clear line, judged by the class the object really got; moto keeps GLACIER.
#[test]
fn s3_a_storage_class_the_server_lacks_is_one_line() {
    let s3 = S3::start();
    let moto = std::env::var("SOL_TEST_S3_SERVER").as_deref() == Ok("moto");
    let data = Rng::new(26).bytes(12 << 20);
    for (key, size, part) in [("single", 1000, "8M"), ("multi", 12 << 20, "5M")] {
        let out = s3.mput(
            key,
            &data[..size],
            &["--storage-class", "GLACIER", "--part-size", part],
        );
        if moto {
            out.ok();
            let ls = s3.ls(&["--classes", "--relative"], key).ok().stdout_str();
            assert!(ls.ends_with("\tGLACIER\tcold\n"), "{ls}");
            continue;
        }
        out.code(1).stderr_has("GLACIER");
        assert_eq!(out.stderr.lines().count(), 1, "{key}: {}", out.stderr);
        // Whatever it kept is not called cold.
        let ls = s3.ls(&["--classes", "--relative"], key).ok().stdout_str();
        assert!(!ls.contains("GLACIER"), "{ls}");
    }
    let t = tmp();
    let root = t.path().join("mission");
    mission(&root, 1);
    let key = keyfile(t.path(), "site.key", 256);
    let (k, r, d) = (key.display(), root.display(), s3.url("s"));
    let out = backup(
        &s3,
        &format!("-k '{k}' --storage-class GLACIER '{r}'/sol0001 {d}"),
    );
    if moto {
        out.ok();
    } else {
        out.code(1)
            .stdout_has("sol0001          FAILED")
            .stdout_has("GLACIER");
    }
}
