use std::path::PathBuf;

use clap::{ArgGroup, Parser, Subcommand};
use sol_common::ManText;

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
/// SOL_KEY_FILE), never from the command line. Or `-e -r RECIPIENT`/`-R FILE` seals each
/// stream's random file key to public-key recipients (X25519), and `-d -i IDENTITY` (or
/// SOL_IDENTITY_FILE) opens it with any one of their identities: a host that encrypts to
/// recipients cannot decrypt what it wrote. Every chunk is authenticated before any of its
/// plaintext is written; a flipped bit, reordered, missing, appended or truncated chunks, a
/// changed header byte, and a wrong key or identity all fail with status 3. The format is
/// described in sol-crypt(5).
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
    #[arg(short, long, value_name = "KEYFILE", env = "SOL_KEY_FILE")]
    pub key_file: Option<PathBuf>,

    /// Encrypt to this recipient (`sol-recipient-1...`, from `sol-crypt keygen --identity` or
    /// `sol-crypt recipient`); repeat for more. The stream's random file key is sealed to each
    /// (a v2 stream, see sol-crypt(5)); with -k as well, also to the key file.
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    pub recipient: Vec<String>,

    /// Encrypt to every recipient in FILE (one a line; '#' comments and empty lines are
    /// skipped); repeatable.
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_file: Vec<PathBuf>,

    /// Decrypt with this identity file (from `sol-crypt keygen --identity`); repeatable. Any
    /// identity (or -k key file) that has a stanza in the stream opens it. Must not be
    /// readable by group or others.
    #[arg(short, long, value_name = "IDENTITY", env = "SOL_IDENTITY_FILE")]
    pub identity: Vec<PathBuf>,

    /// Plaintext bytes per chunk when encrypting (K/M suffixes), recorded in the header.
    #[arg(long, value_name = "SIZE", default_value = "64K", value_parser = parse_chunk)]
    pub chunk_size: u32,

    /// With -e: when the stream is complete, write to FILE how its chunks are addressed
    /// (header length, chunk size, lengths): sol-crypt's part of the restore index, see
    /// sol-index(1).
    #[arg(long, value_name = "FILE")]
    pub index: Option<PathBuf>,

    /// Decrypt only these chunks (FIRST-LAST[,FIRST-LAST]..., numbered from 0): the input is
    /// the stream's header followed by just those chunks' sealed bytes, back to back (what
    /// `s3-mget --range` fetches for a plan of `sol-index plan`). Each chunk is authenticated
    /// under its own number; the input must end after the last one named.
    #[arg(long, value_name = "LIST", value_parser = sol_common::ranges::list)]
    pub chunks: Option<sol_common::ranges::List>,

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
    /// Write a new random key (hex, one line) to stdout, or to a new file of mode 0600. With
    /// --identity, write a new X25519 identity to the file given with -o and print its
    /// recipient on stdout.
    Keygen {
        /// Key length: 128 (AES-128-GCM) or 256 (AES-256-GCM).
        #[arg(long, default_value_t = 256, value_parser = parse_bits)]
        bits: u32,
        /// Create this file (mode 0600; an existing file is never overwritten).
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Make a private identity (X25519) instead of a key: it needs -o; its public
        /// recipient (one line, `sol-recipient-1...`) goes to stdout.
        #[arg(long, requires = "output", conflicts_with = "bits")]
        identity: bool,
    },
    /// Print the recipient (public, `sol-recipient-1...`) of each identity in an identity
    /// file, one a line.
    Recipient {
        /// Identity file.
        #[arg(
            short = 'i',
            long = "identity",
            value_name = "IDENTITY",
            required = true
        )]
        identity: Vec<PathBuf>,
    },
    /// Print a stream's header (version, cipher, chunk size; the key id of a v1 stream, the
    /// stanzas of a v2 one: their types and recipients' fingerprints, never a secret) and
    /// check, without the key, that the stream is complete (status 3 if it is not).
    Info {
        /// Encrypted file; stdin when absent or '-'.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

/// The man page's own text: bins/man.rs adds the rest from the definitions above.
pub const MAN: ManText = ManText::new(include_str!("man.roff"), include_str!("end.roff"));
