//! sol-zip: parallel gzip (Mgzip framing) and a strict parallel decoder.

pub mod cli;
pub mod compress;
pub mod decompress;

use std::fs::File;
use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use sol_common::{stdio, Status};

pub const TOOL: &str = "sol-zip";

pub fn main() -> ExitCode {
    let cli: cli::Cli =
        sol_common::parse_cli_from(TOOL, cli::expand_level_flags(std::env::args_os()));
    sol_common::finish(TOOL, run(cli))
}

pub fn run(cli: cli::Cli) -> anyhow::Result<Status> {
    let threads = cli.threads.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let input: Box<dyn Read + Send> = match cli.file.as_deref() {
        None | Some("-") => Box::new(stdio::input()),
        Some(path) => Box::new(File::open(path).with_context(|| format!("'{path}'"))?),
    };
    let mut progress = sol_common::progress::Progress::new(TOOL, cli.progress);
    if cli.decompress {
        let mut out = stdio::binary_output(cli.force)?;
        decompress::decompress(input, &mut out, threads, &mut progress)?;
    } else {
        if !cli.force && stdio::is_terminal(1) {
            Err(sol_common::Fail::usage(
                "compressed data not written to a terminal (redirect stdout, or use -f to force)",
            ))?;
        }
        // The index file is made before any input is read, so a bad path fails first.
        let index = match &cli.index {
            Some(p) => Some((
                File::create(p).with_context(|| format!("index file '{}'", p.display()))?,
                p.as_path(),
            )),
            None => None,
        };
        stdio::widen_pipes();
        let (level, size) = (cli.level, cli.block_size);
        compress::compress(input, level, threads, size, index, &mut progress)?;
    }
    progress.done();
    Ok(Status::Success)
}
