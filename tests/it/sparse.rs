//! Sparse files: stored as their data (pax sparse 1.0), GNU tar's sparse members read in all
//! their forms, holes made on extraction, and the maps read strictly.

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use crate::util::*;

/// A file of `size` bytes holding `islands` (offset, bytes) and holes elsewhere.
pub(crate) fn sparse_file(path: &Path, size: u64, islands: &[(u64, Vec<u8>)]) {
    let f = fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    for (at, bytes) in islands {
        f.write_all_at(bytes, *at).unwrap();
    }
    f.sync_all().unwrap();
    let m = fs::metadata(path).unwrap();
    assert!(
        m.blocks() * 512 < size,
        "the file system here made no holes in {}",
        path.display()
    );
}

/// The islands are where they were, and everything else of `path` is a hole (so zeros):
/// checked with pread and SEEK_DATA, not with our tools.
#[track_caller]
pub(crate) fn assert_holes_kept(path: &Path, size: u64, islands: &[(u64, Vec<u8>)]) {
    let f = fs::File::open(path).unwrap();
    let m = f.metadata().unwrap();
    assert_eq!(m.len(), size, "{}", path.display());
    let data: u64 = islands.iter().map(|(_, b)| b.len() as u64).sum();
    assert!(
        m.blocks() * 512 < data + (8 << 20),
        "{}: {} bytes allocated for {data} bytes of data: the holes were filled",
        path.display(),
        m.blocks() * 512
    );
    for (at, bytes) in islands {
        let mut got = vec![0u8; bytes.len()];
        f.read_exact_at(&mut got, *at).unwrap();
        assert!(
            got == *bytes,
            "{}: the island at {at} differs",
            path.display()
        );
    }
}

/// A mission sol with one large sparse file and a plain one.
fn sol_with_sparse_file(size: u64) -> (tempfile::TempDir, Vec<(u64, Vec<u8>)>) {
    let t = tmp();
    let sol = t.path().join("src/sol0001");
    fs::create_dir_all(&sol).unwrap();
    let mut rng = Rng::new(9);
    let islands: Vec<(u64, Vec<u8>)> = [0, 5 << 20, size / 2 + 12_345, size - 300_000]
        .iter()
        .map(|&at| (at, rng.bytes(256 << 10)))
        .collect();
    sparse_file(&sol.join("cube.raw"), size, &islands);
    fs::write(sol.join("notes.txt"), b"a plain file\n").unwrap();
    (t, islands)
}

/// A 9 GiB file with 1 MiB of data costs about 1 MiB through every stage of the backup,
/// GNU tar lists and extracts our member with its holes, and the restore makes holes.
#[test]
fn a_9_gib_sparse_file_costs_its_data_through_every_stage() {
    let size: u64 = 9 << 30;
    let (t, islands) = sol_with_sparse_file(size);
    let (src, key) = (t.path().join("src"), t.path().join("k"));
    keyfile(t.path(), "k", 256);
    let sealed = t.path().join("sol0001.tar.gz.sc");
    sh(&format!(
        "sol-tar create -C '{}' sol0001 | sol-zip | sol-crypt -e -k '{}' > '{}'",
        src.display(),
        key.display(),
        sealed.display()
    ))
    .run()
    .ok();
    let stored = fs::metadata(&sealed).unwrap().len();
    assert!(
        stored < 2 << 20,
        "9 GiB with 1 MiB of data took {stored} bytes"
    );
    // GNU tar: the real name and size, and the file back with its holes.
    let gnu = t.path().join("gnu");
    fs::create_dir(&gnu).unwrap();
    let list = sh(&format!(
        "sol-crypt -d -k '{k}' < '{s}' | sol-zip -d | tar -tvf -; \
         sol-crypt -d -k '{k}' < '{s}' | sol-zip -d | tar -xf - -C '{g}'",
        k = key.display(),
        s = sealed.display(),
        g = gnu.display()
    ))
    .run();
    list.ok();
    list.stdout_has(&format!(" {size} "))
        .stdout_has("sol0001/cube.raw\n");
    assert_holes_kept(&gnu.join("sol0001/cube.raw"), size, &islands);
    // Ours: the restore makes the holes, and --check and the sums agree.
    let dest = t.path().join("dest");
    sh(&format!(
        "sol-crypt -d -k '{}' < '{}' | sol-zip -d | sol-tar extract -C '{}'",
        key.display(),
        sealed.display(),
        dest.display()
    ))
    .run()
    .ok();
    assert_holes_kept(&dest.join("sol0001/cube.raw"), size, &islands);
    sh(&format!(
        "sol-crypt -d -k '{}' < '{}' | sol-zip -d | tar-md5 --check '{}'",
        key.display(),
        sealed.display(),
        src.display()
    ))
    .run()
    .ok();
    // A byte written into a hole of the live copy is a difference.
    let live = fs::OpenOptions::new()
        .write(true)
        .open(src.join("sol0001/cube.raw"))
        .unwrap();
    live.write_all_at(b"x", size / 3).unwrap();
    drop(live);
    let out = sh(&format!(
        "sol-crypt -d -k '{}' < '{}' | sol-zip -d | tar-md5 --check '{}'",
        key.display(),
        sealed.display(),
        src.display()
    ))
    .run();
    out.code(3);
    out.stdout_has("changed: sol0001/cube.raw");
}

