use std::path::PathBuf;

use clap::Parser;
use sol_common::ManText;

/// Serve a directory as an S3 endpoint on loopback (development and tests only).
///
/// Buckets are the top-level directories of DIR. Prints the endpoint URL as the first line
/// on stdout (useful with --port 0) and serves until SIGINT or SIGTERM. Requests must be
/// signed with the access and secret keys given.
#[derive(Debug, Parser)]
#[command(name = "s3-local", version, max_term_width = 100)]
pub struct Cli {
    /// Directory to serve (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0: any free port).
    #[arg(long, default_value_t = 9000)]
    pub port: u16,
    /// Access key clients must use.
    #[arg(long, default_value = "sol-local", env = "S3_LOCAL_ACCESS_KEY")]
    pub access_key: String,
    /// Secret key clients must use.
    #[arg(long, default_value = "sol-local-secret", env = "S3_LOCAL_SECRET_KEY")]
    pub secret_key: String,
    /// Create these buckets (directories) before serving.
    #[arg(long, value_name = "NAME")]
    pub bucket: Vec<String>,
}

/// The man page's own text: bins/man.rs adds the rest from the definitions above.
pub const MAN: ManText = ManText::new(include_str!("man.roff"), include_str!("end.roff"));
