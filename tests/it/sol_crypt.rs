use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::util::*;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// Key files lose mode 0600 in git: copy them into a private temp dir.
fn private_copy(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    fs::copy(vectors().join(name), &p).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// Every vector that `dir/manifest.tsv` lists (name, credentials, status, message,
/// plaintext), decrypted by `open(credentials, stream)`, gives its expected outcome: its
/// plaintext and nothing on stderr, or its status and one line with its message; there are
/// at least `least` of them.
pub(crate) fn check_vectors(dir: &Path, least: usize, open: impl Fn(&str, Vec<u8>) -> Out) {
    let manifest = fs::read_to_string(dir.join("manifest.tsv")).unwrap();
    let reference = fs::read(dir.join("plain-2500.bin")).unwrap();
    let mut n = 0;
    for line in manifest.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let (name, creds, status, msg, plain) =
            (f[0], f[1], f[2].parse::<i32>().unwrap(), f[3], f[4]);
        let out = open(creds, fs::read(dir.join(format!("{name}.sc"))).unwrap());
        assert_eq!(out.code, status, "vector {name}: {}", out.stderr);
        if status == 0 {
            assert!(
                out.stdout == fs::read(dir.join(plain)).unwrap(),
                "vector {name}: plaintext"
            );
            assert_eq!(out.stderr, "");
        } else {
            out.one_line_with(msg);
            // Only authenticated chunks may have been written: a prefix of the plaintext.
            assert!(
                reference.starts_with(&out.stdout),
                "vector {name}: unauthenticated output"
            );
        }
        n += 1;
    }
    assert!(n >= least, "only {n} vectors");
}

#[test]
fn committed_vectors_give_their_expected_outcome() {
    let t = tmp();
    check_vectors(&vectors(), 15, |key, input| {
        let key = private_copy(t.path(), key);
        sol_crypt(&["-d", "-k"], &key).stdin(input).run()
    });
}

#[test]
fn wrong_key_names_both_ids_and_writes_nothing() {
    let t = tmp();
    let k1 = keyfile(t.path(), "k1", 256);
    let k2 = keyfile(t.path(), "k2", 256);
    let sc = sol_crypt(&["-e", "-k"], &k1)
        .stdin(b"secret".to_vec())
        .run()
        .stdout
        .clone();
    let id = |k: &Path| {
        let empty = sol_crypt(&["-e", "-k"], k).stdin(Vec::new()).run();
        let info = tool("sol-crypt").arg("info").stdin(empty.stdout.clone());
        let s = info.run().stdout_str();
        s.lines()
            .find(|l| l.starts_with("key-id"))
            .unwrap()
            .split('\t')
            .nth(1)
            .unwrap()
            .to_string()
    };
    let out = sol_crypt(&["-d", "-k"], &k2).stdin(sc).run();
    out.code(3).stderr_is(&format!(
        "sol-crypt: wrong key: the stream was encrypted with key id {}, key file '{}' has key id {}",
        id(&k1),
        k2.display(),
        id(&k2)
    ));
    assert!(out.stdout.is_empty());
}

#[test]
fn round_trips_at_chunk_boundaries_with_both_key_lengths() {
    let t = tmp();
    let mut r = Rng::new(11);
    for bits in [128, 256] {
        let k = keyfile(t.path(), &format!("k{bits}"), bits);
        for (chunk, sizes) in [
            (
                "64K",
                vec![0usize, 1, 65_535, 65_536, 65_537, 5 * 65_536 + 3],
            ),
            ("1K", vec![1023, 1024, 4096]),
        ] {
            for n in sizes {
                let data = r.bytes(n);
                let sc = sol_crypt(&["-e", "--chunk-size", chunk, "-k"], &k)
                    .stdin(data.clone())
                    .feed(Feed::Trickle)
                    .run();
                sc.ok();
                let back = sol_crypt(&["-d", "-k"], &k)
                    .stdin(sc.stdout.clone())
                    .feed(Feed::Trickle)
                    .run();
                back.ok();
                assert!(back.stdout == data, "{bits}-bit, chunk {chunk}, {n} bytes");
                tool("sol-crypt")
                    .arg("info")
                    .stdin(sc.stdout.clone())
                    .run()
                    .ok();
            }
        }
    }
}

