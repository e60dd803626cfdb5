use std::path::PathBuf;

use clap::{ArgGroup, Parser, Subcommand};
use sol_common::{ManText, Status};

pub const MAN: ManText = ManText {
    sections: &[r#".SH EXAMPLES
.nf
sol-crypt keygen -o /etc/sol/site.key          # once; keep a copy off site
sol-tar create sol0042 | sol-zip | sol-crypt -e -k /etc/sol/site.key > sol0042.tar.gz.sc
sol-crypt -d -k /etc/sol/site.key < sol0042.tar.gz.sc | sol-zip -d | sol-tar extract -C /restore
sol-crypt info < sol0042.tar.gz.sc              # header and completeness, no key needed
SOL_KEY_FILE=/etc/sol/site.key sol-crypt -d < x.sc > x

# the classic pipeline's archives, and archives stock openssl can open:
sol-crypt --openssl -d -k pass.txt < old.tar.gz.enc | tar -xz
openssl enc -d -aes-256-cbc -pbkdf2 -pass file:pass.txt < <(sol-crypt --openssl -e -k pass.txt < x)
.fi
.SH KEY FILES
A key file holds 32 (AES-128) or 64 (AES-256) hex digits on one line. It is refused
when its mode lets group or others read it. The key never appears on the command line
or in a stream; a stream names it only by its key id (a hash of the key).
"#],
    exit: &[
        (Status::Success, None),
        (
            Status::Failure,
            Some(r#"I/O error, unreadable or insecure key file"#),
        ),
        (
            Status::Usage,
            Some(r#"usage error (no key file, bad option, binary output to a terminal)"#),
        ),
        (
            Status::Integrity,
            Some(
                r#"integrity failure: wrong key (named by key id), corrupt header, a chunk failing
authentication (flipped bit, reordered chunks), a missing final chunk (truncation),
data after the final chunk; with --openssl, a bad final block"#,
            ),
        ),
        (Status::BrokenPipe, None),
    ],
    see_also: "sol-crypt(5), sol-zip(1), sol-tar(1), openssl-enc(1)",
};

fn parse_chunk(s: &str) -> Result<u32, String> {
    let n = sol_common::parse_size(s)?;
    let (min, max) = (sol_formats::crypt::MIN_CHUNK, sol_formats::crypt::MAX_CHUNK);
    if !(u64::from(min)..=u64::from(max)).contains(&n) {
        return Err(format!("chunk size must be between {min} and {max} bytes"));
    }
    Ok(n as u32)
}

fn parse_bits(s: &str) -> Result<u32, String> {
    match s {
        "128" => Ok(128),
        "256" => Ok(256),
        _ => Err("key length must be 128 or 256".into()),
    }
}

/// Streaming authenticated encryption: AES-GCM in fixed-size chunks, for backups.
///
/// `-e` encrypts stdin to stdout, `-d` decrypts; the key comes from a key file (`-k` or
/// SOL_KEY_FILE), never from the command line. Every chunk is authenticated before any of
/// its plaintext is written; a flipped bit, reordered, missing, appended or truncated chunks,
/// and a wrong key all fail with status 3. The format is described in sol-crypt(5).
#[derive(Debug, Parser)]
#[command(name = "sol-crypt", version, max_term_width = 100, args_conflicts_with_subcommands = true,
          group(ArgGroup::new("mode").args(["encrypt", "decrypt"])))]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Option<Cmd>,

    /// Encrypt stdin to stdout.
    #[arg(short = 'e', long)]
    pub encrypt: bool,

    /// Decrypt stdin to stdout (the default).
    #[arg(short = 'd', long)]
    pub decrypt: bool,

    /// Key file (hex, from `sol-crypt keygen`); with --openssl, a passphrase file. Must not be
    /// readable by group or others.
    #[arg(
        short = 'k',
        long = "key-file",
        value_name = "KEYFILE",
        env = "SOL_KEY_FILE"
    )]
    pub key_file: Option<PathBuf>,

    /// Plaintext bytes per chunk when encrypting (K/M suffixes), recorded in the header.
    #[arg(long, value_name = "SIZE", default_value = "64K", value_parser = parse_chunk)]
    pub chunk_size: u32,

    /// Read and write `openssl enc -aes-256-cbc -pbkdf2 -pass file:KEYFILE` streams instead.
    /// That format is not authenticated: corruption is caught only by the final padding.
    #[arg(long)]
    pub openssl: bool,

    /// PBKDF2 iterations for --openssl (openssl's default is 10000).
    #[arg(long, value_name = "N", default_value_t = 10000, requires = "openssl")]
    pub iter: u32,

    /// Write binary data even when stdout is a terminal.
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Show bytes, rate and elapsed time on stderr.
    #[arg(long)]
    pub progress: bool,

    /// Input file; stdin when absent or '-'.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Write a new random key (hex, one line) to stdout, or to a new file of mode 0600.
    Keygen {
        /// Key length: 128 (AES-128-GCM) or 256 (AES-256-GCM).
        #[arg(long, default_value_t = 256, value_parser = parse_bits)]
        bits: u32,
        /// Create this file (mode 0600; an existing file is never overwritten).
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print a stream's header (version, cipher, chunk size, key id) and check, without the
    /// key, that the stream is complete (status 3 if it is not).
    Info {
        /// Encrypted file; stdin when absent or '-'.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
}
