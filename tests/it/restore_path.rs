//! Issue 15 end to end: `sol-backup` stores each archive's restore index, and
//! `sol-restore --path` brings one file or one subtree back by fetching only the ranges that
//! hold it, counted on the wire by a proxy, against every server of the S3 test matrix.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::counting::Counter;
use crate::s3env::S3;
use crate::scripts::script;
use crate::util::*;

const MIB: u64 = 1 << 20;

/// A 50 MiB tmpfs mounted on `"$1"`: room for one staged copy of the sol's images, not two.
const SMALL_TMPFS: &str = "mount -t tmpfs -o size=50m tmpfs \"$1\"";

/// `"$1"` mounted read-only.
const READ_ONLY: &str = "mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\"";

/// A sol of mission shape: 3,000 small text files in a deep tree, 24 large files of random
/// (incompressible) data, 36 MiB in all, a hard link and symlinks.
fn big_sol(root: &Path) -> PathBuf {
    let sol = root.join("sol0100");
    let mut r = Rng::new(15);
    for i in 0..3000 {
        let d = sol.join(format!("inst{}/seq{:02}/frame{:02}", i % 4, i % 13, i % 7));
        fs::create_dir_all(&d).unwrap();
        let n = r.below(3000) as usize;
        fs::write(d.join(format!("log{i:04}.txt")), r.text(n)).unwrap();
    }
    fs::create_dir_all(sol.join("images")).unwrap();
    for i in 0..24 {
        fs::write(
            sol.join(format!("images/img{i:02}.raw")),
            r.bytes(3 * MIB as usize / 2),
        )
        .unwrap();
    }
    fs::create_dir_all(sol.join("calib/links")).unwrap();
    fs::write(sol.join("calib/dark.fits"), r.bytes(40_000)).unwrap();
    fs::hard_link(
        sol.join("calib/dark.fits"),
        sol.join("calib/links/dark-hard.fits"),
    )
    .unwrap();
    std::os::unix::fs::symlink("../dark.fits", sol.join("calib/links/dark-soft.fits")).unwrap();
    std::os::unix::fs::symlink("images/img07.raw", sol.join("latest")).unwrap();
    sol
}

struct Mission {
    s3: S3,
    t: tempfile::TempDir,
    sol: PathBuf,
    key: PathBuf,
}

/// The big sol backed up by sol-backup to s3://BUCKET/sols.
fn backed_up() -> Mission {
    backed_up_with(|_| {})
}

/// The same with more files, made by `add` in the sol before it is backed up.
fn backed_up_with(add: impl FnOnce(&Path)) -> Mission {
    let s3 = S3::start();
    let t = tmp();
    let sol = big_sol(&t.path().join("mission"));
    add(&sol);
    let key = keyfile(t.path(), "site.key", 256);
    let out = s3
        .env(sh(&format!(
            "'{}' -k '{}' '{}' {}",
            script("sol-backup").display(),
            key.display(),
            sol.display(),
            s3.url("sols")
        )))
        .run();
    out.ok();
    assert!(
        !out.stdout_str().contains("warning"),
        "{}",
        out.stdout_str()
    );
    Mission { s3, t, sol, key }
}

impl Mission {
    /// `sol-restore ARGS` through a counting proxy: its output and the bytes it received.
    fn restore(&self, args: &str) -> (Out, u64) {
        let proxy = Counter::start(self.s3.addr);
        let out = self.restore_at(&proxy.endpoint, args);
        (out, proxy.down())
    }

    /// `sol-restore -k KEY ARGS`, reaching the server at `endpoint`.
    fn restore_at(&self, endpoint: &str, args: &str) -> Out {
        let cmd = format!(
            "'{}' -k '{}' {args}",
            script("sol-restore").display(),
            self.key.display()
        );
        self.s3.env_at(sh(&cmd), endpoint).run()
    }

    /// sol-restore ARGS into a new T/NAME, in a user and mount namespace after MOUNT of it ("$1").
    fn restore_after_mount(&self, mount: &str, args: &str, name: &str) -> Out {
        let dest = self.t.path().join(name);
        fs::create_dir(&dest).unwrap();
        self.s3
            .env(sh(&format!(
                "unshare -rm bash -c '{mount} && \
                 exec \"$2\" -k \"$3\" {args} \"$4\" sol0100 \"$1\"' _ '{}' '{}' '{}' {}",
                dest.display(),
                script("sol-restore").display(),
                self.key.display(),
                self.url()
            )))
            .run()
    }

    /// `sol-restore --list URL sol0100`, as `restore` runs it.
    fn list(&self) -> (Out, u64) {
        self.restore(&format!("--list {} sol0100", self.url()))
    }

