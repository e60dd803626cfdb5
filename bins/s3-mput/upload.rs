//! The S3 side of s3-mput: single PUT or multipart upload, retries, abort, completion.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption, StorageClass,
};
use aws_sdk_s3::Client;
use bytes::Bytes;
use md5::{Digest, Md5};
use sol_common::s3::{self, Checksum, S3Url, MAX_PARTS};
use sol_common::{hex, Fail, Status};
use tokio::sync::Semaphore;

use super::cli::Cli;
use super::reader::{self, Part, Summary};
use crate::sol_crypt::format as sc;

/// What every request needs.
struct Ctx {
    client: Client,
    url: S3Url,
    checksum: Checksum,
    retries: u32,
    /// ETags are MD5s of the data unless the server encrypts with KMS.
    etag_is_md5: bool,
}

struct Uploaded {
    number: u64,
    etag: String,
    md5: [u8; 16],
    crc32c: Option<String>,
}

fn b64(d: &[u8]) -> String {
    aws_smithy_types::base64::encode(d)
}

fn unquote(etag: &str) -> &str {
    etag.trim_matches('"')
}

fn is_plain_md5(etag: &str) -> bool {
    etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())
}

fn http_status<E, R: std::fmt::Debug>(e: &SdkError<E, R>) -> Option<u16> {
    match e {
        SdkError::ServiceError(s) => {
            let raw = format!("{:?}", s.raw());
            raw.split("StatusCode(")
                .nth(1)
                .and_then(|t| t.get(..3))
                .and_then(|c| c.parse().ok())
        }
        _ => None,
    }
}

pub async fn upload(cli: Cli, url: S3Url) -> anyhow::Result<Status> {
    let client = s3::client(&cli.conn).await;
    let ctx = Arc::new(Ctx {
        client,
        url: url.clone(),
        checksum: cli.conn.checksum,
        retries: cli.conn.retries,
        etag_is_md5: cli.sse.as_deref() != Some("aws:kms"),
    });
    if !cli.overwrite {
        ensure_absent(&ctx).await?;
    }
    let upload_id: Arc<Mutex<Option<String>>> = Arc::default();
    let result = tokio::select! {
        r = run(&cli, ctx.clone(), upload_id.clone()) => r,
        _ = s3::interrupted() => Err(Fail::interrupted().into()),
    };
    if result.is_err() {
        let pending = upload_id.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(id) = pending {
            abort(&ctx, &id).await;
        }
    }
    result
}

/// HEAD the key first: fail fast, before uploading gigabytes, if it exists.
async fn ensure_absent(ctx: &Ctx) -> anyhow::Result<()> {
    for attempt in 1..=ctx.retries {
        tokio::time::sleep(s3::backoff(attempt)).await;
        match ctx
            .client
            .head_object()
            .bucket(&ctx.url.bucket)
            .key(&ctx.url.key)
            .send()
            .await
        {
            Ok(_) => anyhow::bail!(
                "{}: already exists (use --overwrite to replace it)",
                ctx.url
            ),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => return Ok(()),
            Err(e) if s3::retryable(&e) && attempt < ctx.retries => continue,
            Err(e) => {
                return Err(s3::gave_up(
                    "checking the key",
                    &ctx.url,
                    attempt,
                    &s3::describe(&e),
                ))
            }
        }
    }
    unreachable!("the loop returns")
}

async fn abort(ctx: &Ctx, id: &str) {
    let mut why = String::new();
    for attempt in 1..=ctx.retries.max(3) {
        tokio::time::sleep(s3::backoff(attempt)).await;
        let r = ctx
            .client
            .abort_multipart_upload()
            .bucket(&ctx.url.bucket)
            .key(&ctx.url.key)
            .upload_id(id)
            .send()
            .await;
        match r {
            Ok(_) => return,
            Err(e) => why = s3::describe(&e),
        }
    }
    eprintln!(
        "s3-mput: could not abort the multipart upload of {} (UploadId {id}): {why}; remove its parts with: \
         aws s3api abort-multipart-upload --bucket {} --key {} --upload-id {id}",
        ctx.url, ctx.url.bucket, ctx.url.key
    );
}

