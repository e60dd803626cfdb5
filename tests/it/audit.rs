//! Issue 13: the audit proves the backups are regular, complete and restorable: coverage on
//! every run, --max-age and --coverage-only (the dead-man's switch), status 4,
//! `sol-backup --changed`, and --budget rotating through every sol.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::scripts::{
    archive_requests, audit, backup, call, restore, rows_for, run_sh, site,
    site_with_sol0001_stored, stored_site, Site,
};
use crate::util::*;

/// An archive's Last-Modified has whole seconds: a change meant to come after it waits for
/// the next second.
fn next_second() {
    std::thread::sleep(Duration::from_millis(1100));
}

/// The report's problem lines (between "problems (N):" and the next unindented line).
fn problems(report: &str) -> Vec<String> {
    report
        .lines()
        .skip_while(|l| !l.starts_with("problems ("))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim_start().to_string())
        .collect()
}

fn has_problem(report: &str, start: &str) -> bool {
    problems(report).iter().any(|p| p.starts_with(start))
}

/// A file whose mtime is in 2001, to be copied into a sol with `cp -p`.
fn old_file(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("late-product.dat");
    fs::write(&p, b"a product that arrived late, its mtime kept").unwrap();
    sh(&format!("touch -d 2001-01-01T00:00:00Z '{}'", p.display()))
        .run()
        .ok();
    p
}

fn mtime(p: &Path) -> SystemTime {
    fs::metadata(p).unwrap().modified().unwrap()
}

/// Items 1 and 3: a sol never stored, one modified and one given a copy that keeps its old
/// mtime after storing, one gone locally: one line each, status 4; an untouched sol is not
/// named. --coverage-only needs no key.
#[test]
fn coverage_names_not_stored_changed_and_missing_sols() {
    let Site { s3, t, root, key } = site(5);
    let (k, r, d) = (key.display(), root.display(), s3.url("s"));
    backup(
        &s3,
        &format!("-k '{k}' '{r}'/sol0001 '{r}'/sol0002 '{r}'/sol0003 '{r}'/sol0004 {d}"),
    )
    .ok();
    let before = audit(&s3, &format!("--coverage-only '{r}' {d}"));
    before.code(4);
    assert_eq!(
        problems(&before.stdout_str()),
        vec![format!(
            "sol0005: not stored (no sol0005.tar.gz.sc under {d}/)"
        )],
        "{}",
        before.stdout_str()
    );

    next_second();
    fs::write(root.join("sol0002/inst1/seq01/log001.txt"), b"modified").unwrap();
    let copied = root.join("sol0003/inst0/late-product.dat");
    let src = old_file(t.path());
    sh(&format!("cp -p '{}' '{}'", src.display(), copied.display()))
        .run()
        .ok();
    // The copy's mtime is years before the archive: an mtime comparison would miss it.
    assert!(mtime(&copied) < SystemTime::now() - Duration::from_secs(365 * 86400));
    fs::rename(root.join("sol0004"), t.path().join("sol0004.moved")).unwrap();

    let out = audit(&s3, &format!("--coverage-only '{r}' {d}"));
    out.code(4);
    let o = out.stdout_str();
    let p = problems(&o);
    assert_eq!(p.len(), 4, "{o}");
    assert!(has_problem(&o, "sol0005: not stored"), "{o}");
    assert!(has_problem(&o, "sol0002: changed since stored"), "{o}");
    assert!(has_problem(&o, "sol0003: changed since stored"), "{o}");
    assert!(has_problem(&o, "sol0004: stored, missing locally"), "{o}");
    assert!(!o.contains("sol0001:"), "an untouched sol is named:\n{o}");
    assert!(
        o.contains("coverage: 4 sols in") && o.contains("4 stored; 1 not stored, 2 changed"),
        "{o}"
    );
    assert!(o.contains("newest archive sol000"), "{o}");
    assert_eq!(out.stderr, "", "coverage problems are in the report");
    // No table and no content audit.
    assert!(!o.contains("DIFFERENCES") && !o.contains("summary:"), "{o}");
}

