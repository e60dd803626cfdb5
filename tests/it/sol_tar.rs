use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::util::*;

fn make_tree() -> (tempfile::TempDir, std::path::PathBuf) {
    awkward_src(1)
}

/// `sol-tar create -C SRC sol0001`, which must succeed.
fn created(src: &Path) -> Out {
    let ar = tool("sol-tar")
        .args(["create", "-C"])
        .arg(src)
        .arg("sol0001")
        .run();
    ar.ok();
    ar
}

#[test]
fn round_trip_is_exact() {
    let (t, src) = make_tree();
    let ar = created(&src);
    let dest = t.path().join("dest");
    extract_into(&dest)
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

/// A file over 8 GiB stored whole gets a pax size; GNU tar reads it. `--no-sparse` stores a
/// file with holes whole, so the test needs no 8 GiB of disk (an allocated file did not fit
/// on CI's disk).
#[test]
fn files_over_8_gib_use_pax_sizes_gnu_tar_reads() {
    let t = tmp();
    let size: u64 = (8 << 30) + 1;
    let big = t.path().join("big");
    std::fs::File::create(&big).unwrap().set_len(size).unwrap();
    let out = sh(&format!(
        "sol-tar create --no-sparse -C '{}' big | tar -tvf -",
        t.path().display()
    ))
    .run();
    out.ok().stdout_has(&format!(" {size} "));
    // Its size is a pax record and its headers hold no sparse map (GNU tar read every byte of
    // the member above).
    let head = format!(
        "(sol-tar create --no-sparse -C '{}' big || true) | head -c 4096",
        t.path().display()
    );
    let head = sh(&head).run().ok().stdout_str();
    assert!(!head.contains("GNU.sparse"), "stored as sparse");
    assert!(head.contains(&format!(" size={size}\n")), "no pax size");
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
    let ar = archive(&src, "sol0001");
    // Cut at an entry boundary (after the first entries, before the end blocks) and inside data.
    for cut in [1024, 512 * 9, ar.len() - 1024, ar.len() / 2 + 100] {
        let t = tmp();
        extract_into(t.path())
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
    let out = output_ok(
        std::process::Command::new("python3")
            .arg("-c")
            .arg(py)
            .current_dir(dir),
        "",
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
        let out = extract_into(&dest).stdin(ar).run();
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
    extract_into(&dest).stdin(ar).run().code(3);
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
    extract_into(&dest).stdin(ar).run().ok();
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

/// A 512-byte ustar header with the given fields (raw bytes, so they can be wrong) and a
/// correct checksum.
fn raw_header(name: &[u8], typ: u8, size: &[u8], mode: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..100 + mode.len()].copy_from_slice(mode);
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..124 + size.len()].copy_from_slice(size);
    h[136..148].copy_from_slice(b"15000000000\0");
    h[156] = typ;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn pad(v: &mut Vec<u8>) {
    v.resize(v.len().div_ceil(512) * 512, 0);
}

/// A file entry "f" with `data`, preceded by a pax header holding `records` (when given).
fn archive_with(records: Option<&[u8]>, file_header: Option<Vec<u8>>, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    if let Some(r) = records {
        let size = format!("{:011o}\0", r.len());
        v.extend(raw_header(
            b"PaxHeaders/f",
            b'x',
            size.as_bytes(),
            b"0000644\0",
        ));
        v.extend_from_slice(r);
        pad(&mut v);
    }
    let size = format!("{:011o}\0", data.len());
    v.extend(file_header.unwrap_or_else(|| raw_header(b"f", b'0', size.as_bytes(), b"0000644\0")));
    v.extend_from_slice(data);
    pad(&mut v);
    v.extend([0u8; 1024]);
    v
}

/// Issue 11, item 2: a pax `size=-1` (GNU tar: "Malformed extended header: invalid size=-1"),
/// other bad numbers, bad record lengths and an empty path passed with status 0 (the tar
/// crate ignores what it cannot parse, and an empty path dropped the entry). Each is now
/// status 3 with one line naming the entry and where its header starts, in sol-tar list,
/// sol-tar extract and tar-md5 alike.
#[test]
fn malformed_tar_metadata_is_refused_naming_the_entry() {
    let data = b"hello, world\n";
    let good = archive_with(Some(b"9 path=f\n"), None, data);
    tool("sol-tar").arg("list").stdin(good.clone()).run().ok();
    let pax = |what: &str| {
        format!(
            "corrupt archive: entry 1 (header at byte 0): malformed pax extended header: {what}"
        )
    };
    let records: [(&[u8], &str); 11] = [
        (b"11 size=-1\n", "invalid size=-1"),
        (b"12 size=1x3\n", "invalid size=1x3"),
        (b"8 size=\n", "empty size"),
        (b"10 uid=-5\n", "invalid uid=-5"),
        (b"14 mtime=12ab\n", "invalid mtime=12ab"),
        (b"8 path=\n", "empty path"),
        (
            b"99 path=f\n",
            "record 1: length 99 out of range (10 bytes left)",
        ),
        (
            b"9 path=f\n12 path=ab\n",
            "record 2: length 12 out of range (11 bytes left)",
        ),
        (
            b"10 path=fg\n",
            "record 1: length 10 does not end at a newline",
        ),
        (b"9 path=f\n\n", "record 2: missing length"),
        (b"+9 path=f\n", "record 1: missing length"),
    ];
    let mut cases: Vec<(Vec<u8>, String)> = records
        .iter()
        .map(|&(record, what)| (archive_with(Some(record), None, data), pax(what)))
        .collect();
    // Bad numbers in the ustar header itself; the entry after a good one is entry 2.
    let size = format!("{:011o}\0", data.len());
    for (field, header, what) in [
        (
            "size",
            raw_header(b"f", b'0', b"00000000\xff\xfe1\0", b"0000644\0"),
            "invalid size field",
        ),
        (
            "size",
            raw_header(b"f", b'0', b"-0000000015\0", b"0000644\0"),
            "invalid size field",
        ),
        (
            "mode",
            raw_header(b"f", b'0', size.as_bytes(), b"00006x4\0"),
            "invalid mode field",
        ),
        (
            "mode",
            raw_header(b"f", b'0', size.as_bytes(), b"\0\0\0\0\0\0\0\0"),
            "invalid mode field",
        ),
    ] {
        let mut ar = raw_header(b"d/", b'5', b"00000000000\0", b"0000755\0");
        ar.extend(archive_with(None, Some(header), data));
        let _ = field;
        cases.push((
            ar,
            format!("corrupt archive: entry 2 (header at byte 512): {what}"),
        ));
    }
    for (ar, want) in cases {
        if want.ends_with("size=-1") {
            // The reference: GNU tar refuses it too.
            let gnu = sh("tar -tf - > /dev/null").stdin(ar.clone()).run();
            assert_ne!(gnu.code, 0, "GNU tar accepts {want:?}");
            assert!(gnu.stderr.contains("size=-1"), "{}", gnu.stderr);
        }
        let t = tmp();
        for (tool_name, args) in [
            ("sol-tar", vec!["list"]),
            ("sol-tar", vec!["extract", "-C", t.path().to_str().unwrap()]),
            ("tar-md5", vec![]),
        ] {
            let out = tool(tool_name).args(&args).stdin(ar.clone()).run();
            out.code(3).stderr_is(&format!("{tool_name}: {want}"));
        }
        assert!(!t.path().join("f").exists(), "{want}: extracted anyway");
    }
}

/// Issue 11, item 5: gzip fed to sol-tar printed the tar crate's message with the raw header
/// bytes in it; now each tar reader says what the input is and which stage comes first.
#[test]
fn other_formats_are_named_with_the_stage_they_need() {
    let (t, src) = make_tree();
    let ar = created(&src);
    let gz = tool("sol-zip").stdin(ar.stdout.clone()).run();
    let k = keyfile(t.path(), "k", 256);
    let sc = seal(&k, gz.stdout.clone());
    for (input, what) in [
        (
            &gz.stdout,
            "this is a gzip stream: decompress it first with sol-zip -d",
        ),
        (
            &sc,
            "this is a sol-crypt stream: decrypt it first with sol-crypt -d",
        ),
    ] {
        let dest = t.path().join("dest");
        for (name, args) in [
            ("sol-tar", vec!["list"]),
            ("sol-tar", vec!["extract", "-C", dest.to_str().unwrap()]),
            ("tar-md5", vec![]),
        ] {
            tool(name)
                .args(&args)
                .stdin(input.clone())
                .run()
                .code(3)
                .stderr_is(&format!("{name}: not a tar archive: {what}"));
        }
    }
    // Plain garbage: one printable line, no raw bytes.
    let out = tool("sol-tar")
        .arg("list")
        .stdin(Rng::new(3).bytes(4096))
        .run();
    out.code(3);
    assert!(
        out.stderr
            .chars()
            .all(|c| c == '\n' || (!c.is_control() && c != '\u{fffd}')),
        "{:?}",
        out.stderr
    );
}

/// Run `extract` of a [`tree_and_archive`] of `n` files into a fresh tmpfs of `size` (mounted
/// `ro` or not) in a private mount namespace; returns (status, stderr, lines naming files that
/// differ from the tree).
fn extract_onto_tmpfs(n: usize, size: &str, ro: bool) -> (i32, String, String) {
    let t = tmp();
    let (src, ar) = tree_and_archive(t.path(), n);
    let dest = t.path().join("dest");
    fs::create_dir(&dest).unwrap();
    let opts = if ro {
        format!("size={size},ro")
    } else {
        format!("size={size}")
    };
    let out = sh(&format!(
        "unshare -rm bash -c '\n\
         set -u\n\
         mount -t tmpfs -o {opts} tmpfs {d}\n\
         sol-tar extract -C {d} < {ar} 2> {t}/err; echo $? > {t}/rc\n\
         cd {d} && find . -type f | while read -r f; do cmp -s \"$f\" \"{src}/$f\" || echo \"differs: $f\"; done\n\
         '",
        d = dest.display(),
        ar = ar.display(),
        t = t.path().display(),
        src = src.display(),
    ))
    .run();
    out.ok();
    let rc = fs::read_to_string(t.path().join("rc")).unwrap();
    let err = fs::read_to_string(t.path().join("err")).unwrap();
    (rc.trim().parse().unwrap(), err, out.stdout_str())
}

/// A tree of `n` files of 20 KiB and two of 3 MiB, and its archive in a file.
fn tree_and_archive(t: &Path, n: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let src = t.join("src");
    let mut rng = Rng::new(77);
    fs::create_dir_all(src.join("sol/a")).unwrap();
    fs::write(src.join("sol/a/big1"), rng.bytes(3 << 20)).unwrap();
    for i in 0..n {
        fs::write(src.join(format!("sol/a/f{i:04}")), rng.bytes(20 << 10)).unwrap();
    }
    fs::write(src.join("sol/a/big2"), rng.bytes(3 << 20)).unwrap();
    let ar = t.join("ar.tar");
    sh(&format!(
        "sol-tar create -C '{}' sol > '{}'",
        src.display(),
        ar.display()
    ))
    .run()
    .ok();
    (src, ar)
}

/// Issue 11, item 4: onto a full disk, extraction printed one `No space left on device`
/// per entry and left empty or truncated files under their real names. Now the first such
/// error ends it with one line and status 1, and every file left is complete.
#[test]
fn a_full_disk_stops_extraction_with_one_line_and_no_half_files() {
    let (rc, err, differs) = extract_onto_tmpfs(200, "2m", false);
    assert_eq!(rc, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("sol-tar: extraction stopped at 'sol/a/")
            && err.ends_with(": No space left on device\n"),
        "{err}"
    );
    assert_eq!(differs, "", "half-written files kept their names");
}

/// ... and a read-only destination is one line too, not one per entry.
#[test]
fn a_read_only_destination_is_one_line() {
    let (rc, err, differs) = extract_onto_tmpfs(20, "64m", true);
    assert_eq!(rc, 1, "{err}");
    assert_eq!(
        err,
        "sol-tar: extraction stopped at 'sol/': Read-only file system\n"
    );
    assert_eq!(differs, "");
}

/// ... and a stream cut inside a large file's data does not leave that file, half-written,
/// under its name (files up to 1 MiB are only written once whole).
#[test]
fn a_truncated_stream_leaves_no_half_file() {
    let t = tmp();
    let (_src, ar) = tree_and_archive(t.path(), 3);
    let data = fs::read(&ar).unwrap();
    // sol/, sol/a/, then big1's header: cut 1 MiB into big1's data.
    let cut = 512 * 3 + (1 << 20) + 100;
    let dest = t.path().join("dest");
    extract_into(&dest)
        .stdin(data[..cut].to_vec())
        .run()
        .code(3)
        .stderr_is("sol-tar: truncated archive: the stream ended inside 'sol/a/big1'");
    assert!(dest.join("sol/a").is_dir());
    assert!(!dest.join("sol/a/big1").exists(), "half file kept its name");
}

/// A stream cut inside a small file's data (read whole into the writers' batch, after other
/// small files of the same batch): status 3 naming it, and the file is not made at all.
#[test]
fn a_stream_cut_inside_a_small_file_makes_no_file() {
    let t = tmp();
    let ar = hostile(
        t.path(),
        "f('sol/a', b'x' * 100)\nf('sol/b', b'y' * 5000)\nf('sol/c', b'z' * 5000)",
    );
    // a: header at 0, data at 512; b: header at 1024, data at 1536 (10 blocks); c: header
    // at 6656, data at 7168: cut 2000 bytes into it.
    assert_eq!(&ar[6656..6661], b"sol/c", "the layout this test counts on");
    let dest = t.path().join("dest");
    extract_into(&dest)
        .stdin(ar[..7168 + 2000].to_vec())
        .run()
        .code(3)
        .stderr_is("sol-tar: truncated archive: the stream ended inside 'sol/c'");
    assert!(!dest.join("sol/c").exists(), "a cut small file was made");
}

/// Issue 15: a tree for the restore index with what changes a member's shape: long names and
/// a long link target of each kind (pax headers), a non-UTF-8 name, a tab and a newline in
/// names, symlinks, hard links, directories (one empty), an empty file and files of a few
/// sizes (one streamed, over the 1 MiB read-ahead limit).
fn index_tree(root: &Path) {
    use std::os::unix::fs::symlink;
    let s = root.join("sol0009");
    let long = "l".repeat(120);
    fs::create_dir_all(s.join(format!("deep/{long}"))).unwrap();
    fs::create_dir_all(s.join("empty-dir")).unwrap();
    let mut rng = Rng::new(15);
    for (name, size) in [
        ("empty", 0),
        ("one", 1),
        ("b511", 511),
        ("b512", 512),
        ("b513", 513),
        ("k70", 70_000),
        ("big", (1 << 20) + 3),
    ] {
        fs::write(s.join(name), rng.bytes(size)).unwrap();
    }
    let deep = format!("deep/{long}/{}", "f".repeat(150));
    fs::write(s.join(&deep), b"deep\n").unwrap();
    fs::write(s.join(OsStr::from_bytes(b"caf\xe9")), b"latin-1\n").unwrap();
    fs::write(s.join("tab\there"), b"tab\n").unwrap();
    fs::write(s.join("new\nline"), b"newline\n").unwrap();
    symlink("b511", s.join("link")).unwrap();
    symlink(format!("deep/{long}"), s.join("link-long")).unwrap();
    // "hard" sorts first: it is stored as the file, "one" as a hard link to it.
    fs::hard_link(s.join("one"), s.join("hard")).unwrap();
    fs::hard_link(s.join(&deep), s.join("hard-long")).unwrap();
    fs::set_permissions(s.join("k70"), fs::Permissions::from_mode(0o600)).unwrap();
    set_mtime(&s.join("b512"), 981_173_106);
}

/// A temporary directory holding `src/`, an [`index_tree`].
fn index_src() -> (tempfile::TempDir, std::path::PathBuf) {
    let t = tmp();
    let src = t.path().join("src");
    index_tree(&src);
    (t, src)
}

/// `sol-tar create --index IX -C SRC sol0009`.
fn create_with_index(ix: &Path, src: &Path) -> Out {
    tool("sol-tar")
        .args(["create", "--index"])
        .arg(ix)
        .arg("-C")
        .arg(src)
        .arg("sol0009")
        .run()
}

/// One member line of a `create --index` file, as sol-tar(1) RESTORE INDEX describes it.
struct IndexLine {
    start: u64,
    end: u64,
    kind: char,
    size: u64,
    mode: u32,
    mtime: i64,
    path: Vec<u8>,
    link: Vec<u8>,
}

impl std::fmt::Debug for IndexLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}) {}..{} size {} mode {:o} mtime {} link '{}'",
            self.path.escape_ascii(),
            self.kind,
            self.start,
            self.end,
            self.size,
            self.mode,
            self.mtime,
            self.link.escape_ascii()
        )
    }
}

