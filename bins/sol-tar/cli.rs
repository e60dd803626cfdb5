use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
        /// Files and directories to archive (directories recursively).
        #[arg(value_name = "PATH", required = true)]
        paths: Vec<PathBuf>,
    },
    /// Extract a tar stream (stdin, or FILE) under DEST.
    ///
    /// Absolute names, '..' components, and entries that would pass through a symlink are
    /// refused (reported, skipped, status 3 at the end); nothing is written outside DEST.
    /// Modes and mtimes are restored, and owners too when run as root.
    Extract {
        /// Destination directory (created if missing) [default: .].
        #[arg(short = 'C', long = "directory", value_name = "DEST")]
        directory: Option<PathBuf>,
        /// Archive file; stdin when absent or '-'.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
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

pub const EXTRA_MAN: &str = r#".SH EXAMPLES
.nf
sol-tar create -C /data sol0042 | sol-zip | sol-crypt -e -k site.key > sol0042.tar.gz.sc
sol-tar create -C /data sol0042 | tar -t          # GNU tar reads it
tar -cf - -C /data sol0042 | sol-tar extract -C /restore
sol-zip -d < sol0042.tar.gz | sol-tar list -v
.fi
.SH FORMAT
POSIX.1-2001 (pax) ustar: names, link targets, sizes, ids and times that do not
fit the ustar fields are carried in pax extended headers (non-UTF-8 names with
hdrcharset=BINARY). Directories are stored with a trailing slash. Times are whole
seconds and owners numeric, so the same tree gives the same bytes.
.SH EXIT STATUS
.TP
0
success
.TP
1
an operational failure; for create also: a file changed, shrank or vanished while
being read, or could not be read (the archive is still complete and valid)
.TP
2
usage error
.TP
3
the input is not a valid tar stream (corrupt header, truncated), or an entry was
refused because it would land outside DEST
.TP
141
stdout was closed; nothing is printed
.SH SEE ALSO
tar(1), sol-zip(1), sol-crypt(1), tar-md5(1)
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
