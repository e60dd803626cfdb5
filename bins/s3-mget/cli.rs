use clap::Parser;
use sol_common::ManText;
use sol_s3::ConnArgs;

fn parse_part(s: &str) -> Result<u64, String> {
    let n = sol_common::parse_size(s)?;
    if !(1 << 20..=sol_s3::MAX_PART).contains(&n) {
        return Err("part size must be between 1M and 5G".into());
    }
    Ok(n)
}

/// The ranges of `--range`, half-open, as `sol_common::ranges::parse` reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeList(pub Vec<std::ops::Range<u64>>);

fn parse_ranges(s: &str) -> Result<RangeList, String> {
    sol_common::ranges::parse(s).map(RangeList)
}

/// An ETag as given, without its quotes (compared as the ETags of answers are).
fn parse_etag(s: &str) -> Result<String, String> {
    let e = s.trim_matches('"');
    if e.is_empty() {
        return Err("an ETag cannot be empty".into());
    }
    Ok(e.to_string())
}

/// Write one S3 object to stdout, downloading ranges in parallel.
///
/// Ranges are fetched --concurrency at a time and written in order; every range is pinned
/// to the ETag seen at the start (If-Match, and the ETag of each answer is compared), so an
/// object replaced during the download is an error, not a silent mix. A dropped range is
/// resumed from the byte where it stopped. The data is verified against the ETag where the
/// ETag is an MD5: a single-part object, or a multipart one whose part layout s3-mput
/// recorded; a mismatch exits with status 3. With --range, only the bytes asked for are
/// fetched and written (see RANGES), and not verified against the object's MD5.
#[derive(Debug, Parser)]
#[command(name = "s3-mget", version, max_term_width = 100)]
pub struct Cli {
    /// Source s3://BUCKET/KEY, or PROFILE:s3://BUCKET/KEY (see TARGETS in s3-mget(1))
    #[arg(value_name = "URL")]
    pub url: String,
    /// A specific version of the object (an ID may begin with '-', as Ceph RGW's do).
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    pub version_id: Option<String>,
    /// Write only these bytes, back to back: FIRST-LAST[,FIRST-LAST]..., inclusive offsets,
    /// increasing, not overlapping; the object's MD5 is then not checked (see RANGES).
    #[arg(long, value_name = "LIST", value_parser = parse_ranges)]
    pub range: Option<RangeList>,
    /// The object must have this ETag (quotes optional), else status 3 and no output; every
    /// request is then pinned to it.
    #[arg(long, value_name = "ETAG", value_parser = parse_etag, allow_hyphen_values = true)]
    pub if_match: Option<String>,
    /// Size of each range (K/M/G); s3-mput's part size when it recorded one.
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_part)]
    pub part_size: u64,
    /// Ranges downloaded at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Write binary data even when stdout is a terminal.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Show bytes, rate and elapsed time on stderr [default: when stderr is a terminal].
    #[arg(long)]
    pub progress: bool,
    /// Do not check the data against the ETag's MD5 (the ETag still pins the object): for a
    /// pipe whose next stage authenticates every byte, like sol-crypt -d.
    #[arg(long)]
    pub no_md5: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// The man page's own text: bins/man.rs adds the rest from the definitions above.
pub const MAN: ManText = sol_s3::man(include_str!("man.roff"), include_str!("end.roff"));
