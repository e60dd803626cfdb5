//! Ranged, parallel, verified download.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use aws_sdk_s3::Client;
use md5::{Digest, Md5};
use sol_common::pool::Pool;
use sol_common::progress::Progress;
use sol_common::s3::{self, S3Url};
use sol_common::stdio::BLOCK;
use sol_common::{hex, Fail};
use tokio::sync::mpsc;

use super::cli::Cli;

struct Ctx {
    pool: Pool,
    client: Client,
    url: S3Url,
    etag: String,
    version_id: Option<String>,
    retries: u32,
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
    let client = s3::client(&cli.conn).await;
    let head = {
        let mut attempt = 0;
        loop {
            attempt += 1;
            tokio::time::sleep(s3::backoff(attempt)).await;
            let r = client
                .head_object()
                .bucket(&url.bucket)
                .key(&url.key)
                .set_version_id(cli.version_id.clone())
                .send()
                .await;
            match r {
                Ok(h) => break h,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {
                    anyhow::bail!("{url}: no such object")
                }
                Err(e) if s3::retryable(&e) && attempt < cli.conn.retries => continue,
                Err(e) => {
                    return Err(s3::gave_up(
                        "reading the object's metadata",
                        url,
                        attempt,
                        &s3::describe(&e),
                    ))
                }
            }
        }
    };
    let size = head.content_length().unwrap_or(0).max(0) as u64;
    let etag = head
        .e_tag()
        .unwrap_or_default()
        .trim_matches('"')
        .to_string();
    let recorded = head
        .metadata()
        .and_then(|m| m.get("sol-part-size"))
        .and_then(|v| v.parse::<u64>().ok());
    let kms = head
        .server_side_encryption()
        .is_some_and(|s| s.as_str() == "aws:kms");
    let layout = match (etag.split_once('-'), recorded) {
        _ if kms || etag.is_empty() => Layout::Unverified,
        (None, _) if etag.len() == 32 => Layout::WholeMd5,
        (Some(_), Some(p)) if p >= 1 << 20 => Layout::Parts(p),
        _ => Layout::Unverified,
    };
    // Ranges follow s3-mput's parts when known (each range then is one part).
    let ranges: Vec<(u64, u64)> = {
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
        client,
        url: url.clone(),
        etag: etag.clone(),
        version_id: head
            .version_id()
            .map(str::to_string)
            .or(cli.version_id.clone()),
        retries: cli.conn.retries,
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
    let mut sent = 0u64;
    let mut md5 = hash.then(Md5::new);
    let empty = || {
        let mut v = ctx.pool.take();
        v.clear();
        v
    };
    let mut block = empty();
    let mut why = String::new();
    let mut attempt = 0;
    while attempt < ctx.retries {
        attempt += 1;
        tokio::time::sleep(s3::backoff(attempt)).await;
        let from = start + sent;
        let r = ctx
            .client
            .get_object()
            .bucket(&ctx.url.bucket)
            .key(&ctx.url.key)
            .set_version_id(ctx.version_id.clone())
            .if_match(format!("\"{}\"", ctx.etag))
            .range(format!("bytes={from}-{}", end - 1))
            .send()
            .await;
        let resp = match r {
            Ok(r) => r,
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
                return Err(integrity(format!(
                    "{}: the object was replaced during the download",
                    ctx.url
                )))
            }
            Err(e) if s3::retryable(&e) => {
                why = s3::describe(&e);
                continue;
            }
            Err(e) => {
                return Err(s3::gave_up(
                    "downloading",
                    &ctx.url,
                    attempt,
                    &s3::describe(&e),
                ))
            }
        };
        let got_etag = resp.e_tag().unwrap_or_default().trim_matches('"');
        if !got_etag.is_empty() && got_etag != ctx.etag {
            return Err(integrity(format!(
                "{}: the object changed during the download (ETag {} became {got_etag})",
                ctx.url, ctx.etag
            )));
        }
        let mut body = resp.body;
        loop {
            match body.try_next().await {
                Ok(Some(chunk)) => {
                    if sent + chunk.len() as u64 > want {
                        return Err(integrity(format!(
                            "{}: the server sent more than the range asked",
                            ctx.url
                        )));
                    }
                    sent += chunk.len() as u64;
                    if let Some(h) = md5.as_mut() {
                        h.update(&chunk);
                    }
                    let mut rest = &chunk[..];
                    while !rest.is_empty() {
                        let n = rest.len().min(BLOCK - block.len());
                        block.extend_from_slice(&rest[..n]);
                        rest = &rest[n..];
                        let last = sent == want && rest.is_empty();
                        if block.len() == BLOCK || last {
                            let next = if last { Vec::new() } else { empty() };
                            if tx.send(std::mem::replace(&mut block, next)).is_err() {
                                anyhow::bail!("the download was abandoned"); // nobody reads
                            }
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    why = format!("connection dropped: {e}");
                    break;
                }
            }
        }
        if sent == want {
            return Ok(md5.map(|h| h.finalize().into()));
        }
        if why.is_empty() {
            why = "the range ended early".into();
        }
        // Progress made: this attempt does not count against the budget.
        if start + sent > from {
            attempt -= 1;
        }
    }
    Err(s3::gave_up("downloading", &ctx.url, ctx.retries, &why))
}