/// The one-letter escapes of the index format and the bytes they stand for.
const ESCAPES: [(u8, u8); 4] = [(b'\\', b'\\'), (b't', b'\t'), (b'n', b'\n'), (b'r', b'\r')];

/// A field's bytes: `\\`, `\t`, `\n`, `\r` and `\xHH` undone; anything else escaped fails.
fn unescape_field(s: &str) -> Vec<u8> {
    // Decoded here on its own (not with sol-formats' unescape), so the test is an oracle.
    let mut out = Vec::new();
    let mut rest = s.as_bytes();
    while let Some((&c, tail)) = rest.split_first() {
        rest = tail;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let (&e, tail) = rest.split_first().expect("an escape at the end of a field");
        rest = tail;
        out.push(match e {
            b'x' => {
                let (hex, tail) = rest.split_at(2);
                rest = tail;
                u8::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap()
            }
            _ => match ESCAPES.iter().find(|(letter, _)| *letter == e) {
                Some(&(_, byte)) => byte,
                None => panic!("bad escape \\{} in {s:?}", e as char),
            },
        });
    }
    out
}

/// The member lines and the tar-end total of an index file.
fn read_index(bytes: &[u8]) -> (Vec<IndexLine>, u64) {
    let text = std::str::from_utf8(bytes).expect("the index is UTF-8 text");
    assert!(text.ends_with('\n'), "{text:?}");
    let mut lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(lines.first(), Some(&"sol-tar-index 1"));
    let end = lines.pop().unwrap();
    let total = end.strip_prefix("tar-end\t").expect("last line tar-end");
    let members = lines[1..]
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 9, "{l:?}");
            assert_eq!(f[0], "t", "{l:?}");
            IndexLine {
                start: f[1].parse().unwrap(),
                end: f[2].parse().unwrap(),
                kind: f[3].parse().unwrap(),
                size: f[4].parse().unwrap(),
                mode: u32::from_str_radix(f[5], 8).unwrap(),
                mtime: f[6].parse().unwrap(),
                path: unescape_field(f[7]),
                link: unescape_field(f[8]),
            }
        })
        .collect();
    (members, total.parse().unwrap())
}

