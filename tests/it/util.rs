//! The test harness: run a tool with stdin fed from a thread, capture everything.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use md5::{Digest, Md5};

/// The tools, each the binary of its own package (bins/<tool>/): the one list, in
/// bins/man.rs.
pub fn tools() -> Vec<&'static str> {
    sol::man::tools().iter().map(|t| t.name).collect()
}

/// A tool's binary, built by the same cargo, profile and target directory as this test.
/// Cargo makes only this package's binaries for its integration tests, and every tool is a
/// package of its own, so the first call builds them all (`cargo build --bins`: a few links
/// when `cargo test --workspace` has compiled their code already, nothing when they are
/// current); a stale binary is never run.
pub fn bin(name: &str) -> PathBuf {
    assert!(tools().contains(&name), "unknown tool {name}");
    bin_dir().join(name)
}

fn bin_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        // This test is target/<profile>/deps/it-HASH: the binaries are in target/<profile>.
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let profile = dir.file_name().unwrap().to_str().unwrap().to_string();
        let target = dir.parent().unwrap();
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--quiet", "--bins", "--workspace", "--target-dir"])
            .arg(target)
            .args([
                "--profile",
                if profile == "debug" { "dev" } else { &profile },
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        let out = cargo.output().expect("running cargo build for the tools");
        assert!(
            out.status.success(),
            "cargo build --bins failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// PATH with our binaries first, for shell pipelines.
pub fn path_with_tools() -> String {
    let dir = bin_dir();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// A test, or a part of one, that cannot run here: `SKIPPED TEST: REASON` on stderr, and a
/// line `TEST<tab>SERVER<tab>REASON` in the file SOL_TEST_SKIPS names. CI counts those lines
/// and fails on any that tests/expected-skips does not declare for that server (and for
/// running as root or not). Call it, then return.
pub fn skip(reason: &str) {
    let test = std::thread::current().name().unwrap_or("?").to_string();
    eprintln!("SKIPPED {test}: {reason}");
    if let Some(path) = std::env::var_os("SOL_TEST_SKIPS") {
        let server = std::env::var("SOL_TEST_S3_SERVER").unwrap_or_else(|_| "s3s-fs".into());
        let line = format!("{test}\t{server}\t{}\n", reason.replace(['\t', '\n'], " "));
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("SOL_TEST_SKIPS names a file that can be appended to");
        f.write_all(line.as_bytes())
            .expect("writing SOL_TEST_SKIPS");
    }
}

pub fn has(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// How stdin is fed.
#[derive(Clone, Copy)]
pub enum Feed {
    /// All at once.
    Whole,
    /// In small pieces with pauses, so the tool sees short reads.
    Trickle,
}

pub struct Run {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    feed: Feed,
    close_stdout: bool,
    label: String,
}

pub struct Out {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub label: String,
}

/// A command for one of our tools, with AWS_* and SOL_* cleared.
pub fn tool(name: &str) -> Run {
    let mut cmd = Command::new(bin(name));
    scrub(&mut cmd);
    Run {
        cmd,
        stdin: None,
        feed: Feed::Whole,
        close_stdout: false,
        label: name.to_string(),
    }
}

/// `bash -c SCRIPT` with our tools on PATH and pipefail set.
pub fn sh(script: &str) -> Run {
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(format!("set -euo pipefail\n{script}"));
    scrub(&mut cmd);
    cmd.env("PATH", path_with_tools());
    Run {
        cmd,
        stdin: None,
        feed: Feed::Whole,
        close_stdout: false,
        label: script.to_string(),
    }
}

fn scrub(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if k.starts_with("AWS_") || k.starts_with("SOL_") {
            cmd.env_remove(&k);
        }
    }
}

impl Run {
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Run {
        for a in args {
            self.label.push(' ');
            self.label.push_str(&a.as_ref().to_string_lossy());
            self.cmd.arg(a);
        }
        self
    }
    pub fn arg(self, a: impl AsRef<OsStr>) -> Run {
        self.args([a])
    }
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Run {
        self.stdin = Some(data.into());
        self
    }
    pub fn feed(mut self, feed: Feed) -> Run {
        self.feed = feed;
        self
    }
    pub fn dir(mut self, d: &Path) -> Run {
        self.cmd.current_dir(d);
        self
    }
    pub fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Run {
        self.cmd.env(k, v);
        self
    }
    pub fn env_remove(mut self, k: &str) -> Run {
        self.cmd.env_remove(k);
        self
    }
    /// Close our end of stdout before the tool writes anything: its first write gets EPIPE.
    pub fn close_stdout(mut self) -> Run {
        self.close_stdout = true;
        self
    }

    pub fn run(mut self) -> Out {
        self.cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.label));
        if self.close_stdout {
            drop(child.stdout.take());
        }
        let feeder = child.stdin.take().map(|mut w| {
            let data = self.stdin.take().unwrap_or_default();
            let feed = self.feed;
            std::thread::spawn(move || match feed {
                Feed::Whole => {
                    let _ = w.write_all(&data);
                }
                Feed::Trickle => {
                    let mut sizes = [1usize, 7, 3, 4096, 13, 65537, 2].iter().cycle();
                    let mut rest = &data[..];
                    while !rest.is_empty() {
                        let n = (*sizes.next().unwrap()).min(rest.len());
                        if w.write_all(&rest[..n]).is_err() {
                            return;
                        }
                        let _ = w.flush();
                        rest = &rest[n..];
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            })
        });
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let err_reader = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = e.read_to_end(&mut v);
                v
            })
        });
        if let Some(mut o) = child.stdout.take() {
            o.read_to_end(&mut stdout).unwrap();
        }
        if let Some(h) = err_reader {
            stderr = h.join().unwrap();
        }
        let status = child.wait().unwrap();
        if let Some(f) = feeder {
            let _ = f.join();
        }
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        let out = Out {
            code,
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            label: self.label,
        };
        out.no_debug_dump();
        out
    }
}