/// GNU tar's sparse members in every form it writes (old GNU, pax 0.0, 0.1 and 1.0) are
/// extracted with their holes, listed by their real name and size, summed as md5sum sums
/// the file, and checked against it.
#[test]
fn we_read_gnu_tars_sparse_members_in_every_form() {
    let size: u64 = 24 << 20;
    let (t, islands) = sol_with_sparse_file(size);
    let src = t.path().join("src");
    let md5 = sh(&format!(
        "cd '{}' && md5sum sol0001/cube.raw",
        src.display()
    ))
    .run();
    md5.ok();
    for (name, flags) in [
        ("old GNU", "--format=gnu -S"),
        ("pax 0.0", "--format=pax -S --sparse-version=0.0"),
        ("pax 0.1", "--format=pax -S --sparse-version=0.1"),
        ("pax 1.0", "--format=pax -S --sparse-version=1.0"),
    ] {
        let ar = t.path().join(format!("{}.tar", name.replace(' ', "-")));
        sh(&format!(
            "tar {flags} -cf '{}' -C '{}' sol0001",
            ar.display(),
            src.display()
        ))
        .run()
        .ok();
        let data = fs::read(&ar).unwrap();
        let dest = t.path().join(format!("dest-{}", name.replace(' ', "-")));
        extract_into(&dest).stdin(data.clone()).run().ok();
        assert_holes_kept(&dest.join("sol0001/cube.raw"), size, &islands);
        let list = tool("sol-tar")
            .args(["list", "-v"])
            .stdin(data.clone())
            .run();
        let listed = list.ok().stdout_has(&format!(" {size} ")).stdout_str();
        assert!(!listed.contains("GNUSparseFile"), "{name}: {listed}");
        let sums = tool("tar-md5").stdin(data.clone()).run();
        sums.ok();
        assert!(
            sums.stdout_str().contains(&md5.stdout_str()),
            "{name}: {} lacks {}",
            sums.stdout_str(),
            md5.stdout_str()
        );
        tool("tar-md5")
            .arg("--check")
            .arg(&src)
            .stdin(data)
            .run()
            .ok();
    }
}

/// Where a 1.0 member's map starts in `ar`: the block after the header named
/// `.../GNUSparseFile.0/...`.
fn map_at(ar: &[u8]) -> usize {
    let at = ar
        .windows(16)
        .position(|w| w == b"GNUSparseFile.0/")
        .expect("a sparse member");
    (at / 512 + 1) * 512
}

/// Bad maps and bad sparse records are integrity failures (status 3) in one line naming
/// the entry, whichever tool reads them: numbers that are not plain decimal or overflow,
/// regions out of order, overlapping or past the size, lengths that do not add up, and a
/// negative size.
#[test]
fn bad_sparse_maps_are_integrity_failures() {
    let size: u64 = 24 << 20;
    let (t, _) = sol_with_sparse_file(size);
    let src = t.path().join("src");
    let good = archive(&src, "sol0001");
    let at = map_at(&good);
    let map_end = at + 512;
    let text = String::from_utf8_lossy(&good[at..map_end]);
    let nums: Vec<u64> = text
        .trim_end_matches('\0')
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(nums[0] as usize * 2 + 1, nums.len(), "map: {text}");
    let (o1, l1, o2, l2) = (nums[1], nums[2], nums[3], nums[4]);
    let n = nums[0];
    let rest: String = nums[5..].iter().map(|v| format!("{v}\n")).collect();
    let past = format!("past the file's size {size}");
    let cases: [(String, &str); 9] = [
        ("-1\n".to_string(), "bad region count '-1'"),
        (
            format!("{n}\n99999999999999999999\n{l1}\n{o2}\n{l2}\n{rest}"),
            "bad offset '99999999999999999999'",
        ),
        (
            format!("{n}\n{o2}\n{l1}\n{o1}\n{l2}\n{rest}"),
            "out of order",
        ),
        (
            format!("{n}\n{o1}\n{}\n{o2}\n{l2}\n{rest}", o2 + 1 - o1),
            "out of order",
        ),
        (
            format!("{n}\n{o1}\n{l1}\n{o2}\n{}\n{rest}", l2 + 1),
            "do not add up",
        ),
        (format!("{n}\n{o1}\n{l1}\n"), "ends before its last region"),
        (
            format!("{n}\n{o1}\n{}\n{o2}\n{}\n{rest}", l1 - 1, l2 + 1),
            "region 1 is not whole 512-byte blocks",
        ),
        ("99999999\n".to_string(), "regions (at most"),
        (format!("1\n{size}\n{}\n", l1 + l2), &past),
    ];
    for (map, want) in cases {
        let mut bad = good.clone();
        assert!(map.len() <= 512, "{map}");
        bad[at..map_end].fill(0);
        bad[at..at + map.len()].copy_from_slice(map.as_bytes());
        refused_by_every_reader(&t, &bad, want);
    }
    // A negative real size (same length, so the pax record stays well formed).
    let real = format!("GNU.sparse.realsize={size}");
    let neg = format!("GNU.sparse.realsize=-{}", &size.to_string()[1..]);
    let i = good
        .windows(real.len())
        .position(|w| w == real.as_bytes())
        .unwrap();
    let mut bad = good.clone();
    bad[i..i + neg.len()].copy_from_slice(neg.as_bytes());
    refused_by_every_reader(&t, &bad, "GNU.sparse.realsize");
}