/// The Last-Modified (seconds) of KEY under the site's prefix `s/`.
fn stored_at(at: &Site, key: &str) -> i64 {
    let listing = at.s3.ls(&["--relative"], "s/").ok().stdout_str();
    listing
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}\t")))
        .and_then(|l| l.split('\t').nth(1))
        .map(epoch_of)
        .unwrap_or_else(|| panic!("{key} is not listed:\n{listing}"))
}

/// Coverage names PROBLEM (status 4), and --changed stores sol0001 again.
fn flagged_then_stored_again(at: &Site, problem: &str) {
    let (r, d) = (at.root.display(), at.s3.url("s"));
    let out = audit(&at.s3, &format!("--coverage-only '{r}' {d}"));
    out.code(4);
    assert!(
        has_problem(&out.stdout_str(), problem),
        "{}",
        out.stdout_str()
    );
    backup(&at.s3, &format!("--changed {}", at.sols("sol0001")))
        .ok()
        .stdout_has("1 sols: 1 ok");
}

/// A file written in the second its sol's archive was stored is "changed since stored"
/// and --changed stores it again; a sol made just before its backup, in those same seconds,
/// is not taken for changed: both judged on the instant the backup began reading it, which
/// the archive keeps (found by CI: a change in the archive's own second was never stored).
#[test]
fn a_change_in_the_archives_own_second_is_seen() {
    let at = site(1);
    let (r, d, sol) = (at.root.display(), at.s3.url("s"), at.sols("sol0001"));
    backup(&at.s3, &sol).ok();
    audit(&at.s3, &format!("--coverage-only '{r}' {d}")).ok();
    backup(&at.s3, &format!("--changed {sol}"))
        .ok()
        .stdout_has("1 skipped (stored already)");

    let late = at.root.join("sol0001/late.txt");
    let mut tries = 0;
    loop {
        backup(&at.s3, &format!("--force {sol}")).ok();
        fs::write(&late, b"in the archive's second").unwrap();
        let stored = stored_at(&at, "sol0001.tar.gz.sc");
        let made = fs::metadata(&late).unwrap().ctime();
        if made == stored {
            break;
        }
        tries += 1;
        assert!(
            tries < 20,
            "no write landed in its archive's second in 20 tries"
        );
        fs::remove_file(&late).unwrap();
    }
    flagged_then_stored_again(&at, "sol0001: changed since stored");
}

/// The mark of a change made while a sol was backed up (`.sol-changed/SOL`) belongs to
/// that backup: a store again in the same second as the mark is not taken for the marked
/// archive (found by a test: coverage said "changed while it was backed up" of a sol just
/// stored again).
#[test]
fn a_mark_of_an_earlier_backup_does_not_flag_one_stored_in_its_second() {
    let at = site(1);
    let (r, d, sol) = (at.root.display(), at.s3.url("s"), at.sols("sol0001"));
    backup(&at.s3, &sol).ok();
    let earlier = format!("sol-read-start={}", epoch_of("1 minute ago"));
    let mut tries = 0;
    loop {
        // An earlier backup's mark, then the sol stored again at once.
        at.s3
            .mput(
                "s/.sol-changed/sol0001",
                b"",
                &["--overwrite", "--metadata", &earlier],
            )
            .ok();
        backup(&at.s3, &format!("--force {sol}")).ok();
        if stored_at(&at, ".sol-changed/sol0001") == stored_at(&at, "sol0001.tar.gz.sc") {
            break;
        }
        tries += 1;
        assert!(
            tries < 20,
            "no store landed in its mark's second in 20 tries"
        );
    }
    audit(&at.s3, &format!("--coverage-only '{r}' {d}")).ok();
    backup(&at.s3, &format!("--changed {sol}"))
        .ok()
        .stdout_has("1 skipped (stored already)");
}

/// A read-start after the archive was stored (a clock set wrong, metadata edited) tells
/// nothing: a change within the archive's seconds counts (found by a helper: a read-start
/// in the future hid it).
#[test]
fn a_read_start_after_the_archive_is_not_believed() {
    let at = site(1);
    let later = format!("sol-read-start={}", epoch_of("1 hour"));
    backup(&at.s3, &at.sols("sol0001")).ok();
    // Its archive stored again with a read-start an hour ahead.
    let archive = at.s3.url("s/sol0001.tar.gz.sc");
    let copy = format!("s3-mget {archive} | s3-mput --overwrite --metadata {later} {archive}");
    run_sh(&at.s3, &copy).ok();
    fs::write(at.root.join("sol0001/late.txt"), b"after the reading began").unwrap();
    flagged_then_stored_again(&at, "sol0001: changed since stored");
}

