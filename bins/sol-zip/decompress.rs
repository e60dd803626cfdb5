//! Decompression: Mgzip streams in parallel, any other gzip single-threaded.
//!
//! gzp ships a parallel Mgzip reader, but it takes a short read at a member header for a
//! clean end of stream (silent truncation), trusts the size field (underflow on garbage) and
//! re-panics from `Drop`; this decoder is strict instead. A reader thread frames members,
//! workers inflate them with libdeflate and check CRC-32 and ISIZE, and the caller's thread
//! writes the blocks in order. Blocks in flight are bounded, and their buffers are reused.

use sol_common::exit::integrity;
use std::io::{self, Cursor, Read, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;

use anyhow::Context;
use flate2::read::MultiGzDecoder;
use sol_common::ordered::{self, Jobs, Ticket, Workers};
use sol_common::progress::Progress;
use sol_common::stdio::{read_full, BLOCK};

use sol_common::pool::Pool;

use sol_formats::zip::{self as member, Summary, HEADER, MAX_BLOCK, TRAILER};

/// Blocks decoded ahead of the one being written: enough for the workers to go on while
/// the stage behind pauses on a run of small files. Measured on the mission sol
/// (docs/BENCHMARKS.md): its audit and restore pipelines 5 % faster than with 6 blocks
/// ahead; 64 gained nothing more. With sol-zip's 1 MiB blocks that is 16 MiB of output; an
/// Mgzip stream of larger members (up to MAX_BLOCK, which sol-zip never writes) can hold
/// up to 16 of those.
const AHEAD: usize = 16;

/// A decompressed block and its CRC-32, or why not.
type BlockResult = Result<(Vec<u8>, u32), String>;

/// What the reader thread hands the writer, in stream order.
enum Framed {
    Block(Ticket<BlockResult>),
    /// A version 2 stream starts: tally its members from here.
    Start,
    /// ... and ends, with what its end member records.
    End(Summary),
}

/// Map a decoder's I/O error: corrupt data and early EOF are integrity failures.
fn decode_error(e: io::Error) -> anyhow::Error {
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
            integrity(format!("corrupt input: {e}"))
        }
        io::ErrorKind::UnexpectedEof => integrity("truncated input: unexpected end of stream"),
        _ => anyhow::Error::new(e).context("reading input"),
    }
}

pub fn decompress(
    mut input: Box<dyn Read + Send>,
    out: &mut impl Write,
    threads: usize,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let mut head = vec![0u8; sol_formats::sniff::SNIFF_LEN];
    let n = read_full(&mut input, &mut head).context("reading input")?;
    head.truncate(n);
    if n == 0 {
        return Err(integrity("empty input: not in gzip format"));
    }
    if !head.starts_with(&member::GZIP_MAGIC) {
        return Err(integrity(match sol_formats::sniff::wrong_stage(&head) {
            Some(what) => format!("not in gzip format: {what}"),
            None => "not in gzip format".into(),
        }));
    }
    if member::mgzip_size(&head).is_some() {
        let input = Box::new(Cursor::new(head).chain(input));
        parallel(input, out, threads.max(1), progress)
    } else {
        sequential(Cursor::new(head).chain(input), out, progress)
    }
}

/// Any gzip stream (one or many members): flate2 checks CRC-32 and ISIZE of each member.
fn sequential(
    input: impl Read,
    out: &mut impl Write,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let mut dec = MultiGzDecoder::new(input);
    let mut buf = vec![0u8; BLOCK];
    loop {
        let n = match dec.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(decode_error(e)),
        };
        out.write_all(&buf[..n]).context("writing output")?;
        progress.add(n as u64);
    }
}

/// Mgzip in parallel: a reader thread frames the members, workers inflate them, and this
/// thread writes their blocks in stream order.
fn parallel(
    input: Box<dyn Read + Send>,
    out: &mut impl Write,
    threads: usize,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    // Reused output buffers keep their length, so they are not zeroed again before
    // libdeflate overwrites them.
    let pool = Pool::new(Vec::new);
    // Results in stream order: one receiver per block, at most AHEAD ahead.
    let (order_tx, order_rx) = mpsc::sync_channel::<Framed>(AHEAD.max(2 * threads + 2));
    let buffers = pool.clone();
    let workers = Workers::new(
        threads,
        threads,
        libdeflater::Decompressor::new,
        move |inflater, compressed: Vec<u8>| inflate(inflater, &compressed, buffers.take()),
    );
    let jobs = workers.jobs();
    let reader = thread::spawn(move || frame_members(input, &order_tx, &jobs));

    let written = write_in_order(&order_rx, out, &pool, progress);
    drop(order_rx);
    written?;
    let framed = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader thread died"))?;
    workers.join();
    framed?;
    out.flush().context("writing output")
}

