//! Issue 16: public-key recipients (sol-crypt v2), identities, escrow and rotation.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::s3env::S3;
use crate::scripts::{audit, backup, keyless_site, make_restore, restore, run_sh};
use crate::sol_crypt::check_vectors;
use crate::util::*;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/v2")
}

/// A new identity file (mode 0600) and its recipient.
pub(crate) fn identity(dir: &Path, name: &str) -> (PathBuf, String) {
    let p = dir.join(name);
    let out = tool("sol-crypt")
        .args(["keygen", "--identity", "-o"])
        .arg(&p)
        .run();
    out.ok();
    (p, out.stdout_str().trim_end().to_string())
}

fn crypt(args: &[&str], files: &[&Path], input: Vec<u8>) -> Out {
    let mut r = tool("sol-crypt").args(args);
    for f in files {
        r = r.arg(f);
    }
    r.stdin(input).run()
}

fn seal(recipients: &[&str], input: Vec<u8>) -> Vec<u8> {
    let mut r = tool("sol-crypt").arg("-e");
    for x in recipients {
        r = r.args(["-r", *x]);
    }
    let out = r.stdin(input).run();
    out.ok();
    out.stdout.clone()
}

/// The site and escrow identities with their recipients, and a key file `k`.
struct Creds {
    site: PathBuf,
    rs: String,
    escrow: PathBuf,
    re: String,
    key: PathBuf,
}

fn make_creds(dir: &Path) -> Creds {
    let (site, rs) = identity(dir, "site.id");
    let (escrow, re) = identity(dir, "escrow.id");
    let key = keyfile(dir, "k", 256);
    Creds {
        site,
        rs,
        escrow,
        re,
        key,
    }
}

/// `plain` sealed (with these options) to both recipients and to the key file.
fn seal_to_all(c: &Creds, options: &[&str], plain: Vec<u8>) -> Vec<u8> {
    let args = [&["-e"][..], options, &["-r", &c.rs, "-r", &c.re, "-k"]].concat();
    crypt(&args, &[&c.key], plain).stdout
}

fn open_with(id: &Path, input: Vec<u8>) -> Out {
    tool("sol-crypt")
        .arg("-d")
        .arg("-i")
        .arg(id)
        .stdin(input)
        .run()
}

