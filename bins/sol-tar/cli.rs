use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sol_common::{ManText, Status};

pub const MAN: ManText = ManText {
    sections: &[r#".SH EXAMPLES
.nf
sol-tar create -C /data sol0042 | sol-zip | sol-crypt -e -k site.key > sol0042.tar.gz.sc
sol-tar create -C /data sol0042 | tar -t          # GNU tar reads it
tar -cf - -C /data sol0042 | sol-tar extract -C /restore
sol-zip -d < sol0042.tar.gz | sol-tar list -v
sol-tar create --index sol0042.tar-index -C /data sol0042 | sol-zip > sol0042.tar.gz
sol-zip -d < sol0042.tar.gz | sol-tar extract -C /restore sol0042/cam/img0007.raw sol0042/logs
sol-tar extract --keep-old-files -f sol0042.tar -C /data sol0042/cam   # only what is missing
.fi
.SH SELECTING MEMBERS
\fBsol\-tar extract\fR PATH... extracts, as \fBtar \-x\fR PATH... does, the members
named PATH and those under it (PATH/...); a leading './' and a trailing '/' are ignored
on both sides, and a PATH never matches a mere prefix of a name (\fBsol0042/a\fR does not
select \fBsol0042/ab\fR). The other members are read and checked just as strictly (a
corrupt or truncated stream is still status 3), but nothing is written for them.
Directories above a selected member that are not selected themselves are created with the
default mode. Each PATH that selected nothing is reported once the stream is read:
.nf
sol-tar: sol0042/cam/img9999.raw: not found in the archive
.fi
and the status is 1. A selected hard link whose target is not selected cannot be made
(its data is stored with the target): it is reported with its target, and the status is 1;
name the target too. Symbolic links are extracted whatever they point to.
.SH RESTORE INDEX
\fBsol\-tar create \-\-index\fR FILE writes, next to the stream, the tar part of the
restore index: \fBsol\-index\fR(1) joins it with the parts \fBsol\-zip\fR(1) and
\fBsol\-crypt\fR(1) write, so one file can be restored without fetching the whole
archive. FILE is text, one record a line, fields separated by tabs. The first line is
\fBsol\-tar\-index 1\fR; then one line per member, in stream order:
.nf
t   START   END   TYPE   SIZE   MODE   MTIME   PATH   LINK
.fi
The member is bytes START to END (excluded) of the stream, from its first header block (its
pax extended header's, when it has one) to the end of its padded data; the first member
starts at 0 and each of the others where the one before ends. TYPE is \fBf\fR (file),
\fBd\fR (directory), \fBl\fR (symbolic link) or \fBh\fR (hard link); SIZE the data size
(0 for directories and links); MODE the permission bits, in octal; MTIME in seconds; PATH
the name as stored (a directory's ends with '/'), and LINK the target of a symbolic or hard
link, empty otherwise. PATH and LINK are escaped: backslash, tab, newline, carriage return
as \fB\e\e\fR, \fB\et\fR, \fB\en\fR, \fB\er\fR, other control characters and bytes
that are not UTF-8 as \fB\exHH\fR. The last line,
.nf
tar-end   TOTAL
.fi
is the length of the whole stream, its end blocks included. The bytes of any members, back to
back and followed by two zero blocks of 512 bytes, are a tar stream of just those members:
what a restore of selected files feeds to \fBsol\-tar extract\fR. FILE is created (emptied)
when \fBcreate\fR starts and written as the stream is; its \fBtar\-end\fR line is
written just before the stream's end blocks, so a run that stops early leaves it without
that line. When FILE cannot be written, \fBcreate\fR stops with one line and status 1,
and the stream ends without its end blocks: a reader of it fails (status 3) rather than
taking it for a complete archive.
.SH FORMAT
POSIX.1-2001 (pax) ustar: names, link targets, sizes, ids and times that do not
fit the ustar fields are carried in pax extended headers (non-UTF-8 names with
hdrcharset=BINARY). Directories are stored with a trailing slash. Times are whole
seconds and owners numeric, so the same tree gives the same bytes.
.SH INPUT CHECKS
\fBlist\fR, \fBextract\fR and \fBtar-md5\fR(1) read tar streams strictly: every
header's checksum and numeric fields (mode, uid, gid, size, mtime), every pax
extended header record (its length must frame it exactly; size, uid, gid and the
times must be numbers; path and linkpath must not be empty). Anything malformed
ends the run with status 3 and one line naming the entry (counted from 1) and the
byte where its header starts, for example
.nf
sol-tar: corrupt archive: entry 7 (header at byte 5120): malformed pax extended header: invalid size=-1
.fi
A gzip, sol-crypt or openssl stream is named as such, with the stage that comes
first (for example \fBsol-zip -d\fR).
.SH ERRORS DURING EXTRACTION
An error that dooms the rest of the extraction (no space left, quota exceeded, a
read-only or failing file system, or a destination that can no longer be written
because permission is denied or it is gone) ends the extraction at once with one
line naming the entry, and status 1. Other errors concern one entry: it is
reported and skipped, and the tool exits 1 at the end.
.PP
A file that could not be written completely is removed, so no file keeps its real
name half-written: files up to 1 MiB are written only once their data has been
read whole, larger ones are removed when a write fails or the stream ends inside
them. SIGINT, SIGTERM, SIGHUP and SIGQUIT are taken by one thread, which removes the files
being written and then ends the process by that signal, also when the input has
stalled. Writing every file under a temporary name and renaming it into place would
also cover a \fBkill -9\fR, but measured on this class of machine (2 cores,
tmpfs, 30,000 files of 0.1-8 KiB, 144 MB tar, three runs each, wall time) it took
1.15-1.28 s against 0.92-1.15 s for removing on failure (about 25 % more system
time, one rename per file); extracting /usr/share/doc (4,509 files, 125 MB) took
0.35-0.53 s against 0.31-0.45 s. So a file being written when the process is
killed by SIGKILL or a power loss can remain, truncated, under its name: restore
into a fresh directory, as \fBsol-restore\fR(1) does, and rename it when complete.
"#],
    exit: &[
        (Status::Success, None),
        (
            Status::Failure,
            Some(
                r#"an operational failure; for extract: an entry could not be written, or an error
that dooms the rest (disk full, read-only destination) stopped it, a PATH selected
nothing, a selected hard link's target was not selected, or --keep-old-files left an
entry as it was; for create: a file changed, shrank or vanished while being read, or
could not be read (the archive is still complete and valid), or the --index file
could not be written (the run stops)"#,
            ),
        ),
        (Status::Usage, None),
        (
            Status::Integrity,
            Some(
                r#"the input is not a valid tar stream (corrupt or malformed header, truncated, or
another stage's stream), or an entry was refused because it would land outside DEST"#,
            ),
        ),
        (Status::BrokenPipe, None),
    ],
    see_also: "tar(1), sol-zip(1), sol-crypt(1), tar-md5(1), sol-index(1)",
};

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
