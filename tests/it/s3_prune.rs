//! sol-prune (issue 25, item 3): restic forget's rules on keys with a UTC time stamp in
//! their name, a dry run by default, deletion of every version by its id with --delete, the
//! guards, and Object Lock in the way (moto and Ceph RGW; s3s-fs keeps no versions and no
//! locks: its objects are their own null versions).

use crate::s3env::S3;
use crate::util::*;

/// A prefix of periodic dumps (two series), one key without a stamp, and the script run
/// with the server's environment.
fn dumps(s3: &S3, args: &[&str]) {
    for day in [
        "20261101", "20261115", "20261201", "20261202", "20261203", "20261206",
    ] {
        s3.mput(
            &format!("d/db-{day}T020000Z.sql.gz.sc"),
            day.as_bytes(),
            args,
        )
        .ok();
    }
    s3.mput("d/sol0001.tar.gz.sc", b"the sol's own archive", &[])
        .ok();
    // A sol whose name holds a stamp: its archive and index are never pruned.
    for k in [
        "obs-20260101T000000Z.tar.gz.sc",
        "obs-20260101T000000Z.index.gz.sc",
    ] {
        s3.mput(&format!("d/{k}"), b"a sol named by its time", &[])
            .ok();
    }
    s3.mput(
        "d/sol0001.tar.gz.sc.replaced-20261130T120000Z",
        b"old",
        args,
    )
    .ok();
}

fn prune(s3: &S3, args: &str) -> Out {
    prune_at(s3, args, "d")
}

/// sol-prune ARGS s3://BUCKET/PREFIX.
fn prune_at(s3: &S3, args: &str, prefix: &str) -> Out {
    let cmd = crate::scripts::call("sol-prune", &format!("{args} {}", s3.url(prefix)));
    s3.env(sh(&cmd)).run()
}

/// A server with the dumps stored, and their listing.
fn dumped() -> (S3, String) {
    let s3 = S3::start();
    dumps(&s3, &[]);
    let before = keys(&s3);
    (s3, before)
}

fn keys(s3: &S3) -> String {
    s3.ls(&["--relative"], "d/").stdout_str()
}

