//! sol-tar: archive a directory tree to a pax tar stream, and back.

pub mod cli;
pub mod create;
pub mod extract;
pub mod header;
pub mod list;
pub mod readahead;
pub mod walk;

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use sol_common::{stdio, Status};

use cli::{Cli, Cmd};

pub const TOOL: &str = "sol-tar";

pub fn main() -> ExitCode {
    sol_common::finish(TOOL, run(Cli::parse()))
}

/// Print a warning that does not stop the tool (it still exits 1 at the end).
pub fn warn(msg: impl std::fmt::Display) {
    eprintln!("{TOOL}: {msg}");
}

fn open_input(file: Option<&Path>) -> anyhow::Result<Box<dyn Read + Send>> {
    Ok(match file {
        None => Box::new(stdio::input()),
        Some(p) if p.as_os_str() == "-" => Box::new(stdio::input()),
        Some(p) => Box::new(File::open(p).with_context(|| format!("'{}'", p.display()))?),
    })
}

pub fn run(cli: Cli) -> anyhow::Result<Status> {
    match cli.cmd {
        Cmd::Create {
            directory,
            paths,
            force,
            readers,
        } => {
            let out = stdio::binary_output(force)?;
            create::create(directory.as_deref(), &paths, out, readers)
        }
        Cmd::Extract { directory, file } => extract::extract(
            open_input(file.as_deref())?,
            directory.as_deref().unwrap_or(Path::new(".")),
        ),
        Cmd::List { verbose, file } => list::list(open_input(file.as_deref())?, verbose),
    }
}
