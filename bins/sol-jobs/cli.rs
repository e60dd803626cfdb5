use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use sol_common::ManText;

/// The drivers behind sol-backup, sol-audit, sol-restore, sol-prune, sol-sync and sol-pull
///
/// Each script is `exec sol-jobs KIND "$@"`: sol-jobs checks the command line, decides from
/// one listing what to do with each sol, runs the per-sol command for each through GNU
/// parallel and prints the report made from their rows. The scripts' own pages are the
/// contract; this page lists every option of each.
#[derive(Parser, Debug)]
#[command(name = "sol-jobs", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// sol-backup: back each new sol up, one sol-backup-one per sol
    Backup(Backup),
    /// sol-audit: coverage, then content-audit stored sols, one sol-audit-one per sol
    Audit(Audit),
    /// sol-restore: restore whole sols (one sol-restore-one per sol), or paths of one sol
    Restore(Restore),
    /// sol-prune: a retention policy for keys with a UTC time stamp in their name
    Prune(Prune),
    /// sol-sync: mirror a directory of finished files (a backup set) up to a prefix
    Sync(Sync),
    /// sol-pull: keep every version of the objects under a prefix in a directory
    Pull(Pull),
}

/// A count of at least 1.
fn positive(s: &str) -> Result<u32, String> {
    s.parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("'{s}' is not a positive number"))
}

/// What every driver takes.
#[derive(Args, Debug)]
pub struct Common {
    /// Run N sols at once (per host with --hosts)
    #[arg(short = 'j', value_name = "N", default_value_t = 1,
          value_parser = positive)]
    pub jobs: u32,
    /// Spread the sols over the hosts of FILE (GNU parallel's sshlogin file: one host a
    /// line, N/host for N sols at once there, : for this host); each host sees the data at
    /// the same path and has the scripts, tools and key at the same paths
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// sol-crypt key (default: $SOL_KEY_FILE)
    #[arg(short = 'k', value_name = "KEYFILE")]
    pub key: Option<PathBuf>,
    /// S3 endpoint (default: $AWS_ENDPOINT_URL, else AWS)
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The directory of the per-sol commands (default: the one of this program)
    #[arg(long, value_name = "DIR", hide = true)]
    pub scripts: Option<PathBuf>,
}

/// Back each SOLDIR up to s3://BUCKET/PREFIX/<sol>.tar.gz.sc through `sol-tar create |
/// sol-zip | sol-crypt -e | s3-mput`, with its restore index (sol-index(1)) as
/// <sol>.index.gz.sc, sealed the same way: one sol-backup-one(1) per sol, run by GNU
/// parallel. Sols already stored are skipped (one listing of PREFIX, matched by whole key),
/// so a nightly run is incremental. A failure in any stage fails that sol and stores
/// nothing; the others go on. A SOLDIR must be a directory, not a symbolic link to one, and
/// two SOLDIRs may not have the same name (status 2). Multipart uploads under PREFIX that a
/// killed run left pending for over a day are aborted first.
///
/// Prints one line per sol backed up or failed (status, bytes in and out, rate, time,
/// host), a summary (skipped sols are counted there), the causes of failures and the
/// warnings of sols that succeeded on stdout; each failing stage's message on stderr.
#[derive(Args, Debug)]
#[command(
    name = "sol-backup",
    version,
    override_usage = "sol-backup [OPTIONS] [--] SOLDIR... s3://BUCKET/PREFIX"
)]
pub struct Backup {
    #[command(flatten)]
    pub common: Common,
    /// Seal each archive to the public recipients in FILE (sol-crypt -R): the host then
    /// holds no key that decrypts the archives
    #[arg(short = 'R', value_name = "FILE")]
    pub recipients: Option<PathBuf>,
    /// Back up sols that are already stored, replacing their objects
    #[arg(long, conflicts_with = "changed")]
    pub force: bool,
    /// Back up again the stored sols that changed since they were stored (an entry's inode
    /// change time after the archive's Last-Modified, on the server's clock), keeping the
    /// previous archive as <sol>.tar.gz.sc.replaced-<UTC time>; a sol that cannot be read
    /// to tell is FAILED, "cannot check"
    #[arg(long)]
    pub changed: bool,
    /// The same prefix at another bucket or vendor (PROFILE:s3://BUCKET/PREFIX, see
    /// s3-mput(1), TARGETS); repeatable. One pipeline stores each sol at every target; a
    /// sol a target lacks is copied there from a target that has it (the same bytes,
    /// verified); a target that cannot be listed is dead for the run
    #[arg(long, value_name = "TARGET")]
    pub also: Vec<OsString>,
    /// Store each archive and its index under Object Lock for DURATION (90d, 1y: s3-mput
    /// --retain, COMPLIANCE), at every target; the bucket must have Object Lock
    #[arg(long, value_name = "DURATION", value_parser = retention)]
    pub retain: Option<String>,
    /// Store each archive in CLASS (GLACIER, DEEP_ARCHIVE, STANDARD_IA, ...: s3-mput
    /// --storage-class) at every target; the restore index stays in STANDARD, so planning a
    /// restore never waits for a thaw. See COLD STORAGE in sol-restore(1)
    #[arg(long, value_name = "CLASS", value_parser = STORAGE_CLASSES)]
    pub storage_class: Option<String>,
    /// With --also: a sol is ok when K targets hold it (default: all)
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u16).range(1..))]
    pub min_ok: Option<u16>,
    /// SOLDIR... then s3://BUCKET/PREFIX
    #[arg(value_name = "OPERAND", num_args = 2.., required = true)]
    pub operands: Vec<OsString>,
}

