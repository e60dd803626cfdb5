use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sol_common::{ManText, Status};

pub const MAN: ManText = ManText {
    sections: &[r#".SH WHY
Restoring one 10 KB file should not download, decrypt and inflate a whole 1.3 GB sol. Every
stage of an archive is addressable: a tar member is a contiguous range of the tar stream,
sol-zip writes independent gzip members (sol-zip(5)), and sol-crypt seals fixed-size chunks
numbered in their nonces (sol-crypt(5)). The index says where each member lies in each
stage, so a restore fetches only the chunks that hold the wanted members, authenticates
each of them, and inflates only the gzip members it needs. The archive itself is unchanged:
gunzip and tar still read it.
.SH HOW THE INDEX IS MADE
Each stage stays a filter and writes its own part to a side file named by \fB--index\fR,
once its stream is complete:
.nf
sol-tar create --index tar.idx -C /data sol0042 |
  sol-zip --index zip.idx | sol-crypt -e -k site.key --index crypt.idx |
  s3-mput --print s3://mission/sols/sol0042.tar.gz.sc      # prints ETAG, BYTES, PARTS
sol-index make --tar tar.idx --zip zip.idx --crypt crypt.idx --size BYTES --etag ETAG |
  sol-zip | sol-crypt -e -k site.key | s3-mput s3://mission/sols/sol0042.index.gz.sc
.fi
A side file rather than a member inside the stream keeps every stage's output exactly what
it was (a standard tar, gzip, or sol-crypt stream) and needs no second pass. \fBmake\fR
checks that the three parts describe one stream (sol-tar's length is what sol-zip read,
sol-zip's output what sol-crypt sealed, and the sealed length the archive's size) and binds
them to the stored archive by its size and ETag. The index is sealed like the archive, so
its file names are as private as the archive's and any change to it is refused (status 3)
by \fBsol-crypt -d\fR. \fBsol-backup\fR(1) does all of this.
.SH RESTORING A PATH BY HAND
.nf
s3-mget --no-md5 s3://mission/sols/sol0042.index.gz.sc | sol-crypt -d -k site.key |
  sol-zip -d > idx
sol-index list idx                                        # what the sol holds
sol-index plan idx sol0042/data/img0001.raw > plan        # byte ranges, as below
s3-mget --no-md5 --if-match ETAG --range FETCH s3://mission/sols/sol0042.tar.gz.sc |
  sol-crypt -d -k site.key --chunks CHUNKS | sol-index cut ZIP | sol-zip -d |
  sol-index cut --tar-end TAR | sol-tar extract -C /restore/staging
sol-index verify idx /restore/staging sol0042/data/img0001.raw
.fi
where FETCH, CHUNKS, ZIP and TAR are the lines of the plan. \fBsol-restore --path\fR(1)
runs exactly this, into a staging directory, and moves the result into place.
.SH FORMAT
Text, one record a line, fields separated by tabs. Names are escaped so a line is always
one record: a backslash, tab, newline, carriage return, other control characters and bytes
that are not UTF-8 are written \e\e, \et, \en, \er, \exHH.
.TP
sol-index 1
the first line.
.TP
archive SIZE ETAG
the stored archive this index describes.
.TP
crypt VERSION HEADER_LEN CHUNK_SIZE PLAIN_LEN SEALED_LEN
the sol-crypt stream: chunk i lies at HEADER_LEN + i x (CHUNK_SIZE + 16); the last chunk
(number PLAIN_LEN / CHUNK_SIZE, shorter) runs to the end, trailer included.
.TP
z UOFF ULEN COFF CLEN
one sol-zip data member: tar bytes UOFF .. UOFF+ULEN are compressed bytes COFF .. COFF+CLEN
of the sol-zip stream (sol-crypt's plaintext).
.TP
zip-end IN OUT
what sol-zip read and wrote in all.
.TP
t START END TYPE SIZE MODE MTIME PATH LINK
one tar member: its bytes START .. END of the tar stream, from its first header block (its
pax extended header's, when it has one) to the end of its padded data; TYPE f (file), d
(directory), l (symlink) or h (hard link); MODE in octal; MTIME in seconds since 1970;
LINK the link target, else empty.
.TP
tar-end LEN
the tar stream's length, end blocks included.
.PP
The side files of \fBsol-tar create --index\fR, \fBsol-zip --index\fR and
\fBsol-crypt -e --index\fR hold the same records after first lines "sol-tar-index 1",
"sol-zip-index 1" and "sol-crypt-index 1".
.SH INTEGRITY
The index is authenticated by sol-crypt as the archive is, and \fBplan\fR refuses an index
whose parts do not add up. Every range is fetched pinned to the ETag the index is bound to
(\fBs3-mget --if-match\fR): a replaced archive is refused, never mixed with its index.
\fBsol-crypt -d --chunks\fR authenticates every chunk under its own number, so a chunk
moved, changed or taken from another stream is status 3. \fBverify\fR checks that each
restored member has the type, size and link target the index records.
"#],
    exit: &[
        (Status::Success, None),
        (
            Status::Failure,
            Some(
                r#"a PATH is not in the archive, a file could not be read or written"#,
            ),
        ),
        (Status::Usage, None),
        (
            Status::Integrity,
            Some(
                r#"the index is malformed or its parts disagree; \fBcut\fR: the input ended before a range; \fBverify\fR: a restored member does not match the index"#,
            ),
        ),
        (Status::BrokenPipe, None),
    ],
    see_also: "sol-restore(1), sol-backup(1), sol-tar(1), sol-zip(1), sol-zip(5), sol-crypt(1), sol-crypt(5), s3-mget(1)",
};

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
