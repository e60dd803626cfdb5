use clap::Parser;
use sol_common::{ManText, Status};
use sol_s3::ConnArgs;

pub const MAN: ManText = ManText {
    sections: &[
        r#".SH EXAMPLES
.nf
sol-tar create sol0042 | sol-zip | sol-crypt -e -k site.key |
    s3-mput --require-complete s3://mission/sols/sol0042.tar.gz.sc
pg_dump db | s3-mput --limit-rate 20M --storage-class STANDARD_IA s3://backups/db.sql
s3-mput --endpoint-url http://127.0.0.1:9000 --print s3://mission/x < x
.fi
.SH INTEGRITY
Every part is sent with Content-MD5 (or CRC32C with \fB--checksum crc32c\fR), and its
returned ETag is compared with the MD5 computed here where it is one. The object's
metadata records \fBsol-part-size\fR, so \fBs3-mget\fR can verify the multipart ETag.
A stream that begins with the sol-crypt magic is completed only if
\fBsol-crypt info\fR would call it complete: its end trailer arrived and its length
matches; otherwise the upload is aborted with status 3.
.SH CONFIRMATION
The upload succeeds only when the key holds our data: the whole-object ETag is always
checked, never skipped. When CompleteMultipartUpload answers with the multipart ETag of
the parts sent (MD5 of the parts' MD5s, "-", the part count), that is the proof.
When its answer is missing (the connection dropped after the server acted), empty
(Ceph RGW 16), unreadable (moto 5.2.1's root element) or an error that can follow a
success (a retry meeting NoSuchUpload, 412 or AccessDenied for an upload the server
already completed), s3-mput HEADs the key: if its ETag is the multipart ETag of our
parts, the upload succeeded (status 0, and \fB--print\fR shows that ETag); otherwise it
failed, with the reason. A single PUT is confirmed the same way against the MD5 of the
data. With \fB--sse aws:kms\fR ETags are not MD5s: the size and part count are checked.
.SH CONCURRENT WRITERS
Without \fB--overwrite\fR the key is checked with HEAD before anything is uploaded and
again just before the upload is committed, and the commit is conditional
(\fBIf-None-Match: *\fR). What "never overwrites" guarantees depends on the server:
.TS
l l.
AWS S3	conditional PUT and Complete: exactly one writer wins, the other gets 412
MinIO	conditional PUT and Complete (per its documentation; not tested here)
Ceph RGW 16	PUT conditional; Complete ignores If-None-Match: two Completes within
	milliseconds of each other can both succeed, the later replacing the earlier
	(the HEAD just before Complete closes every wider window; tested)
Garage	not verified here: count on the two HEAD checks only
moto 5.2.1	conditional PUT and Complete (tested)
s3-local	conditional PUT and Complete, atomic per key (tested)
.TE
.PP
Where a server ignores the condition (501 NotImplemented, or silently as Ceph RGW on
Complete), the HEAD checks are the guard, and after committing s3-mput HEADs the key
whenever the answer lacks the ETag: a writer whose object was replaced before that HEAD
is told so (status 1, "a concurrent writer's upload won"). The nightly scripts never
run two writers for one key.
.SH SIGNALS
SIGINT or SIGTERM before the commit aborts the upload (a CreateMultipartUpload in flight
is waited for, so that its upload is aborted too) and exits 130: nothing is stored.
Once CompleteMultipartUpload (or the single PUT) has been sent, the upload is committed
from this side: a signal then waits for the answer and its confirmation (at most twice
\fB--timeout\fR; past that a HEAD of the key decides) and exits 130 saying the truth:
either "interrupted after the upload was committed: the object is stored and complete
(ETag E)", or that nothing is stored. SIGKILL or a power loss leaves the multipart upload pending: see LEFTOVERS.
.SH LEFTOVERS
A multipart upload that was neither completed nor aborted keeps its parts stored (and
billed) but never appears as an object. When s3-mput cannot abort (the server is gone),
its error line gives the UploadId. \fBs3-ls --uploads s3://BUCKET/PREFIX\fR lists the
pending uploads; \fBs3-ls --abort-older-than 24h s3://BUCKET/PREFIX\fR aborts those
started more than a day ago (never an object); \fBsol-backup\fR runs that for its own
prefix. On AWS, a bucket lifecycle rule does the same unattended:
\fBAbortIncompleteMultipartUpload\fR with \fBDaysAfterInitiation\fR (e.g. 2).
.SH TIMEOUTS
Each request attempt may wait \fB--timeout\fR seconds (default 20) for its answer, plus
1 s per 64 KiB of its body (a 16 MiB part: 276 s); a body that stops moving for
\fB--timeout\fR is cut; connecting gets at most 10 s. Failed attempts are retried
\fB--retries\fR times in all (default 5) with backoff (0.1 s doubling, at most 10 s), but
three attempts in a row without an answer end the request. Against a dead or silent
endpoint every S3 tool therefore fails within 65 s at the defaults, saying which:
"connection refused by URL" or "no answer in 20 s (timed out)". A server that goes
silent in the middle of an upload ends it within three attempts of one part (at most
3 x 276 s with 16 MiB parts, less when the part's body stops moving). CompleteMultipartUpload
may take --timeout plus 0.1 s per part. A malformed --endpoint-url (or AWS_ENDPOINT_URL),
or one with a path after HOST[:PORT], is a usage error (status 2).
.SH PIPELINES
In \fBa | b | s3-mput\fR a failure of \fBa\fR only shows as an early EOF, which an
encoder \fBb\fR turns into a well-formed stream. With \fB--commit-file F\fR, s3-mput
completes only if F reads \fBcommit\fR when its stdin ends:
.nf
F=$(mktemp)
{ a | b; [ "${PIPESTATUS[*]}" = "0 0" ] && echo commit > "$F"; } |
    s3-mput --commit-file "$F" s3://x/y
rm -f "$F"
.fi
The file is written before the group's stdout closes, so it is always there in time. Use a
new empty file each time (mktemp): one still saying commit from an earlier run would let
a failed run complete.
.SH MEMORY
At most --concurrency parts are in flight and one more is being read, so peak memory is
about (concurrency + 1) x part size + 64 MiB while the part size is the initial one, i.e.
for the first 1000 parts (16 GiB at the defaults). Past that the part size doubles every
1000 parts and the bound grows with it.
"#,
        sol_s3::MAN_ENVIRONMENT,
    ],
    exit: &[
        (
            Status::Success,
            Some(r#"the object is stored and its ETag confirmed"#),
        ),
        (
            Status::Failure,
            Some(
                r#"the upload failed after retries, KEY exists (without --overwrite), another writer's
object won, stdin is closed or could not be read, or --commit-file did not say commit;
the upload was aborted (or the line says it could not be, with its UploadId)"#,
            ),
        ),
        (Status::Usage, None),
        (
            Status::Integrity,
            Some(
                r#"the input is a sol-crypt stream that ended early (or not sol-crypt with
--require-complete), or a part's ETag did not match its data; the upload was aborted"#,
            ),
        ),
        (
            Status::Interrupted,
            Some(
                r#"interrupted by SIGINT or SIGTERM; the line says whether the object is stored (see
SIGNALS)"#,
            ),
        ),
    ],
    see_also: "s3-mget(1), s3-ls(1), sol-crypt(1), sol-crypt(5), sol-backup(1)",
};

fn parse_part(s: &str) -> Result<u64, String> {
    let n = sol_common::parse_size(s)?;
    if !(sol_s3::MIN_PART..=sol_s3::MAX_PART).contains(&n) {
        return Err("part size must be between 5M and 5G".into());
    }
    Ok(n)
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
    /// Destination s3://BUCKET/KEY
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
    /// On success print ETAG<TAB>BYTES<TAB>PARTS on stdout.
    #[arg(long)]
    pub print: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
}
