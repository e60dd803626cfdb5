use clap::Parser;
use sol_common::{ManText, Status};
use sol_s3::ConnArgs;

pub const MAN: ManText = ManText {
    sections: &[
        r#".SH EXAMPLES
.nf
s3-ls s3://mission/sols/
s3-ls --since 2026-11-20 s3://mission/sols/ | cut -f1
s3-ls --relative s3://mission/sols/ | shuf -n 1     # a random archive to audit
s3-ls --uploads s3://mission/sols/                  # multipart uploads never finished
s3-ls --abort-older-than 24h s3://mission/sols/     # ... and remove those over a day old
.fi
.SH PENDING UPLOADS
A multipart upload that was neither completed nor aborted (its writer was killed, or the
server was unreachable when it tried to abort) keeps its parts stored, and billed, but
never appears as an object. \fB--uploads\fR lists them, one a line:
KEY<TAB>UPLOAD-ID<TAB>INITIATED. \fB--abort-older-than DURATION\fR lists them and aborts
those started longer ago than DURATION, saying so on stderr; it never touches an
object. Pick an age no running upload reaches (a day is safe for the nightly job).
.SH TIMEOUTS
See s3-mput(1), TIMEOUTS: at the defaults s3-ls fails within 65 s against a dead or
silent endpoint.
"#,
        sol_s3::MAN_ENVIRONMENT,
    ],
    exit: &[
        (Status::Success, None),
        (
            Status::Failure,
            Some(
                r#"the listing failed after retries (no such bucket, access denied, network), or a pending
upload could not be aborted"#,
            ),
        ),
        (Status::Usage, None),
        (Status::BrokenPipe, None),
    ],
    see_also: "s3-mput(1), s3-mget(1)",
};

/// List the objects under s3://BUCKET/PREFIX, one a line:
/// KEY<TAB>SIZE<TAB>LAST-MODIFIED (RFC 3339, UTC)<TAB>ETAG.
///
/// Keys are printed in full (the prefix included) unless --relative. All pages are listed.
///
/// A key is always one field on one line: a backslash, tab, newline and any other control
/// character in it is printed escaped (\\, \t, \n, \r, \xHH, \u{HHHH}), so the first field of
/// a line is exactly one object's key and no key can pose as another (a key
/// "junk<newline>sol0200.tar.gz.sc" prints as junk\nsol0200.tar.gz.sc). Keys without such
/// characters print as they are.
#[derive(Debug, Parser)]
#[command(name = "s3-ls", version, max_term_width = 100)]
pub struct Cli {
    /// s3://BUCKET or s3://BUCKET/PREFIX
    #[arg(value_name = "URL")]
    pub url: String,
    /// Only objects modified at or after TIME (RFC 3339, YYYY-MM-DD, or epoch seconds).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Print keys relative to the prefix.
    #[arg(long)]
    pub relative: bool,
    /// List the multipart uploads under the prefix that were started and never completed
    /// or aborted: KEY<TAB>UPLOAD-ID<TAB>INITIATED. Their parts stay stored (and billed).
    #[arg(long, conflicts_with_all = ["since", "relative"])]
    pub uploads: bool,
    /// Abort the pending uploads (see --uploads) started longer ago than DURATION (90s, 15m,
    /// 36h, 7d). Never touches an object. Implies --uploads.
    #[arg(long, value_name = "DURATION", value_parser = sol_common::time::parse_duration, conflicts_with_all = ["since", "relative"])]
    pub abort_older_than: Option<std::time::Duration>,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[cfg(test)]
mod tests {
    #[test]
    fn since_accepts_three_forms() {
        assert_eq!(crate::parse_since("0"), Ok(0));
        assert_eq!(crate::parse_since("1970-01-02"), Ok(86_400));
        assert_eq!(crate::parse_since("1970-01-01T00:01:00Z"), Ok(60));
        assert!(crate::parse_since("yesterday").is_err());
    }
}
