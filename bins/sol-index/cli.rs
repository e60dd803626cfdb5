use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sol_common::ManText;

/// The restore index of an archive: where each of its files lies in the tar, gzip and
/// sol-crypt streams, so that one file can be fetched and restored without the whole archive.
#[derive(Debug, Parser)]
#[command(name = "sol-index", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Join the side files of sol-tar, sol-zip and sol-crypt into an index bound to the stored
    /// archive, on stdout.
    Make {
        /// sol-tar create --index's file.
        #[arg(long, value_name = "FILE")]
        tar: PathBuf,
        /// sol-zip --index's file.
        #[arg(long, value_name = "FILE")]
        zip: PathBuf,
        /// sol-crypt -e --index's file.
        #[arg(long, value_name = "FILE")]
        crypt: PathBuf,
        /// The stored archive's size in bytes (s3-mput --print).
        #[arg(long, value_name = "BYTES")]
        size: u64,
        /// The stored archive's ETag (s3-mput --print).
        #[arg(long, value_name = "ETAG")]
        etag: String,
    },
    /// Print the archive's members from the index: TYPE SIZE MTIME PATH, one a line (names
    /// escaped as in the index; a link's target after ' -> ').
    List {
        /// The index; stdin when absent or '-'.
        #[arg(value_name = "INDEX")]
        index: Option<PathBuf>,
    },
    /// Print what to fetch and keep to restore PATH... (a directory means its subtree; a hard
    /// link brings its target): lines `archive SIZE ETAG`, `members N`, `fetch-bytes N`,
    /// then the range lists `fetch` (for s3-mget --range), `chunks` (sol-crypt -d --chunks),
    /// `zip` and `tar` (sol-index cut, before and after sol-zip -d).
    Plan {
        /// The index.
        #[arg(value_name = "INDEX")]
        index: PathBuf,
        /// Names as stored in the archive (as `list` prints them).
        #[arg(value_name = "PATH", required = true)]
        paths: Vec<OsString>,
    },
    /// Copy the byte ranges LIST (FIRST-LAST[,FIRST-LAST]..., inclusive) of stdin to stdout
    /// and read the rest of stdin to its end; status 3 if it ends inside a range.
    Cut {
        /// The ranges, in increasing order.
        #[arg(value_name = "LIST", value_parser = sol_common::ranges::list)]
        ranges: sol_common::ranges::List,
        /// Append a tar stream's end (two zero blocks): the kept ranges are whole members.
        #[arg(long)]
        tar_end: bool,
        /// Write binary data even when stdout is a terminal.
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Check that the members PATH... selects were restored under DIR as the index records
    /// them: type, size of files, target of symlinks; status 3 naming the first that is not.
    Verify {
        /// The index.
        #[arg(value_name = "INDEX")]
        index: PathBuf,
        /// Where the archive's names were extracted.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// The same PATHs as given to plan.
        #[arg(value_name = "PATH", required = true)]
        paths: Vec<OsString>,
    },
}

/// The man page's own text: bins/man.rs adds the rest from the definitions above.
pub const MAN: ManText = ManText::new(include_str!("man.roff"), include_str!("end.roff"));