/// Every run first checks coverage, from one listing of PREFIX and the top level of
/// SOLROOT: each sol (a directory of SOLROOT) that is not stored, changed since stored (an
/// entry's inode change time is after the archive's Last-Modified, on the server's clock),
/// stored but missing locally, or that cannot be read to tell ("cannot check: WHY"), and
/// the newest archive and its age. Then it content-audits sols, one sol-audit-one(1) per
/// sol under GNU parallel, streaming each through `s3-mget | sol-crypt -d | sol-zip -d |
/// tar-md5 --check SOLROOT/<sol>`. Nothing is written to disk. Only keys <sol>.tar.gz.sc
/// whose sol matches [A-Za-z0-9][A-Za-z0-9._-]* are used; each audited sol is recorded as
/// the empty object PREFIX/.sol-audit/<sol>.
///
/// Prints the problems first (one line each), then one line per audited sol, the summary,
/// the coverage and "N of M sols content-audited in the last D days". Exit status: 0 no
/// problem, 1 the audit could not run (or a sol could not be audited), 2 usage, 3 a
/// difference or an integrity failure, 4 a protection gap (a sol not stored, changed since
/// stored, missing locally, that cannot be checked, or the newest archive older than
/// --max-age); 3 wins over 4, 4 over 1; 130 interrupted.
#[derive(Args, Debug)]
#[command(
    name = "sol-audit",
    version,
    override_usage = "sol-audit [OPTIONS] [--] SOLROOT s3://BUCKET/PREFIX"
)]
pub struct Audit {
    #[command(flatten)]
    pub common: Common,
    /// Content-audit COUNT random sols (default 1)
    #[arg(short = 'n', value_name = "COUNT", value_parser = positive,
          conflicts_with_all = ["sol", "budget", "coverage_only"])]
    pub count: Option<u32>,
    /// Content-audit this sol (repeatable)
    #[arg(long, value_name = "NAME", conflicts_with_all = ["budget", "coverage_only"])]
    pub sol: Vec<String>,
    /// Content-audit the least-recently-audited sols until SIZE bytes of archives (K, M, G
    /// suffixes) have been read (at least one sol)
    #[arg(long, value_name = "SIZE", conflicts_with = "coverage_only")]
    pub budget: Option<String>,
    /// Check coverage only (no key needed): the dead-man's switch
    #[arg(long)]
    pub coverage_only: bool,
    /// A sol picked for the content audit whose archive is in cold storage (GLACIER,
    /// DEEP_ARCHIVE) and not restored is skipped (the report counts it); with this, a thaw
    /// of such sols is asked for until SIZE bytes of archives (K, M, G suffixes) per run, at
    /// the Bulk tier for 3 days, and a later run audits each once it is ready
    #[arg(long, value_name = "SIZE", conflicts_with = "coverage_only")]
    pub thaw_budget: Option<String>,
    /// Check each archive's Object Lock (a HEAD of each): an archive without a retention
    /// or legal hold, or whose retention ends within --lock-warn, is a protection gap
    #[arg(long)]
    pub locks: bool,
    /// Prove that Object Lock holds: store a canary locked for a day under the prefix, try
    /// to delete it and overwrite it with this host's credentials, read it back (a gap if
    /// it was deleted or changed); implies --locks
    #[arg(long)]
    pub check_lock: bool,
    /// A retention that ends within D (30d, the default; 6w, 1y) is a gap; implies --locks
    #[arg(long, value_name = "D", value_parser = retention)]
    pub lock_warn: Option<String>,
    /// Renew each archive's retention that ends within DURATION to end DURATION from now
    /// on the server's clock, in its own mode (never shorter, never a new lock); implies
    /// --locks
    #[arg(long, value_name = "DURATION", value_parser = retention)]
    pub extend_locks: Option<String>,
    /// The newest archive older than DURATION (N, Ns, Nm, Nh, Nd) is a problem
    #[arg(long, value_name = "DURATION")]
    pub max_age: Option<String>,
    /// The last line counts the sols audited in the last D days
    #[arg(long, value_name = "D", default_value_t = 30,
          value_parser = positive)]
    pub days: u32,
    /// Print the report only when the status is not 0 (for cron mail)
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// sol-crypt identity, for archives sealed to recipients (sol-backup -R) (default:
    /// $SOL_IDENTITY_FILE)
    #[arg(short = 'i', value_name = "IDENTITY")]
    pub identity: Option<PathBuf>,
    /// Re-upload a sol whose archive differs, after keeping the old object as
    /// <sol>.tar.gz.sc.replaced-<UTC time>, sealed with -k KEYFILE or to -R
    #[arg(long, conflicts_with = "coverage_only")]
    pub refresh: bool,
    /// For --refresh: the recipients to seal the new archive to
    #[arg(short = 'R', value_name = "FILE", requires = "refresh")]
    pub recipients: Option<PathBuf>,
    /// The same prefix at another bucket or vendor (PROFILE:s3://BUCKET/PREFIX);
    /// repeatable. Coverage per target (a sol one lacks is a gap naming it), the copies
    /// compared by size and ETag (status 3 when they differ), and each audited sol read
    /// from the target where it was audited least recently
    #[arg(long, value_name = "TARGET")]
    pub also: Vec<OsString>,
    /// SOLROOT then s3://BUCKET/PREFIX
    #[arg(value_name = "OPERAND", num_args = 2, required = true)]
    pub operands: Vec<OsString>,
}

