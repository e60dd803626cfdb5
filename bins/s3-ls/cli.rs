use clap::Parser;
use sol_common::ManText;
use sol_s3::ConnArgs;

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
    /// s3://BUCKET or s3://BUCKET/PREFIX, or PROFILE:s3://... (see TARGETS in s3-ls(1))
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
    /// Print one line, the seconds the server's clock is ahead of this host's (negative:
    /// behind), from the Date header of its answer to one cheap request (a listing of at most
    /// one key); lists nothing. See CLOCK.
    #[arg(long, conflicts_with_all = ["since", "relative", "uploads", "abort_older_than"])]
    pub clock: bool,
    /// URL names one object (s3://BUCKET/KEY): print its line, in the listing's format, from
    /// a HEAD of exactly that key (not the keys it prefixes); no such object is status 1.
    #[arg(long, conflicts_with_all = ["since", "relative", "uploads", "abort_older_than", "clock"])]
    pub head: bool,
    /// Add each object's Object Lock to its line, from a HEAD of each: MODE (COMPLIANCE,
    /// GOVERNANCE or -), RETAIN-UNTIL (RFC 3339 or -), LEGAL-HOLD (ON or -). See OBJECT LOCK
    #[arg(long, conflicts_with_all = ["uploads", "abort_older_than", "clock", "head"])]
    pub locks: bool,
    /// Renew each object's retention that ends within DURATION (90d, 1y) to end DURATION from
    /// now on the server's clock, in its own mode (PutObjectRetention); never shortens one,
    /// never locks an object that has none. Prints as --locks does, after the renewal
    #[arg(long, value_name = "DURATION", value_parser = sol_common::time::parse_duration,
          conflicts_with_all = ["uploads", "abort_older_than", "clock", "head"])]
    pub extend_locks: Option<std::time::Duration>,
    /// List every version of every key under the prefix: KEY<TAB>VERSION-ID<TAB>SIZE<TAB>
    /// LAST-MODIFIED<TAB>ETAG<TAB>KIND (latest, old, or marker for a delete marker). See
    /// VERSIONS
    #[arg(long, conflicts_with_all = ["since", "relative", "uploads", "abort_older_than", "clock", "head", "locks", "extend_locks"])]
    pub versions: bool,
    /// Delete the versions named on stdin, KEY<TAB>VERSION-ID a line (keys under the
    /// prefix only), each by its id: its bytes are gone, not hidden behind a delete marker.
    /// A version Object Lock keeps is printed as retained, not an error. See VERSIONS
    #[arg(long, conflicts_with_all = ["since", "relative", "uploads", "abort_older_than", "clock", "head", "locks", "extend_locks", "versions"])]
    pub delete_versions: bool,
    /// With --delete-versions: also delete versions under a GOVERNANCE retention (the only
    /// way any tool here removes a lock from what it stored, but s3-mput --lock-canary's
    /// try on its own canary; COMPLIANCE ones stay retained)
    #[arg(long, requires = "delete_versions")]
    pub bypass_governance: bool,
    /// Add each object's user metadata to its line, from a HEAD of each: a NAME=VALUE field a
    /// pair (x-amz-meta-NAME), by name, the value escaped as keys are. See METADATA
    #[arg(long, conflicts_with_all = ["uploads", "abort_older_than", "clock", "head", "locks", "extend_locks", "versions", "delete_versions", "classes"])]
    pub metadata: bool,
    /// Add each object's storage class and restore state to its line: CLASS (STANDARD,
    /// GLACIER, ...), STATE (- when not archived; cold, thawing, ready-until-T or expired-T
    /// for GLACIER and DEEP_ARCHIVE, from a HEAD of each); with --head, of that one
    /// object. See ARCHIVE CLASSES
    #[arg(long, conflicts_with_all = ["uploads", "abort_older_than", "clock", "locks", "extend_locks", "versions", "delete_versions"])]
    pub classes: bool,
    /// URL names one object in GLACIER or DEEP_ARCHIVE: ask for it to be restored for DAYS
    /// days (1-365; RestoreObject), unless a restore is in progress, and print its line
    /// with CLASS and STATE (requested when asked now). See ARCHIVE CLASSES
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=365),
          conflicts_with_all = ["since", "relative", "uploads", "abort_older_than", "clock", "head", "locks", "extend_locks", "versions", "delete_versions", "classes"])]
    pub thaw: Option<u32>,
    /// With --thaw: how fast, at what price (Expedited: minutes, GLACIER only; Standard:
    /// hours; Bulk: up to 12 hours, 48 for DEEP_ARCHIVE)
    #[arg(long, value_name = "TIER", default_value = "Standard", requires = "thaw",
          value_parser = ["Expedited", "Standard", "Bulk"])]
    pub tier: String,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// The man page's own text: bins/man.rs adds the rest from the definitions above.
pub const MAN: ManText = sol_s3::man(include_str!("man.roff"), include_str!("end.roff"));

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