#[test]
fn keygen_identity_is_private_never_overwritten_and_prints_its_recipient() {
    let t = tmp();
    let (id, recipient) = identity(t.path(), "site.id");
    assert!(recipient.starts_with("sol-recipient-1"), "{recipient}");
    assert_eq!(recipient.len(), "sol-recipient-1".len() + 58);
    assert_eq!(
        fs::metadata(&id).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = fs::read_to_string(&id).unwrap();
    assert!(text.contains("\nSOL-SECRET-KEY-1"), "{text}");
    assert!(text.contains(&format!("# recipient: {recipient}\n")));
    // Never overwritten.
    let again = tool("sol-crypt")
        .args(["keygen", "--identity", "-o"])
        .arg(&id)
        .run();
    again.code(1).one_line_with("File exists");
    assert!(again.stdout.is_empty());
    assert_eq!(fs::read_to_string(&id).unwrap(), text);
    // The recipient of an identity, again and again the same.
    let out = tool("sol-crypt").args(["recipient", "-i"]).arg(&id).run();
    out.ok();
    assert_eq!(out.stdout_str(), format!("{recipient}\n"));
    // An identity is only written to a file.
    tool("sol-crypt")
        .args(["keygen", "--identity"])
        .run()
        .code(2);
    // A group-readable identity is refused, as key files are.
    fs::set_permissions(&id, fs::Permissions::from_mode(0o640)).unwrap();
    tool("sol-crypt")
        .args(["recipient", "-i"])
        .arg(&id)
        .run()
        .code(1)
        .one_line_with("lets group/others read it");
}

#[test]
fn only_canonical_recipients_and_identities_are_accepted() {
    let t = tmp();
    let (id, r) = identity(t.path(), "a.id");
    let secret_line = fs::read_to_string(&id)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let mut typo = r.clone().into_bytes();
    let i = typo.len() - 10;
    typo[i] = if typo[i] == b'q' { b'p' } else { b'q' };
    // One letter of the key part in uppercase (a random key may have digits anywhere).
    let mut mixed = r.clone();
    let at = 20
        + r[20..]
            .find(|c: char| c.is_ascii_lowercase())
            .expect("a letter in the key");
    mixed.replace_range(at..at + 1, &r[at..at + 1].to_ascii_uppercase());
    assert_ne!(mixed, r);
    for (bad, why) in [
        (r.to_ascii_uppercase(), "not all lowercase"),
        (String::from_utf8(typo).unwrap(), "bad checksum"),
        (format!("{r}q"), "checksum"),
        (
            r.replacen("sol-recipient-", "age", 1),
            "does not start with",
        ),
        (secret_line.clone(), "not all lowercase"),
        (secret_line.to_ascii_lowercase(), "does not start with"),
    ] {
        if bad == r {
            continue;
        }
        let out = crypt(&["-e", "-r", &bad], &[], b"x".to_vec());
        out.code(2).one_line_with(why);
        assert!(out.stdout.is_empty());
    }
    if mixed != r {
        crypt(&["-e", "-r", &mixed], &[], vec![])
            .code(2)
            .one_line_with("not all lowercase");
    }
    // A recipients file: comments, blank lines and surrounding blanks are fine; a bad line
    // is named by file and line.
    let rf = t.path().join("recipients");
    fs::write(&rf, format!("# site\n\n  {r}  \n")).unwrap();
    let sc = crypt(&["-e", "-R"], &[&rf], b"hello".to_vec());
    sc.ok();
    assert_eq!(open_with(&id, sc.stdout.clone()).stdout, b"hello");
    fs::write(&rf, format!("{r}\n{}\n", r.to_ascii_uppercase())).unwrap();
    crypt(&["-e", "-R"], &[&rf], vec![])
        .code(2)
        .one_line_with("line 2: not a sol-crypt recipient");
    fs::write(&rf, "# nobody\n").unwrap();
    crypt(&["-e", "-R"], &[&rf], vec![])
        .code(2)
        .one_line_with("no recipient in it");
    // An identity file holding a non-canonical (lowercase) identity, or a recipient.
    for bad in [secret_line.to_ascii_lowercase(), r.clone()] {
        let f = t.path().join("bad.id");
        fs::write(&f, format!("# x\n{bad}\n")).unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        let out = open_with(&f, sc.stdout.clone());
        out.code(1)
            .one_line_with("line 2: not a sol-crypt identity");
        assert!(out.stdout.is_empty());
    }
    // -r is for encryption.
    crypt(&["-d", "-r", &r], &[], vec![]).code(2);
}

#[test]
fn a_stream_sealed_to_several_recipients_opens_with_each_identity() {
    let t = tmp();
    let Creds {
        site,
        rs,
        escrow,
        re,
        key,
    } = make_creds(t.path());
    let mut rng = Rng::new(16);
    for n in [0usize, 1, 65535, 65536, 65537, 300_000] {
        let plain = rng.bytes(n);
        let sc = seal(&[&rs, &re], plain.clone());
        assert_eq!(sc[8], 2, "a v2 stream");
        for id in [&site, &escrow] {
            let out = open_with(id, sc.clone());
            out.ok();
            assert!(out.stdout == plain, "{n} bytes with {}", id.display());
        }
        // SOL_IDENTITY_FILE, as the scripts' environment gives it.
        let out = tool("sol-crypt")
            .arg("-d")
            .env("SOL_IDENTITY_FILE", &escrow)
            .stdin(sc.clone())
            .run();
        out.ok();
        assert!(out.stdout == plain);
    }
    // A key file and a recipient: either opens it; -k alone still writes v1.
    let plain = rng.bytes(5000);
    let both = crypt(&["-e", "-r", &re, "-k"], &[&key], plain.clone());
    both.ok();
    let out = crypt(&["-d", "-k"], &[&key], both.stdout.clone());
    out.ok();
    assert!(out.stdout == plain);
    assert!(open_with(&escrow, both.stdout.clone()).stdout == plain);
    let v1 = crypt(&["-e", "-k"], &[&key], plain.clone());
    assert_eq!(v1.stdout[8], 1, "-k alone writes v1");
    // A v1 stream needs its key file: an identity alone is refused, naming the key id.
    let out = open_with(&site, v1.stdout.clone());
    out.code(3)
        .one_line_with("sol-crypt v1 stream, encrypted with key id");
    assert!(out.stdout.is_empty());
    // Each stream has a fresh file key and ephemeral keys: two seals differ.
    assert_ne!(
        seal(&[&rs], b"same".to_vec()),
        seal(&[&rs], b"same".to_vec())
    );
}

#[test]
fn an_identity_without_a_stanza_is_named_and_refused_before_any_output() {
    let t = tmp();
    let (_, rs) = identity(t.path(), "site.id");
    let (other, _) = identity(t.path(), "other.id");
    let fp = tool("sol-crypt")
        .args(["keygen", "--identity", "-o"])
        .arg(t.path().join("x.id"))
        .run()
        .stderr
        .clone();
    assert!(fp.contains("recipient fingerprint"), "{fp}");
    let sc = seal(&[&rs], Rng::new(1).bytes(200_000));
    let out = open_with(&other, sc.clone());
    out.code(3).one_line_with(&format!(
        "no stanza in this stream for identity '{}' (recipient fingerprint",
        other.display()
    ));
    assert!(out
        .stderr
        .contains("it is sealed to x25519 recipient fingerprint"));
    assert!(out.stdout.is_empty());
    // A key file that has no stanza: a wrong key.
    let k = keyfile(t.path(), "k", 256);
    let out = crypt(&["-d", "-k"], &[&k], sc);
    out.code(3)
        .one_line_with("wrong key: no stanza in this stream for key file");
    assert!(out.stdout.is_empty());
}

#[test]
fn every_changed_header_byte_fails_with_status_3_before_any_output() {
    let t = tmp();
    let c = make_creds(t.path());
    let plain = Rng::new(2).bytes(3000);
    let sc = seal_to_all(&c, &["--chunk-size", "1K"], plain.clone());
    let h = u32::from_be_bytes(sc[14..18].try_into().unwrap()) as usize;
    assert_eq!(h, 52 + 43 + 2 * 75 + 32);
    assert!(open_with(&c.site, sc.clone()).ok().stdout == plain);
    for at in 0..h {
        for bit in [0x01u8, 0x80] {
            let mut bad = sc.clone();
            bad[at] ^= bit;
            for creds in [
                vec!["-i", c.site.to_str().unwrap()],
                vec!["-k", c.key.to_str().unwrap()],
            ] {
                let out = tool("sol-crypt")
                    .arg("-d")
                    .args(&creds)
                    .stdin(bad.clone())
                    .run();
                assert_eq!(
                    out.code, 3,
                    "byte {at} bit {bit:#x} {creds:?}: {}",
                    out.stderr
                );
                assert!(
                    out.stdout.is_empty(),
                    "byte {at}: output before the header was checked"
                );
                assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
            }
        }
    }
}

#[test]
fn committed_v2_vectors_give_their_expected_outcome() {
    let t = tmp();
    check_vectors(&vectors(), 20, |creds, input| {
        let mut run = tool("sol-crypt").arg("-d");
        for c in creds.split(',') {
            // Mode 0600 is lost in git: private copies.
            let p = t.path().join(c);
            if !p.exists() {
                fs::copy(vectors().join(c), &p).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
            }
            run = run.arg(if c.ends_with(".id") { "-i" } else { "-k" }).arg(p);
        }
        run.stdin(input).run()
    });
    // The committed recipients are those of the committed identities.
    for who in ["site", "escrow"] {
        let id = t.path().join(format!("{who}.id"));
        let out = tool("sol-crypt").args(["recipient", "-i"]).arg(&id).run();
        assert_eq!(
            out.stdout_str(),
            fs::read_to_string(vectors().join(format!("{who}.recipient"))).unwrap()
        );
    }
}

#[test]
fn info_shows_the_stanzas_and_never_a_secret() {
    let t = tmp();
    let c = make_creds(t.path());
    let sc = seal_to_all(&c, &[], Rng::new(3).bytes(100_000));
    let out = tool("sol-crypt").arg("info").stdin(sc.clone()).run();
    out.ok();
    let s = out.stdout_str();
    let fp = |id: &Path| {
        // keygen told the fingerprint on stderr; `info` of a stream sealed to it alone too.
        let r = tool("sol-crypt")
            .args(["recipient", "-i"])
            .arg(id)
            .run()
            .stdout_str();
        let one = seal(&[r.trim_end()], vec![]);
        let i = tool("sol-crypt").arg("info").stdin(one).run().stdout_str();
        i.lines()
            .find_map(|l| l.strip_prefix("stanza\tx25519 recipient fingerprint "))
            .unwrap()
            .to_string()
    };
    let site_fp = fp(&c.site);
    assert!(
        s.starts_with("format\tsol-crypt v2\ncipher\tAES-256-GCM\nchunk-size\t65536\nstanza\tkey-file key id "),
        "{s}"
    );
    assert!(
        s.contains(&format!("stanza\tx25519 recipient fingerprint {site_fp}\n")),
        "{s}"
    );
    assert_eq!(s.matches("stanza\tx25519").count(), 2, "{s}");
    assert!(s.ends_with("chunks\t2\ncomplete\tyes\n"), "{s}");
    // Nothing secret: not the identities, not the key.
    let key_hex = fs::read_to_string(&c.key).unwrap();
    assert!(!s.contains(key_hex.trim()));
    for line in fs::read_to_string(&c.site).unwrap().lines() {
        assert!(!s.to_ascii_uppercase().contains(&line[line.len() - 20..]));
    }
    // A truncated v2 stream is incomplete, told without any key.
    let out = tool("sol-crypt")
        .arg("info")
        .stdin(sc[..sc.len() - 16].to_vec())
        .run();
    out.code(3);
    assert!(out.stdout_str().contains("complete\tno"));
}

#[test]
fn s3_mput_refuses_a_v2_stream_that_ended_early() {
    let s3 = S3::start();
    let t = tmp();
    let (_, r) = identity(t.path(), "site.id");
    let sc = seal(&[&r, &r.clone()], Rng::new(4).bytes(3 << 20));
    let mput = |key: &str, data: &[u8]| {
        s3.tool("s3-mput")
            .arg("--require-complete")
            .arg(s3.url(key))
            .stdin(data.to_vec())
            .run()
    };
    for (i, cut) in [sc.len() - 16, sc.len() / 2, 100, 130]
        .into_iter()
        .enumerate()
    {
        let key = format!("cut{i}");
        mput(&key, &sc[..cut])
            .code(3)
            .one_line_with("the sol-crypt stream ended early");
        assert!(s3.get(&key).is_none(), "{key} was stored");
    }
    mput("whole", &sc).ok();
    assert!(s3.get("whole").unwrap() == sc);
}

// ---- the scripts: a write-only backup host, escrow, rotation ------------------------------

#[test]
fn escrow_and_rotation_through_the_scripts() {
    let (s3, t, root) = keyless_site(2);
    let keys = t.path().join("keys");
    fs::create_dir(&keys).unwrap();
    let (site, rs) = identity(&keys, "site.id");
    let (escrow, re) = identity(&keys, "escrow.id");
    // The backup host holds only public recipients.
    let recipients = t.path().join("recipients");
    fs::write(
        &recipients,
        format!("# site\n{rs}\n# escrow (off site)\n{re}\n"),
    )
    .unwrap();
    let (r, d) = (root.display(), s3.url("sols"));
    let backup_to =
        |rf: &Path, sols: &str| backup(&s3, &format!("-R '{}' {sols} {d}", rf.display()));
    backup_to(&recipients, &format!("'{r}'/sol0001")).ok();
    let restore_with = |id: &Path, sol: &str, to: &Path| {
        let (id, to) = (id.display(), to.display());
        restore(&s3, &format!("-i '{id}' {d} {sol} '{to}'"))
    };
    // The site identity restores; so does the escrow one.
    let by_site = t.path().join("by-site");
    restore_with(&site, "sol0001", &by_site).ok();
    assert_same_tree(&root.join("sol0001"), &by_site.join("sol0001"));
    // The site identity is lost: the escrow identity restores.
    fs::remove_file(&site).unwrap();
    let by_escrow = t.path().join("by-escrow");
    restore_with(&escrow, "sol0001", &by_escrow).ok();
    assert_same_tree(&root.join("sol0001"), &by_escrow.join("sol0001"));
    // ... and the daily audit runs where an identity is.
    let by = escrow.display();
    audit(&s3, &format!("--sol sol0001 -i '{by}' '{r}' {d}")).stdout_has("1 ok");

    // Rotation: a new site identity; the recipients file changes; new sols are sealed to it.
    let (site2, rs2) = identity(&keys, "site2.id");
    let rotated = t.path().join("recipients2");
    fs::write(&rotated, format!("{rs2}\n{re}\n")).unwrap();
    backup_to(&rotated, &format!("'{r}'/sol0002")).ok();
    let new = t.path().join("new");
    restore_with(&site2, "sol0002", &new).ok();
    assert_same_tree(&root.join("sol0002"), &new.join("sol0002"));
    // The old sol opens with the identity it was sealed to (escrow here, the site one is
    // gone), not with the new site identity: status 3, named, nothing left in DEST.
    let wrong = t.path().join("wrong");
    restore_with(&site2, "sol0001", &wrong)
        .code(3)
        .stderr_has("no stanza in this stream for identity");
    assert!(!wrong.join("sol0001").exists());
    // restore.mk with IDENTITY=.
    let made = t.path().join("made");
    let (to, id) = (made.display(), site2.display());
    let mk = make_restore(&format!(
        "FROM={d} DEST='{to}' SOLS=sol0002 IDENTITY='{id}'"
    ));
    run_sh(&s3, &mk).ok();
    assert_same_tree(&root.join("sol0002"), &made.join("sol0002"));

    // The write-only host can still check coverage alone (no identity, no key).
    audit(&s3, &format!("--coverage-only '{r}' {d}"))
        .ok()
        .stdout_has("2 stored");
}

#[test]
fn an_audit_with_an_identity_refreshes_to_recipients_and_needs_them() {
    let (s3, t, root) = keyless_site(1);
    let (id, r) = identity(t.path(), "site.id");
    let rf = t.path().join("recipients");
    fs::write(&rf, format!("{r}\n")).unwrap();
    let (rt, d) = (root.display(), s3.url("s"));
    backup(&s3, &format!("-R '{}' '{rt}'/sol0001 {d}", rf.display())).ok();
    fs::write(root.join("sol0001/inst1/seq01/log001.txt"), b"changed").unwrap();
    let one = format!("--sol sol0001 -i '{}' '{rt}' {d}", id.display());
    // --refresh with only an identity cannot seal the new archive: usage, before any work.
    audit(&s3, &format!("{one} --refresh"))
        .code(2)
        .stderr_has("--refresh with an identity needs -R");
    // -R is only for --refresh.
    let rf = rf.display();
    audit(&s3, &format!("{one} -R '{rf}'")).code(2);
    audit(&s3, &format!("{one} --refresh -R '{rf}'"))
        .code(3)
        .stdout_has("sol0001: refreshed");
    // The new archive is sealed to the recipient: the identity audits it clean.
    audit(&s3, &one).ok();
}

#[test]
fn v2_decoding_survives_garbage_and_never_accepts_a_change() {
    use crate::fuzz::{mutations, opened_or_refused, survives};
    let t = tmp();
    let (id, r) = identity(t.path(), "site.id");
    let k = keyfile(t.path(), "k", 256);
    let mut rng = Rng::new(0x16);
    let plain = rng.bytes(20_000);
    let sc = crypt(
        &["-e", "--chunk-size", "4K", "-r", &r, "-k"],
        &[&k],
        plain.clone(),
    )
    .stdout;
    let h = u32::from_be_bytes(sc[14..18].try_into().unwrap()) as usize;
    let mut inputs = mutations(&sc, &mut rng, 40);
    // And mutations of the header alone, the new parser's input.
    for header in mutations(&sc[..h], &mut rng, 40) {
        inputs.push([header, sc[h..].to_vec()].concat());
    }
    for (i, input) in inputs.into_iter().enumerate() {
        for creds in [["-i", id.to_str().unwrap()], ["-k", k.to_str().unwrap()]] {
            let out = tool("sol-crypt")
                .arg("-d")
                .args(creds)
                .stdin(input.clone())
                .run();
            opened_or_refused(&out, &plain, i);
        }
        survives(&tool("sol-crypt").arg("info").stdin(input).run(), true);
    }
}