/// The mark of a change during a backup, made after the archive was stored, flags it
/// whatever backup made it (found by a helper: one from an older backup, written last, was
/// ignored).
#[test]
fn a_mark_made_after_the_archive_flags_it() {
    let at = site(1);
    let sol = at.sols("sol0001");
    let earlier = format!("sol-read-start={}", epoch_of("1 minute ago"));
    backup(&at.s3, &sol).ok();
    std::thread::sleep(Duration::from_millis(1100));
    at.s3
        .mput("s/.sol-changed/sol0001", b"", &["--metadata", &earlier])
        .ok();
    flagged_then_stored_again(&at, "sol0001: changed while it was backed up");
}

/// Item 2: the newest archive older than --max-age is a problem; --coverage-only runs as
/// cron runs it (no TTY, no stdin, a bare environment, no key) and fails loudly.
#[test]
fn overdue_with_max_age_is_status_4_in_a_cron_like_run() {
    let Site { s3, t, root, key } = site(1);
    let (k, r, d) = (key.display(), root.display(), s3.url("s"));
    let empty = audit(&s3, &format!("--coverage-only --max-age 36h '{r}' {d}"));
    let o = empty.code(4).stdout_str();
    assert!(has_problem(&o, "overdue: no archive stored under"), "{o}");
    backup(&s3, &format!("-k '{k}' '{r}'/sol0001 {d}")).ok();

    // As cron runs it: a new session (no controlling terminal), stdin from /dev/null, only
    // PATH, HOME and the S3 settings; no key.
    let cron = |flags: &str| {
        run_sh(
            &s3,
            &format!(
                "env -i PATH=/usr/bin:/bin HOME='{h}' SHELL=/bin/bash \
                 AWS_ENDPOINT_URL=\"$AWS_ENDPOINT_URL\" AWS_ACCESS_KEY_ID=\"$AWS_ACCESS_KEY_ID\" \
                 AWS_SECRET_ACCESS_KEY=\"$AWS_SECRET_ACCESS_KEY\" AWS_REGION=us-east-1 \
                 AWS_EC2_METADATA_DISABLED=true \
                 setsid -w {s} < /dev/null",
                h = t.path().display(),
                s = call("sol-audit", &format!("--coverage-only {flags} '{r}' {d}"))
            ),
        )
    };
    // As crontab.example has it: silent while all is well.
    let quiet = cron("--quiet --max-age 36h");
    quiet.ok();
    assert_eq!(quiet.stdout_str(), "", "--quiet printed a report");
    let fresh = cron("--max-age 36h");
    fresh
        .ok()
        .stdout_has("no problems")
        .stdout_has("newest archive sol0001.tar.gz.sc stored 20");
    let o = fresh.stdout_str();
    assert!(
        o.trim_end()
            .ends_with("0 of 1 sols content-audited in the last 30 days"),
        "{o}"
    );

    std::thread::sleep(Duration::from_millis(2100));
    let overdue = cron("--quiet --max-age 1s");
    overdue.code(4);
    let o = overdue.stdout_str();
    assert_eq!(problems(&o).len(), 1, "{o}");
    assert!(
        has_problem(
            &o,
            "overdue: the newest archive sol0001.tar.gz.sc was stored 20"
        ),
        "{o}"
    );
    assert!(o.contains("older than --max-age 1s"), "{o}");

    audit(&s3, &format!("--coverage-only --max-age soon '{r}' {d}"))
        .code(2)
        .stderr_has("--max-age: 'soon'");
    audit(&s3, &format!("--coverage-only -n 2 '{r}' {d}")).code(2);
}