/// Restore each SOL from s3://BUCKET/PREFIX/<SOL>.tar.gz.sc to DEST/<SOL> through `s3-mget
/// | sol-crypt -d | sol-zip -d | sol-tar extract`, one sol-restore-one(1) per sol, run by
/// GNU parallel: each into a staging directory of its run's own, renamed to DEST/<SOL>
/// only when the whole pipe succeeded. A directory DEST/<SOL> that holds something is left
/// alone (skipped). With --path, only those paths of one SOL, through its restore index;
/// --list prints a sol's members; --last N the N newest sols stored.

#[derive(Args, Debug)]
#[command(
    name = "sol-restore",
    version,
    override_usage = "sol-restore [OPTIONS] [--] s3://BUCKET/PREFIX SOL... DEST\n       \
                      sol-restore --path PATH... [--force] [OPTIONS] [--] s3://BUCKET/PREFIX SOL DEST\n       \
                      sol-restore --list [OPTIONS] [--] s3://BUCKET/PREFIX SOL\n       \
                      sol-restore --last N [OPTIONS] [--] s3://BUCKET/PREFIX\n       \
                      sol-restore --thaw [--tier TIER] [--days N] [--prices FILE] [--] s3://BUCKET/PREFIX SOL..."
)]
pub struct Restore {
    #[command(flatten)]
    pub common: Common,
    /// sol-crypt identity, for archives sealed to recipients (sol-backup -R) (default:
    /// $SOL_IDENTITY_FILE); with -k as well, either may open each
    #[arg(short = 'i', value_name = "IDENTITY")]
    pub identity: Option<PathBuf>,
    /// Restore only PATH of SOL (a directory: its subtree) into DEST/SOL/...; a name inside
    /// the sol (data/x.raw) or as --list prints it (SOL/data/x.raw); repeatable. With the
    /// sol's restore index only the byte ranges holding PATH are fetched; an existing file
    /// in DEST is kept (status 1) unless --force
    #[arg(long, value_name = "PATH")]
    pub path: Vec<OsString>,
    /// Another copy of s3://BUCKET/PREFIX (another vendor: PROFILE:s3://BUCKET/PREFIX, see
    /// s3-mput(1), TARGETS), tried in order when a sol's download fails or its archive does
    /// not verify; repeatable. The report's warnings say which sols came from where
    #[arg(long, value_name = "TARGET")]
    pub also: Vec<OsString>,
    /// With --path: replace existing files in DEST
    #[arg(long)]
    pub force: bool,
    /// Operands s3://BUCKET/PREFIX SOL...: print the time and cost of each tier for the
    /// set, ask for each sol's archive in GLACIER or DEEP_ARCHIVE to be restored
    /// (RestoreObject; one asked already is no error) and print each sol's state. Never
    /// prompts. See COLD STORAGE
    #[arg(long, conflicts_with_all = ["path", "list", "last", "force"])]
    pub thaw: bool,
    /// With --thaw: Expedited (minutes, GLACIER only), Standard (hours) or Bulk (cheapest:
    /// up to 12 hours, 48 for DEEP_ARCHIVE)
    #[arg(long, value_name = "TIER", default_value = "Standard", requires = "thaw",
          value_parser = ["Expedited", "Standard", "Bulk"])]
    pub tier: String,
    /// With --thaw: keep the restored copies readable for N days (1-365)
    #[arg(long, value_name = "N", default_value_t = 7, requires = "thaw",
          value_parser = clap::value_parser!(u32).range(1..=365))]
    pub days: u32,
    /// The price table for --thaw's estimates and the cost of a thaw asked again (lines of
    /// CLASS TIER TIME USD/GB USD/1000-REQUESTS; default: AWS list prices, see COLD STORAGE)
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// Print SOL's members (type, size, mtime, path) from its restore index
    #[arg(long, conflicts_with = "path")]
    pub list: bool,
    /// Print the names of the N newest sols stored under PREFIX (by name), one a line
    #[arg(long, value_name = "N", value_parser = positive)]
    pub last: Option<u32>,
    /// For sol-restore-one: operands s3://BUCKET/PREFIX SOL; print nothing when SOL's
    /// archive can be read now, else its row's STATUS, CODE and NOTE (WAITING 5, FAILED 1)
    #[arg(long, hide = true, conflicts_with_all = ["thaw", "path", "list", "last"])]
    pub cold: bool,
    /// For restore.mk: print the report of the rows its run left in DIR
    #[arg(long, value_name = "DIR", hide = true)]
    pub report_of: Option<PathBuf>,
    /// s3://BUCKET/PREFIX, then SOL... and DEST
    #[arg(value_name = "OPERAND", required = true)]
    pub operands: Vec<OsString>,
}