#[test]
fn info_shows_the_header_and_catches_truncation_without_the_key() {
    let (_t, k) = tmp_with_key(128);
    let sc = seal(&k, Rng::new(1).bytes(200_000));
    let out = tool("sol-crypt").arg("info").stdin(sc.clone()).run();
    out.ok();
    let s = out.stdout_str();
    for want in [
        "format\tsol-crypt v1",
        "cipher\tAES-128-GCM",
        "chunk-size\t65536",
        "chunks\t4",
        "complete\tyes",
    ] {
        assert!(s.contains(want), "info lacks {want:?}:\n{s}");
    }
    for cut in [sc.len() - 1, sc.len() - 17, 86 + 65_552, 86 + 1000] {
        let out = tool("sol-crypt")
            .arg("info")
            .stdin(sc[..cut].to_vec())
            .run();
        out.code(3);
        assert!(out.stdout_str().contains("complete\tno"));
    }
}

#[test]
fn openssl_enc_interop_both_ways() {
    let t = tmp();
    let pass = t.path().join("pass");
    private_file(&pass, "correct horse battery staple\n");
    let data = Rng::new(4).text(300_001);
    let p = pass.display();
    let ours = sol_crypt(&["--openssl", "-e", "-k"], &pass)
        .stdin(data.clone())
        .run();
    ours.ok();
    let theirs_dec = sh(&format!(
        "openssl enc -d -aes-256-cbc -pbkdf2 -pass file:'{p}'"
    ))
    .stdin(ours.stdout.clone())
    .run();
    theirs_dec.ok();
    assert!(theirs_dec.stdout == data, "openssl could not read ours");
    let theirs = sh(&format!(
        "openssl enc -aes-256-cbc -pbkdf2 -pass file:'{p}'"
    ))
    .stdin(data.clone())
    .run();
    theirs.ok();
    let back = sol_crypt(&["--openssl", "-d", "-k"], &pass)
        .stdin(theirs.stdout.clone())
        .run();
    back.ok();
    assert!(back.stdout == data, "we could not read openssl's");
    // A wrong passphrase fails at the final block.
    let wrong = t.path().join("wrong");
    private_file(&wrong, "nope\n");
    sol_crypt(&["--openssl", "-d", "-k"], &wrong)
        .stdin(theirs.stdout.clone())
        .run()
        .code(3)
        .one_line_with("bad decrypt");
    // Our native decoder points at --openssl for such a stream.
    let k = keyfile(t.path(), "k", 256);
    sol_crypt(&["-d", "-k"], &k)
        .stdin(theirs.stdout.clone())
        .run()
        .code(3)
        .one_line_with("use --openssl");
}

