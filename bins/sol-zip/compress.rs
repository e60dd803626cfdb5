//! Compression through gzp's parallel Mgzip writer (libdeflate backend).

use std::io::{self, BufWriter, Read, Write};

use anyhow::Context;
use gzp::deflate::Mgzip;
use gzp::par::compress::ParCompressBuilder;
use gzp::{Compression, GzpError, ZWriter};
use sol_common::progress::Progress;
use sol_common::stdio::{read_full, StdFd, BLOCK};

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
    let (summary, mut out) = tally.finish().context("compressing")?;
    out.write_all(&summary.end_member())
        .context("writing output")?;
    out.flush().context("writing output")
}