/// A retention: a duration longer than 0 (s, m, h, d, w, y).
fn retention(s: &str) -> Result<String, String> {
    match sol_common::time::parse_duration(s)? {
        d if d.is_zero() => Err("a retention must be longer than 0".into()),
        _ => Ok(s.to_string()),
    }
}

/// Apply a retention policy to the keys under s3://BUCKET/PREFIX that carry a UTC time
/// stamp in their name (YYYYMMDDTHHMMSSZ: periodic dumps such as db-20261201T020000Z.sql.gz.sc,
/// the .replaced-<UTC time> archives of sol-backup --changed). Keys equal once the stamp is
/// removed form a series; the stamp is the key's time, never its Last-Modified. Each series
/// keeps what the policy says (restic forget's rules, on UTC calendar periods) and always
/// its newest key; keys without a stamp are never touched. A dry run by default: every key
/// it would keep (and why) or delete. With --delete, every version of each pruned key is
/// deleted by its id (the bytes are gone, not hidden behind a delete marker); a version
/// Object Lock keeps is reported "retained until T", not an error.
#[derive(Args, Debug)]
#[command(
    name = "sol-prune",
    version,
    override_usage = "sol-prune [--delete [--max-delete N] [--bypass-governance]] POLICY... [--] s3://BUCKET/PREFIX"
)]
pub struct Prune {
    /// Keep the N newest keys of each series
    #[arg(long, value_name = "N", value_parser = positive)]
    pub keep_last: Option<u32>,
    /// Keep the newest key of each of the N newest hours (UTC) that have one
    #[arg(long, value_name = "N", value_parser = positive)]
    pub keep_hourly: Option<u32>,
    /// Keep the newest key of each of the N newest days (UTC) that have one
    #[arg(long, value_name = "N", value_parser = positive)]
    pub keep_daily: Option<u32>,
    /// Keep the newest key of each of the N newest ISO weeks that have one
    #[arg(long, value_name = "N", value_parser = positive)]
    pub keep_weekly: Option<u32>,
    /// Keep the newest key of each of the N newest months (UTC) that have one
    #[arg(long, value_name = "N", value_parser = positive)]
    pub keep_monthly: Option<u32>,
    /// Keep every key within DURATION (90m, 36h, 30d, 1y) of its series' newest
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<String>,
    /// Delete what the policy does not keep (without it, a dry run)
    #[arg(long)]
    pub delete: bool,
    /// With --delete: refuse, deleting nothing, when more than N keys would be deleted
    #[arg(long, value_name = "N", requires = "delete")]
    pub max_delete: Option<u32>,
    /// With --delete: delete versions under a GOVERNANCE retention too (COMPLIANCE ones stay)
    #[arg(long, requires = "delete")]
    pub bypass_governance: bool,
    /// S3 endpoint, e.g. http://127.0.0.1:9000 [env: AWS_ENDPOINT_URL]
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// s3://BUCKET/PREFIX or PROFILE:s3://BUCKET/PREFIX
    #[arg(value_name = "URL")]
    pub url: OsString,
}

