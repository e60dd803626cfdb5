use std::fs;
use std::path::Path;

use crate::util::*;

fn make_tree() -> (tempfile::TempDir, std::path::PathBuf) {
    let t = tmp();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    awkward_tree(&src, &mut Rng::new(1));
    (t, src)
}

#[test]
fn round_trip_is_exact() {
    let (t, src) = make_tree();
    let ar = tool("sol-tar")
        .args(["create", "-C"])
        .arg(&src)
        .arg("sol0001")
        .run();
    ar.ok();
    let dest = t.path().join("dest");
    tool("sol-tar")
        .args(["extract", "-C"])
        .arg(&dest)
        .stdin(ar.stdout.clone())
        .feed(Feed::Trickle)
        .run()
        .ok();
    assert_same_tree(&src, &dest);
    // The same tree gives the same bytes.
    let again = tool("sol-tar")
        .args(["create", "-C"])
        .arg(&src)
        .arg("sol0001")
        .run();
    assert!(again.stdout == ar.stdout, "archive is not deterministic");
}

#[test]
fn gnu_tar_extracts_ours_byte_identical() {
    let (t, src) = make_tree();
    let dest = t.path().join("gnu");
    fs::create_dir(&dest).unwrap();
    sh(&format!(
        "sol-tar create -C '{}' sol0001 | tar -xf - -C '{}'",
        src.display(),
        dest.display()
    ))
    .run()
    .ok();
    assert_same_tree(&src, &dest);
    sh(&format!(
        "diff -r --no-dereference '{}' '{}'",
        src.display(),
        dest.display()
    ))
    .run()
    .ok();
}

#[test]
fn we_extract_gnu_tar_byte_identical() {
    let (t, src) = make_tree();
    for format in ["gnu", "pax", "ustar-if-it-fits"] {
        if format == "ustar-if-it-fits" {
            continue; // ustar cannot hold this tree's long names; covered by the other two
        }
        let dest = t.path().join(format);
        sh(&format!(
            "tar --format={format} -cf - -C '{}' sol0001 | sol-tar extract -C '{}'",
            src.display(),
            dest.display()
        ))
        .run()
        .ok();
        assert_same_tree(&src, &dest);
    }
}

#[test]
fn files_over_8_gib_use_pax_sizes_gnu_tar_reads() {
    let t = tmp();
    let f = fs::File::create(t.path().join("big")).unwrap();
    let size: u64 = (8 << 30) + 1;
    f.set_len(size).unwrap();
    drop(f);
    let out = sh(&format!(
        "sol-tar create -C '{}' big | tar -tvf -",
        t.path().display()
    ))
    .run();
    out.ok();
    assert!(
        out.stdout_str().contains(&format!(" {size} ")),
        "tar -tv: {}",
        out.stdout_str()
    );
}

#[test]
fn list_matches_gnu_tar() {
    let (_t, src) = make_tree();
    let ours = sh(&format!(
        "sol-tar create -C '{}' sol0001 | sol-tar list",
        src.display()
    ))
    .run();
    let gnu = sh(&format!(
        "sol-tar create -C '{}' sol0001 | tar -tf - --quoting-style=literal",
        src.display()
    ))
    .run();
    ours.ok();
    gnu.ok();
    assert_eq!(ours.stdout_str(), gnu.stdout_str());
}

#[test]
fn a_file_that_changes_while_read_is_reported_and_the_archive_stays_valid() {
    // /proc files stat as empty but have contents: the size read differs from the size seen.
    let out = tool("sol-tar")
        .args(["create", "-C", "/proc/self", "status"])
        .run();
    out.code(1);
    assert!(
        out.stderr.contains("status: file changed as we read it"),
        "{}",
        out.stderr
    );
    let t = tmp();
    let ar = t.path().join("a.tar");
    fs::write(&ar, &out.stdout).unwrap();
    sh(&format!("tar -tf '{}'", ar.display())).run().ok();
}

#[test]
fn a_missing_operand_is_reported_with_its_name() {
    let t = tmp();
    let out = tool("sol-tar").args(["create", "nope"]).dir(t.path()).run();
    out.code(1);
    assert!(
        out.stderr
            .starts_with("sol-tar: nope: No such file or directory\n"),
        "{}",
        out.stderr
    );
    // Still a complete (empty) archive.
    assert_eq!(out.stdout.len() % 512, 0);
    tool("sol-tar")
        .arg("list")
        .stdin(out.stdout.clone())
        .run()
        .ok();
}

#[test]
fn closed_stdout_is_quiet_with_status_141() {
    let (_t, src) = make_tree();
    let out = tool("sol-tar")
        .args(["create", "-C"])
        .arg(&src)
        .arg("sol0001")
        .close_stdout()
        .run();
    out.code(141);
    assert_eq!(out.stderr, "");
}

#[test]
fn truncated_archives_are_integrity_failures() {
    let (_t, src) = make_tree();
    let ar = tool("sol-tar")
        .args(["create", "-C"])
        .arg(&src)
        .arg("sol0001")
        .run()
        .stdout
        .clone();
    // Cut at an entry boundary (after the first entries, before the end blocks) and inside data.
    for cut in [1024, 512 * 9, ar.len() - 1024, ar.len() / 2 + 100] {
        let t = tmp();
        tool("sol-tar")
            .args(["extract", "-C"])
            .arg(t.path())
            .stdin(ar[..cut].to_vec())
            .run()
            .code(3)
            .one_line_with("archive");
        tool("sol-tar")
            .arg("list")
            .stdin(ar[..cut].to_vec())
            .run()
            .code(3);
    }
    tool("sol-tar")
        .arg("list")
        .stdin(Vec::new())
        .run()
        .code(3)
        .stderr_is("sol-tar: empty input: not a tar archive");
}