/// Items 3 and 6: a protection gap alone is 4; with a content difference 3 wins. The report
/// puts the problems first, then the audit table, then the summary, and ends with the
/// content-audit count.
#[test]
fn status_3_wins_over_4_and_problems_come_first() {
    let at = site_with_sol0001_stored(2);
    let Site { s3, root, key, .. } = &at;
    let (k, r, d) = (key.display(), root.display(), s3.url("s"));

    let gap = audit(s3, &format!("-n 1 -k '{k}' '{r}' {d}"));
    gap.code(4);
    let o = gap.stdout_str();
    assert!(rows_for(&o, "sol0001")[0].contains(" ok "), "{o}");
    assert!(has_problem(&o, "sol0002: not stored"), "{o}");
    assert!(
        o.trim_end()
            .ends_with("\n1 of 1 sols content-audited in the last 30 days"),
        "{o}"
    );

    next_second();
    fs::write(root.join("sol0001/inst0/seq00/log000.txt"), b"tampered").unwrap();
    let both = audit(s3, &format!("--sol sol0001 -k '{k}' '{r}' {d}"));
    both.code(3);
    let o = both.stdout_str();
    assert!(
        has_problem(&o, "sol0001: changed: inst0/seq00/log000.txt"),
        "{o}"
    );
    assert!(has_problem(&o, "sol0001: changed since stored"), "{o}");
    assert!(has_problem(&o, "sol0002: not stored"), "{o}");
    let at = |s: &str| o.find(s).unwrap_or_else(|| panic!("no {s:?} in\n{o}"));
    assert!(at("problems (") < at("SOL "), "{o}");
    assert!(at("SOL ") < at("\nsummary:"), "{o}");
    assert!(at("\nsummary:") < at("\ncoverage:"), "{o}");
    assert!(rows_for(&o, "sol0001")[0].contains("DIFFERS"), "{o}");
    let last = o.trim_end().lines().last().unwrap();
    assert_eq!(
        last, "1 of 1 sols content-audited in the last 30 days",
        "{o}"
    );
}

/// Item 4: --changed stores again the sols changed since stored (modified, or given a copy
/// that keeps its mtime), keeps the previous archives under a dated name, and the new
/// archives restore the changed trees.
#[test]
fn backup_changed_keeps_the_old_archive_and_restores_the_new_one() {
    let Site { s3, t, root, key } = site(3);
    let (k, r, d) = (key.display(), root.display(), s3.url("s"));
    backup(&s3, &format!("-k '{k}' '{r}'/sol* {d}")).ok();
    let old2 = s3.get("s/sol0002.tar.gz.sc").unwrap();
    let old3 = s3.get("s/sol0003.tar.gz.sc").unwrap();

    next_second();
    fs::write(root.join("sol0002/inst2/seq02/log002.txt"), b"reprocessed").unwrap();
    let src = old_file(t.path());
    sh(&format!(
        "cp -p '{}' '{}'",
        src.display(),
        root.join("sol0003/images/late.dat").display()
    ))
    .run()
    .ok();

    backup(&s3, &format!("--changed -k '{k}' '{r}'/sol* {d}"))
        .ok()
        .stdout_has("3 sols: 2 ok, 1 skipped")
        .stdout_has("sol0002: stored again (changed since stored); the previous archive is kept as")
        .stdout_has("sol0003: stored again");
    let ls = s3.ls(&["--relative"], "s/").stdout_str();
    for (sol, old) in [("sol0002", &old2), ("sol0003", &old3)] {
        let kept: Vec<&str> = ls
            .lines()
            .filter_map(|l| l.split('\t').next())
            .filter(|k| k.starts_with(&format!("{sol}.tar.gz.sc.replaced-")))
            .collect();
        assert_eq!(kept.len(), 1, "{ls}");
        assert_eq!(&s3.get(&format!("s/{}", kept[0])).unwrap(), old, "{sol}");
    }
    assert!(!ls.contains("sol0001.tar.gz.sc.replaced-"), "{ls}");

    let dest = t.path().join("dest");
    let two = format!("-k '{k}' {d} sol0002 sol0003 '{}'", dest.display());
    restore(&s3, &two).ok();
    assert_same_tree(&root.join("sol0002"), &dest.join("sol0002"));
    assert_same_tree(&root.join("sol0003"), &dest.join("sol0003"));
    assert_eq!(
        fs::read(dest.join("sol0002/inst2/seq02/log002.txt")).unwrap(),
        b"reprocessed"
    );
    audit(&s3, &format!("--coverage-only '{r}' {d}")).ok();
    backup(&s3, &format!("--changed -k '{k}' '{r}'/sol* {d}"))
        .ok()
        .stdout_has("3 sols: 0 ok, 3 skipped");
    backup(&s3, &format!("--changed --force -k '{k}' '{r}'/sol* {d}")).code(2);
}

