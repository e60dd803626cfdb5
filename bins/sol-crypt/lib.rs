//! sol-crypt: streaming authenticated encryption (AES-GCM, age-style STREAM chunks).

pub mod cli;
pub mod identity;
pub mod info;
pub mod key;
pub mod openssl_enc;
pub mod recipient;
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
        Some(Cmd::Keygen {
            identity: true,
            output: Some(output),
            ..
        }) => {
            identity::keygen(&output)?;
            return Ok(Status::Success);
        }
        Some(Cmd::Keygen { bits, output, .. }) => {
            key::keygen(bits, output.as_deref())?;
            return Ok(Status::Success);
        }
        Some(Cmd::Recipient { identity }) => {
            identity::print_recipients(&identity)?;
            return Ok(Status::Success);
        }
        Some(Cmd::Info { file }) => return info::info(&mut stdio::open_input(file.as_deref())?),
        None => {}
    }
    let sealing = !cli.recipient.is_empty() || !cli.recipients_file.is_empty();
    if sealing && (!cli.encrypt || cli.openssl) {
        Err(Fail::usage(
            "-r and -R are for encrypting to recipients (-e, not --openssl)",
        ))?;
    }
    let decrypting = !cli.encrypt && !cli.openssl;
    if !sealing && (!decrypting || cli.identity.is_empty()) {
        cli.key_file.as_deref().ok_or_else(|| {
            Fail::usage(
                "a key file is required: -k KEYFILE or SOL_KEY_FILE (see sol-crypt keygen); \
                 or -r RECIPIENT to encrypt, -i IDENTITY to decrypt",
            )
        })?;
    }
    let key_file = cli.key_file.as_deref().unwrap_or(std::path::Path::new(""));
    // Recipients and identities are read (and checked) before any input is.
    let recipients = identity::recipients(&cli.recipient, &cli.recipients_file)?;
    let creds = if decrypting {
        let key = match &cli.key_file {
            Some(p) => Some((key::SiteKey::load(p)?, p.clone())),
            None => None,
        };
        let mut identities = Vec::new();
        for f in &cli.identity {
            identities.extend(identity::Identity::load(f)?);
        }
        Some(recipient::Credentials { key, identities })
    } else {
        None
    };
    let mut input = stdio::open_input(cli.file.as_deref())?;
    let mut out = stdio::binary_output(cli.force)?;
    let mut progress = sol_common::progress::Progress::new(TOOL, cli.progress);
    match (cli.encrypt, cli.openssl) {
        (true, false) if sealing => {
            let key = match &cli.key_file {
                Some(p) => Some(key::SiteKey::load(p)?),
                None => None,
            };
            let (size, p) = (cli.chunk_size, &mut progress);
            recipient::encrypt(&mut input, &mut out, &recipients, key.as_ref(), size, p)?
        }
        (true, false) => {
            let key = key::SiteKey::load(key_file)?;
            stream::encrypt(&mut input, &mut out, &key, cli.chunk_size, &mut progress)?
        }
        (false, false) => {
            let creds = creds.expect("set for decryption");
            recipient::decrypt(&mut input, &mut out, &creds, &mut progress)?
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
