//! sol-crypt: streaming authenticated encryption (AES-GCM, age-style STREAM chunks).

pub mod cli;
pub mod info;
pub mod key;
pub mod openssl_enc;
pub mod stream;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use sol_common::{stdio, Fail, Status};

use cli::{Cli, Cmd};

pub const TOOL: &str = "sol-crypt";

pub fn main() -> ExitCode {
    sol_common::finish(TOOL, run(sol_common::parse_cli::<Cli>(TOOL)))
}

pub fn run(cli: Cli) -> anyhow::Result<Status> {
    match cli.cmd {
        Some(Cmd::Keygen { bits, output }) => {
            key::keygen(bits, output.as_deref())?;
            return Ok(Status::Success);
        }
        Some(Cmd::Info { file }) => return info::info(&mut stdio::open_input(file.as_deref())?),
        None => {}
    }
    let key_file = cli.key_file.as_deref().ok_or_else(|| {
        Fail::usage("a key file is required: -k KEYFILE or SOL_KEY_FILE (see sol-crypt keygen)")
    })?;
    let mut input = stdio::open_input(cli.file.as_deref())?;
    let mut out = stdio::binary_output(cli.force)?;
    let mut progress = sol_common::progress::Progress::new(TOOL, cli.progress);
    match (cli.encrypt, cli.openssl) {
        (true, false) => {
            let key = key::SiteKey::load(key_file)?;
            stream::encrypt(&mut input, &mut out, &key, cli.chunk_size, &mut progress)?
        }
        (false, false) => {
            let key = key::SiteKey::load(key_file)?;
            stream::decrypt(&mut input, &mut out, &key, key_file, &mut progress)?
        }
        (encrypt, true) => {
            let pass = key::load_passphrase(key_file)?;
            openssl_enc::crypt(
                encrypt,
                &mut input,
                &mut out,
                &pass,
                cli.iter,
                &mut progress,
            )?
        }
    }
    out.flush().context("writing output")?;
    progress.done();
    Ok(Status::Success)
}