/// `ls -l` permission letters of a mode.
fn rwx(mode: u32) -> String {
    (0..9)
        .map(|i| {
            let bit = 0o400 >> i;
            match (mode & bit != 0, i % 3) {
                (false, _) => '-',
                (true, 0) => 'r',
                (true, 1) => 'w',
                (true, _) => 'x',
            }
        })
        .collect()
}

/// GNU `tar -tv` of a stream holding one member: (type letter, permissions, size, the rest of
/// the line: the name, and " -> TARGET" or " link to TARGET"). Names are printed literally.
fn gnu_tar_lists_one(stream: Vec<u8>) -> (char, String, u64, Vec<u8>) {
    let out = sh("tar -tvf - --numeric-owner --quoting-style=literal")
        .stdin(stream)
        .run();
    out.ok();
    assert_eq!(out.stderr, "", "GNU tar warned");
    let line = out.stdout.strip_suffix(b"\n").expect("one line");
    // Five fields (permissions, owner, size, date, time), then one space and the name.
    let mut rest = line;
    let mut fields = Vec::new();
    for _ in 0..5 {
        while rest.first() == Some(&b' ') {
            rest = &rest[1..];
        }
        let n = rest.iter().position(|&c| c == b' ').unwrap();
        fields.push(String::from_utf8(rest[..n].to_vec()).unwrap());
        rest = &rest[n + 1..];
    }
    let perms = fields[0].clone();
    (
        perms.chars().next().unwrap(),
        perms[1..].to_string(),
        fields[2].parse().unwrap(),
        rest.to_vec(),
    )
}

