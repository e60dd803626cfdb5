use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sol_common::ManText;

/// Archive a directory tree to a POSIX (pax) tar stream on stdout, and back.
///
/// `create` writes regular files, directories, symlinks (not followed), hard links, modes,
/// mtimes, long and non-UTF-8 names and files of any size, in sorted order (the same tree
/// gives the same bytes). Small files are read ahead in parallel while the stream is written
/// in order. `extract` reads sol-tar's, GNU tar's or bsdtar's streams and refuses entries
/// that would land outside the destination. GNU tar reads what sol-tar writes and the other
/// way round.
#[derive(Debug, Parser)]
#[command(name = "sol-tar", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Write a tar stream of PATH... to stdout.
    ///
    /// A file that changes, shrinks or vanishes while being read is reported and the tool
    /// exits 1 at the end, after writing a complete, valid archive. Sockets and device files
    /// are skipped with a warning.
    Create {
        /// Change to DIR first; PATHs are relative to it and stored as given.
        #[arg(short = 'C', long = "directory", value_name = "DIR")]
        directory: Option<PathBuf>,
        /// Write binary data even when stdout is a terminal.
        #[arg(short = 'f', long)]
        force: bool,
        /// Threads reading small files ahead of the writer.
        #[arg(long, value_name = "N", default_value_t = 8,
              value_parser = clap::value_parser!(u16).range(1..=256))]
        readers: u16,
        /// Also write FILE, the tar part of the restore index (see RESTORE INDEX): where each
        /// member lies in the stream. FILE is created (emptied) first; a failure to write it
        /// ends the run with status 1, the stream left without its end blocks.
        #[arg(long, value_name = "FILE")]
        index: Option<PathBuf>,
        /// Store a file with holes whole, its holes read as zeros, as GNU tar does without
        /// --sparse (for a reader that knows no sparse members; see SPARSE FILES).
        #[arg(long)]
        no_sparse: bool,
        /// Files and directories to archive (directories recursively).
        #[arg(value_name = "PATH", required = true)]
        paths: Vec<PathBuf>,
    },
    /// Extract a tar stream (stdin, or FILE) under DEST; with PATHs, only those members.
    ///
    /// Absolute names, '..' components, and entries that would pass through a symlink are
    /// refused (reported, skipped, status 3 at the end); nothing is written outside DEST.
    /// Modes and mtimes are restored, and owners too when run as root. What is in the way is
    /// replaced (a directory is entered), unless --keep-old-files.
    ///
    /// With PATH operands, as with `tar -x PATH...`, only the members whose name is a PATH or
    /// lies under one (PATH/...) are extracted; a leading './' and a trailing '/' do not count.
    /// The other members are still read and checked as strictly, but nothing is written for
    /// them. A PATH that names no member is reported after the stream, one line each
    /// ("sol-tar: PATH: not found in the archive"), status 1. A selected hard link whose
    /// target is not selected is not made: one line names both (name the target too), status
    /// 1 at the end, and the extraction goes on.
    Extract {
        /// Destination directory (created if missing) [default: .].
        #[arg(short = 'C', long = "directory", value_name = "DEST")]
        directory: Option<PathBuf>,
        /// Archive file; stdin when absent or '-'.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        /// Leave an existing file, symlink or other non-directory in DEST as it is: one line
        /// "sol-tar: NAME: exists, not replaced (--keep-old-files)" per such entry, status 1 at
        /// the end, the extraction goes on. An existing directory is entered, but its mode and
        /// mtime are not set from the archive (an entry made in it moves its mtime, as usual).
        /// A hard link to a file left so is not made (one line naming it, status 1): it would
        /// hold that file's data, not its own.
        #[arg(long)]
        keep_old_files: bool,
        /// Members to extract (directories with everything under them); all when none.
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Print the entries of a tar stream, one name a line.
    List {
        /// Also print mode, owner, size and mtime, like `tar -tv`.
        #[arg(short = 'v', long)]
        verbose: bool,
        /// Archive file; stdin when absent or '-'.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

/// The man page's own text: bins/man.rs adds the rest from the definitions above.
pub const MAN: ManText = ManText::new(include_str!("man.roff"), include_str!("end.roff"));
