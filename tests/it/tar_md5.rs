use std::fs;

use crate::util::*;

fn tree() -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let (t, src) = awkward_src(21);
    let ar = archive(&src, "sol0001");
    (t, src, ar)
}

/// `tar-md5 --check SOL --strip-components 1` on the archive `ar`.
fn check_sol(sol: &std::path::Path, ar: Vec<u8>) -> Out {
    tool("tar-md5")
        .arg("--check")
        .arg(sol)
        .args(["--strip-components", "1"])
        .stdin(ar)
        .run()
}

#[test]
fn sums_are_md5sums_format_and_md5sum_c_accepts_them() {
    let (t, src, ar) = tree();
    let out = tool("tar-md5").stdin(ar.clone()).feed(Feed::Trickle).run();
    out.ok();
    let sums = t.path().join("sums");
    fs::write(&sums, &out.stdout).unwrap();
    // Extracted by GNU tar, checked by md5sum itself.
    let x = t.path().join("x");
    fs::create_dir(&x).unwrap();
    sh(&format!(
        "tar -xf - -C '{}' && cd '{}' && md5sum -c --quiet '{}'",
        x.display(),
        x.display(),
        sums.display()
    ))
    .stdin(ar.clone())
    .run()
    .ok();
    // Lines are byte-identical to md5sum's, odd names included.
    for name in [
        "sol0001/a/notes.txt",
        "sol0001/back\\slash",
        "sol0001/new\nline",
        "sol0001/hard-notes",
    ] {
        let theirs = std::process::Command::new("md5sum")
            .arg(name)
            .current_dir(&src)
            .output()
            .unwrap();
        assert!(
            out.stdout
                .windows(theirs.stdout.len())
                .any(|w| w == &theirs.stdout[..]),
            "no line {:?} in ours",
            String::from_utf8_lossy(&theirs.stdout)
        );
    }
    // Every regular file has a line (hard links included).
    let files = sh(&format!(
        "cd '{}' && find sol0001 -type f -printf x | wc -c",
        src.display()
    ))
    .run()
    .stdout_str();
    let lines = out.stdout.iter().filter(|&&b| b == b'\n').count(); // md5sum-escaped names hold no newline
    assert_eq!(lines.to_string(), files.trim());
}

#[test]
fn check_reports_changed_missing_and_extra_files() {
    let (t, src, ar) = tree();
    let s = src.join("sol0001");
    check_sol(&s, ar.clone()).ok();
    tool("tar-md5")
        .arg("--check")
        .arg(&src)
        .stdin(ar.clone())
        .run()
        .ok();
    fs::write(s.join("a/b/c/d/leaf.csv"), b"tampered").unwrap();
    fs::remove_file(s.join("data/t007.log")).unwrap();
    fs::write(s.join("data/intruder"), b"x").unwrap();
    fs::remove_file(s.join("a/link-rel")).unwrap();
    std::os::unix::fs::symlink("elsewhere", s.join("a/link-rel")).unwrap();
    let out = check_sol(&s, ar.clone());
    out.code(3);
    assert_eq!(
        out.stdout_str(),
        "changed: a/b/c/d/leaf.csv\nchanged: a/link-rel\nmissing: data/t007.log\nextra: data/intruder\n"
    );
    out.one_line_with("differs from the stream: 2 changed, 1 missing, 1 extra");
    drop(t);
}