/// Issue 15, item 1: `create --index FILE` says where each member lies in the stream. Every
/// member's bytes, with two zero blocks after them, are read by GNU tar as exactly that member
/// (name, size, type, permissions), the members tile the stream from byte 0, and tar-end is
/// the stream's length. And a stream of some members cut out this way is what
/// `sol-tar extract PATH...` restores them from.
#[test]
fn the_index_gives_each_members_bytes_which_gnu_tar_reads_alone() {
    let (t, src) = index_src();
    let ix = t.path().join("ix");
    fs::write(&ix, "stale contents of an older index\n".repeat(100)).unwrap();
    let out = create_with_index(&ix, &src);
    out.ok();
    let stream = out.stdout.clone();
    let (members, total) = read_index(&fs::read(&ix).unwrap());
    assert_eq!(total, stream.len() as u64, "tar-end is the stream's length");
    let mut at = 0;
    for m in &members {
        assert_eq!(
            m.start, at,
            "{m:?} does not start where the one before ends"
        );
        assert!(m.end > m.start && (m.end - m.start) % 512 == 0, "{m:?}");
        at = m.end;
    }
    assert!(stream.len() as u64 >= at + 1024);
    assert!(
        stream[at as usize..].iter().all(|&b| b == 0),
        "only end blocks after the last member"
    );
    // Every entry of the tree is one member, in the stream's order (GNU tar lists the same).
    let names: Vec<Vec<u8>> = members
        .iter()
        .map(|m| m.path.strip_suffix(b"/").unwrap_or(&m.path).to_vec())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, manifest(&src).into_keys().collect::<Vec<_>>());
    let gnu = sh("tar -tf - --quoting-style=escape")
        .stdin(stream.clone())
        .run();
    gnu.ok();
    assert_eq!(gnu.stdout_str().lines().count(), members.len());
    let (mut pax, mut kinds) = (0, String::new());
    for m in &members {
        let name = m.path.strip_suffix(b"/").unwrap_or(&m.path);
        let on_disk = fs::symlink_metadata(src.join(OsStr::from_bytes(name))).unwrap();
        assert_eq!(m.mode, on_disk.mode() & 0o7777, "{m:?}");
        assert_eq!(m.mtime, on_disk.mtime(), "{m:?}");
        let mut one = stream[m.start as usize..m.end as usize].to_vec();
        if one[156] == b'x' {
            pax += 1;
        }
        one.extend([0u8; 1024]);
        let (kind, perms, size, rest) = gnu_tar_lists_one(one);
        let (want_kind, suffix): (char, &[u8]) = match m.kind {
            'f' => ('-', b""),
            'd' => ('d', b""),
            'l' => ('l', b" -> "),
            'h' => ('h', b" link to "),
            other => panic!("type {other}"),
        };
        kinds.push(m.kind);
        assert_eq!(kind, want_kind, "{m:?}");
        assert_eq!(perms, rwx(m.mode), "{m:?}");
        let want_size = if m.kind == 'f' { on_disk.len() } else { 0 };
        assert_eq!((m.size, size), (want_size, want_size), "{m:?}");
        let mut want = m.path.clone();
        if !suffix.is_empty() {
            want.extend_from_slice(suffix);
            want.extend_from_slice(&m.link);
        }
        assert_eq!(
            rest.escape_ascii().to_string(),
            want.escape_ascii().to_string()
        );
        match m.kind {
            'l' => assert_eq!(
                m.link,
                fs::read_link(src.join(OsStr::from_bytes(name)))
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
            ),
            'h' => assert!(!m.link.is_empty()),
            _ => assert!(m.link.is_empty(), "{m:?}"),
        }
    }
    assert!(
        pax >= 4,
        "long names and targets of each kind take pax headers"
    );
    for k in ['f', 'd', 'l', 'h'] {
        assert!(kinds.contains(k), "no member of type {k}");
    }
    // A restore's stream: the selected members back to back (a hard link with its target),
    // then two zero blocks.
    let dest = t.path().join("dest");
    let paths: [&[u8]; 2] = [b"sol0009/deep", b"sol0009/hard-long"];
    let mut cut = Vec::new();
    for (m, name) in members.iter().zip(&names) {
        if paths
            .iter()
            .any(|p| name == p || name.starts_with(&[*p, b"/"].concat()))
        {
            cut.extend_from_slice(&stream[m.start as usize..m.end as usize]);
        }
    }
    cut.extend([0u8; 1024]);
    extract_into(&dest)
        .args(paths.iter().map(|p| OsStr::from_bytes(p)))
        .stdin(cut)
        .run()
        .ok();
    let (want, got) = (manifest(&src), manifest(&dest));
    let restored: Vec<&Vec<u8>> = got.keys().collect();
    assert_eq!(restored.len(), 5, "{restored:?}"); // sol0009, deep, deep/l..., its file, hard-long
    for (name, line) in &got {
        if name != b"sol0009" {
            assert_eq!(line, &want[name], "{}", name.escape_ascii());
        }
    }
}

