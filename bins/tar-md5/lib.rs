//! tar-md5: per-file MD5 of a tar stream, in md5sum's format, or checked against a tree.

pub mod check;
pub mod cli;
pub mod hasher;
pub mod sums;

use std::fs::File;
use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use sol_common::{stdio, Status};

pub const TOOL: &str = "tar-md5";

pub fn main() -> ExitCode {
    sol_common::finish(TOOL, run(sol_common::parse_cli::<cli::Cli>(TOOL)))
}

pub fn run(cli: cli::Cli) -> anyhow::Result<Status> {
    let input: Box<dyn Read + Send> = match cli.file.as_deref() {
        None | Some("-") => Box::new(stdio::input()),
        Some(p) => Box::new(File::open(p).with_context(|| format!("'{p}'"))?),
    };
    let threads = cli.threads.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    match cli.check {
        None => sums::sums(input, threads, cli.strip_components),
        Some(dir) => check::check(input, &dir, threads, cli.strip_components),
    }
}

/// An entry name with the first `strip` components removed (None when nothing is left).
pub fn strip(name: &[u8], strip: usize) -> Option<Vec<u8>> {
    let mut parts = name
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".");
    for _ in 0..strip {
        parts.next()?;
    }
    let joined: Vec<&[u8]> = parts.collect();
    (!joined.is_empty()).then(|| joined.join(&b'/'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn strip_components() {
        assert_eq!(super::strip(b"sol1/a/b", 1).as_deref(), Some(&b"a/b"[..]));
        assert_eq!(
            super::strip(b"./sol1/a", 0).as_deref(),
            Some(&b"sol1/a"[..])
        );
        assert_eq!(super::strip(b"sol1/", 1), None);
    }
}