/// With --commit-file, the pipeline upstream must have said `commit` by the time stdin ended.
fn check_commit(cli: &Cli, url: &S3Url) -> anyhow::Result<()> {
    let Some(f) = &cli.commit_file else {
        return Ok(());
    };
    let verdict = std::fs::read_to_string(f).unwrap_or_default();
    let first = verdict.lines().next().unwrap_or("").trim();
    if first != "commit" {
        let said = if first.is_empty() {
            "nothing".to_string()
        } else {
            format!("'{first}'")
        };
        anyhow::bail!(
            "{url}: not stored: the pipeline upstream failed ('{}' says {said})",
            f.display()
        );
    }
    Ok(())
}

/// A sol-crypt stream is only complete with its trailer (see sol-crypt(5)).
fn check_complete(sum: &Summary, require: bool, url: &S3Url) -> anyhow::Result<()> {
    let is_sc = sum.head.len() >= sc::HEADER_LEN && &sum.head[..8] == sc::MAGIC;
    if is_sc {
        let chunk = u32::from_be_bytes([sum.head[10], sum.head[11], sum.head[12], sum.head[13]]);
        if !sc::is_complete(sum.total - sc::HEADER_LEN as u64, chunk, &sum.tail) {
            Err(Fail::integrity(format!(
                "{url}: the sol-crypt stream ended early (no final chunk and trailer): not stored"
            )))?;
        }
    } else if require {
        Err(Fail::integrity(format!(
            "{url}: the input is not a sol-crypt stream (--require-complete): not stored"
        )))?;
    }
    Ok(())
}