/// ... and an index that cannot be written is one line and status 1: at once when it cannot
/// be created (no stream is written), or when a write fails; the stream then ends without its
/// end blocks, so no reader takes it for complete.
#[test]
fn an_index_that_cannot_be_written_is_one_line_and_status_1() {
    let (t, src) = index_src();
    let missing = t.path().join("no/such/dir/ix");
    let out = create_with_index(&missing, &src);
    out.code(1).stderr_is(&format!(
        "sol-tar: index file '{}': No such file or directory",
        missing.display()
    ));
    assert!(out.stdout.is_empty());
    let full = tool("sol-tar")
        .args(["create", "--index", "/dev/full", "-C"])
        .arg(&src)
        .arg("sol0009")
        .run();
    full.code(1)
        .stderr_is("sol-tar: writing index file '/dev/full': No space left on device");
    let whole = archive(&src, "sol0009");
    assert!(
        full.stdout.len() < whole.len(),
        "the stream has its end blocks"
    );
    tool("sol-tar")
        .arg("list")
        .stdin(full.stdout.clone())
        .run()
        .code(3)
        .one_line_with("truncated archive");
}

/// The manifest lines of `root` whose names are `names` or under one of them.
fn manifest_under(root: &Path, names: &[&[u8]]) -> std::collections::BTreeMap<Vec<u8>, String> {
    manifest(root)
        .into_iter()
        .filter(|(k, _)| {
            names
                .iter()
                .any(|n| k == n || k.starts_with(&[*n, b"/"].concat()))
        })
        .collect()
}