/// The keys under d/, as listed.
fn key_names(s3: &S3) -> Vec<String> {
    let listed = keys(s3);
    listed
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

#[test]
fn s3_sol_prune_dry_run_keeps_by_the_policy_and_deletes_nothing() {
    let (s3, before) = dumped();
    prune(&s3, "--keep-last 2 --keep-weekly 2 --keep-monthly 3")
        .ok()
        .stdout_has("keep    d/db-20261206T020000Z.sql.gz.sc  (last, weekly 2026-W49, monthly 2026-12)\n")
        .stdout_has("keep    d/db-20261203T020000Z.sql.gz.sc  (last)\n")
        .stdout_has("delete  d/db-20261202T020000Z.sql.gz.sc  (1 version(s); series d/db-*.sql.gz.sc)\n")
        .stdout_has("keep    d/db-20261115T020000Z.sql.gz.sc  (weekly 2026-W46, monthly 2026-11)\n")
        .stdout_has("delete  d/db-20261101T020000Z.sql.gz.sc")
        .stdout_has("keep    d/sol0001.tar.gz.sc.replaced-20261130T120000Z  (last, weekly 2026-W49, monthly 2026-11)\n")
        .stdout_has("3 key(s) without a time stamp, sols' own archives and indexes, or deleted")
        .stdout_has("dry run: 3 key(s) would be deleted; nothing was");
    assert_eq!(keys(&s3), before);
    // The newest of a series is kept even when no rule keeps it; --keep-within counts back
    // from the newest.
    prune(&s3, "--keep-within 4d")
        .ok()
        .stdout_has("keep    d/db-20261202T020000Z.sql.gz.sc  (within)\n")
        .stdout_has("delete  d/db-20261201T020000Z.sql.gz.sc");
    prune(&s3, "").code(2).stderr_has("no policy");
    // A key stamped in the future (a typo) is kept, and nothing counts from it.
    for day in ["20261201", "20261202", "20361203"] {
        s3.mput(&format!("d/typo-{day}T020000Z.x"), day.as_bytes(), &[])
            .ok();
    }
    prune(&s3, "--keep-within 12h")
        .ok()
        .stdout_has("keep    d/typo-20361203T020000Z.x  (in the future)\n")
        .stdout_has("keep    d/typo-20261202T020000Z.x  (within)\n")
        .stdout_has("delete  d/typo-20261201T020000Z.x");
}

/// --keep-hourly and --keep-daily (restic's calendar periods, UTC): the newest key of each
/// of the N newest hours or days that have one; two keys in one hour, the older goes; a day
/// or hour without a key is not counted. Then --delete removes exactly what the plan said.
#[test]
fn s3_sol_prune_keep_hourly_and_keep_daily_count_calendar_periods() {
    let s3 = S3::start();
    let stamps = [
        "20261206T104000Z",
        "20261206T100500Z",
        "20261206T095959Z",
        "20261206T080000Z",
        "20261205T235959Z",
        "20261205T120000Z",
        "20261203T020000Z",
        "20261201T020000Z",
    ];
    for t in stamps {
        s3.mput(&format!("d/db-{t}.gz"), t.as_bytes(), &[]).ok();
    }
    let policy = "--keep-hourly 3 --keep-daily 3";
    prune(&s3, policy)
        .ok()
        .stdout_has(&format!("sol-prune of {}/ ({policy})\n", s3.url("d")))
        .stdout_has("keep    d/db-20261206T104000Z.gz  (hourly 2026-12-06T10, daily 2026-12-06)\n")
        .stdout_has("delete  d/db-20261206T100500Z.gz  (1 version(s); series d/db-*.gz)\n")
        .stdout_has("keep    d/db-20261206T095959Z.gz  (hourly 2026-12-06T09)\n")
        .stdout_has("keep    d/db-20261206T080000Z.gz  (hourly 2026-12-06T08)\n")
        .stdout_has("keep    d/db-20261205T235959Z.gz  (daily 2026-12-05)\n")
        .stdout_has("delete  d/db-20261205T120000Z.gz  (1 version(s); series d/db-*.gz)\n")
        .stdout_has("keep    d/db-20261203T020000Z.gz  (daily 2026-12-03)\n")
        .stdout_has("delete  d/db-20261201T020000Z.gz  (1 version(s); series d/db-*.gz)\n")
        .stdout_has("dry run: 3 key(s) would be deleted; nothing was");
    assert_eq!(keys(&s3).lines().count(), stamps.len());
    prune(&s3, &format!("--delete {policy}"))
        .ok()
        .stdout_has("deleted 3 version(s) of 3 key(s); 0 retained by Object Lock");
    let left = key_names(&s3);
    assert_eq!(
        left,
        [
            "db-20261203T020000Z.gz",
            "db-20261205T235959Z.gz",
            "db-20261206T080000Z.gz",
            "db-20261206T095959Z.gz",
            "db-20261206T104000Z.gz"
        ]
    );
}

#[test]
fn s3_sol_prune_delete_removes_what_the_policy_drops_and_max_delete_guards() {
    let (s3, before) = dumped();
    prune(&s3, "--delete --max-delete 4 --keep-last 1")
        .code(1)
        .stderr_has("sol-prune: 5 keys to delete, more than --max-delete 4: nothing deleted");
    assert_eq!(keys(&s3), before);
    prune(&s3, "--delete --max-delete 5 --keep-last 1")
        .ok()
        .stdout_has("deleted 5 version(s) of 5 key(s); 0 retained by Object Lock");
    let left = key_names(&s3);
    assert_eq!(
        left,
        [
            "db-20261206T020000Z.sql.gz.sc",
            "obs-20260101T000000Z.index.gz.sc",
            "obs-20260101T000000Z.tar.gz.sc",
            "sol0001.tar.gz.sc",
            "sol0001.tar.gz.sc.replaced-20261130T120000Z"
        ]
    );
    // s3-ls --delete-versions refuses a key it would have printed escaped.
    s3.tool("s3-ls")
        .args(["--delete-versions", &s3.url("d/")])
        .stdin(b"d/a\\b\tnull\n".to_vec())
        .run()
        .code(1)
        .stderr_has("a key with a backslash is ambiguous");
    // Nothing under a prefix: nothing to do.
    prune_at(&s3, "--delete --keep-last 1", "none")
        .ok()
        .stdout_has("0 key(s) without a time stamp");
}

/// On a bucket with versions and Object Lock: every version of a pruned key is deleted by
/// its id (no delete marker is left), a locked version is "retained until T", a GOVERNANCE
/// one is deleted only with --bypass-governance, a COMPLIANCE one never.
#[test]
fn s3_sol_prune_deletes_versions_by_id_and_locks_stand_in_its_way() {
    let Some(s3) = S3::start_locked() else {
        return skip(
            "the in-process s3s-fs has no versions or Object Lock (moto and Ceph RGW run this)",
        );
    };
    dumps(&s3, &["--retain", "1d", "--lock-mode", "GOVERNANCE"]);
    s3.mput(
        "d/db-20261101T020000Z.sql.gz.sc",
        b"a second version",
        &["--overwrite"],
    )
    .ok();
    s3.mput(
        "d/db-20261201T020000Z.sql.gz.sc",
        b"compliance",
        &["--overwrite", "--retain", "1d"],
    )
    .ok();
    prune(&s3, "--delete --keep-last 1")
        .ok()
        .stdout_has("retained until ")
        .stdout_has("d/db-20261101T020000Z.sql.gz.sc version ")
        .stdout_has("deleted 1 version(s) of 5 key(s); 6 retained by Object Lock");
    let out = prune(&s3, "--delete --bypass-governance --keep-last 1");
    out.ok()
        .stdout_has("deleted 5 version(s) of 5 key(s); 1 retained by Object Lock");
    let versions = s3.ls(&["--versions"], "d/").stdout_str();
    assert!(!versions.contains("marker"), "{versions}");
    let left: Vec<&str> = versions
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(
        left,
        [
            "d/db-20261201T020000Z.sql.gz.sc",
            "d/db-20261206T020000Z.sql.gz.sc",
            "d/obs-20260101T000000Z.index.gz.sc",
            "d/obs-20260101T000000Z.tar.gz.sc",
            "d/sol0001.tar.gz.sc",
            "d/sol0001.tar.gz.sc.replaced-20261130T120000Z"
        ],
        "{versions}"
    );
}

/// A key whose latest version is a delete marker is not the newest of its series: the live
/// dumps are judged among themselves, and the deleted key's versions are left alone (found
/// by a helper: it made every dump of a series go).
#[test]
fn s3_sol_prune_a_deleted_key_is_not_the_newest_of_its_series() {
    let Some(s3) = S3::start_locked() else {
        return skip("the in-process s3s-fs has no versions (moto and Ceph RGW run this)");
    };
    for day in ["20260101", "20260102", "20260103", "20260110"] {
        s3.mput(&format!("v/db-{day}T000000Z.gz"), day.as_bytes(), &[])
            .ok();
    }
    s3.delete("v/db-20260110T000000Z.gz");
    prune_at(&s3, "--delete --keep-last 1", "v")
        .ok()
        .stdout_has("keep    v/db-20260103T000000Z.gz  (last)\n")
        .stdout_has("deleted 2 version(s) of 2 key(s)");
    assert_eq!(
        s3.get("v/db-20260103T000000Z.gz").as_deref(),
        Some(&b"20260103"[..])
    );
    let versions = s3.ls(&["--versions"], "v/").stdout_str();
    assert_eq!(
        versions.matches("v/db-20260110T000000Z.gz\t").count(),
        2,
        "{versions}"
    );
}
