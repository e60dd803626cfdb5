//! sol-crypt: streaming authenticated encryption (AES-GCM, age-style STREAM chunks).

pub mod cli;
pub mod identity;
pub mod info;
pub mod key;
pub mod openssl_enc;
pub mod recipient;
pub mod stream;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use sol_common::progress::Progress;
use sol_common::{stdio, Fail, Status};

use cli::{Cli, Cmd};

pub const TOOL: &str = "sol-crypt";

pub fn main() -> ExitCode {
    sol_common::finish(TOOL, run(sol_common::parse_cli::<Cli>(TOOL)))
}

/// The whole of one invocation: a subcommand, or one stream from input to output. Every
/// usage error, key, identity and recipient is checked before any input is read.
pub fn run(cli: Cli) -> anyhow::Result<Status> {
    if let Some(cmd) = &cli.cmd {
        return subcommand(cmd);
    }
    check_usage(&cli)?;
    // The index file is made before any input is read, so a bad path fails first.
    let index = create_index(cli.index.as_ref())?;
    require_key_file(&cli)?;
    // Recipients and identities are read (and checked) before any input is.
    let recipients = identity::recipients(&cli.recipient, &cli.recipients_file)?;
    let creds = if decrypting(&cli) {
        Some(credentials(&cli)?)
    } else {
        None
    };
    let mut input = stdio::open_input(cli.file.as_deref())?;
    let mut out = Counting {
        inner: stdio::binary_output(cli.force)?,
        n: 0,
    };
    let mut progress = Progress::new(TOOL, cli.progress);
    let sealed = transform(
        &cli,
        &recipients,
        creds,
        &mut input,
        &mut out,
        &mut progress,
    )?;
    if let Some((version, plain)) = sealed {
        write_index(index, version, cli.chunk_size, plain, out.n)?;
    }
    out.flush().context("writing output")?;
    progress.done();
    Ok(Status::Success)
}

/// `keygen`, `recipient` and `info`: each does its work and is done.
fn subcommand(cmd: &Cmd) -> anyhow::Result<Status> {
    match cmd {
        Cmd::Keygen {
            identity: true,
            output: Some(output),
            ..
        } => identity::keygen(output)?,
        Cmd::Keygen { bits, output, .. } => key::keygen(*bits, output.as_deref())?,
        Cmd::Recipient { identity } => identity::print_recipients(identity)?,
        Cmd::Info { file } => return info::info(&mut stdio::open_input(file.as_deref())?),
    }
    Ok(Status::Success)
}

/// True when the stream's file key is sealed to recipients (`-r`, `-R`).
fn sealing(cli: &Cli) -> bool {
    !cli.recipient.is_empty() || !cli.recipients_file.is_empty()
}

/// True when the stream is decrypted (the default mode), not with --openssl.
fn decrypting(cli: &Cli) -> bool {
    !cli.encrypt && !cli.openssl
}

/// Refuses (status 2) the options that do not go with the mode: -r/-R and --index without
/// `-e`, --chunks without `-d`.
fn check_usage(cli: &Cli) -> anyhow::Result<()> {
    if sealing(cli) && (!cli.encrypt || cli.openssl) {
        Err(Fail::usage(
            "-r and -R are for encrypting to recipients (-e, not --openssl)",
        ))?;
    }
    if cli.index.is_some() && (!cli.encrypt || cli.openssl) {
        Err(Fail::usage("--index is for encrypting (-e, not --openssl)"))?;
    }
    if cli.chunks.is_some() && !decrypting(cli) {
        Err(Fail::usage(
            "--chunks is for decrypting (-d, not --openssl)",
        ))?;
    }
    Ok(())
}

/// The --index file, created (empty) with its path for messages; None without --index.
fn create_index(path: Option<&PathBuf>) -> anyhow::Result<Option<(std::fs::File, &PathBuf)>> {
    let Some(p) = path else {
        return Ok(None);
    };
    let f = std::fs::File::create(p).with_context(|| format!("index file '{}'", p.display()))?;
    Ok(Some((f, p)))
}

/// Refuses (status 2) a run without a key file where it needs one: every mode but sealing to
/// recipients and decrypting with identities.
fn require_key_file(cli: &Cli) -> anyhow::Result<()> {
    if !sealing(cli) && (!decrypting(cli) || cli.identity.is_empty()) {
        cli.key_file.as_deref().ok_or_else(|| {
            Fail::usage(
                "a key file is required: -k KEYFILE or SOL_KEY_FILE (see sol-crypt keygen); \
                 or -r RECIPIENT to encrypt, -i IDENTITY to decrypt",
            )
        })?;
    }
    Ok(())
}

/// What `-d` may open the stream with: the key file (if given) and every identity in the
/// identity files, each loaded and checked.
fn credentials(cli: &Cli) -> anyhow::Result<recipient::Credentials> {
    let key = match &cli.key_file {
        Some(p) => Some((key::SiteKey::load(p)?, p.clone())),
        None => None,
    };
    let mut identities = Vec::new();
    for f in &cli.identity {
        identities.extend(identity::Identity::load(f)?);
    }
    Ok(recipient::Credentials { key, identities })
}

/// Encrypts or decrypts `input` to `out` in the mode the flags select. After encryption
/// (not --openssl), the stream's version and plaintext length, for the restore index.
fn transform(
    cli: &Cli,
    recipients: &[identity::Recipient],
    creds: Option<recipient::Credentials>,
    input: &mut impl Read,
    out: &mut impl Write,
    progress: &mut Progress,
) -> anyhow::Result<Option<(u8, u64)>> {
    let key_file = cli.key_file.as_deref().unwrap_or(Path::new(""));
    match (cli.encrypt, cli.openssl) {
        (true, false) if sealing(cli) => {
            let key = match &cli.key_file {
                Some(p) => Some(key::SiteKey::load(p)?),
                None => None,
            };
            let size = cli.chunk_size;
            let plain = recipient::encrypt(input, out, recipients, key.as_ref(), size, progress)?;
            Ok(Some((2, plain)))
        }
        (true, false) => {
            let key = key::SiteKey::load(key_file)?;
            let plain = stream::encrypt(input, out, &key, cli.chunk_size, progress)?;
            Ok(Some((1, plain)))
        }
        (false, false) => {
            let creds = creds.expect("set for decryption");
            let chunks = cli.chunks.as_ref().map(|l| l.0.as_slice());
            recipient::decrypt(input, out, &creds, chunks, progress)?;
            Ok(None)
        }
        (encrypt, true) => {
            let pass = key::load_passphrase(key_file)?;
            openssl_enc::crypt(encrypt, input, out, &pass, cli.iter, progress)?;
            Ok(None)
        }
    }
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
    index: Option<(std::fs::File, &PathBuf)>,
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