/// Mirror the regular files under DIR (recursively) to objects under s3://BUCKET/PREFIX,
/// one s3-mput each, as they are (no compression or encryption). A file is skipped when its
/// object has the same size and modification time (object metadata `mtime`, as rclone
/// keeps it), with --checksum only when its MD5 matches too. A changed file's object is
/// first kept as KEY.replaced-<UTC time>, then replaced. Nothing is deleted unless
/// --delete --max-delete N, and never a .replaced- copy. Within a window (--for, --until) no
/// file starts after the deadline; past --hard-limit the running uploads are aborted
/// (nothing half stored) and the next run sends them again. --lock FILE: an flock the
/// grooming job holds too; while it is held the run does nothing and exits 0.
#[derive(Args, Debug)]
#[command(
    name = "sol-sync",
    version,
    override_usage = "sol-sync [OPTIONS] [--] DIR s3://BUCKET/PREFIX"
)]
pub struct Sync {
    /// Skip a file only when its MD5 matches the stored one too (metadata md5chksum, or the
    /// ETag of a single-part object): reads every file whose size and time match
    #[arg(long)]
    pub checksum: bool,
    /// Delete the objects whose file is gone (never a .replaced- copy); needs --max-delete
    #[arg(long, requires = "max_delete")]
    pub delete: bool,
    /// With --delete: delete nothing when more than N objects would be deleted
    #[arg(long, value_name = "N", requires = "delete")]
    pub max_delete: Option<u32>,
    /// Do nothing at all unless DIR/FILE exists (the file that says the volume is mounted)
    #[arg(long, value_name = "FILE")]
    pub require: Option<PathBuf>,
    /// Print the plan (upload, replace, keep, delete) and change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Start no file after DURATION from the start (330m, 6h)
    #[arg(long = "for", value_name = "DURATION", conflicts_with = "until",
          value_parser = sol_common::time::parse_duration)]
    pub for_: Option<std::time::Duration>,
    /// Start no file after the next HH:MM, local time (05:30)
    #[arg(long, value_name = "HH:MM")]
    pub until: Option<String>,
    /// How long past the deadline running uploads may go on before they are aborted
    #[arg(long, value_name = "DURATION", default_value = "30m",
          value_parser = sol_common::time::parse_duration)]
    pub hard_limit: std::time::Duration,
    /// Wait a random time up to DURATION before starting (within the window)
    #[arg(long, value_name = "DURATION", value_parser = sol_common::time::parse_duration)]
    pub jitter: Option<std::time::Duration>,
    /// Upload N files at once
    #[arg(short = 'j', value_name = "N", default_value_t = 4, value_parser = positive)]
    pub jobs: u32,
    /// Run only while holding an flock on FILE (the grooming job takes it too); when it is
    /// held, print one line and exit 0
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// With --lock: wait up to DURATION for the lock before giving up (still status 0)
    #[arg(long, value_name = "DURATION", requires = "lock",
          value_parser = sol_common::time::parse_duration)]
    pub wait_lock: Option<std::time::Duration>,
    /// Storage class of the uploaded objects (s3-mput --storage-class)
    #[arg(long, value_name = "CLASS")]
    pub storage_class: Option<String>,
    /// S3 endpoint, e.g. http://127.0.0.1:9000 [env: AWS_ENDPOINT_URL]
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The directory to mirror
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// s3://BUCKET/PREFIX or PROFILE:s3://BUCKET/PREFIX
    #[arg(value_name = "URL")]
    pub url: OsString,
}