#[test]
fn key_files_are_private_and_never_overwritten() {
    let (_t, k) = tmp_with_key(256);
    assert_eq!(
        fs::metadata(&k).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let hex = fs::read_to_string(&k).unwrap();
    assert_eq!(hex.trim().len(), 64);
    tool("sol-crypt")
        .args(["keygen", "-o"])
        .arg(&k)
        .run()
        .code(1)
        .one_line_with("File exists");
    assert_eq!(fs::read_to_string(&k).unwrap(), hex);
    fs::set_permissions(&k, fs::Permissions::from_mode(0o644)).unwrap();
    sol_crypt(&["-e", "-k"], &k)
        .stdin(b"x".to_vec())
        .run()
        .code(1)
        .stderr_is(&format!(
            "sol-crypt: key file '{0}': mode 0644 lets group/others read it; run chmod 600 '{0}'",
            k.display()
        ));
    // SOL_KEY_FILE stands for -k; no key at all is a usage error.
    fs::set_permissions(&k, fs::Permissions::from_mode(0o600)).unwrap();
    let sc = tool("sol-crypt")
        .arg("-e")
        .env("SOL_KEY_FILE", &k)
        .stdin(b"x".to_vec())
        .run();
    sc.ok();
    tool("sol-crypt")
        .arg("-d")
        .env("SOL_KEY_FILE", &k)
        .stdin(sc.stdout.clone())
        .run()
        .ok();
    tool("sol-crypt")
        .arg("-e")
        .stdin(b"x".to_vec())
        .run()
        .code(2);
    // keygen to stdout prints one hex line.
    let out = tool("sol-crypt").args(["keygen", "--bits", "128"]).run();
    out.ok();
    assert_eq!(out.stdout_str().trim().len(), 32);
}

#[test]
fn missing_key_file_is_one_line() {
    let t = tmp();
    tool("sol-crypt")
        .args(["-e", "-k", "nope.key"])
        .dir(t.path())
        .stdin(b"x".to_vec())
        .run()
        .code(1)
        .stderr_is("sol-crypt: key file 'nope.key': No such file or directory");
}

#[test]
fn closed_stdout_is_quiet_with_status_141() {
    let (_t, k) = tmp_with_key(256);
    let data = Rng::new(8).bytes(3 << 20);
    let sc = seal(&k, data.clone());
    for (mode, input) in [("-e", data), ("-d", sc)] {
        let out = sol_crypt(&[mode, "-k"], &k)
            .stdin(input)
            .close_stdout()
            .run();
        out.code(141);
        assert_eq!(out.stderr, "");
    }
}

/// A key file is hex digits of the right length and at most a final newline: anything else
/// (a '+' that `from_str_radix` would take for a digit, spaces, CRLF, a second line) is
/// refused in one line before anything is read or written.
#[test]
fn key_files_are_strict_hex() {
    let t = tmp();
    let good = "0bcd".repeat(16);
    let cases = [
        format!("+{}", &good[1..]),
        format!("-{}", &good[1..]),
        format!(" {good}"),
        format!("{good} \n"),
        format!("{good}\r\n"),
        format!("{good}\n\n"),
        format!("{good}\nsecond line\n"),
        good[..62].to_string(),
        format!("{good}00"),
        String::new(),
    ];
    for (i, text) in cases.iter().enumerate() {
        let k = t.path().join(format!("bad{i}.key"));
        private_file(&k, text);
        for mode in ["-e", "-d"] {
            let out = sol_crypt(&[mode, "-k"], &k).stdin(b"x".to_vec()).run();
            out.code(1).stderr_is(&format!(
                "sol-crypt: key file '{}': not a sol-crypt key (expected exactly 32 or 64 hex \
                 digits, then at most a newline; for an openssl passphrase file use --openssl)",
                k.display()
            ));
            assert!(out.stdout.is_empty(), "{text:?}: output written");
        }
    }
    for text in [good.clone(), format!("{good}\n"), good.to_uppercase()] {
        let k = t.path().join("good.key");
        private_file(&k, &text);
        sol_crypt(&["-e", "-k"], &k).stdin(b"x".to_vec()).run().ok();
    }
}

/// Issue 11, item 5: a stream of another stage is named, with what to do instead.
#[test]
fn other_formats_are_named_with_the_stage_they_need() {
    let (t, k) = tmp_with_key(256);
    fs::write(t.path().join("f"), Rng::new(8).text(5000)).unwrap();
    let tar = sh(&format!("tar -cf - -C '{}' f", t.path().display())).run();
    tar.ok();
    let gz = tool("sol-zip").stdin(tar.stdout.clone()).run();
    gz.ok();
    for (input, what) in [
        (
            &gz.stdout,
            "this is a gzip stream (not encrypted): decompress it with sol-zip -d",
        ),
        (
            &tar.stdout,
            "this is a tar stream (not encrypted or compressed): read it with sol-tar or tar-md5",
        ),
    ] {
        sol_crypt(&["-d", "-k"], &k)
            .stdin(input.clone())
            .run()
            .code(3)
            .stderr_is(&format!("sol-crypt: not a sol-crypt stream: {what}"));
    }
}
