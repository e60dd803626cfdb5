//! Compression through gzp's parallel Mgzip writer (libdeflate backend).

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use anyhow::Context;
use gzp::deflate::Mgzip;
use gzp::par::compress::ParCompressBuilder;
use gzp::{Compression, GzpError, ZWriter};
use sol_common::progress::Progress;
use sol_common::stdio::{read_full, StdFd, BLOCK};

use sol_formats::index;
use sol_formats::zip as member;

type Out = member::Tally<BufWriter<StdFd>>;

/// gzp keeps the writer thread's I/O error; unwrap it so EPIPE stays EPIPE (status 141).
fn gzp_error(e: GzpError) -> anyhow::Error {
    match e {
        GzpError::Io(io) => anyhow::Error::new(io).context("writing output"),
        other => anyhow::Error::new(io::Error::other(other)).context("compressing"),
    }
}

pub fn compress(
    mut input: impl Read,
    level: u32,
    threads: usize,
    block_size: usize,
    index: Option<(File, &Path)>,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let mut out = BufWriter::with_capacity(BLOCK, StdFd::stdout());
    out.write_all(&member::START2).context("writing output")?;
    let out: Out = member::Tally::new(out);
    let level = Compression::new(level);
    // One writer for any thread count: gzp's single-threaded MgzipSyncWriter ignores the
    // block size and grows without bound on writes larger than a block.
    let mut writer = ParCompressBuilder::<Mgzip>::new()
        .compression_level(level)
        .num_threads(threads)
        .map_err(gzp_error)?
        .buffer_size(block_size)
        .map_err(gzp_error)?
        .from_writer(out);

    let mut buf = vec![0u8; BLOCK];
    let result = (|| -> anyhow::Result<Out> {
        loop {
            let n = read_full(&mut input, &mut buf).context("reading input")?;
            if n == 0 {
                break;
            }
            writer.write_all(&buf[..n]).context("writing output")?;
            progress.add(n as u64);
        }
        writer.finish().map_err(gzp_error)
    })();
    let tally = match result {
        Ok(out) => out,
        Err(e) => {
            // gzp's Drop finishes (and unwraps) a writer that is still armed: after a failure
            // we are exiting anyway, so never let it run.
            std::mem::forget(writer);
            return Err(e);
        }
    };
    let (summary, members, mut out) = tally.finish().context("compressing")?;
    out.write_all(&summary.end_member())
        .context("writing output")?;
    out.flush().context("writing output")?;
    if let Some((file, path)) = index {
        write_index(file, &members)
            .with_context(|| format!("writing index file '{}'", path.display()))?;
    }
    Ok(())
}

/// sol-zip's part of the restore index (sol_formats::index): where each data member's input
/// and output lie.
fn write_index(mut f: File, members: &[(u64, u64)]) -> io::Result<()> {
    let mut text = format!("{}\n", index::ZIP_MAGIC);
    let (mut uoff, mut coff) = (0u64, member::START2.len() as u64);
    for &(ulen, clen) in members {
        text.push_str(
            &index::ZipMember {
                uoff,
                ulen,
                coff,
                clen,
            }
            .line(),
        );
        uoff += ulen;
        coff += clen;
    }
    text.push_str(&format!(
        "zip-end\t{uoff}\t{}\n",
        coff + member::END2_LEN as u64
    ));
    f.write_all(text.as_bytes())?;
    f.sync_all()
}
