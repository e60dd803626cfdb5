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
    if cli.index.is_some() && (!cli.encrypt || cli.openssl) {
        Err(Fail::usage("--index is for encrypting (-e, not --openssl)"))?;
    }
    if cli.chunks.is_some() && !decrypting {
        Err(Fail::usage(
            "--chunks is for decrypting (-d, not --openssl)",
        ))?;
    }
    // The index file is made before any input is read, so a bad path fails first.
    let index = match &cli.index {
        Some(p) => Some((
            std::fs::File::create(p).with_context(|| format!("index file '{}'", p.display()))?,
            p,
        )),
        None => None,
    };
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
    let mut out = Counting {
        inner: stdio::binary_output(cli.force)?,
        n: 0,
    };
    let mut progress = sol_common::progress::Progress::new(TOOL, cli.progress);
    match (cli.encrypt, cli.openssl) {
        (true, false) if sealing => {
            let key = match &cli.key_file {
                Some(p) => Some(key::SiteKey::load(p)?),
                None => None,
            };
            let (size, p) = (cli.chunk_size, &mut progress);
            let plain =
                recipient::encrypt(&mut input, &mut out, &recipients, key.as_ref(), size, p)?;
            write_index(index, 2, cli.chunk_size, plain, out.n)?
        }
        (true, false) => {
            let key = key::SiteKey::load(key_file)?;
            let plain = stream::encrypt(&mut input, &mut out, &key, cli.chunk_size, &mut progress)?;
            write_index(index, 1, cli.chunk_size, plain, out.n)?
        }
        (false, false) => {
            let creds = creds.expect("set for decryption");
            let chunks = cli.chunks.as_ref().map(|l| l.0.as_slice());
            recipient::decrypt(&mut input, &mut out, &creds, chunks, &mut progress)?
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

/// Counts the bytes written through it.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// sol-crypt's part of the restore index (sol_formats::index): how the chunks of the stream
/// just written are addressed.
fn write_index(
    index: Option<(std::fs::File, &std::path::PathBuf)>,
    version: u8,
    chunk_size: u32,
    plain_len: u64,
    sealed_len: u64,
) -> anyhow::Result<()> {
    use sol_formats::index::{CryptLayout, CRYPT_MAGIC};
    let Some((mut f, path)) = index else {
        return Ok(());
    };
    let layout = CryptLayout {
        version,
        header_len: sealed_len - sol_formats::crypt::sealed_len(plain_len, chunk_size),
        chunk_size,
        plain_len,
        sealed_len,
    };
    f.write_all(format!("{CRYPT_MAGIC}\n{}", layout.line()).as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing index file '{}'", path.display()))
}