/// `sol-tar list`, `sol-tar extract` and `tar-md5` each refuse `ar` with status 3, one
/// line holding `want`, and extract leaves no file of the member.
#[track_caller]
fn refused_by_every_reader(t: &tempfile::TempDir, ar: &[u8], want: &str) {
    let dest = t.path().join("refused");
    let _ = fs::remove_dir_all(&dest);
    for run in [
        tool("sol-tar").arg("list"),
        extract_into(&dest),
        tool("tar-md5"),
    ] {
        let out = run.stdin(ar.to_vec()).run();
        out.code(3);
        out.one_line_with(want);
    }
    assert!(
        !dest.join("sol0001/cube.raw").exists(),
        "a refused member was extracted ({want})"
    );
}

/// A stream cut anywhere in a sparse member's headers or map is status 3 in one line, in
/// every reader (found by an attack: a cut inside a pax header's padding panicked).
#[test]
fn a_stream_cut_in_a_sparse_members_headers_is_status_3() {
    let (t, _) = sol_with_sparse_file(24 << 20);
    let good = archive(&t.path().join("src"), "sol0001");
    let map_end = map_at(&good) + 512;
    for cut in (100..map_end + 300).step_by(100) {
        for run in [tool("sol-tar").arg("list"), tool("tar-md5")] {
            let out = run.stdin(good[..cut].to_vec()).run();
            out.code(3);
            out.one_line_with("truncated");
        }
    }
}

/// A signal while a sparse member is extracted leaves no half file under its real name, in
/// our pax 1.0 form and in GNU tar's old form (made by the tar crate's unpack: found by an
/// attack).
#[test]
fn a_signal_mid_sparse_file_removes_it() {
    let t = tmp();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("sol0001")).unwrap();
    let mut rng = Rng::new(17);
    let islands = vec![(0, rng.bytes(12 << 20)), (40 << 20, rng.bytes(12 << 20))];
    sparse_file(&src.join("sol0001/cube.raw"), 64 << 20, &islands);
    let ours = archive(&src, "sol0001");
    let gnu = sh(&format!(
        "tar --format=gnu -S -cf - -C '{}' sol0001",
        src.display()
    ))
    .run();
    gnu.ok();
    for (name, stream) in [("pax 1.0", ours), ("old GNU", gnu.stdout.clone())] {
        let dest = t.path().join(name.replace(' ', "-"));
        let half = stream.len() / 2;
        crate::sol_tar::signal_mid_file(&stream[..half], &dest, "sol0001/cube.raw", libc::SIGTERM);
    }
}

/// GNU tar's old and pax 0.0 forms keep the map in headers: a file of 30,000 regions is read
/// (found by an attack: headers over 1 MiB were refused as corrupt).
#[test]
fn maps_of_tens_of_thousands_of_regions_are_read_in_every_form() {
    let t = tmp();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("sol0001")).unwrap();
    let islands: Vec<(u64, Vec<u8>)> = (0..30_000u64).map(|i| (i * 8192, vec![7u8; 16])).collect();
    let size = 30_000 * 8192;
    sparse_file(&src.join("sol0001/many.img"), size, &islands);
    let md5 = sh(&format!(
        "cd '{}' && md5sum sol0001/many.img",
        src.display()
    ))
    .run();
    md5.ok();
    for flags in ["--format=gnu -S", "--format=pax -S --sparse-version=0.0"] {
        let gnu = sh(&format!("tar {flags} -cf - -C '{}' sol0001", src.display())).run();
        gnu.ok();
        let sums = tool("tar-md5").stdin(gnu.stdout.clone()).run();
        sums.ok().stdout_has(&md5.stdout_str());
        let dest = t.path().join(flags.replace([' ', '=', '.'], "-"));
        extract_into(&dest).stdin(gnu.stdout.clone()).run().ok();
        let (got, want) = (dest.join("sol0001/many.img"), src.join("sol0001/many.img"));
        let blocks = |p: &Path| fs::metadata(p).unwrap().blocks();
        assert!(
            blocks(&got) <= blocks(&want) + 2048,
            "{flags}: {} blocks for the source's {}",
            blocks(&got),
            blocks(&want)
        );
        sh(&format!("cmp '{}' '{}'", got.display(), want.display()))
            .run()
            .ok();
    }
}