/// The writer: each block's data to `out` in stream order, each version 2 stream's members
/// tallied against its end member. Stops at the first failure.
fn write_in_order(
    order: &Receiver<Framed>,
    out: &mut impl Write,
    pool: &Pool,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    // The members of the version 2 stream being read, as they arrive.
    let mut tally: Option<Summary> = None;
    for framed in order.iter() {
        let block = match framed {
            Framed::Block(block) => block,
            Framed::Start => {
                tally = Some(Summary::default());
                continue;
            }
            Framed::End(recorded) => {
                check_tally(&tally.take().unwrap_or_default(), &recorded)?;
                continue;
            }
        };
        let (data, crc) = receive(&block)?;
        if let Some(t) = tally.as_mut() {
            t.add(crc, data.len() as u64);
        }
        out.write_all(&data)
            .map_err(|e| anyhow::Error::new(e).context("writing output"))?;
        progress.add(data.len() as u64);
        pool.give(data);
    }
    Ok(())
}

/// A block's data and CRC-32 once its worker is done, or the failure it found.
fn receive(block: &Ticket<BlockResult>) -> anyhow::Result<(Vec<u8>, u32)> {
    match block.recv() {
        Ok(Ok(inflated)) => Ok(inflated),
        Ok(Err(msg)) => Err(integrity(msg)),
        Err(_) => Err(anyhow::anyhow!("a decompression thread died")),
    }
}

/// The members read of a version 2 stream must be those its end member records.
fn check_tally(seen: &Summary, recorded: &Summary) -> anyhow::Result<()> {
    if seen == recorded {
        return Ok(());
    }
    Err(integrity(format!(
        "corrupt input: members dropped, duplicated or reordered (read {} \
         members, {} bytes, CRC-32 {:08x}; the end member records {} members, \
         {} bytes, CRC-32 {:08x})",
        seen.members, seen.bytes, seen.crc, recorded.members, recorded.bytes, recorded.crc
    )))
}

/// Inflate one member into `buf`, checking the trailer.
fn inflate(inflater: &mut libdeflater::Decompressor, m: &[u8], mut buf: Vec<u8>) -> BlockResult {
    let t = m.len() - TRAILER;
    let crc = u32::from_le_bytes([m[t], m[t + 1], m[t + 2], m[t + 3]]);
    let isize = u32::from_le_bytes([m[t + 4], m[t + 5], m[t + 6], m[t + 7]]) as usize;
    if isize > MAX_BLOCK {
        return Err(format!("corrupt input: member claims {isize} bytes"));
    }
    // Only bytes never written before are zeroed; the output is used only when libdeflate
    // wrote all `isize` of them.
    buf.resize(isize, 0);
    match inflater.deflate_decompress(&m[HEADER..t], &mut buf) {
        Ok(n) if n == isize => {}
        Ok(n) => {
            return Err(format!(
                "corrupt input: length mismatch ({n} bytes, trailer says {isize})"
            ))
        }
        Err(libdeflater::DecompressionError::InsufficientSpace) => {
            return Err(format!(
                "corrupt input: length mismatch (more than the {isize} bytes the trailer says)"
            ))
        }
        Err(e) => return Err(format!("corrupt input: {e}")),
    }
    let actual = libdeflater::crc32(&buf);
    if actual != crc {
        return Err(format!(
            "corrupt input: CRC mismatch (computed {actual:08x}, stored {crc:08x})"
        ));
    }
    Ok((buf, actual))
}

/// A whole member of an Mgzip stream, as the reader thread sorts it.
enum Member {
    /// sol-zip's opening marker of this version.
    Start(u8),
    /// sol-zip's closing marker of this version, with what a version 2 one records.
    End(u8, Option<Summary>),
    /// A member of data, for the workers.
    Data(Vec<u8>),
}