    /// `sol-restore ARGS URL sol0100 'DEST'`, as `restore` runs it.
    fn restore_into(&self, args: &str, dest: &Path) -> (Out, u64) {
        self.restore(&format!(
            "{args} {} sol0100 '{}'",
            self.url(),
            dest.display()
        ))
    }

    /// Remove the sol's restore index, as for an archive stored before indexes.
    fn delete_index(&self) {
        self.s3.delete("sols/sol0100.index.gz.sc");
    }

    fn archive_size(&self) -> u64 {
        self.s3.get("sols/sol0100.tar.gz.sc").unwrap().len() as u64
    }

    fn index_size(&self) -> u64 {
        self.s3.get("sols/sol0100.index.gz.sc").unwrap().len() as u64
    }

    fn url(&self) -> String {
        self.s3.url("sols")
    }
}

/// Files under `dir` (relative names, sorted), links and directories included.
fn names(dir: &Path) -> Vec<String> {
    if !dir.exists() {
        return Vec::new();
    }
    let out = sh(&format!(
        "cd '{}' && find . -mindepth 1 | LC_ALL=C sort",
        dir.display()
    ))
    .run();
    out.ok();
    out.stdout_str().lines().map(str::to_string).collect()
}

#[test]
fn one_file_and_one_subtree_cost_a_few_mib_and_come_back_exact() {
    let m = backed_up();
    let whole = m.archive_size();
    let index = m.index_size();
    assert!(whole > 30 * MIB, "{whole}");
    // The index is a small share of the archive.
    assert!(index * 100 < whole, "index {index} of {whole}");

    // One small file.
    let dest = m.t.path().join("one");
    let (out, down) = m.restore_into("--path inst2/seq12/frame02/log1234.txt", &dest);
    out.ok();
    let f = "sol0100/inst2/seq12/frame02/log1234.txt";
    assert_eq!(
        fs::read(dest.join(f)).unwrap(),
        fs::read(m.sol.join(&f[8..])).unwrap()
    );
    assert_eq!(
        names(&dest),
        [
            "./sol0100",
            "./sol0100/inst2",
            "./sol0100/inst2/seq12",
            "./sol0100/inst2/seq12/frame02",
            "./sol0100/inst2/seq12/frame02/log1234.txt"
        ]
    );
    assert!(
        down < 3 * MIB + index,
        "one small file cost {down} bytes on the wire (archive {whole}, index {index})"
    );
    // The count and the bytes are the file's (directories' sizes were counted too).
    let size = fs::metadata(m.sol.join(&f[8..])).unwrap().len();
    assert!(
        out.stdout_str()
            .contains(&format!("restored 1 files ({size} bytes)")),
        "{}",
        out.stdout_str()
    );

    // A subtree, given as --list names it, with a hard link and a symlink inside it.
    let dest = m.t.path().join("sub");
    let (out, down) = m.restore_into("--path sol0100/calib --path inst1/seq05", &dest);
    out.ok();
    let diff = sh(&format!(
        "diff -r --no-dereference '{}/calib' '{}/sol0100/calib' && diff -r '{}/inst1/seq05' '{}/sol0100/inst1/seq05'",
        m.sol.display(),
        dest.display(),
        m.sol.display(),
        dest.display()
    ))
    .run();
    diff.ok();
    let hard = fs::metadata(dest.join("sol0100/calib/links/dark-hard.fits")).unwrap();
    let orig = fs::metadata(dest.join("sol0100/calib/dark.fits")).unwrap();
    assert_eq!((hard.ino(), hard.nlink()), (orig.ino(), 2));
    assert_eq!(
        fs::read_link(dest.join("sol0100/calib/links/dark-soft.fits")).unwrap(),
        Path::new("../dark.fits")
    );
    assert!(!dest.join("sol0100/images").exists());
    assert!(
        down < whole / 3,
        "a subtree of a few % cost {down} of {whole} bytes"
    );

    // A hard link alone brings its data (stored with its target) along.
    let dest = m.t.path().join("hard");
    let (out, _) = m.restore_into("--path calib/links/dark-hard.fits", &dest);
    out.ok();
    assert_eq!(
        fs::read(dest.join("sol0100/calib/links/dark-hard.fits")).unwrap(),
        fs::read(m.sol.join("calib/dark.fits")).unwrap()
    );

    // --list reads only the index.
    let (out, down) = m.list();
    out.ok();
    let lines = out.stdout_str();
    assert_eq!(
        lines.lines().count(),
        names(&m.sol).len() + 1,
        "the sol itself and each entry"
    );
    assert!(
        lines.contains(" sol0100/latest -> images/img07.raw\n"),
        "{lines}"
    );
    assert!(lines
        .lines()
        .any(|l| l.starts_with("f ") && l.ends_with(" sol0100/images/img03.raw")));
    assert!(
        down < index + 64 * 1024,
        "--list cost {down} bytes, the index is {index}"
    );

    // A path that is not in the sol: status 1, one line, nothing restored.
    let dest = m.t.path().join("none");
    let (out, _) = m.restore_into("--path nosuch", &dest);
    out.code(1)
        .one_line_with("'sol0100/nosuch' is not in the archive");
    assert!(names(&dest).is_empty());
}