async fn run(
    cli: &Cli,
    ctx: Arc<Ctx>,
    upload_id: Arc<Mutex<Option<String>>>,
) -> anyhow::Result<Status> {
    let concurrency = usize::from(cli.concurrency);
    let (pool_tx, pool_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    for _ in 0..=concurrency {
        let _ = pool_tx.send(Vec::new());
    }
    let (part_tx, mut part_rx) = tokio::sync::mpsc::channel::<Part>(1);
    let progress = cli.progress || sol_common::stdio::is_terminal(2);
    let cfg = reader::Config {
        part_size: cli.part_size,
        limit_rate: cli.limit_rate,
        progress,
    };
    let reader = reader::spawn(sol_common::stdio::input(), cfg, pool_rx, part_tx);
    let summary =
        |reader: std::thread::JoinHandle<std::io::Result<Summary>>| -> anyhow::Result<Summary> {
            reader
                .join()
                .map_err(|_| anyhow::anyhow!("the reader thread died"))?
                .context("reading stdin")
        };

    let Some(first) = part_rx.recv().await else {
        summary(reader)?;
        anyhow::bail!("reading stdin: the reader stopped");
    };
    let mut metadata: HashMap<String, String> = cli.metadata.iter().cloned().collect();

    if first.len < cli.part_size as usize {
        // One part's worth or less: a single PUT.
        let sum = summary(reader)?;
        check_complete(&sum, cli.require_complete, &ctx.url)?;
        check_commit(cli, &ctx.url)?;
        let etag = put_single(cli, &ctx, first, metadata).await?;
        if cli.print {
            println!("{etag}\t{}\t1", sum.total);
        }
        return Ok(Status::Success);
    }

    metadata.insert("sol-part-size".into(), cli.part_size.to_string());
    let id = create(cli, &ctx, metadata).await?;
    *upload_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(id.clone());

    let sem = Arc::new(Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let mut done: Vec<Uploaded> = Vec::new();
    let mut next = Some(first);
    loop {
        let part = match next.take() {
            Some(p) => p,
            None => match part_rx.recv().await {
                Some(p) => p,
                None => break,
            },
        };
        if part.len == 0 {
            let _ = pool_tx.send(part.data);
            continue;
        }
        if part.number > MAX_PARTS {
            anyhow::bail!("{}: the stream needs more than {MAX_PARTS} parts", ctx.url);
        }
        let permit = sem.clone().acquire_owned().await.context("semaphore")?;
        // Collect what finished meanwhile; stop at the first failure.
        while let Some(r) = tasks.try_join_next() {
            done.push(r.context("an upload task died")??);
        }
        let (ctx2, id2, pool) = (ctx.clone(), id.clone(), pool_tx.clone());
        tasks.spawn(async move {
            let r = upload_part(&ctx2, &id2, part, &pool).await;
            drop(permit);
            r
        });
    }
    while let Some(r) = tasks.join_next().await {
        done.push(r.context("an upload task died")??);
    }
    let sum = summary(reader)?;
    check_complete(&sum, cli.require_complete, &ctx.url)?;
    check_commit(cli, &ctx.url)?;
    done.sort_by_key(|u| u.number);

    let etag = complete(cli, &ctx, &id, &done).await?;
    *upload_id.lock().unwrap_or_else(|p| p.into_inner()) = None;
    // The multipart ETag is MD5(MD5(part 1) || ... || MD5(part N)) "-" N.
    if ctx.etag_is_md5 && etag.contains('-') {
        let mut all = Md5::new();
        for u in &done {
            all.update(u.md5);
        }
        let want = format!("{}-{}", hex(&all.finalize()), done.len());
        if etag != want {
            Err(Fail::integrity(format!(
                "{}: stored, but its ETag {etag} is not the {want} of the data sent",
                ctx.url
            )))?;
        }
    }
    if cli.print {
        println!("{etag}\t{}\t{}", sum.total, done.len());
    }
    Ok(Status::Success)
}

async fn create(cli: &Cli, ctx: &Ctx, metadata: HashMap<String, String>) -> anyhow::Result<String> {
    for attempt in 1..=ctx.retries {
        tokio::time::sleep(s3::backoff(attempt)).await;
        let mut req = ctx
            .client
            .create_multipart_upload()
            .bucket(&ctx.url.bucket)
            .key(&ctx.url.key)
            .set_metadata(Some(metadata.clone()))
            .set_content_type(cli.content_type.clone())
            .set_storage_class(cli.storage_class.as_deref().map(StorageClass::from))
            .set_server_side_encryption(cli.sse.as_deref().map(ServerSideEncryption::from));
        if ctx.checksum == Checksum::Crc32c {
            req = req.checksum_algorithm(ChecksumAlgorithm::Crc32C);
        }
        match req.send().await {
            Ok(out) => {
                return out
                    .upload_id()
                    .map(str::to_string)
                    .context("the server sent no UploadId")
            }
            Err(e) if s3::retryable(&e) && attempt < ctx.retries => continue,
            Err(e) => {
                return Err(s3::gave_up(
                    "starting the upload",
                    &ctx.url,
                    attempt,
                    &s3::describe(&e),
                ))
            }
        }
    }
    unreachable!("the loop returns")
}

async fn upload_part(
    ctx: &Ctx,
    id: &str,
    part: Part,
    pool: &std::sync::mpsc::Sender<Vec<u8>>,
) -> anyhow::Result<Uploaded> {
    let Part { number, data, len } = part;
    let md5: [u8; 16] = Md5::digest(&data[..len]).into();
    let full = Bytes::from(data);
    let mut why = String::new();
    for attempt in 1..=ctx.retries {
        tokio::time::sleep(s3::backoff(attempt)).await;
        let mut req = ctx
            .client
            .upload_part()
            .bucket(&ctx.url.bucket)
            .key(&ctx.url.key)
            .upload_id(id)
            .part_number(number as i32)
            .content_length(len as i64)
            .body(ByteStream::from(full.slice(..len)));
        match ctx.checksum {
            Checksum::Md5 => req = req.content_md5(b64(&md5)),
            Checksum::Crc32c => req = req.checksum_algorithm(ChecksumAlgorithm::Crc32C),
            Checksum::None => {}
        }
        match req.send().await {
            Ok(out) => {
                let etag = unquote(out.e_tag().unwrap_or_default()).to_string();
                if ctx.etag_is_md5 && is_plain_md5(&etag) && etag != hex(&md5) {
                    // The server stored something else: send the part again.
                    why = format!("part {number}: ETag {etag} is not the MD5 of the data sent");
                    continue;
                }
                let crc32c = out.checksum_crc32_c().map(str::to_string);
                // Hand the buffer back for the next part (no copy when nothing else holds it).
                if let Ok(m) = full.try_into_mut() {
                    let _ = pool.send(Vec::from(m));
                } else {
                    let _ = pool.send(Vec::new());
                }
                return Ok(Uploaded {
                    number,
                    etag,
                    md5,
                    crc32c,
                });
            }
            Err(e) if s3::retryable(&e) => why = s3::describe(&e),
            Err(e) => {
                return Err(s3::gave_up(
                    &format!("uploading part {number}"),
                    &ctx.url,
                    attempt,
                    &s3::describe(&e),
                ))
            }
        }
    }
    if why.contains("is not the MD5") {
        Err(Fail::integrity(format!("{}: {why}", ctx.url)))?;
    }
    Err(s3::gave_up(
        &format!("uploading part {number}"),
        &ctx.url,
        ctx.retries,
        &why,
    ))
}

async fn put_single(
    cli: &Cli,
    ctx: &Ctx,
    part: Part,
    metadata: HashMap<String, String>,
) -> anyhow::Result<String> {
    let md5: [u8; 16] = Md5::digest(&part.data[..part.len]).into();
    let body = Bytes::from(part.data).slice(..part.len);
    let mut why = String::new();
    for attempt in 1..=ctx.retries {
        tokio::time::sleep(s3::backoff(attempt)).await;
        let mut req = ctx
            .client
            .put_object()
            .bucket(&ctx.url.bucket)
            .key(&ctx.url.key)
            .content_length(part.len as i64)
            .body(ByteStream::from(body.clone()))
            .set_metadata(Some(metadata.clone()))
            .set_content_type(cli.content_type.clone())
            .set_storage_class(cli.storage_class.as_deref().map(StorageClass::from))
            .set_server_side_encryption(cli.sse.as_deref().map(ServerSideEncryption::from));
        if !cli.overwrite {
            req = req.if_none_match("*");
        }
        match ctx.checksum {
            Checksum::Md5 => req = req.content_md5(b64(&md5)),
            Checksum::Crc32c => req = req.checksum_algorithm(ChecksumAlgorithm::Crc32C),
            Checksum::None => {}
        }
        match req.send().await {
            Ok(out) => {
                let etag = unquote(out.e_tag().unwrap_or_default()).to_string();
                if ctx.etag_is_md5 && is_plain_md5(&etag) && etag != hex(&md5) {
                    Err(Fail::integrity(format!(
                        "{}: stored, but its ETag {etag} is not the MD5 of the data sent",
                        ctx.url
                    )))?;
                }
                return Ok(etag);
            }
            Err(e) if http_status(&e) == Some(412) => {
                anyhow::bail!(
                    "{}: already exists (use --overwrite to replace it)",
                    ctx.url
                )
            }
            Err(e) if s3::retryable(&e) => why = s3::describe(&e),
            Err(e) => {
                return Err(s3::gave_up(
                    "uploading",
                    &ctx.url,
                    attempt,
                    &s3::describe(&e),
                ))
            }
        }
    }
    Err(s3::gave_up("uploading", &ctx.url, ctx.retries, &why))
}

async fn complete(cli: &Cli, ctx: &Ctx, id: &str, done: &[Uploaded]) -> anyhow::Result<String> {
    let parts: Vec<CompletedPart> = done
        .iter()
        .map(|u| {
            CompletedPart::builder()
                .part_number(u.number as i32)
                .e_tag(format!("\"{}\"", u.etag))
                .set_checksum_crc32_c(u.crc32c.clone())
                .build()
        })
        .collect();
    let mpu = CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build();
    let mut conditional = !cli.overwrite;
    let mut why = String::new();
    for attempt in 1..=ctx.retries {
        tokio::time::sleep(s3::backoff(attempt)).await;
        let mut req = ctx
            .client
            .complete_multipart_upload()
            .bucket(&ctx.url.bucket)
            .key(&ctx.url.key)
            .upload_id(id)
            .multipart_upload(mpu.clone());
        if conditional {
            req = req.if_none_match("*");
        }
        match req.send().await {
            Ok(out) => return Ok(unquote(out.e_tag().unwrap_or_default()).to_string()),
            Err(e) if http_status(&e) == Some(412) => {
                anyhow::bail!(
                    "{}: already exists (use --overwrite to replace it)",
                    ctx.url
                )
            }
            Err(e) if http_status(&e) == Some(501) && conditional => {
                // No conditional writes here: the HEAD check before the upload stands in.
                ensure_absent(ctx).await?;
                conditional = false;
            }
            Err(e)
                if attempt > 1
                    && e.as_service_error().and_then(|s| s.meta().code())
                        == Some("NoSuchUpload") =>
            {
                // An earlier attempt completed it but its answer was lost.
                let head = ctx
                    .client
                    .head_object()
                    .bucket(&ctx.url.bucket)
                    .key(&ctx.url.key)
                    .send()
                    .await;
                if let Ok(h) = head {
                    return Ok(unquote(h.e_tag().unwrap_or_default()).to_string());
                }
                why = s3::describe(&e);
            }
            Err(e) if s3::retryable(&e) => why = s3::describe(&e),
            Err(e) => {
                return Err(s3::gave_up(
                    "completing the upload",
                    &ctx.url,
                    attempt,
                    &s3::describe(&e),
                ))
            }
        }
    }
    Err(s3::gave_up(
        "completing the upload",
        &ctx.url,
        ctx.retries,
        &why,
    ))
}