/// Issue 15, item 2: `extract PATH...` writes only the members named and what is under them,
/// as GNU `tar -x PATH...` does: the same entries, byte-identical; directories above them are
/// made, not restored. A hard link whose target is selected too, and a symlink whatever it
/// points to, are made as usual. The archive comes with -f, a leading './' and a trailing '/'
/// do not count, and a non-UTF-8 PATH works.
#[test]
fn extract_paths_writes_only_what_they_name_as_gnu_tar_does() {
    let (t, src) = make_tree();
    let ar = t.path().join("a.tar");
    fs::write(&ar, archive(&src, "sol0001")).unwrap();
    // a/b holds the first name of notes.txt's inode; hard-notes is a later one, a/link-rel a
    // symlink to notes.txt, which is not selected.
    let paths: [&[u8]; 5] = [
        b"sol0001/a/b",
        b"./sol0001/run.sh/",
        b"sol0001/caf\xe9-latin1.txt",
        b"sol0001/hard-notes",
        b"sol0001/a/link-rel",
    ];
    let ours = t.path().join("ours");
    extract_into(&ours)
        .arg("-f")
        .arg(&ar)
        .args(paths.iter().map(|p| OsStr::from_bytes(p)))
        .run()
        .ok();
    // GNU tar takes the same PATHs, without the leading "./" (it would not find the member).
    let selected: Vec<&[u8]> = vec![
        b"sol0001/a/b",
        b"sol0001/run.sh",
        b"sol0001/caf\xe9-latin1.txt",
        b"sol0001/hard-notes",
        b"sol0001/a/link-rel",
    ];
    let gnu = t.path().join("gnu");
    fs::create_dir(&gnu).unwrap();
    output_ok(
        std::process::Command::new("tar")
            .arg("-xf")
            .arg(&ar)
            .arg("-C")
            .arg(&gnu)
            .args(selected.iter().map(|p| OsStr::from_bytes(p))),
        "",
    );
    // The same entries as GNU tar; the selected ones as in the source tree.
    let names = |m: &std::collections::BTreeMap<Vec<u8>, String>| -> Vec<Vec<u8>> {
        m.keys().cloned().collect()
    };
    let got = manifest(&ours);
    assert_eq!(names(&got), names(&manifest(&gnu)));
    let want = manifest_under(&src, &selected);
    assert_eq!(manifest_under(&ours, &selected), want);
    assert_eq!(
        names(&got),
        [&b"sol0001"[..], b"sol0001/a"]
            .iter()
            .map(|n| n.to_vec())
            .chain(names(&want))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>(),
        "only the selected members and the directories above them"
    );
    let ino = |p: &str| fs::metadata(ours.join(p)).unwrap().ino();
    assert_eq!(ino("sol0001/hard-notes"), ino("sol0001/a/b/hard-notes-2"));
    // The same from stdin, with -f - and with no -f.
    for f in [&["-f", "-"][..], &[]] {
        let dest = t.path().join(format!("stdin{}", f.len()));
        extract_into(&dest)
            .args(f)
            .args(paths.iter().map(|p| OsStr::from_bytes(p)))
            .stdin(fs::read(&ar).unwrap())
            .run()
            .ok();
        assert_eq!(manifest_under(&dest, &selected), want);
    }
}

