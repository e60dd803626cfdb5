//! The process boundary: one error line, one exit status.

use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;

/// The exit statuses every tool shares (README.md, Conventions). Each tool's man page says
/// what each means for it in its EXIT STATUS section (bins/TOOL/end.roff).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success = 0,
    /// I/O, network, server refused after retries.
    Failure = 1,
    /// Bad command line.
    Usage = 2,
    /// Authentication tag, checksum or ETag mismatch, truncated or malformed stream, difference.
    Integrity = 3,
    /// sol-restore: nothing failed; some sols wait for a thaw from cold storage.
    Waiting = 5,
    /// SIGINT/SIGTERM, after cleaning up.
    Interrupted = 130,
    /// stdout was closed under us.
    BrokenPipe = 141,
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> ExitCode {
        ExitCode::from(s as u8)
    }
}

/// An error whose exit status is not the default 1. Put it at the bottom of an anyhow chain
/// (`Err(Fail::integrity(..))?`) and add context above it as usual.
#[derive(Debug)]
pub struct Fail {
    pub status: Status,
    pub message: String,
}

impl Fail {
    pub fn integrity(message: impl fmt::Display) -> Fail {
        Fail {
            status: Status::Integrity,
            message: message.to_string(),
        }
    }
    pub fn usage(message: impl Into<String>) -> Fail {
        Fail {
            status: Status::Usage,
            message: message.into(),
        }
    }
    pub fn interrupted() -> Fail {
        Fail::interrupted_with("interrupted")
    }
    /// Interrupted, saying what was left behind.
    pub fn interrupted_with(message: impl Into<String>) -> Fail {
        Fail {
            status: Status::Interrupted,
            message: message.into(),
        }
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fail {}

/// An integrity failure (status 3) as an error: the one way every tool makes one.
pub fn integrity(message: impl fmt::Display) -> anyhow::Error {
    Fail::integrity(message).into()
}

/// True when the error chain contains a closed pipe (EPIPE) anywhere.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>().is_some_and(|io| {
            io.kind() == io::ErrorKind::BrokenPipe
                || io
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<io::Error>())
                    .is_some_and(|i| i.kind() == io::ErrorKind::BrokenPipe)
        })
    })
}

/// The exit status an error maps to.
pub fn status_of(err: &anyhow::Error) -> Status {
    if is_broken_pipe(err) {
        return Status::BrokenPipe;
    }
    err.chain()
        .find_map(|e| e.downcast_ref::<Fail>().map(|f| f.status))
        .unwrap_or(Status::Failure)
}

/// The one-line message: the whole cause chain, without the "(os error N)" suffixes.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = format!("{err:#}");
    while let Some(start) = line.find(" (os error ") {
        match line[start..].find(')') {
            Some(end) => line.replace_range(start..start + end + 1, ""),
            None => break,
        }
    }
    printable(&line)
}

/// An io::Error's message without the "(os error N)" suffix.
pub fn io_msg(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// `s` with control characters (newlines, escapes, raw bytes read as text) written as `\xNN`
/// and U+FFFD (what lossy decoding makes of bytes that are not UTF-8) as `?`: a message is one
/// line of text a terminal shows as it is.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            '\u{fffd}' => out.push('?'),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Print `tool: message` on stderr. A closed or broken stderr is ignored: a message nobody
/// can read is no reason to panic (`eprintln!` would) or to change the exit status.
pub fn warn(tool: &str, message: impl fmt::Display) {
    let line = printable(&message.to_string());
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{tool}: {line}");
}

/// End a tool: print `tool: message` for an error (nothing for a closed stdout) and map the
/// result to its exit status (see [`Status`]).
pub fn finish(tool: &str, result: anyhow::Result<Status>) -> ExitCode {
    match result {
        Ok(status) => status.into(),
        Err(err) => {
            let status = status_of(&err);
            if status != Status::BrokenPipe {
                warn(tool, one_line(&err));
            }
            status.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn statuses_follow_the_chain() {
        let e = anyhow::Error::new(Fail::integrity("bad tag")).context("chunk 3");
        assert_eq!(status_of(&e), Status::Integrity);
        assert_eq!(one_line(&e), "chunk 3: bad tag");
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert_eq!(status_of(&e), Status::BrokenPipe);
        let e: anyhow::Error = Err::<(), _>(io::Error::from_raw_os_error(2))
            .context("key file 'k'")
            .unwrap_err();
        assert_eq!(status_of(&e), Status::Failure);
        assert_eq!(one_line(&e), "key file 'k': No such file or directory");
    }

    #[test]
    fn messages_are_printable() {
        assert_eq!(printable("a\nb\x1bc\u{fffd}"), "a b\\x1bc?");
    }
}
