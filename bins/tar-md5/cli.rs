use std::path::PathBuf;

use clap::Parser;
use sol_common::ManText;

/// Per-file MD5 of a tar stream, in md5sum's exact format, or checked against a directory.
///
/// Without --check, prints `md5  path` for every regular file (and hard link) of the tar
/// stream on stdin, so `(cd DIR && md5sum -c SUMS)` checks an extracted tree against it.
/// With --check DIR, compares the stream with the files under DIR while reading it: the thread
/// that takes a stream file reads the local copy in parallel and compares the same blocks byte
/// for byte, and hashes nothing (a byte comparison catches every difference digests would; for
/// a digest list, run tar-md5 without --check). A hard link must hold the same bytes as the
/// local copy of its target, and that copy must match the stream. Prints one line
/// per difference: `changed: PATH`, `missing: PATH` (in the stream, not in DIR) or
/// `extra: PATH` (in DIR, not in the stream). A local file or directory that cannot be read
/// (permissions, a disk error) is no difference but an I/O error: it is named on stderr and
/// the other files are still compared (see EXIT STATUS). Nothing is written to disk.
#[derive(Debug, Parser)]
#[command(name = "tar-md5", version, max_term_width = 100)]
pub struct Cli {
    /// Compare the stream with the tree under DIR; exit 3 on any difference.
    #[arg(long, value_name = "DIR")]
    pub check: Option<PathBuf>,

    /// Drop this many leading components of every entry name (like tar's option).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub strip_components: usize,

    /// Hashing threads [default: all cores].
    #[arg(short = 'p', long = "threads", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,

    /// Tar file; stdin when absent or '-'.
    #[arg(value_name = "FILE")]
    pub file: Option<String>,
}

/// The man page's own text: bins/man.rs adds the rest from the definitions above.
pub const MAN: ManText = ManText::new(include_str!("man.roff"), include_str!("end.roff"));