/// ... a PATH that names no member (a prefix of a name is not the name) is one line each,
/// after the stream, and status 1; a selected hard link whose target is not selected is one
/// line naming both, status 1, and the rest is extracted.
#[test]
fn extract_paths_report_what_they_did_not_find_or_could_not_link() {
    let (t, src) = make_tree();
    let ar = archive(&src, "sol0001");
    let dest = t.path().join("dest");
    let out = extract_into(&dest)
        .args([
            "sol0001/nope",
            "sol0001/run.sh",
            "sol0001/a/not",
            "sol0001/a/notes.txt",
            "nope/",
        ])
        .stdin(ar.clone())
        .run();
    out.code(1);
    assert_eq!(
        out.stderr,
        "sol-tar: sol0001/a/notes.txt: not extracted: it is a hard link to \
         'sol0001/a/b/hard-notes-2', which is not selected; name that too\n\
         sol-tar: sol0001/nope: not found in the archive\n\
         sol-tar: sol0001/a/not: not found in the archive\n\
         sol-tar: nope/: not found in the archive\n"
    );
    assert_eq!(
        fs::read(dest.join("sol0001/run.sh")).unwrap(),
        fs::read(src.join("sol0001/run.sh")).unwrap()
    );
    assert!(!dest.join("sol0001/a/notes.txt").exists());
    // Named together, the link is made.
    extract_into(&dest)
        .args(["sol0001/a/notes.txt", "sol0001/a/b/hard-notes-2"])
        .stdin(ar)
        .run()
        .ok();
    let sel: [&[u8]; 2] = [b"sol0001/a/notes.txt", b"sol0001/a/b/hard-notes-2"];
    assert_eq!(manifest_under(&dest, &sel), manifest_under(&src, &sel));
}

/// ... and members not selected are still read as strictly: a truncated stream or a
/// malformed header anywhere is status 3 with the same line as without PATHs.
#[test]
fn extract_paths_check_the_members_they_skip() {
    let (_t, src) = make_tree();
    let ar = archive(&src, "sol0001");
    for cut in [ar.len() - 1024, ar.len() / 2 + 100] {
        let t = tmp();
        extract_into(t.path())
            .arg("sol0001/a")
            .stdin(ar[..cut].to_vec())
            .run()
            .code(3)
            .one_line_with("truncated archive");
    }
    for record in [&b"11 size=-1\n"[..], b"10 path=fg\n"] {
        let bad = archive_with(Some(record), None, b"data");
        let t = tmp();
        let whole = extract_into(t.path()).stdin(bad.clone()).run();
        whole.code(3);
        extract_into(t.path())
            .arg("other")
            .stdin(bad)
            .run()
            .code(3)
            .stderr_is(whole.stderr.trim_end());
    }
}

/// Issue 15, item 3: with --keep-old-files what is in DEST stays: a file, symlink or file in
/// a directory's place is kept and reported (one line each, status 1), an existing directory
/// keeps its mode and mtime, and what is missing is extracted. Without it, everything is
/// replaced, as before.
#[test]
fn keep_old_files_keeps_what_is_there_and_extracts_what_is_missing() {
    let (t, src) = make_tree();
    let ar = archive(&src, "sol0001");
    let dest = t.path().join("dest");
    extract_into(&dest).stdin(ar.clone()).run().ok();
    let s = dest.join("sol0001");
    fs::write(s.join("run.sh"), b"mine\n").unwrap();
    fs::remove_file(s.join("a/link-rel")).unwrap();
    std::os::unix::fs::symlink("elsewhere", s.join("a/link-rel")).unwrap();
    fs::remove_file(s.join("data/t005.log")).unwrap();
    fs::remove_dir(s.join("empty")).unwrap();
    fs::write(
        s.join("empty"),
        b"a file where the archive has a directory\n",
    )
    .unwrap();
    for d in ["data", "deep"] {
        fs::set_permissions(s.join(d), fs::Permissions::from_mode(0o700)).unwrap();
        set_mtime(&s.join(d), 1_000_000_000);
    }
    fs::remove_dir_all(s.join("a/b/c")).unwrap();
    let out = tool("sol-tar")
        .args(["extract", "--keep-old-files", "-C"])
        .arg(&dest)
        .stdin(ar.clone())
        .run();
    out.code(1);
    // One line per non-directory entry still there, and one for the directory in the way.
    let kept: Vec<&str> = out.stderr.lines().collect();
    for line in &kept {
        assert!(
            line.starts_with("sol-tar: sol0001/")
                && line.ends_with(": exists, not replaced (--keep-old-files)"),
            "{line}"
        );
    }
    let src_files = manifest(&src)
        .values()
        .filter(|v| !v.starts_with("d "))
        .count();
    let missing = 1 + 1; // data/t005.log, a/b/c/d/leaf.csv
    assert_eq!(kept.len(), src_files - missing + 1, "{}", out.stderr);
    for name in ["run.sh", "a/link-rel", "empty/", "a/notes.txt"] {
        let line = format!("sol-tar: sol0001/{name}: exists, not replaced (--keep-old-files)");
        assert!(kept.contains(&line.as_str()), "{line}");
    }
    assert_eq!(fs::read(s.join("run.sh")).unwrap(), b"mine\n");
    assert_eq!(
        fs::read_link(s.join("a/link-rel")).unwrap(),
        Path::new("elsewhere")
    );
    assert!(fs::symlink_metadata(s.join("empty")).unwrap().is_file());
    // Existing directories keep their mode and mtime: neither is set from the archive (data,
    // in the archive 0755 and 1500000000, has a file added, which moves its mtime to now).
    let deep = fs::metadata(s.join("deep")).unwrap();
    assert_eq!((deep.mode() & 0o7777, deep.mtime()), (0o700, 1_000_000_000));
    let data = fs::metadata(s.join("data")).unwrap();
    assert_eq!(data.mode() & 0o7777, 0o700);
    assert!(data.mtime() > 1_500_000_000, "{}", data.mtime());
    // What was missing is back as it was, directories with their modes and mtimes.
    let back: [&[u8]; 2] = [b"sol0001/data/t005.log", b"sol0001/a/b/c"];
    assert_eq!(manifest_under(&dest, &back), manifest_under(&src, &back));
    assert_eq!(manifest_under(&dest, &back).len(), 4);
    // Without the option, everything is replaced.
    fs::remove_file(s.join("empty")).unwrap();
    extract_into(&dest).stdin(ar).run().ok();
    assert_same_tree(&src, &dest);
}