/// The reader thread: split the stream into members and queue them in order.
fn frame_members(
    mut input: Box<dyn Read + Send>,
    order: &SyncSender<Framed>,
    jobs: &Jobs<Vec<u8>, BlockResult>,
) -> anyhow::Result<()> {
    // After sol-zip's opening marker the closing one of the same version is owed.
    let mut owed: Option<u8> = None;
    loop {
        let header = read_header(&mut input)?;
        if header.is_empty() {
            if owed.is_some() {
                return Err(integrity(
                    "truncated input: the stream's end marker is missing",
                ));
            }
            return Ok(());
        }
        let Some(size) = member::mgzip_size(&header).or_else(|| member::end2_size(&header)) else {
            if owed.is_some() {
                return Err(integrity(if header.len() < HEADER {
                    "truncated input: unexpected end of stream inside a member header"
                } else {
                    "corrupt input: bad member header"
                }));
            }
            // Not ours (e.g. `cat ours.gz theirs.gz`, or trailing bytes): flate2 judges the rest.
            return sequential_tail(header, input, order);
        };
        let m = read_member(&mut input, header, size)?;
        if !forward(classify(m)?, &mut owed, order, jobs)? {
            return Ok(());
        }
    }
}

/// The next member header (shorter at the end of the input; empty after it).
fn read_header(input: &mut impl Read) -> anyhow::Result<Vec<u8>> {
    let mut header = vec![0u8; HEADER];
    let n = read_full(input, &mut header).context("reading input")?;
    header.truncate(n);
    Ok(header)
}

/// The whole member of `size` bytes (its size field checked) that starts with `header`.
fn read_member(input: &mut impl Read, header: Vec<u8>, size: usize) -> anyhow::Result<Vec<u8>> {
    if !(HEADER + 2 + TRAILER..=MAX_BLOCK).contains(&size) {
        return Err(integrity(format!(
            "corrupt input: member size {size} out of range"
        )));
    }
    let mut m = header;
    m.resize(size, 0);
    let n = read_full(input, &mut m[HEADER..]).context("reading input")?;
    if n < size - HEADER {
        return Err(integrity(
            "truncated input: unexpected end of stream inside a member",
        ));
    }
    Ok(m)
}

/// Whether member `m` is one of sol-zip's start or end markers, or data; an end member that
/// does not parse is corrupt.
fn classify(m: Vec<u8>) -> anyhow::Result<Member> {
    if m[..] == member::START1 {
        return Ok(Member::Start(1));
    }
    if m[..] == member::START2 {
        return Ok(Member::Start(2));
    }
    if m[..] == member::END1 {
        return Ok(Member::End(1, None));
    }
    if let Some(s) = Summary::parse_end(&m) {
        return Ok(Member::End(2, Some(s)));
    }
    if member::end2_size(&m).is_some() {
        return Err(integrity("corrupt input: bad end member"));
    }
    Ok(Member::Data(m))
}

/// Passes one member on: a marker must come in its turn (it sets or clears the end marker
/// `owed`) and a version 2 one tells the writer; data goes to the workers. False when the
/// workers or the writer have stopped (the writer reports why).
fn forward(
    member: Member,
    owed: &mut Option<u8>,
    order: &SyncSender<Framed>,
    jobs: &Jobs<Vec<u8>, BlockResult>,
) -> anyhow::Result<bool> {
    match member {
        Member::Start(version) => {
            if owed.is_some() {
                return Err(integrity(
                    "corrupt input: a second start marker before the stream's end",
                ));
            }
            *owed = Some(version);
            Ok(version != 2 || order.send(Framed::Start).is_ok())
        }
        Member::End(version, summary) => {
            if *owed != Some(version) {
                return Err(integrity(if owed.is_none() {
                    "corrupt input: end marker without a start"
                } else {
                    "corrupt input: the end marker does not match the start marker"
                }));
            }
            *owed = None;
            Ok(summary.map_or(true, |s| order.send(Framed::End(s)).is_ok()))
        }
        Member::Data(m) => {
            let Ok(block) = jobs.submit(m) else {
                return Ok(false); // the workers stopped
            };
            Ok(order.send(Framed::Block(block)).is_ok())
        }
    }
}

/// A plain gzip member after Mgzip ones (`cat ours.gz theirs.gz`): decode the rest in order.
fn sequential_tail(
    header: Vec<u8>,
    input: Box<dyn Read + Send>,
    order: &SyncSender<Framed>,
) -> anyhow::Result<()> {
    let mut dec = MultiGzDecoder::new(Cursor::new(header).chain(input));
    loop {
        let mut buf = vec![0u8; BLOCK];
        let n = match read_full(&mut dec, &mut buf) {
            Ok(n) => n,
            Err(e) => return Err(decode_error(e)),
        };
        if n == 0 {
            return Ok(());
        }
        buf.truncate(n);
        if order
            .send(Framed::Block(ordered::ready(Ok((buf, 0)))))
            .is_err()
        {
            return Ok(());
        }
    }
}
