use std::fs;

use crate::util::*;

fn tree() -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let t = tmp();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    awkward_tree(&src, &mut Rng::new(21));
    let ar = tool("sol-tar")
        .args(["create", "-C"])
        .arg(&src)
        .arg("sol0001")
        .run()
        .stdout
        .clone();
    (t, src, ar)
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
    tool("tar-md5")
        .arg("--check")
        .arg(&s)
        .args(["--strip-components", "1"])
        .stdin(ar.clone())
        .run()
        .ok();
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
    let out = tool("tar-md5")
        .arg("--check")
        .arg(&s)
        .args(["--strip-components", "1"])
        .stdin(ar.clone())
        .run();
    out.code(3);
    assert_eq!(
        out.stdout_str(),
        "changed: a/b/c/d/leaf.csv\nchanged: a/link-rel\nmissing: data/t007.log\nextra: data/intruder\n"
    );
    out.one_line_with("differs from the stream: 2 changed, 1 missing, 1 extra");
    drop(t);
}

#[test]
fn bad_streams_and_missing_dirs() {
    let (t, _src, ar) = tree();
    tool("tar-md5")
        .stdin(ar[..ar.len() / 2].to_vec())
        .run()
        .code(3)
        .one_line_with("corrupt or truncated archive");
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
