//! Issue 22 item 2: sols spread over several hosts by GNU parallel (--hosts), the hosts
//! made on this machine by tests/hosts (one sshd each, its own address and host key), and
//! one host lost in the middle of an upload: killed outright, or cut off and still alive.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::s3env::S3;
use crate::scripts::*;
use crate::util::*;

const SOLS: usize = 4;

/// Why this machine cannot make hosts (root, sshd, ssh, GNU parallel are needed), or None.
fn cannot_make_hosts() -> Option<String> {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    if !root {
        return Some("sshd hosts need root".into());
    }
    for (tool, at) in [("sshd", "/usr/sbin/sshd"), ("ssh", ""), ("parallel", "")] {
        let found = Path::new(at).is_file() || sh(&format!("command -v {tool}")).run().code == 0;
        if !found {
            return Some(format!("no {tool} (CI installs it)"));
        }
    }
    None
}

struct Hosts {
    dir: PathBuf,
    logins: PathBuf,
}

impl Hosts {
    /// N hosts at addresses of their own (tests at once never share one).
    fn start(t: &Path, n: usize) -> Hosts {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        // 127.0.0.BASE+1..: apart from other test processes' hosts (BASE 10..230).
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let base = 10 + 10 * ((std::process::id() as usize + k) % 23);
        let dir = t.join("hosts");
        let out = sh(&format!(
            "'{}' start '{}' {n} {base}",
            hosts_script().display(),
            dir.display()
        ))
        .run();
        out.ok();
        let logins = t.join("logins");
        fs::write(&logins, &out.stdout).unwrap();
        Hosts { dir, logins }
    }
    fn run(&self, what: &str) -> Out {
        sh(&format!("'{}' {what}", hosts_script().display())).run()
    }
    /// The shell words that make GNU parallel reach the hosts.
    fn env(&self) -> String {
        format!("PARALLEL_SSH='ssh -F {}/ssh_config'", self.dir.display())
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        self.run(&format!("stop '{}'", self.dir.display()));
    }
}

fn hosts_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hosts")
}

/// A mission of SOLS sols of 24 MiB of random bytes each: every upload is multipart.
fn big_mission(root: &Path) {
    for s in 1..=SOLS {
        let d = root.join(format!("sol{s:04}/data"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("image.raw"), Rng::new(s as u64).bytes(24 << 20)).unwrap();
        fs::write(d.join("notes.txt"), format!("sol {s}")).unwrap();
    }
}

/// Back the mission up over three hosts with slow uploads; when the first multipart upload
/// is pending, `lose` (kill or cut) the host that runs its sol. Then every sol is stored once
/// with its index bound to that archive, the report says what happened, and no upload is
/// pending after the run or the next one.
fn lose_a_host_mid_upload(lose: &str) {
    if let Some(why) = cannot_make_hosts() {
        skip(&why);
        return;
    }
    let at = site(0);
    let Site { s3, t, root, key } = &at;
    big_mission(root);
    let hosts = Hosts::start(t.path(), 3);
    let d = s3.url("s");
    // sol-backup of every sol over the hosts, with the slow uploads.
    let logins = hosts.logins.display();
    let all = format!("--hosts '{logins}' {}", at.sols("sol*"));
    let all = call("sol-backup", &all);
    let run = at.with_slow_mput("3M", &format!("{} {all}", hosts.env()));
    let report = t.path().join("report");
    let dir = hosts.dir.display();
    let out = run_sh(
        s3,
        &format!(
            "set +e; {run} > '{0}' 2> '{0}.err' & pid=$!
            for i in $(seq 300); do s3-ls --uploads {d}/ | grep -q . && break; sleep 0.1; done
            s3-ls --uploads {d}/ | grep -q . || {{ echo 'no upload seen'; exit 1; }}
            sol=$(s3-ls --uploads {d}/ | head -n 1 | cut -f 1); sol=${{sol##*/}}; sol=${{sol%%.*}}
            h=$('{1}' busy '{dir}' \"/$sol\") || {{ echo \"no host uploads $sol\"; ps -ww -eo pid,ppid,args --forest | grep -v grep | grep -E 'sshd|sol-|s3-' | cut -c1-200; exit 1; }}
            '{1}' {lose} '{dir}' $h; echo \"lost h$h\"; wait $pid; echo \"rc=$?\"",
            report.display(),
            hosts_script().display()
        ),
    );
    let o = out.stdout_str();
    let text = fs::read_to_string(&report).unwrap_or_default();
    let err = fs::read_to_string(t.path().join("report.err")).unwrap_or_default();
    eprintln!("{o}\n{text}\n{err}");
    assert!(o.contains("rc=0"), "{o}\n{text}\n{err}");
    let lost = o.lines().find_map(|l| l.strip_prefix("lost ")).unwrap();
    assert!(
        text.contains(&format!("retried on another host (lost: {lost})")),
        "{text}"
    );
    assert!(text.contains(&format!("{SOLS} sols: {SOLS} ok")), "{text}");
    for s in 1..=SOLS {
        let row = rows_for(&text, &format!("sol{s:04}"));
        assert_eq!(row.len(), 1, "{text}");
        let host = row[0].split_whitespace().last().unwrap();
        assert!(["h1", "h2", "h3"].contains(&host), "{text}");
    }
    stored_once_and_bound(s3, t, key);
    s3.assert_no_pending_uploads();
    // A late completion by a cut-off host can no longer land: give it time to try.
    if lose == "cut" {
        std::thread::sleep(Duration::from_secs(8));
        stored_once_and_bound(s3, t, key);
    }
    // The next run: every sol stored already, nothing pending.
    run_sh(s3, &run)
        .ok()
        .stdout_has(&format!("{SOLS} sols: 0 ok, {SOLS} skipped"));
    s3.assert_no_pending_uploads();
    // No process of the lost host's sessions outlives the test.
    let started = Instant::now();
    while !processes_mentioning(root).is_empty() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One archive and one index per sol and nothing else, and each index describes the
/// archive stored (sol-restore --list binds it by size and ETag before it is read).
fn stored_once_and_bound(s3: &S3, t: &tempfile::TempDir, key: &Path) {
    let ls = s3.ls(&["--relative"], "s/");
    ls.ok();
    let mut keys: Vec<String> = ls
        .stdout_str()
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    keys.sort();
    let want: Vec<String> = (1..=SOLS)
        .flat_map(|s| {
            [
                format!("sol{s:04}.index.gz.sc"),
                format!("sol{s:04}.tar.gz.sc"),
            ]
        })
        .collect();
    assert_eq!(keys, want);
    let (k, d) = (key.display(), s3.url("s"));
    for s in 1..=SOLS {
        let list = restore(s3, &format!("--list -k '{k}' {d} sol{s:04}"));
        list.ok();
        assert!(
            list.stdout_str().contains("data/image.raw") && list.stderr.is_empty(),
            "sol{s:04}: {}\n{}",
            list.stdout_str(),
            list.stderr
        );
    }
    let dest = t.path().join("restored");
    restore(s3, &format!("-k '{k}' {d} sol0001 '{}'", dest.display())).ok();
    fs::remove_dir_all(&dest).ok();
}

#[test]
fn multihost_a_killed_host_s_sols_are_stored_once_on_the_others() {
    lose_a_host_mid_upload("kill");
}

#[test]
fn multihost_a_cut_off_host_that_goes_on_cannot_replace_what_the_retry_stored() {
    lose_a_host_mid_upload("cut");
}