/// Keep in DIR every version of the objects under s3://BUCKET/PREFIX: each version changed
/// since the last run (by the server's Last-Modified, re-listing an overlap window) is
/// fetched once as DIR/KEY~YYYYMMDDTHHMMSSZ (its UTC Last-Modified; ~VERSION-ID added when
/// two share a second) and never overwritten. Keys that would land outside DIR are refused.
/// Objects that vanished upstream are logged in DIR/.sol-pull/deletions.log. --as-of TIME
/// DEST writes the tree as it was at TIME into DEST, from DIR alone.
#[derive(Args, Debug)]
#[command(
    name = "sol-pull",
    version,
    override_usage = "sol-pull [OPTIONS] [--] s3://BUCKET/PREFIX DIR\n       sol-pull --as-of TIME DEST [--] s3://BUCKET/PREFIX DIR"
)]
pub struct Pull {
    /// Re-list the versions modified up to DURATION before the last run's newest
    /// (a multipart upload is stamped with its start)
    #[arg(long, value_name = "DURATION", default_value = "1h",
          value_parser = sol_common::time::parse_duration)]
    pub overlap: std::time::Duration,
    /// Print what would be fetched and logged, and change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Write into DEST (new or empty) the tree as it was at TIME (RFC 3339 or YYYY-MM-DD),
    /// from the versions in DIR; nothing is fetched
    #[arg(long, num_args = 2, value_names = ["TIME", "DEST"])]
    pub as_of: Option<Vec<OsString>>,
    /// Fetch N objects at once
    #[arg(short = 'j', value_name = "N", default_value_t = 4, value_parser = positive)]
    pub jobs: u32,
    /// S3 endpoint, e.g. http://127.0.0.1:9000 [env: AWS_ENDPOINT_URL]
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// s3://BUCKET/PREFIX or PROFILE:s3://BUCKET/PREFIX
    #[arg(value_name = "URL")]
    pub url: OsString,
    /// The directory that keeps the versions
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// The man page's own text: bins/man.rs adds the rest from the definitions above.
pub const MAN: ManText = ManText::new(include_str!("man.roff"), include_str!("end.roff"));

/// The storage classes S3 names (s3-mput passes any; these are the ones a backup may ask).
const STORAGE_CLASSES: [&str; 8] = [
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
    "REDUCED_REDUNDANCY",
];
