use clap::Parser;
use sol_common::ManText;
use sol_s3::ConnArgs;

fn parse_part(s: &str) -> Result<u64, String> {
    let n = sol_common::parse_size(s)?;
    if !(sol_s3::MIN_PART..=sol_s3::MAX_PART).contains(&n) {
        return Err("part size must be between 5M and 5G".into());
    }
    Ok(n)
}

fn parse_retain(s: &str) -> Result<std::time::Duration, String> {
    match sol_common::time::parse_duration(s)? {
        d if d.is_zero() => Err("a retention must be longer than 0".into()),
        d if d.as_secs() > 1000 * 365 * 86_400 => Err("a retention of over 1000y".into()),
        d => Ok(d),
    }
}

fn parse_rate(s: &str) -> Result<u64, String> {
    let n = sol_common::parse_size(s)?;
    if n < 1024 {
        return Err("rate must be at least 1K (bytes per second)".into());
    }
    Ok(n)
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}': expected KEY=VALUE"))?;
    if k.is_empty()
        || !k
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "'{k}': metadata keys are letters, digits, '-' and '_'"
        ));
    }
    Ok((k.to_ascii_lowercase(), v.to_string()))
}

/// Read stdin to EOF and store it as one S3 object, uploading parts in parallel.
///
/// Input shorter than one part is a single PutObject; longer input is a multipart upload of
/// --part-size parts, --concurrency at a time, each with a checksum and retried with backoff.
/// Streams of unknown length work up to S3's 5 TiB limit: the part size doubles every 1000
/// parts. On failure, SIGINT or SIGTERM before the commit the upload is aborted: nothing
/// appears under KEY. An existing KEY is never replaced without --overwrite. A sol-crypt
/// stream (detected by its magic) is completed only if its final chunk and trailer arrived.
/// The stored object's ETag is always checked against the data sent.
#[derive(Debug, Parser)]
#[command(name = "s3-mput", version, max_term_width = 100)]
pub struct Cli {
    /// Destination s3://BUCKET/KEY, or PROFILE:s3://BUCKET/KEY (see TARGETS in s3-mput(1))
    #[arg(value_name = "URL")]
    pub url: String,
    /// Size of each part (K/M/G), 5M to 5G; the first 1000 parts have this size.
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_part)]
    pub part_size: u64,
    /// Parts uploaded at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Replace an existing object at KEY.
    #[arg(long)]
    pub overwrite: bool,
    /// Refuse to complete unless the input is a complete sol-crypt stream.
    #[arg(long)]
    pub require_complete: bool,
    /// Complete only if FILE's first line is `commit` when stdin ends; otherwise abort.
    /// A shell writes it after every upstream stage exited 0 (see sol-backup), so a stage
    /// that failed upstream of an encoder that closed its stream cleanly stores nothing.
    #[arg(long, value_name = "FILE")]
    pub commit_file: Option<std::path::PathBuf>,
    /// Storage class, e.g. STANDARD_IA, GLACIER_IR, DEEP_ARCHIVE.
    #[arg(long, value_name = "CLASS")]
    pub storage_class: Option<String>,
    /// Server-side encryption: AES256 or aws:kms.
    #[arg(long, value_name = "ALG")]
    pub sse: Option<String>,
    /// Content-Type of the object.
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// User metadata KEY=VALUE (repeatable).
    #[arg(long = "metadata", value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub metadata: Vec<(String, String)>,
    /// Upload at most RATE bytes per second (K/M/G suffixes).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub limit_rate: Option<u64>,
    /// Show bytes, rate and elapsed time on stderr [default: when stderr is a terminal].
    #[arg(long)]
    pub progress: bool,
    /// On success print ETAG<TAB>BYTES<TAB>PARTS on stdout (with --also, a line per stored
    /// target: TARGET<TAB>ETAG<TAB>BYTES<TAB>PARTS).
    #[arg(long)]
    pub print: bool,
    /// Store the same stream at TARGET too (another bucket or vendor:
    /// PROFILE:s3://BUCKET/KEY, see TARGETS), reading stdin once; repeatable. Each target
    /// has its own upload, retries and confirmation; one that falls more than 8 parts
    /// behind the fastest is dropped and aborted (SEVERAL TARGETS)
    #[arg(long, value_name = "TARGET")]
    pub also: Vec<String>,
    /// With --also: how many targets must store the object for status 0 (default: all)
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u16).range(1..))]
    pub min_ok: Option<u16>,
    /// Lock the object for DURATION (s, m, h, d, w, y: 90d, 1y) from now on the server's
    /// clock (Object Lock retention; the bucket must have Object Lock). See OBJECT LOCK
    #[arg(long, value_name = "DURATION", value_parser = parse_retain,
          conflicts_with = "retain_until")]
    pub retain: Option<std::time::Duration>,
    /// Lock the object until TIME (RFC 3339, e.g. 2031-01-01T00:00:00Z)
    #[arg(long, value_name = "TIME", value_parser = super::lock::parse_until)]
    pub retain_until: Option<aws_sdk_s3::primitives::DateTime>,
    /// The retention's mode: COMPLIANCE (nobody can shorten or remove it) or GOVERNANCE
    /// (only with --bypass-governance, where a tool offers it)
    #[arg(long, value_name = "MODE", value_parser = ["COMPLIANCE", "GOVERNANCE"])]
    pub lock_mode: Option<String>,
    /// Put a legal hold on the object (it stays until removed, whatever the retention)
    #[arg(long)]
    pub legal_hold: bool,
    /// After storing stdin locked at URL (with --retain or --retain-until), prove the lock
    /// holds: try to delete that version by its id and to overwrite the key, then read the
    /// version back; prints URL<TAB>VERSION<TAB>holds, or status 3 (see OBJECT LOCK)
    #[arg(long, requires = "overwrite", conflicts_with_all = ["also", "copy_of"])]
    pub lock_canary: bool,
    /// Stdin is a copy of the object at SOURCE (`s3-mget SOURCE | s3-mput --copy-of SOURCE
    /// URL`): lay the parts out as SOURCE's, and store nothing unless the copy has SOURCE's
    /// length and ETag (status 3); SOURCE's user metadata goes with it, but for what
    /// --metadata gives. Overrides --part-size (COPIES in s3-mput(1))
    #[arg(long, value_name = "SOURCE")]
    pub copy_of: Option<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// The man page's own text: bins/man.rs adds the rest from the definitions above.
pub const MAN: ManText = sol_s3::man(include_str!("man.roff"), include_str!("end.roff"));
