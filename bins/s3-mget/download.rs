//! Ranged, parallel, verified download.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use md5::{Digest, Md5};
use sol_common::pool::Pool;
use sol_common::progress::Progress;
use sol_common::stdio::BLOCK;
use sol_common::{hex, Fail};
use sol_s3::{self as s3, S3Client, S3Url, Why};
use tokio::sync::mpsc;

use super::cli::Cli;

struct Ctx {
    pool: Pool,
    s3: S3Client,
    url: S3Url,
    etag: String,
    version_id: Option<String>,
}

/// How the object is cut into ranges, and what its ETag lets us verify.
enum Layout {
    /// Single-part: ETag = MD5 of everything.
    WholeMd5,
    /// Multipart with s3-mput's schedule: ETag = MD5 of the parts' MD5s, "-N".
    Parts(u64),
    /// Nothing to verify against (foreign multipart, SSE-KMS).
    Unverified,
}

fn integrity(msg: String) -> anyhow::Error {
    Fail::integrity(msg).into()
}

pub async fn download(
    cli: &Cli,
    url: &S3Url,
    mut out: impl Write + Send + 'static,
) -> anyhow::Result<sol_common::Status> {
    let s3 = s3::client(&cli.conn).await?;
    let head = s3
        .head(url, cli.version_id.clone())
        .await
        .map_err(|e| e.at(url, "reading the object's metadata"))?;
    let Some(head) = head else {
        // A HEAD's 404 has no body to say whether the key or the bucket is missing.
        let bucket = s3
            .send(0, s3.client.head_bucket().bucket(&url.bucket).send())
            .await;
        match bucket {
            Err(e) if e.status() == Some(404) => anyhow::bail!(
                "{url}: no such bucket (the bucket '{}' does not exist)",
                url.bucket
            ),
            _ => anyhow::bail!("{url}: no such object"),
        }
    };
    let size = head.content_length().unwrap_or(0).max(0) as u64;
    let etag = head
        .e_tag()
        .unwrap_or_default()
        .trim_matches('"')
        .to_string();
    if let Some(want) = &cli.if_match {
        if *want != etag {
            return Err(integrity(format!(
                "{url}: the object's ETag is \"{etag}\", not \"{want}\" (it was replaced)"
            )));
        }
    }
    let recorded = head
        .metadata()
        .and_then(|m| m.get("sol-part-size"))
        .and_then(|v| v.parse::<u64>().ok());
    let kms = head
        .server_side_encryption()
        .is_some_and(|s| s.as_str() == "aws:kms");
    let layout = match (etag.split_once('-'), recorded) {
        // Ranges are some of the bytes: there is no MD5 of them to check against.
        _ if cli.no_md5 || cli.range.is_some() || kms || etag.is_empty() => Layout::Unverified,
        (None, _) if etag.len() == 32 => Layout::WholeMd5,
        (Some(_), Some(p)) if p >= 1 << 20 => Layout::Parts(p),
        _ => Layout::Unverified,
    };
    // Ranges follow s3-mput's parts when known (each range then is one part); with --range,
    // the ranges asked for, cut at multiples of --part-size.
    let ranges: Vec<(u64, u64)> = if let Some(list) = &cli.range {
        if let Some(r) = list.0.iter().find(|r| r.end > size) {
            anyhow::bail!(
                "{url}: the range {} ends past the object's end (it has {size} bytes)",
                sol_common::ranges::format(std::slice::from_ref(r))
            );
        }
        pieces(&list.0, cli.part_size)
    } else {
        let mut v = Vec::new();
        let mut start = 0;
        let mut n = 1;
        while start < size {
            let len = match layout {
                Layout::Parts(p) => s3::part_size(p, n),
                _ => cli.part_size,
            };
            let end = (start + len).min(size);
            v.push((start, end));
            start = end;
            n += 1;
        }
        v
    };
    // Blocks the network's chunks are copied into: what a range holds is exactly its bytes
    // (a chunk from the HTTP stack can pin a larger buffer).
    let pool = Pool::new(|| Vec::with_capacity(BLOCK));
    let ctx = Arc::new(Ctx {
        pool: pool.clone(),
        s3,
        url: url.clone(),
        etag: etag.clone(),
        version_id: head
            .version_id()
            .map(str::to_string)
            .or(cli.version_id.clone()),
    });

    // The writer thread: blocking writes to stdout, in order, and the whole-object MD5.
    // It is fed blocks as they fill from the network, so the next stage starts at once
    // instead of after the first range is complete.
    let whole = matches!(layout, Layout::WholeMd5);
    let progress_on = cli.progress || sol_common::stdio::is_terminal(2);
    let (wtx, mut wrx) = mpsc::channel::<Vec<u8>>(4);
    let writer = std::thread::spawn(move || -> anyhow::Result<Option<[u8; 16]>> {
        let mut md5 = whole.then(Md5::new);
        let mut progress = Progress::new("s3-mget", progress_on);
        while let Some(chunk) = wrx.blocking_recv() {
            out.write_all(&chunk).context("writing output")?;
            if let Some(h) = md5.as_mut() {
                h.update(&chunk);
            }
            progress.add(chunk.len() as u64);
            pool.give(chunk);
        }
        out.flush().context("writing output")?;
        progress.done();
        Ok(md5.map(|h| h.finalize().into()))
    });

    // `concurrency` ranges in flight, in order. Each fetch task passes its blocks on as they
    // fill; the front range's go straight to the writer, the others' wait in their channel
    // (at most one range each) until their range is at the front.
    let parts = matches!(layout, Layout::Parts(_));
    let mut pending = std::collections::VecDeque::new();
    let mut part_md5s: Vec<[u8; 16]> = Vec::new();
    let mut result: anyhow::Result<()> = Ok(());
    let mut iter = ranges.iter().copied();
    'ranges: loop {
        while pending.len() < usize::from(cli.concurrency) {
            let Some((start, end)) = iter.next() else {
                break;
            };
            let (tx, rx) = mpsc::unbounded_channel();
            let ctx = ctx.clone();
            let task = tokio::spawn(async move { fetch(&ctx, start, end, &tx, parts).await });
            pending.push_back((rx, task));
        }
        let Some((rx, _)) = pending.front_mut() else {
            break;
        };
        while let Some(chunk) = rx.recv().await {
            if wtx.send(chunk).await.is_err() {
                break 'ranges; // the writer failed; it says why
            }
        }
        let (_, task) = pending.pop_front().expect("the front range");
        match task.await.context("a download task died")? {
            Ok(md5) => part_md5s.extend(md5),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    drop(wtx);
    let written = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer thread died"))?;
    let whole_md5 = written?;
    result?;

    match layout {
        Layout::WholeMd5 => {
            let got = hex(&whole_md5.unwrap_or_default());
            if got != etag {
                return Err(integrity(format!(
                    "{url}: the data's MD5 {got} does not match the ETag {etag}"
                )));
            }
        }
        Layout::Parts(_) => {
            let mut all = Md5::new();
            for m in &part_md5s {
                all.update(m);
            }
            let got = format!("{}-{}", hex(&all.finalize()), part_md5s.len());
            if got != etag {
                return Err(integrity(format!(
                    "{url}: the parts' MD5s give {got}, not the ETag {etag}"
                )));
            }
        }
        Layout::Unverified => {}
    }
    Ok(sol_common::Status::Success)
}

/// The requests for a list of ranges (increasing, not overlapping): ranges that touch are
/// joined, and each is cut at every multiple of `part`, as a whole download would cut it.
fn pieces(list: &[std::ops::Range<u64>], part: u64) -> Vec<(u64, u64)> {
    let mut joined: Vec<(u64, u64)> = Vec::new();
    for r in list {
        match joined.last_mut() {
            Some(last) if last.1 == r.start => last.1 = r.end,
            _ => joined.push((r.start, r.end)),
        }
    }
    let mut out = Vec::new();
    for (mut start, end) in joined {
        while start < end {
            let cut = (start / part + 1).saturating_mul(part).min(end);
            out.push((start, cut));
            start = cut;
        }
    }
    out
}

/// One range, resumed from where a dropped connection left it. Its bytes go to `tx` in
/// blocks as they fill (a resumed attempt continues after the last byte received); with
/// `hash`, the range's MD5 is computed on the way, on this task, so ranges hash in parallel.
async fn fetch(
    ctx: &Ctx,
    start: u64,
    end: u64,
    tx: &mpsc::UnboundedSender<Vec<u8>>,
    hash: bool,
) -> anyhow::Result<Option<[u8; 16]>> {
    let want = end - start;
    // Each attempt takes the range's state and puts it back (attempts never overlap).
    let state = std::sync::Mutex::new(Some(Range {
        sent: 0,
        md5: hash.then(Md5::new),
        block: empty(ctx),
    }));
    let take = || state.lock().unwrap_or_else(|p| p.into_inner()).take();
    let r = ctx
        .s3
        .retry(|| async {
            let mut st = take().expect("one attempt at a time");
            let r = attempt(ctx, start, end, want, tx, &mut st).await;
            *state.lock().unwrap_or_else(|p| p.into_inner()) = Some(st);
            r
        })
        .await;
    match r {
        Ok(()) => Ok(take().and_then(|st| st.md5).map(|h| h.finalize().into())),
        Err(e) if e.is_precondition_failed() => Err(integrity(format!(
            "{}: {CHANGED} (it was replaced: its ETag is no longer {})",
            ctx.url, ctx.etag
        ))),
        Err(e) => match e.why {
            Why::Other { detail } if detail == ABANDONED => anyhow::bail!("{ABANDONED}"),
            Why::Other { detail } if detail.starts_with(CHANGED) => {
                Err(integrity(format!("{}: {detail}", ctx.url)))
            }
            _ => Err(e.at(&ctx.url, "downloading")),
        },
    }
}

const ABANDONED: &str = "the download was abandoned";
const CHANGED: &str = "the object changed during the download";

/// What a range has received so far, across attempts.
struct Range {
    sent: u64,
    md5: Option<Md5>,
    block: Vec<u8>,
}

fn empty(ctx: &Ctx) -> Vec<u8> {
    let mut v = ctx.pool.take();
    v.clear();
    v
}

/// One GET of what the range still lacks.
async fn attempt(
    ctx: &Ctx,
    start: u64,
    end: u64,
    want: u64,
    tx: &mpsc::UnboundedSender<Vec<u8>>,
    st: &mut Range,
) -> Result<(), s3::S3Error> {
    let from = start + st.sent;
    let resp = ctx
        .s3
        .send(
            0,
            ctx.s3
                .client
                .get_object()
                .bucket(&ctx.url.bucket)
                .key(&ctx.url.key)
                .set_version_id(ctx.version_id.clone())
                .if_match(format!("\"{}\"", ctx.etag))
                .range(format!("bytes={from}-{}", end - 1))
                .send(),
        )
        .await?;
    let got_etag = resp.e_tag().unwrap_or_default().trim_matches('"');
    if !got_etag.is_empty() && got_etag != ctx.etag {
        return Err(not_retried(
            Why::Bad {
                detail: format!("{CHANGED} (ETag {} became {got_etag})", ctx.etag),
            }
            .into(),
        ));
    }
    let mut body = resp.body;
    let why = loop {
        let next = tokio::time::timeout(ctx.s3.timeout, body.try_next()).await;
        match next {
            Ok(Ok(Some(chunk))) => {
                if st.sent + chunk.len() as u64 > want {
                    return Err(not_retried(
                        Why::Bad {
                            detail: format!("{CHANGED}: the server sent more than the range asked"),
                        }
                        .into(),
                    ));
                }
                st.sent += chunk.len() as u64;
                if let Some(h) = st.md5.as_mut() {
                    h.update(&chunk);
                }
                let mut rest = &chunk[..];
                while !rest.is_empty() {
                    let n = rest.len().min(BLOCK - st.block.len());
                    st.block.extend_from_slice(&rest[..n]);
                    rest = &rest[n..];
                    let last = st.sent == want && rest.is_empty();
                    if st.block.len() == BLOCK || last {
                        let next = if last { Vec::new() } else { empty(ctx) };
                        if tx.send(std::mem::replace(&mut st.block, next)).is_err() {
                            // Nobody reads any more: the writer failed and says why.
                            return Err(not_retried(
                                Why::Other {
                                    detail: ABANDONED.into(),
                                }
                                .into(),
                            ));
                        }
                    }
                }
            }
            Ok(Ok(None)) => break "the range ended early".to_string(),
            Ok(Err(e)) => break format!("{e}"),
            Err(_) => break format!("no data for {} s (timed out)", ctx.s3.timeout.as_secs()),
        }
    };
    if st.sent == want {
        return Ok(());
    }
    let mut e = s3::S3Error::from(Why::Dropped { detail: why });
    e.progressed = start + st.sent > from;
    Err(e)
}

/// An error the retry helper gives up on at once.
fn not_retried(mut e: s3::S3Error) -> s3::S3Error {
    if let Why::Bad { detail } = e.why {
        e.why = Why::Other { detail };
    }
    e
}

#[cfg(test)]
// A list holding one range is what a `--range` of one range is.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::pieces;

    #[test]
    fn ranges_are_joined_where_they_touch_and_cut_at_part_multiples() {
        let m = 1 << 20;
        assert_eq!(pieces(&[5..6], m), vec![(5, 6)]);
        assert_eq!(pieces(&[0..10, 10..20, 30..40], m), vec![(0, 20), (30, 40)]);
        assert_eq!(
            pieces(&[900_000..3_200_000], m),
            vec![(900_000, m), (m, 2 * m), (2 * m, 3 * m), (3 * m, 3_200_000)]
        );
        assert_eq!(pieces(&[m - 1..m + 1], m), vec![(m - 1, m), (m, m + 1)]);
        assert_eq!(pieces(&[0..m, m..2 * m], m), vec![(0, m), (m, 2 * m)]);
        // Every byte asked for, once, in order.
        let list = [
            3..70_000,
            70_000..70_001,
            2 * m - 5..5 * m + 7,
            9 * m..9 * m + 1,
        ];
        let p = pieces(&list, m);
        let bytes: u64 = p.iter().map(|(s, e)| e - s).sum();
        assert_eq!(bytes, sol_common::ranges::total(&list));
        assert!(p.windows(2).all(|w| w[0].1 <= w[1].0));
        assert!(p.iter().all(|(s, e)| s < e && e - s <= m));
    }
}