/// Archives built by Python's tarfile with hostile names; nothing may appear outside DEST.
fn hostile(dir: &Path, script: &str) -> Vec<u8> {
    let py = format!(
        "import io, tarfile, sys\nb = io.BytesIO()\nt = tarfile.open(fileobj=b, mode='w', format=tarfile.PAX_FORMAT)\n\
         def f(name, data=b'x'):\n    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))\n\
         def l(name, target, kind=tarfile.SYMTYPE):\n    i = tarfile.TarInfo(name); i.type = kind; i.linkname = target; t.addfile(i)\n\
         {script}\nt.close()\nsys.stdout.buffer.write(b.getvalue())\n"
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(py)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn extraction_refuses_to_leave_dest() {
    let t = tmp();
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let o = outside.display();
    let cases = [
        ("absolute", format!("f('{o}/abs')"), "absolute name"),
        (
            "dotdot",
            "f('ok'); f('../outside/dotdot')".to_string(),
            "name contains '..'",
        ),
        (
            "symlink",
            format!("l('esc', '{o}'); f('esc/through-link')"),
            "pass through the symlink",
        ),
        (
            "symlink-rel",
            "l('esc', '../outside'); f('esc/through-rel-link')".to_string(),
            "pass through the symlink",
        ),
        (
            "inner-symlink",
            "l('in', '.'); f('in/x')".to_string(),
            "pass through the symlink",
        ),
        (
            "hardlink",
            format!("l('hl', '{o}/victim', tarfile.LNKTYPE)"),
            "hard link target: absolute name",
        ),
        (
            "hardlink-up",
            "l('hl', '../outside/victim', tarfile.LNKTYPE)".to_string(),
            "hard link target: name contains '..'",
        ),
    ];
    fs::write(outside.join("victim"), b"keep me").unwrap();
    for (label, script, why) in cases {
        let dest = t.path().join(format!("dest-{label}"));
        let ar = hostile(t.path(), &script);
        let out = tool("sol-tar")
            .args(["extract", "-C"])
            .arg(&dest)
            .stdin(ar)
            .run();
        out.code(3);
        assert!(out.stderr.contains(why), "{label}: {}", out.stderr);
        assert!(
            out.stderr.contains("refusing to extract"),
            "{label}: {}",
            out.stderr
        );
        let left: Vec<_> = fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("victim")],
            "{label}: wrote outside DEST"
        );
        assert_eq!(fs::read(outside.join("victim")).unwrap(), b"keep me");
    }
}

#[test]
fn extract_never_follows_a_symlink_already_in_dest() {
    let t = tmp();
    let dest = t.path().join("dest");
    let outside = t.path().join("outside");
    fs::create_dir_all(&dest).unwrap();
    fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("trap")).unwrap();
    let ar = hostile(t.path(), "f('trap/file')");
    tool("sol-tar")
        .args(["extract", "-C"])
        .arg(&dest)
        .stdin(ar)
        .run()
        .code(3);
    assert!(fs::read_dir(&outside).unwrap().next().is_none());
}

#[test]
fn later_entries_win_and_links_see_the_written_file() {
    // Small files are written on writer threads: a name that comes twice must end with the
    // later data, and a hard link or symlink to a file still queued must see it written.
    let t = tmp();
    let mut script =
        String::from("f('d/f', b'first')\nf('d/f', b'second')\nl('d/g', 'd/f', tarfile.LNKTYPE)\n");
    for i in 0..300 {
        script.push_str(&format!(
            "f('d/n{i}', b'{i}' * 1000)\nf('d/n{i}', b'again{i}')\n"
        ));
    }
    script.push_str("f('e', b'file')\nl('e', 'd/f')\nl('d/n7', 'n8')\n");
    let ar = hostile(t.path(), &script);
    let dest = t.path().join("dest");
    tool("sol-tar")
        .args(["extract", "-C"])
        .arg(&dest)
        .stdin(ar)
        .run()
        .ok();
    assert_eq!(fs::read(dest.join("d/f")).unwrap(), b"second");
    assert_eq!(fs::read(dest.join("d/g")).unwrap(), b"second");
    use std::os::unix::fs::MetadataExt;
    let (f, g) = (
        fs::metadata(dest.join("d/f")).unwrap(),
        fs::metadata(dest.join("d/g")).unwrap(),
    );
    assert_eq!(f.ino(), g.ino(), "d/g is a hard link to d/f");
    for i in (0..300).filter(|&i| i != 7) {
        assert_eq!(
            fs::read(dest.join(format!("d/n{i}"))).unwrap(),
            format!("again{i}").as_bytes()
        );
    }
    assert_eq!(fs::read_link(dest.join("e")).unwrap(), Path::new("d/f"));
    assert_eq!(fs::read_link(dest.join("d/n7")).unwrap(), Path::new("n8"));
    assert_eq!(fs::read(dest.join("d/n7")).unwrap(), b"again8");
}
