//! The documentation's examples run, so they cannot rot: every `sh` block of README.md and
//! every EXAMPLES line of the scripts' man pages, pasted into bash as they stand, against a
//! fresh bucket on the test S3 server. Once with real sols (every block succeeds, the audit
//! finds no difference, the restore is byte-identical) and once with a sol that does not
//! exist (no block leaves a file, an object or a restored directory under its name, and an
//! audit fails).
//!
//! The documents use fixed paths; the test maps them into its temp dir:
//! /etc/sol/site.key, /data/mission (sols sol0040 sol0041 sol0042), /restore,
//! s3://mission-archive/ (the test's bucket) and scripts/ (this repository's).

use std::fs;
use std::path::{Path, PathBuf};

use crate::s3env::S3;
use crate::util::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fenced blocks of a Markdown text as (info string, body). Every fence must say what
/// it is: `sh` (run by this test) or `console` (set-up and build commands, not run).
fn fenced(md: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(String, String)> = None;
    for line in md.lines() {
        if let Some(info) = line.strip_prefix("```") {
            match cur.take() {
                Some(b) => out.push(b),
                None => cur = Some((info.trim().to_string(), String::new())),
            }
        } else if let Some((_, body)) = cur.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    assert!(cur.is_none(), "an unclosed fence");
    out
}

/// The lines between .nf and .fi of a man page's EXAMPLES section.
fn man_examples(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut inside, mut nf) = (false, false);
    for line in page.lines() {
        if line.starts_with(".SH") {
            inside = line.trim() == ".SH EXAMPLES";
            continue;
        }
        if !inside {
            continue;
        }
        match line.trim() {
            ".nf" => nf = true,
            ".fi" => nf = false,
            l if nf && !l.is_empty() => out.push(l.replace("\\-", "-").replace("\\e", "\\")),
            _ => {}
        }
    }
    out
}

fn examples() -> Vec<(String, String)> {
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    let mut run = Vec::new();
    for (info, body) in fenced(&readme) {
        match info.as_str() {
            "sh" => run.push(("README.md".to_string(), body)),
            "console" => {}
            other => panic!("README.md: a fence '{other}': say sh (run by the tests) or console"),
        }
    }
    for page in [
        "sol-backup.1",
        "sol-audit.1",
        "sol-restore.1",
        "sol-prune.1",
        "sol-sync.1",
        "sol-pull.1",
    ] {
        let text = fs::read_to_string(repo().join("man").join(page)).unwrap();
        let ex = man_examples(&text);
        assert!(!ex.is_empty(), "{page} has no EXAMPLES");
        for line in ex {
            run.push((page.to_string(), line));
        }
    }
    run
}

struct Site {
    t: tempfile::TempDir,
    s3: S3,
}

impl Site {
    fn new() -> Site {
        let t = tmp();
        let mut r = Rng::new(12);
        for sol in ["sol0040", "sol0041", "sol0042"] {
            let d = t.path().join("data/mission").join(sol);
            for i in 0..20 {
                let sub = d.join(format!("inst{}", i % 3));
                fs::create_dir_all(&sub).unwrap();
                fs::write(sub.join(format!("f{i}.txt")), r.text(3000)).unwrap();
            }
        }
        fs::create_dir_all(t.path().join("etc/sol")).unwrap();
        let s3 = S3::start();
        // The README's second vendor: the same server, as profile `ceph`.
        s3.add_profile(s3.home(), "ceph");
        Site { t, s3 }
    }

    fn p(&self) -> &Path {
        self.t.path()
    }

    /// The example with the documents' paths mapped into the test's directory.
    fn localise(&self, text: &str) -> String {
        let p = self.p().display().to_string();
        // "/restore" is the directory, not the end of "scripts/restore.mk".
        let mut restored = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("/restore") {
            restored.push_str(&rest[..i]);
            let after = &rest[i + "/restore".len()..];
            if after.starts_with('.') && !after.starts_with("/.") {
                restored.push_str("/restore");
            } else {
                restored.push_str(&format!("{p}/restore"));
            }
            rest = after;
        }
        restored.push_str(rest);
        restored
            .replace("/etc/sol/", &format!("{p}/etc/sol/"))
            .replace("/data/mission", &format!("{p}/data/mission"))
            .replace(
                "s3://mission-archive/",
                &format!("s3://{}/", self.s3.bucket),
            )
            .replace(" scripts/", &format!(" {}/scripts/", repo().display()))
    }

    /// As pasted: plain bash, no errexit, in the site's directory.
    fn paste(&self, text: &str) -> Out {
        let scripts = repo().join("scripts");
        self.s3
            .env(sh(&format!("set +euo pipefail\n{text}")))
            .env(
                "PATH",
                format!("{}:{}", scripts.display(), path_with_tools()),
            )
            .dir(self.p())
            .run()
    }
}

#[test]
fn the_documented_pipelines_run_and_are_safe_to_paste() {
    let ex = examples();

    // With real sols: everything works and the audits find no difference.
    let site = Site::new();
    for (doc, text) in &ex {
        let out = site.paste(&site.localise(text));
        assert_eq!(
            out.code,
            0,
            "{doc}: {text}\nstdout: {}\nstderr: {}",
            out.stdout_str(),
            out.stderr
        );
        for bad in ["extra:", "changed:", "missing:", "FAILED", "DIFFERS"] {
            assert!(
                !out.stdout_str().contains(bad),
                "{doc}: {text}\n{}",
                out.stdout_str()
            );
        }
    }
    assert!(site.s3.get("sols/sol0042.tar.gz.sc").is_some());
    for sol in ["sol0040", "sol0041", "sol0042"] {
        assert_same_tree(
            &site.p().join("data/mission").join(sol),
            &site.p().join("restore").join(sol),
        );
    }

    // With a sol that does not exist: whatever a block does, nothing is left under its
    // name, and an audit fails.
    let site = Site::new();
    let mut ran = 0;
    for (doc, text) in &ex {
        if !text.contains("sol0042") {
            // Set-up blocks (the key) still run; the others do not concern sol0042.
            if text.contains("keygen") {
                site.paste(&site.localise(text)).ok();
            }
            continue;
        }
        ran += 1;
        let text = site.localise(&text.replace("sol0042", "sol9999"));
        let out = site.paste(&text);
        let p = site.p();
        for left in [p.join("sol9999.tar.gz.sc"), p.join("restore/sol9999")] {
            assert!(!left.exists(), "{doc}: {text}\nleft {}", left.display());
        }
        // No staging directory (.SOL.HOST.PID.XXXXXX.partial) is left either.
        let staged: Vec<String> = std::fs::read_dir(p.join("restore"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".sol9999.") && n.ends_with(".partial"))
            .collect();
        assert!(staged.is_empty(), "{doc}: {text}\nleft {staged:?}");
        assert!(
            site.s3.get("sols/sol9999.tar.gz.sc").is_none(),
            "{doc}: {text}\nstored an object"
        );
        if text.contains("tar-md5") {
            assert_ne!(out.code, 0, "{doc}: {text}\nan audit of nothing passed");
        }
    }
    assert!(ran >= 4, "only {ran} examples concern sol0042");
}