/// Item 5: --budget audits the least-recently-audited sols; the history lives in the
/// bucket, so runs from fresh hosts (a new TMPDIR and HOME each) reach every sol in turn.
#[test]
fn budget_rotation_reaches_every_sol_from_any_host() {
    let Site { s3, t, root, key } = site(4);
    let (k, r, d) = (key.display(), root.display(), s3.url("s"));
    backup(&s3, &format!("-k '{k}' '{r}'/sol* {d}")).ok();

    let mut seen: Vec<String> = Vec::new();
    for run in 1..=4 {
        let host = t.path().join(format!("host{run}"));
        fs::create_dir_all(&host).unwrap();
        let budget = if run == 2 { "1K" } else { "1" };
        let cmd = call(
            "sol-audit",
            &format!("--budget {budget} -k '{k}' '{r}' {d}"),
        );
        let out = run_sh(
            &s3,
            &format!("HOME='{h}' TMPDIR='{h}' {cmd}", h = host.display()),
        );
        out.ok();
        let o = out.stdout_str();
        let audited: Vec<String> = (1..=4)
            .map(|i| format!("sol{i:04}"))
            .filter(|s| !rows_for(&o, s).is_empty())
            .collect();
        assert_eq!(
            audited.len(),
            1,
            "a budget of one archive audits one sol:\n{o}"
        );
        assert!(!seen.contains(&audited[0]), "{} twice:\n{o}", audited[0]);
        seen.push(audited[0].clone());
        assert!(
            o.trim_end().ends_with(&format!(
                "{run} of 4 sols content-audited in the last 30 days"
            )),
            "{o}"
        );
        next_second();
    }
    // The least recently audited comes round again; a large budget takes all.
    let o = audit(&s3, &format!("--budget 1 -k '{k}' '{r}' {d}"))
        .ok()
        .stdout_str();
    assert_eq!(rows_for(&o, &seen[0]).len(), 1, "{o}");
    audit(&s3, &format!("--budget 1G -k '{k}' '{r}' {d}"))
        .ok()
        .stdout_has("4 sols: 4 ok");
    let ls = s3.ls(&["--relative"], "s/.sol-audit/").stdout_str();
    assert_eq!(ls.lines().count(), 4, "{ls}");
    audit(&s3, &format!("--budget 1 -n 2 -k '{k}' '{r}' {d}")).code(2);
    audit(&s3, &format!("--budget lots -k '{k}' '{r}' {d}")).code(2);
}

/// Item 1, "cheap": coverage of 5,000 stored sols and 5,000 local sol directories takes one
/// listing and one find, not a request or a process per sol (counted at a proxy: no timed
/// assertion, one failed CI under load; about 2 s here, and a find per sol took 7 s per
/// 1,000 sols).
#[test]
fn coverage_of_five_thousand_sols_is_cheap() {
    let (s3, _t, root) = stored_site(5000, "a/f");
    fs::create_dir_all(root.join("sol9999")).unwrap();
    let coverage = format!(
        "--coverage-only --max-age 1h '{}' {}",
        root.display(),
        s3.url("sols")
    );
    let (out, asked) = archive_requests(&s3, &call("sol-audit", &coverage));
    out.code(4);
    let o = out.stdout_str();
    assert_eq!(
        problems(&o),
        vec![format!(
            "sol9999: not stored (no sol9999.tar.gz.sc under {}/)",
            s3.url("sols")
        )],
        "{o}"
    );
    assert!(o.contains("coverage: 5001 sols in"), "{o}");
    assert!(asked <= 16, "{asked} requests naming an archive");
}