/// Tell-tale shapes of Rust's `{:?}` of SDK and I/O errors, never allowed in a message.
const DEBUG_DUMP: [&str; 7] = [
    "Some(",
    "ServiceError",
    "Unhandled(",
    "DispatchFailure",
    "ConnectorError",
    "ErrorMetadata",
    " 1 attempts",
];

impl Out {
    /// Every run of every test: no line of stderr carries a Debug dump.
    #[track_caller]
    pub fn no_debug_dump(&self) {
        for bad in DEBUG_DUMP {
            assert!(
                !self.stderr.contains(bad),
                "`{}`: Debug output ({bad:?}) in:\n{}",
                self.label,
                self.stderr
            );
        }
    }
}

impl Out {
    #[track_caller]
    pub fn code(&self, want: i32) -> &Out {
        assert_eq!(
            self.code,
            want,
            "`{}` exited {} (wanted {want}); stderr:\n{}\nstdout (its end):\n{}",
            self.label,
            self.code,
            self.stderr,
            tail(&self.stdout_str(), 3000)
        );
        self
    }
    #[track_caller]
    pub fn ok(&self) -> &Out {
        self.code(0)
    }
    /// stderr is exactly this one line.
    #[track_caller]
    pub fn stderr_is(&self, line: &str) -> &Out {
        assert_eq!(self.stderr, format!("{line}\n"), "`{}`: stderr", self.label);
        self
    }
    /// stderr is one line (no panic, no backtrace) containing `part`.
    #[track_caller]
    pub fn one_line_with(&self, part: &str) -> &Out {
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "`{}`: want one line, got:\n{}",
            self.label,
            self.stderr
        );
        self.stderr_has(part)
    }
    /// stdout contains `part`.
    #[track_caller]
    pub fn stdout_has(&self, part: &str) -> &Out {
        let stdout = self.stdout_str();
        assert!(
            stdout.contains(part),
            "`{}`: stdout lacks {part:?}:\n{stdout}\nstderr:\n{}",
            self.label,
            self.stderr
        );
        self
    }
    /// stderr contains `part` (on any of its lines).
    #[track_caller]
    pub fn stderr_has(&self, part: &str) -> &Out {
        assert!(
            self.stderr.contains(part),
            "`{}`: stderr lacks {part:?}:\n{}",
            self.label,
            self.stderr
        );
        self
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// The tab-separated fields of stdout's one line.
    pub fn fields(&self) -> Vec<String> {
        let line = self.stdout_str();
        line.trim_end().split('\t').map(String::from).collect()
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// Compressible text-like bytes.
    pub fn text(&mut self, n: usize) -> Vec<u8> {
        const WORDS: [&str; 12] = [
            "sol", "rover", "spectrum", "42.17", "-3.5e2", "camera", "dust", "wheel", "\n",
            "temp=", "ok", "frame",
        ];
        let mut v = Vec::with_capacity(n + 16);
        while v.len() < n {
            v.extend_from_slice(WORDS[self.below(12) as usize].as_bytes());
            v.push(b' ');
        }
        v.truncate(n);
        v
    }
}

pub fn set_mtime(p: &Path, secs: i64) {
    let t = filetime::FileTime::from_unix_time(secs, 0);
    filetime::set_symlink_file_times(p, t, t).unwrap();
}

/// A tree with the awkward cases: empty files and dirs, symlinks (relative, absolute,
/// dangling), hard links, long and non-UTF-8 names, odd characters, modes, old mtimes, a
/// sparse file, files around the 1 MiB read-ahead limit.
pub fn awkward_tree(root: &Path, rng: &mut Rng) {
    let s = root.join("sol0001");
    let long = "l".repeat(120);
    for d in [
        "a/b/c/d",
        "empty",
        "data/images",
        &format!("deep/{long}/{long}"),
    ] {
        fs::create_dir_all(s.join(d)).unwrap();
    }
    fs::write(s.join("empty.dat"), b"").unwrap();
    fs::write(s.join("a/notes.txt"), rng.text(5000)).unwrap();
    fs::write(s.join("a/b/c/d/leaf.csv"), rng.text(70_000)).unwrap();
    for (i, size) in [
        0usize,
        1,
        511,
        512,
        513,
        65_536,
        (1 << 20) - 1,
        1 << 20,
        (1 << 20) + 1,
        3 << 20,
    ]
    .iter()
    .enumerate()
    {
        fs::write(
            s.join(format!("data/images/img{i:02}.raw")),
            rng.bytes(*size),
        )
        .unwrap();
    }
    for i in 0..200 {
        fs::write(s.join(format!("data/t{i:03}.log")), {
            let n = rng.below(3000) as usize;
            rng.text(n)
        })
        .unwrap();
    }
    fs::write(
        s.join(format!("deep/{long}/{long}/{}.txt", "f".repeat(150))),
        b"deep\n",
    )
    .unwrap();
    fs::write(
        s.join(OsStr::from_bytes(b"caf\xe9-latin1.txt")),
        b"not utf-8 name\n",
    )
    .unwrap();
    fs::write(s.join("with space & 'quote'"), b"odd\n").unwrap();
    fs::write(s.join("back\\slash"), b"bs\n").unwrap();
    fs::write(s.join("new\nline"), b"nl\n").unwrap();
    std::os::unix::fs::symlink("notes.txt", s.join("a/link-rel")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", s.join("link-abs")).unwrap();
    std::os::unix::fs::symlink("does/not/exist", s.join("link-dangling")).unwrap();
    std::os::unix::fs::symlink(format!("deep/{long}/{long}"), s.join("link-long-target")).unwrap();
    fs::hard_link(s.join("a/notes.txt"), s.join("hard-notes")).unwrap();
    fs::hard_link(s.join("a/notes.txt"), s.join("a/b/hard-notes-2")).unwrap();
    // Sparse: 64 MiB with data islands.
    let f = fs::File::create(s.join("sparse.bin")).unwrap();
    f.set_len(64 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"island one", 1 << 20).unwrap();
    f.write_all_at(b"island two", (48 << 20) + 7).unwrap();
    drop(f);
    fs::set_permissions(s.join("a/notes.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::set_permissions(
        s.join("data/images/img01.raw"),
        fs::Permissions::from_mode(0o400),
    )
    .unwrap();
    fs::write(s.join("run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(s.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(s.join("a/b"), fs::Permissions::from_mode(0o700)).unwrap();
    // Old and odd mtimes (after the files are written, deepest last for directories).
    set_mtime(&s.join("a/notes.txt"), 981_173_106);
    set_mtime(&s.join("empty.dat"), 0);
    set_mtime(&s.join("link-abs"), 1_234_567_890);
    for d in ["empty", "a/b", "a", "data"] {
        set_mtime(&s.join(d), 1_500_000_000);
    }
}

/// Everything a restore must reproduce, one line per entry under `root`: path, type, mode,
/// size, mtime (seconds), link target, content digest. Hard links show as equal inodes.
pub fn manifest(root: &Path) -> BTreeMap<Vec<u8>, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    walk(root, root, &mut out, &mut inodes);
    out
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<Vec<u8>, String>,
    inodes: &mut BTreeMap<u64, Vec<u8>>,
) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let m = fs::symlink_metadata(&p).unwrap();
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let ft = m.file_type();
        let (kind, extra) = if ft.is_symlink() {
            (
                "l",
                fs::read_link(&p)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .escape_ascii()
                    .to_string(),
            )
        } else if ft.is_dir() {
            ("d", String::new())
        } else {
            let digest = format!("{:x}", Md5::digest(fs::read(&p).unwrap()));
            let link = if m.nlink() > 1 {
                let first = inodes.entry(m.ino()).or_insert_with(|| rel.clone()).clone();
                format!(" links-to={}", first.escape_ascii())
            } else {
                String::new()
            };
            ("f", format!("{digest}{link}"))
        };
        let mode = if ft.is_symlink() {
            0
        } else {
            m.mode() & 0o7777
        };
        let size = if ft.is_file() { m.len() } else { 0 };
        out.insert(rel, format!("{kind} {mode:o} {size} {} {extra}", m.mtime()));
        if ft.is_dir() {
            walk(root, &p, out, inodes);
        }
    }
}

#[track_caller]
pub fn assert_same_tree(a: &Path, b: &Path) {
    let (ma, mb) = (manifest(a), manifest(b));
    for (k, v) in &ma {
        match mb.get(k) {
            Some(w) => assert_eq!(v, w, "{}: differs", k.escape_ascii()),
            None => panic!("{}: missing from {}", k.escape_ascii(), b.display()),
        }
    }
    for k in mb.keys() {
        assert!(
            ma.contains_key(k),
            "{}: extra in {}",
            k.escape_ascii(),
            b.display()
        );
    }
}

/// A temporary directory holding `src/`, an [`awkward_tree`] made from `seed`.
pub fn awkward_src(seed: u64) -> (tempfile::TempDir, PathBuf) {
    let t = tmp();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    awkward_tree(&src, &mut Rng::new(seed));
    (t, src)
}

/// What `sol-tar create -C DIR NAME` writes.
pub fn archive(dir: &Path, name: &str) -> Vec<u8> {
    let out = tool("sol-tar")
        .args(["create", "-C"])
        .arg(dir)
        .arg(name)
        .run();
    out.ok();
    out.stdout.clone()
}

/// `sol-tar extract -C DEST`, to be given its input (and any more arguments) and run.
pub fn extract_into(dest: &Path) -> Run {
    tool("sol-tar").args(["extract", "-C"]).arg(dest)
}

/// The output of CMD, which must exit 0 (else the panic shows `WHAT` and its stderr).
#[track_caller]
pub fn output_ok(cmd: &mut Command, what: &str) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{what}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sol-test-")
        .tempdir()
        .unwrap()
}

/// `data` sealed by `sol-crypt -e -k key` (which must succeed).
pub fn seal(key: &Path, data: impl Into<Vec<u8>>) -> Vec<u8> {
    let out = sol_crypt(&["-e", "-k"], key).stdin(data).run();
    out.ok();
    out.stdout.clone()
}

/// `sol-crypt ARGS FILE`: the file (a key, a passphrase, an identity) last.
pub fn sol_crypt(args: &[&str], file: &Path) -> Run {
    tool("sol-crypt").args(args).arg(file)
}

/// A temporary directory holding a key file `k` of `bits` bits.
pub fn tmp_with_key(bits: u32) -> (tempfile::TempDir, PathBuf) {
    let t = tmp();
    let k = keyfile(t.path(), "k", bits);
    (t, k)
}

/// `text` written to `path` with mode 0600 (key, passphrase and identity files).
pub fn private_file(path: &Path, text: impl AsRef<[u8]>) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// A key file of mode 0600 made by `sol-crypt keygen`.
pub fn keyfile(dir: &Path, name: &str, bits: u32) -> PathBuf {
    let p = dir.join(name);
    tool("sol-crypt")
        .args(["keygen", "--bits", &bits.to_string(), "-o"])
        .arg(&p)
        .run()
        .ok();
    p
}

/// The last N bytes of TEXT, at a character boundary.
fn tail(text: &str, n: usize) -> &str {
    let mut from = text.len().saturating_sub(n);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    &text[from..]
}

/// An RFC 3339 time (as s3-ls prints it) in seconds since the epoch, by date(1).
pub fn epoch_of(rfc: &str) -> i64 {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", rfc, "+%s"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
