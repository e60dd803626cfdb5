//! s3-mput: stdin to one S3 object, parts uploaded in parallel.

mod canary;
mod checks;
pub mod cli;
mod commit;
mod copy;
mod lock;
pub mod reader;
mod requests;
pub mod upload;

use std::process::ExitCode;

use sol_common::{Fail, Status};
use sol_s3::S3Url;

pub const TOOL: &str = "s3-mput";

pub fn main() -> ExitCode {
    sol_common::finish(TOOL, run(sol_common::parse_cli::<cli::Cli>(TOOL)))
}

fn run(cli: cli::Cli) -> anyhow::Result<Status> {
    let url = S3Url::parse_object(&cli.url).map_err(Fail::usage)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let retained = cli.retain.is_some() || cli.retain_until.is_some();
    if cli.lock_canary && !retained {
        Err(Fail::usage(
            "--lock-canary needs --retain or --retain-until",
        ))?;
    }
    if cli.lock_mode.is_some() && !retained {
        Err(Fail::usage("--lock-mode needs --retain or --retain-until"))?;
    }
    let canary = cli.lock_canary.then(|| cli.conn.clone());
    rt.block_on(async {
        let status = upload::upload(cli, url.clone()).await?;
        match canary {
            Some(conn) if status == Status::Success => canary::prove(&conn, &url).await,
            _ => Ok(status),
        }
    })
}