/// The file under data/images with exactly `len` bytes.
fn image_of_len(dir: &std::path::Path, len: u64) -> std::path::PathBuf {
    fs::read_dir(dir.join("data/images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| fs::metadata(p).unwrap().len() == len)
        .unwrap_or_else(|| panic!("no image of {len} bytes"))
}

#[test]
fn check_compares_every_byte_and_every_length() {
    // The local copy is compared with the stream block by block: a one-byte change deep in
    // a multi-block file, a byte more, a byte less, a directory where a file was, and a hard
    // link broken and rewritten must each be caught.
    let (t, src, ar) = tree();
    let s = src.join("sol0001");
    let rel = |p: &std::path::Path| p.strip_prefix(&s).unwrap().to_string_lossy().into_owned();
    let big = image_of_len(&s, 3 << 20);
    let longer = image_of_len(&s, 1 << 20);
    let shorter = image_of_len(&s, (1 << 20) + 1);
    let mut bytes = fs::read(&big).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 1;
    fs::write(&big, &bytes).unwrap();
    let mut bytes = fs::read(&longer).unwrap();
    bytes.push(0);
    fs::write(&longer, &bytes).unwrap();
    let bytes = fs::read(&shorter).unwrap();
    fs::write(&shorter, &bytes[..bytes.len() - 1]).unwrap();
    fs::remove_file(s.join("data/t000.log")).unwrap();
    fs::create_dir(s.join("data/t000.log")).unwrap();
    let notes = fs::read(s.join("a/notes.txt")).unwrap();
    fs::remove_file(s.join("hard-notes")).unwrap();
    fs::write(s.join("hard-notes"), [&notes[..], b"!"].concat()).unwrap();

    let out = check_sol(&s, ar.clone());
    out.code(3);
    let stdout = out.stdout_str();
    let mut got: Vec<&str> = stdout.lines().collect();
    got.sort();
    let mut want: Vec<String> = [
        rel(&big),
        rel(&longer),
        rel(&shorter),
        "data/t000.log".into(),
        "hard-notes".into(),
    ]
    .iter()
    .map(|n| format!("changed: {n}"))
    .collect();
    want.sort();
    assert_eq!(got, want);
    out.one_line_with("differs from the stream: 5 changed, 0 missing, 0 extra");

    // Put every byte back: identical again (the comparison has no false alarms).
    fs::remove_dir(s.join("data/t000.log")).unwrap();
    let fresh = tmp();
    extract_into(fresh.path()).stdin(ar.clone()).run().ok();
    for p in [&big, &longer, &shorter] {
        let original = fresh.path().join("sol0001").join(rel(p));
        fs::copy(original, p).unwrap();
    }
    fs::copy(
        fresh.path().join("sol0001/data/t000.log"),
        s.join("data/t000.log"),
    )
    .unwrap();
    fs::remove_file(s.join("hard-notes")).unwrap();
    fs::hard_link(s.join("a/notes.txt"), s.join("hard-notes")).unwrap();
    check_sol(&s, ar).ok();
    drop(t);
}

#[test]
fn bad_streams_and_missing_dirs() {
    let (t, _src, ar) = tree();
    tool("tar-md5")
        .stdin(ar[..ar.len() / 2].to_vec())
        .run()
        .code(3)
        .one_line_with("truncated archive");
    tool("tar-md5").stdin(Rng::new(1).bytes(5000)).run().code(3);
    tool("tar-md5")
        .args(["--check", "nope"])
        .dir(t.path())
        .stdin(ar.clone())
        .run()
        .code(1)
        .stderr_is("tar-md5: 'nope': No such file or directory");
    tool("tar-md5")
        .arg("nope.tar")
        .dir(t.path())
        .run()
        .code(1)
        .stderr_is("tar-md5: 'nope.tar': No such file or directory");
}

#[test]
fn closed_stdout_is_quiet_with_status_141() {
    let (_t, _src, ar) = tree();
    let out = tool("tar-md5").stdin(ar).close_stdout().run();
    out.code(141);
    assert_eq!(out.stderr, "");
}

#[test]
fn check_compares_hard_links_through_their_targets_local_copy() {
    // --check hashes nothing: a hard link is right when the local file holds the same bytes
    // as the local copy of its target and that copy matches the stream.
    let (t, src, ar) = tree();
    let s = src.join("sol0001");
    let names = ["a/notes.txt", "hard-notes", "a/b/hard-notes-2"];
    let notes = fs::read(s.join(names[0])).unwrap();
    // Three separate files with the same bytes: no difference (content, not inodes).
    for n in names {
        fs::remove_file(s.join(n)).unwrap();
        fs::write(s.join(n), &notes).unwrap();
    }
    check_sol(&s, ar.clone()).ok();
    // One of them different: that one is changed; when it is the stream's file (the target
    // of the other two), the links are reported with it.
    let sorted = |out: &Out| {
        let mut got: Vec<String> = out.stdout_str().lines().map(String::from).collect();
        got.sort();
        got
    };
    let mut all: Vec<String> = names.iter().map(|n| format!("changed: {n}")).collect();
    all.sort();
    let mut targets = 0;
    for n in names {
        fs::write(s.join(n), [&notes[..], b"!"].concat()).unwrap();
        let out = check_sol(&s, ar.clone());
        out.code(3);
        let got = sorted(&out);
        if got == all {
            targets += 1;
        } else {
            assert_eq!(got, vec![format!("changed: {n}")]);
        }
        fs::write(s.join(n), &notes).unwrap();
    }
    assert_eq!(targets, 1, "exactly one of the names is the stream's file");
    // Linked again, and the shared bytes changed: every name is changed.
    for n in &names[1..] {
        fs::remove_file(s.join(n)).unwrap();
        fs::hard_link(s.join(names[0]), s.join(n)).unwrap();
    }
    check_sol(&s, ar.clone()).ok();
    fs::write(s.join(names[0]), b"tampered").unwrap();
    let out = check_sol(&s, ar.clone());
    out.code(3);
    assert_eq!(sorted(&out), all);
    // A link whose local name is gone is missing.
    fs::write(s.join(names[0]), &notes).unwrap();
    fs::remove_file(s.join("hard-notes")).unwrap();
    let out = check_sol(&s, ar);
    out.code(3);
    assert_eq!(out.stdout_str(), "missing: hard-notes\n");
    drop(t);
}

/// A way to run a command as the user nobody (the tests run as root, who reads every file),
/// or None when there is none here.
fn as_nobody() -> Option<&'static str> {
    if has("setpriv") {
        Some("exec setpriv --reuid=65534 --regid=65534 --clear-groups \"$@\"")
    } else if has("runuser") {
        Some("exec runuser -u nobody -- \"$@\"")
    } else {
        None
    }
}

#[test]
fn check_calls_an_unreadable_local_file_an_io_error_not_a_difference() {
    // man/tar-md5.1: an I/O error is status 1, a difference 3. A local file --check cannot
    // read was reported as `changed` with status 3, paging people for a permission problem.
    // Wanted: one `tar-md5: PATH: cannot read: REASON` line on stderr, the other files
    // still compared and reported, status 1 when nothing differs and 3 (which wins) when
    // something does.
    let Some(switch) = as_nobody() else {
        skip("neither setpriv nor runuser to run tar-md5 as a user other than root");
        return;
    };
    let t = tmp();
    let top = t.path();
    let src = top.join("src");
    let sol = src.join("sol0001");
    fs::create_dir_all(sol.join("sub")).unwrap();
    fs::write(sol.join("a.txt"), b"alpha\n").unwrap();
    fs::write(sol.join("sub/b.txt"), b"beta\n").unwrap();
    fs::write(sol.join("secret"), b"classified\n").unwrap();
    let ar = archive(&src, "sol0001");
    // nobody can traverse the tree and run its own copy of tar-md5, but not read `secret`.
    let exe = top.join("tar-md5");
    fs::copy(bin("tar-md5"), &exe).unwrap();
    let mode = |p: &std::path::Path, m: u32| {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    };
    for d in [top, &src, &sol, &sol.join("sub")] {
        mode(d, 0o755);
    }
    mode(&exe, 0o755);
    mode(&sol.join("secret"), 0o000);
    let nobody = |args: &[&std::ffi::OsStr]| sh(switch).arg("as-nobody").args(args).run();
    let probe = nobody(&["cat".as_ref(), sol.join("a.txt").as_os_str()]);
    let denied = nobody(&["cat".as_ref(), sol.join("secret").as_os_str()]);
    if probe.code != 0 || denied.code == 0 {
        skip(&format!(
            "as nobody, a.txt {} and the mode-000 file {} (the switch did not work here)",
            if probe.code == 0 {
                "reads"
            } else {
                "does not read"
            },
            if denied.code == 0 {
                "reads"
            } else {
                "does not read"
            },
        ));
        return;
    }
    let check = || {
        sh(switch)
            .arg("as-nobody")
            .arg(&exe)
            .arg("--check")
            .arg(&sol)
            .args(["--strip-components", "1"])
            .stdin(ar.clone())
            .run()
    };
    let cannot = |p: &str| {
        format!(
            "tar-md5: {}: cannot read: Permission denied",
            sol.join(p).display()
        )
    };

    // Nothing differs; one file cannot be read: an I/O error.
    let out = check();
    out.code(1);
    assert_eq!(out.stdout_str(), "", "no difference is reported");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "stderr:\n{}", out.stderr);
    assert_eq!(lines[0], cannot("secret"));
    assert!(
        lines[1].starts_with(&format!(
            "tar-md5: '{}': 1 file could not be read",
            sol.display()
        )),
        "{}",
        lines[1]
    );

    // A real difference as well: reported, and status 3.
    fs::write(sol.join("a.txt"), b"ALPHA\n").unwrap();
    let out = check();
    out.code(3);
    assert_eq!(out.stdout_str(), "changed: a.txt\n");
    out.stderr_has(&cannot("secret"));
    out.stderr_has("differs from the stream: 1 changed, 0 missing, 0 extra, 1 unreadable");

    // A directory nobody may enter: its file and the directory itself cannot be read (the
    // search for extra files goes on past it), and the difference still wins.
    mode(&sol.join("sub"), 0o000);
    let out = check();
    out.code(3);
    assert_eq!(out.stdout_str(), "changed: a.txt\n");
    out.stderr_has(&cannot("sub/b.txt"));
    out.stderr_has(&cannot("sub"));
    out.stderr_has("1 changed, 0 missing, 0 extra, 3 unreadable");
    assert!(!out.stderr.contains("changed: "), "{}", out.stderr);
    mode(&sol.join("sub"), 0o755);
}
