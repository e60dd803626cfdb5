//! s3-mget: one S3 object to stdout, ranges fetched in parallel and written in order.

pub mod cli;
pub mod download;
mod fetch;
mod window;

use std::process::ExitCode;

use sol_common::{Fail, Status};
use sol_s3::S3Url;

pub const TOOL: &str = "s3-mget";

pub fn main() -> ExitCode {
    sol_common::finish(TOOL, run(sol_common::parse_cli::<cli::Cli>(TOOL)))
}

fn run(cli: cli::Cli) -> anyhow::Result<Status> {
    let url = S3Url::parse_object(&cli.url).map_err(Fail::usage)?;
    let out = sol_common::stdio::binary_output(cli.force)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        tokio::select! {
            r = download::download(&cli, &url, out) => r,
            _ = sol_s3::interrupted() => Err(Fail::interrupted().into()),
        }
    })
}