/// A signal during extraction leaves no half-written file under its real name: the file being
/// written is removed and the process ends by that signal, also when its input has stalled
/// (sol-restore's last step copies restored files into place through `sol-tar extract`; a
/// Ctrl-C there left a truncated file that the next run then kept).
#[test]
fn a_signal_mid_file_removes_the_half_written_file() {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT] {
        let t = tmp();
        let src = t.path().join("src/sol0001");
        fs::create_dir_all(src.join("d")).unwrap();
        fs::write(src.join("d/a.txt"), b"small\n").unwrap();
        fs::write(src.join("d/big.bin"), Rng::new(5).bytes(24 << 20)).unwrap();
        let stream = archive(&t.path().join("src"), "sol0001");
        let dest = t.path().join("dest");
        signal_mid_file(&stream[..12 << 20], &dest, "sol0001/d/big.bin", sig);
        // A small file still queued for the writers is not written at all, never in part.
        if let Ok(data) = fs::read(dest.join("sol0001/d/a.txt")) {
            assert_eq!(data, b"small\n");
        }
    }
}

/// `sol-tar extract -C DEST` fed `part` of a stream, which then stalls (stdin stays open);
/// once DEST/BIG has grown to 4 MiB, signal SIG: the process ends by it and BIG is gone.
pub(crate) fn signal_mid_file(part: &[u8], dest: &Path, big: &str, sig: i32) {
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let mut child = Command::new(bin("sol-tar"))
        .args(["extract", "-C"])
        .arg(dest)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(part).unwrap();
    stdin.flush().unwrap();
    let big = dest.join(big);
    let start = Instant::now();
    while fs::metadata(&big).map_or(0, |m| m.len()) < 4 << 20 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} never grew",
            big.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill on the child's pid.
    unsafe { libc::kill(child.id() as i32, sig) };
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "signal {sig}: sol-tar extract did not end with its input stalled"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    assert_eq!(status.signal(), Some(sig), "{status:?}");
    assert!(
        !big.exists(),
        "signal {sig}: a half-written {} ({} bytes) is left under its real name",
        big.display(),
        fs::metadata(&big).unwrap().len()
    );
}

/// `extract --keep-old-files` never joins a hard link to a file it kept: the link would hold
/// that file's data (or be a symlink to anywhere) instead of its own. It is one line naming
/// the target and status 1 (sol-restore --path moves restored files into place this way).
#[test]
fn keep_old_files_joins_no_hard_link_to_a_kept_file() {
    let t = tmp();
    let src = t.path().join("src/sol0001");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), b"archived\n").unwrap();
    fs::hard_link(src.join("a.txt"), src.join("b.txt")).unwrap();
    let stream = archive(&t.path().join("src"), "sol0001");
    let dest = t.path().join("dest");
    fs::create_dir_all(dest.join("sol0001")).unwrap();
    fs::write(dest.join("sol0001/a.txt"), b"edited by hand\n").unwrap();
    let out = tool("sol-tar")
        .args(["extract", "--keep-old-files", "-C"])
        .arg(&dest)
        .stdin(stream)
        .run();
    out.code(1);
    out.stderr_has("sol0001/b.txt: not extracted: it is a hard link to 'sol0001/a.txt'");
    assert_eq!(
        fs::read(dest.join("sol0001/a.txt")).unwrap(),
        b"edited by hand\n"
    );
    assert!(
        fs::symlink_metadata(dest.join("sol0001/b.txt")).is_err(),
        "b.txt was linked to the kept a.txt: {:?}",
        fs::read(dest.join("sol0001/b.txt"))
    );
}
