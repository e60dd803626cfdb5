use clap::Parser;
use sol_common::{ManText, Status};
use sol_s3::ConnArgs;

pub const MAN: ManText = ManText {
    sections: &[
        r#".SH EXAMPLES
.nf
s3-mget s3://mission/sols/sol0042.tar.gz.sc | sol-crypt -d -k site.key | sol-zip -d |
    sol-tar extract -C /restore
s3-mget --version-id 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY s3://mission/x > x
s3-mget --if-match "$etag" --range 0-65535,8388608-9437183 s3://mission/x.sc > pieces
.fi
.SH VERIFICATION
Where the ETag is an MD5 (a single-part object, or a multipart one whose part layout s3-mput
recorded), the data is hashed on its way and a mismatch is status 3, after the last byte.
This is the only check of the bytes themselves when the object is saved or copied (as
sol-backup does when it keeps a replaced archive). It costs about one core-second per
700 MB. \fB--no-md5\fR skips it where the next stage authenticates every byte anyway:
sol-crypt -d refuses any changed, missing or added byte (status 3, before or at the chunk
it is in), so sol-audit and sol-restore use it. The ETag still pins every range (If-Match),
and the object's length is still checked.
.PP
With \fB--range\fR the object's MD5 cannot be checked (only some of its bytes are read),
so it is not: the bytes written are not verified by s3-mget. Every range is still pinned
to the ETag (If-Match, and each answer's ETag compared) and must arrive with exactly its
length; whatever reads the pieces must authenticate them (sol-crypt's chunks do).
\fB--if-match\fR pins the download to an ETag recorded earlier (an index's, a listing's):
an object that no longer has it is status 3 before any byte is written.
.SH RANGES
\fB--range\fR LIST writes the bytes LIST names and nothing else, back to back, in order.
LIST is \fIFIRST\fR-\fILAST\fR[,\fIFIRST\fR-\fILAST\fR]..., byte offsets counted
from 0 and inclusive at both ends (as in HTTP's Range header and curl -r), increasing and
not overlapping (ranges may touch); anything else is a usage error (status 2). Every range
must lie inside the object: one that ends past the object's last byte is status 1, named
in the message, before any output (the request cannot be served, as HTTP's 416). Ranges
that touch are fetched as one; a range that crosses a multiple of --part-size is cut there,
so no piece is longer than --part-size, and the pieces, long or short, are fetched
--concurrency at a time, each resumed where it stopped if its connection drops. Only the
bytes asked for are requested: a plan of hundreds of 64 KiB ranges reads about their sum
from the server, plus one HEAD and the headers of one answer per piece.
.SH MEMORY
At most --concurrency ranges are held (the one at the front streams to stdout as its
bytes arrive, in 1 MiB blocks) and 4 MiB wait for stdout: peak memory stays under
(concurrency + 1) x part size + 64 MiB.
"#,
        sol_s3::MAN_ENVIRONMENT,
    ],
    exit: &[
        (
            Status::Success,
            Some(
                r#"the object (or the ranges asked for) was written to stdout (and verified where its ETag allows)"#,
            ),
        ),
        (
            Status::Failure,
            Some(
                r#"the download failed after retries (no such key, access denied, network), or a range ends past the object's end"#,
            ),
        ),
        (
            Status::Usage,
            Some(r#"usage error, or binary output to a terminal"#),
        ),
        (
            Status::Integrity,
            Some(
                r#"the data does not match the ETag, the object changed during the download, or it does not have the ETag --if-match names"#,
            ),
        ),
        (Status::Interrupted, None),
        (Status::BrokenPipe, None),
    ],
    see_also: "s3-mput(1), s3-ls(1)",
};

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
    /// Source s3://BUCKET/KEY
    #[arg(value_name = "URL")]
    pub url: String,
    /// A specific version of the object.
    #[arg(long, value_name = "ID")]
    pub version_id: Option<String>,
    /// Write only these bytes, back to back: FIRST-LAST[,FIRST-LAST]..., inclusive offsets,
    /// increasing, not overlapping; the object's MD5 is then not checked (see RANGES).
    #[arg(long, value_name = "LIST", value_parser = parse_ranges)]
    pub range: Option<RangeList>,
    /// The object must have this ETag (quotes optional), else status 3 and no output; every
    /// request is then pinned to it.
    #[arg(long, value_name = "ETAG", value_parser = parse_etag)]
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
