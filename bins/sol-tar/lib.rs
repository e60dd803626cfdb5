//! sol-tar: archive a directory tree to a pax tar stream, and back.

pub mod cli;
pub mod create;
pub mod extract;
pub mod header;
pub mod holes;
pub mod list;
pub mod readahead;
pub mod walk;
pub mod writers;

use std::path::Path;
use std::process::ExitCode;

use sol_common::{stdio, Status};

use cli::{Cli, Cmd};

pub const TOOL: &str = "sol-tar";

pub fn main() -> ExitCode {
    sol_common::finish(TOOL, run(sol_common::parse_cli::<Cli>(TOOL)))
}

/// Print a warning that does not stop the tool (it still exits 1 at the end).
pub fn warn(msg: impl std::fmt::Display) {
    sol_common::warn(TOOL, msg);
}

pub fn run(cli: Cli) -> anyhow::Result<Status> {
    match cli.cmd {
        Cmd::Create {
            directory,
            paths,
            force,
            readers,
            index,
            no_sparse,
        } => {
            let out = stdio::binary_output(force)?;
            let how = create::Options {
                readers,
                index: index.as_deref(),
                sparse: !no_sparse,
            };
            create::create(directory.as_deref(), &paths, out, &how)
        }
        Cmd::Extract {
            directory,
            file,
            keep_old_files,
            paths,
        } => extract::extract(
            stdio::open_input(file.as_deref())?,
            directory.as_deref().unwrap_or(Path::new(".")),
            &extract::Options {
                paths,
                keep_old_files,
            },
        ),
        Cmd::List { verbose, file } => list::list(stdio::open_input(file.as_deref())?, verbose),
    }
}
