//! What every tool shares at its edges: usage errors name the tool, and a closed stderr
//! never turns into a panic.

use std::process::{Command, Stdio};

use crate::util::*;

/// A bad option on each tool: `TOOL: ...`, then at most a `Try 'TOOL --help'` line, status 2.
#[test]
fn usage_errors_name_the_tool() {
    for t in tools() {
        let out = tool(t).arg("--no-such-option").run();
        out.code(2);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(
            lines,
            [
                format!("{t}: unexpected argument '--no-such-option' found"),
                format!("Try '{t} --help' for more information."),
            ],
            "{t}"
        );
    }
    let out = tool("sol-zip").args(["--level", "0"]).run();
    out.code(2);
    assert_eq!(
        out.stderr.lines().next(),
        Some("sol-zip: invalid value '0' for '--level <LEVEL>': 0 is not in 1..=9")
    );
    let out = tool("sol-tar").run();
    out.code(2);
    assert!(
        out.stderr.starts_with("sol-tar: ") && out.stderr.lines().count() == 2,
        "{}",
        out.stderr
    );
    let out = tool("sol-tar").arg("create").run();
    out.code(2);
    assert_eq!(
        out.stderr.lines().next(),
        Some("sol-tar: the following required arguments were not provided: <PATH>...")
    );
    // Help and version still go to stdout with status 0.
    for t in tools() {
        let out = tool(t).arg("--help").run();
        out.ok();
        assert!(out.stdout_str().contains("Usage:"), "{t} --help");
    }
}

/// Run `tool args` with stdin from `input` and a stderr whose reader is already gone.
fn with_closed_stderr(t: &str, args: &[&str], input: &[u8]) -> i32 {
    use std::io::Write;
    let mut child = Command::new(bin(t))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait().unwrap().code().unwrap_or(-1)
}

/// Writing a warning or the final error to a closed stderr (EPIPE) is ignored, never a panic
/// (status 101): the exit status still says what happened.
#[test]
fn a_closed_stderr_never_panics() {
    let t = tmp();
    // An entry refused for its absolute name: a warning, then status 3.
    let tar = sh("tar -cPf - /etc/hostname").run();
    tar.ok();
    let dest = t.path().join("d");
    let d = dest.to_str().unwrap();
    assert_eq!(
        with_closed_stderr("sol-tar", &["extract", "-C", d], &tar.stdout),
        3
    );
    assert_eq!(with_closed_stderr("sol-zip", &["-d"], b"not gzip"), 3);
    assert_eq!(with_closed_stderr("tar-md5", &[], b"not tar"), 3);
    assert_eq!(with_closed_stderr("sol-crypt", &["-d"], b""), 2);
    for tool in tools() {
        assert_eq!(
            with_closed_stderr(tool, &["--no-such-option"], b""),
            2,
            "{tool}"
        );
    }
}