#[test]
fn existing_files_are_kept_unless_force() {
    let m = backed_up();
    let dest = m.t.path().join("dest");
    let f = dest.join("sol0100/calib/dark.fits");
    fs::create_dir_all(f.parent().unwrap()).unwrap();
    fs::write(&f, b"the operator's own copy").unwrap();
    // A directory of the operator's with the name staging directories once had.
    fs::create_dir_all(dest.join(".sol0100.path.partial")).unwrap();
    fs::write(dest.join(".sol0100.path.partial/mine"), b"mine").unwrap();
    let args = format!("--path calib {} sol0100 '{}'", m.url(), dest.display());
    let (out, _) = m.restore(&args);
    out.code(1);
    assert!(
        out.stderr.contains("exists, not replaced"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("--force replaces them"),
        "{}",
        out.stderr
    );
    assert_eq!(fs::read(&f).unwrap(), b"the operator's own copy");
    // The rest of the subtree was restored.
    assert!(dest
        .join("sol0100/calib/links/dark-soft.fits")
        .symlink_metadata()
        .is_ok());
    let (out, _) = m.restore(&format!("--force {args}"));
    out.ok();
    assert_eq!(
        fs::read(&f).unwrap(),
        fs::read(m.sol.join("calib/dark.fits")).unwrap()
    );
    // No staging directory is left behind, and none of the operator's was taken over.
    assert_eq!(
        names(&dest)
            .iter()
            .filter(|n| n.contains(".sol0100.path"))
            .collect::<Vec<_>>(),
        ["./.sol0100.path.partial", "./.sol0100.path.partial/mine"]
    );
}

/// When putting the files into place fails (DEST's file system fills up: the staged copy
/// fits, the second does not), the lines say why and nothing else: no "restored" line, no
/// "--force" hint, no status of a reader cut off by the failure. DEST that is a file is one
/// line too.
#[test]
fn a_failing_last_step_says_why_and_claims_nothing() {
    let m = backed_up();
    let out = m.restore_after_mount(SMALL_TMPFS, "--path images", "full");
    out.code(1);
    out.stderr_has("No space left on device");
    out.stderr_has("not all of the 24 files were put in place");
    for wrong in ["--force", "status 141", "restored"] {
        assert!(!out.stderr.contains(wrong), "{wrong}: {}", out.stderr);
    }
    assert!(
        !out.stdout_str().contains("restored"),
        "{}",
        out.stdout_str()
    );

    let file = m.t.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    let (out, _) = m.restore_into("--path calib", &file);
    out.code(1);
    out.one_line_with("sol-restore: cannot create directory");

    // A read-only DEST: one line, prefixed, saying why (mktemp's own line came first).
    let out = m.restore_after_mount(READ_ONLY, "--path calib", "ro");
    out.code(1);
    out.one_line_with("cannot create a staging directory");
    out.stderr_has("Read-only file system");
}

#[test]
fn a_tampered_index_or_chunk_is_status_3_and_nothing_lands() {
    let m = backed_up();
    let f = "--path images/img05.raw";
    // A byte of the stored index changed.
    let mut ix = m.s3.get("sols/sol0100.index.gz.sc").unwrap();
    let at = ix.len() / 2;
    ix[at] ^= 0x40;
    m.s3.put("sols/sol0100.index.gz.sc", ix);
    let dest = m.t.path().join("a");
    let (out, _) = m.restore(&format!("{f} {} sol0100 '{}'", m.url(), dest.display()));
    out.code(3);
    assert!(out.stderr.contains("sol-crypt"), "{}", out.stderr);
    assert!(names(&dest).is_empty(), "{:?}", names(&dest));
    // --list too.
    let (out, _) = m.list();
    out.code(3);
    assert!(out.stdout.is_empty());
}

#[test]
fn a_chunk_changed_on_the_wire_is_status_3_and_nothing_lands() {
    use crate::s3env::{Faults, Proxy};
    let m = backed_up();
    // Every connection's answer has its byte 200,000 flipped: past the listing and the
    // index (both smaller), inside the ranges of a 1.5 MB file.
    assert!(m.index_size() < 150_000, "{}", m.index_size());
    let proxy = Proxy::start(
        m.s3.addr,
        Faults {
            flip_at: Some(200_000),
            ..Faults::NONE
        },
        1,
    );
    let dest = m.t.path().join("b");
    let args = format!(
        "--path images/img05.raw {} sol0100 '{}'",
        m.url(),
        dest.display()
    );
    let out = m.restore_at(&proxy.endpoint, &args);
    out.code(3);
    assert!(
        out.stderr.contains("sol-crypt") && out.stderr.contains("authentication failed at chunk"),
        "{}",
        out.stderr
    );
    assert!(names(&dest).is_empty(), "{:?}", names(&dest));
}

#[test]
fn an_archive_without_an_index_or_with_another_ones_still_restores_a_path() {
    let m = backed_up();
    let want = fs::read(m.sol.join("calib/dark.fits")).unwrap();
    // The archive replaced behind the index's back (same content, new upload: a new ETag
    // for a multipart object on every server... or the same one: either way it works).
    let archive = m.s3.get("sols/sol0100.tar.gz.sc").unwrap();
    let re =
        m.s3.tool("s3-mput")
            .args(["--overwrite", "--part-size", "5M"])
            .arg(m.s3.url("sols/sol0100.tar.gz.sc"))
            .stdin(archive.clone())
            .run();
    re.ok();
    let dest = m.t.path().join("stale");
    let (out, down) = m.restore_into("--path calib/dark.fits", &dest);
    out.ok();
    assert_eq!(
        fs::read(dest.join("sol0100/calib/dark.fits")).unwrap(),
        want
    );
    if out.stderr.contains("describes another archive") {
        assert!(
            out.stderr.contains("streaming the whole archive"),
            "{}",
            out.stderr
        );
        assert!(down >= archive.len() as u64, "{down}");
    }
    // No index at all (an archive from before indexes): the whole archive streams.
    m.delete_index();
    let dest = m.t.path().join("old");
    let (out, down) = m.restore_into("--path calib", &dest);
    out.ok();
    assert!(out.stderr.contains("no restore index"), "{}", out.stderr);
    assert!(down >= archive.len() as u64, "{down}");
    sh(&format!(
        "diff -r --no-dereference '{}/calib' '{}/sol0100/calib'",
        m.sol.display(),
        dest.display()
    ))
    .run()
    .ok();
    // --list falls back to the archive's own listing.
    let (out, _) = m.list();
    out.ok();
    assert!(out.stdout_str().contains("sol0100/calib/dark.fits"));
}

/// An index that describes another archive (the sol stored again and its index not, as when
/// storing the index failed, or another sol's index put in its place) is never read for
/// the listing or the plan: both come from the archive itself, with a warning. Before,
/// `--list` printed the old archive's members and a file new in the archive was "not in the
/// archive".
#[test]
fn an_index_of_another_archive_is_never_read() {
    let m = backed_up();
    fs::write(
        m.sol.join("calib/new-file.txt"),
        b"stored after the index\n",
    )
    .unwrap();
    let store_again = format!(
        "sol-tar create -C '{}' sol0100 | sol-zip | sol-crypt -e -k '{}' | \
         s3-mput --overwrite {}/sol0100.tar.gz.sc",
        m.sol.parent().unwrap().display(),
        m.key.display(),
        m.url()
    );
    m.s3.env(sh(&store_again)).run().ok();
    let (out, _) = m.list();
    out.ok();
    out.stderr_has("describes another archive");
    out.stderr_has("listing the whole archive");
    assert!(
        out.stdout_str().contains("sol0100/calib/new-file.txt"),
        "{}",
        out.stdout_str()
    );
    let dest = m.t.path().join("dest");
    let (out, down) = m.restore_into("--path calib/new-file.txt", &dest);
    out.ok();
    out.stderr_has("streaming the whole archive");
    assert!(down >= m.archive_size(), "{down}");
    assert_eq!(
        fs::read(dest.join("sol0100/calib/new-file.txt")).unwrap(),
        b"stored after the index\n"
    );
}

/// A PATH is the name itself: one ending in a newline restores (the script trimmed PATHs by
/// `$(...)`, which strips trailing newlines: "not in the archive"), and a PATH written
/// escaped as --list prints it is "not in the archive" with a line saying how to write it.
#[test]
fn a_path_is_the_name_itself_trailing_newline_included() {
    let m = backed_up_with(|sol| {
        fs::write(sol.join("calib/ends-in-newline\n"), b"nl\n").unwrap();
        fs::write(sol.join("calib/tab\there"), b"tab\n").unwrap();
    });
    let dest = m.t.path().join("dest");
    let (out, _) = m.restore_into(
        "--path $'calib/ends-in-newline\\n' --path $'calib/tab\\there'",
        &dest,
    );
    out.ok();
    assert_eq!(
        fs::read(dest.join("sol0100/calib/ends-in-newline\n")).unwrap(),
        b"nl\n"
    );
    assert_eq!(
        fs::read(dest.join("sol0100/calib/tab\there")).unwrap(),
        b"tab\n"
    );
    let (out, _) = m.list();
    out.ok();
    assert!(out.stdout_str().contains("sol0100/calib/tab\\there\n"));
    let escaped = |name: &str, says: &str| {
        let (out, _) = m.restore_into("--path 'sol0100/calib/tab\\there'", &m.t.path().join(name));
        out.code(1);
        out.stderr_has(says);
        out.stderr_has("not escaped as --list prints it");
    };
    escaped("escaped", "is not in the archive");
    // The same without an index (the whole archive streams): the same hint.
    m.delete_index();
    escaped("escaped-no-index", "not found in the archive");
}

/// A signal that comes while sol-restore cleans up (its removal of the staged copy) does not
/// cut the clean-up short. Before, the staged copy stayed in DEST under a name no later run
/// removes, and a restore that had succeeded ended 130. A slow `rm` first on PATH held the
/// bash clean-up open for the signal, sent to the restore's process group as Ctrl-C would
/// be. The clean-up is now sol-jobs' own (no `rm`, and a signal there only sets a flag), so
/// the restore may have ended when the signal comes: `kill` may find no process.
#[test]
fn a_signal_during_the_clean_up_leaves_no_staged_copy() {
    let m = backed_up();
    let shim = m.t.path().join("shim");
    fs::create_dir(&shim).unwrap();
    let real_rm = ["/bin/rm", "/usr/bin/rm"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    fs::write(
        shim.join("rm"),
        format!("#!/bin/sh\nsleep 2\nexec {real_rm} \"$@\"\n"),
    )
    .unwrap();
    fs::set_permissions(
        shim.join("rm"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let dest = m.t.path().join("dest");
    let out =
        m.s3.env(sh(&format!(
            "PATH='{shim}':$PATH\n\
             set -m # the restore in a process group of its own\n\
             '{script}' -k '{key}' --path calib {url} sol0100 '{dest}' > '{dest}.out' &\n\
             pid=$!\n\
             for _ in $(seq 400); do grep -q restored '{dest}.out' && break; sleep 0.05; done\n\
             sleep 0.3\n\
             kill -TERM -- -$pid || true\n\
             st=0; wait $pid || st=$?\n\
             echo \"status $st\"",
            shim = shim.display(),
            script = script("sol-restore").display(),
            key = m.key.display(),
            url = m.url(),
            dest = dest.display()
        )))
        .run();
    out.ok();
    assert!(out.stdout_str().contains("status 0"), "{}", out.stderr);
    assert_eq!(
        names(&dest)
            .iter()
            .filter(|n| n.contains(".sol0100.path"))
            .collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "a staged copy is left in DEST"
    );
}

/// A sparse file of 9 GiB comes back by --path with its holes, for the cost of its data:
/// the index and the range fetch handle a sparse member like any other.
#[test]
fn a_sparse_file_comes_back_by_path_with_its_holes() {
    let size: u64 = 9 << 30;
    let mut r = Rng::new(16);
    let islands: Vec<(u64, Vec<u8>)> = [7 << 20, size - MIB]
        .iter()
        .map(|&at| (at, r.bytes(MIB as usize / 2)))
        .collect();
    let m = backed_up_with(|sol| {
        crate::sparse::sparse_file(&sol.join("images/cube.raw"), size, &islands)
    });
    let (list, _) = m.list();
    list.ok();
    assert!(
        list.stdout_str().contains(&size.to_string()),
        "{}",
        list.stdout_str()
    );
    let dest = m.t.path().join("sparse");
    let (out, down) = m.restore_into("--path images/cube.raw", &dest);
    out.ok();
    crate::sparse::assert_holes_kept(&dest.join("sol0100/images/cube.raw"), size, &islands);
    assert!(
        down < 3 * MIB + m.index_size(),
        "a 9 GiB sparse file with 1 MiB of data cost {down} bytes on the wire"
    );
}
