//! The S3 side of s3-mput: single PUT or multipart upload, abort, completion and its
//! confirmation. Every request goes through the one retry helper (`S3Client::retry`).
//!
//! The commit point is CompleteMultipartUpload (or the single PUT). Before it, a failure,
//! SIGINT or SIGTERM aborts the upload and nothing is stored; a CreateMultipartUpload in
//! flight is waited for, so its upload is aborted too. Once Complete is sent, a signal waits
//! for its outcome, which is then told as it is (see s3-mput(1), SIGNALS). Whenever
//! Complete's answer is missing, empty, unreadable or an error, a HEAD of the key decides:
//! the upload succeeded exactly when the key's ETag is the multipart ETag of our parts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption, StorageClass,
};
use bytes::Bytes;
use md5::{Digest, Md5};
use sol_common::{hex, Fail, Status};
use sol_s3::{self as s3, Checksum, S3Client, S3Error, S3Url, Why, MAX_PARTS};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::cli::Cli;
use super::reader::{self, Part, Summary};
use sol_formats::crypt;

/// The request `op` on the upload's key: the client's builder with the bucket and key set.
macro_rules! on_key {
    ($ctx:expr, $op:ident) => {
        $ctx.s3
            .client
            .$op()
            .bucket(&$ctx.url.bucket)
            .key(&$ctx.url.key)
    };
}

/// The request `op` that makes the object (a single PUT, or the start of a multipart
/// upload), with what the command line asks of the object: its metadata, content type,
/// storage class and encryption, set alike whichever way it is stored.
macro_rules! making_object {
    ($ctx:expr, $cli:expr, $metadata:expr, $op:ident) => {
        on_key!($ctx, $op)
            .set_metadata(Some($metadata.clone()))
            .set_content_type($cli.content_type.clone())
            .set_storage_class($cli.storage_class.as_deref().map(StorageClass::from))
            .set_server_side_encryption($cli.sse.as_deref().map(ServerSideEncryption::from))
    };
}

/// What every request needs.
struct Ctx {
    s3: S3Client,
    url: S3Url,
    checksum: Checksum,
    /// ETags are MD5s of the data unless the server encrypts with KMS.
    etag_is_md5: bool,
    /// For hints when the server refuses them.
    sse: Option<String>,
    storage_class: Option<String>,
}

struct Uploaded {
    number: u64,
    etag: String,
    md5: [u8; 16],
    crc32c: Option<String>,
}

/// What a signal must wait for before it can say what is stored.
#[derive(Default)]
struct Flight {
    /// The upload to abort on failure or interrupt.
    upload_id: Option<String>,
    /// A CreateMultipartUpload in flight: its upload is aborted once it answers.
    creating: Option<JoinHandle<()>>,
    /// A Complete in flight (the commit point passed): its outcome is told as it is.
    completing: Option<JoinHandle<anyhow::Result<String>>>,
    /// The ETag of the confirmed object, once Complete succeeded.
    committed: Option<String>,
    /// The ETag our data gives, known once the commit is sent.
    want: Option<String>,
}

type Shared = Arc<Mutex<Flight>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Flight> {
    s.lock().unwrap_or_else(|p| p.into_inner())
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

fn exists(url: &S3Url) -> anyhow::Error {
    anyhow::anyhow!("{url}: already exists (use --overwrite to replace it)")
}

impl Ctx {
    /// `URL: WHAT: REASON`, with a hint when the server refused --sse or --storage-class.
    fn failed(&self, e: &S3Error, what: &str) -> anyhow::Error {
        let refused = matches!(e.status(), Some(400 | 403 | 501))
            && !matches!(
                e.code(),
                Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch")
            );
        let mut hint = String::new();
        if refused && e.code() != Some("InvalidStorageClass") {
            if let Some(a) = &self.sse {
                hint = format!(
                    " (the server may refuse --sse {a}: Ceph RGW refuses SSE over plain HTTP)"
                );
            } else if let Some(c) = &self.storage_class {
                hint = format!(" (the server may not accept --storage-class {c})");
            }
        }
        anyhow::anyhow!("{}: {what}: {}{hint}", self.url, e.reason(&self.url))
    }
}

pub async fn upload(cli: Cli, url: S3Url) -> anyhow::Result<Status> {
    let s3 = s3::client(&cli.conn).await?;
    let ctx = Arc::new(Ctx {
        s3,
        url: url.clone(),
        checksum: cli.conn.checksum,
        etag_is_md5: cli.sse.as_deref() != Some("aws:kms"),
        sse: cli.sse.clone(),
        storage_class: cli.storage_class.clone(),
    });
    let shared: Shared = Arc::default();
    let result = tokio::select! {
        r = run(&cli, ctx.clone(), shared.clone()) => r,
        _ = s3::interrupted() => Err(Fail::interrupted().into()),
    };
    let Err(err) = result else { return result };
    let interrupted = sol_common::exit::status_of(&err) == Status::Interrupted;
    let committed = lock(&shared).committed.take();
    if let (Some(etag), true) = (committed, interrupted) {
        return Err(stored_anyway(&url, &etag));
    }
    // Past the commit point: wait for Complete's outcome (within the --timeout budget) and
    // tell it as it is.
    let completing = lock(&shared).completing.take();
    if let Some(mut task) = completing {
        let waited = tokio::select! {
            r = &mut task => Some(r),
            _ = tokio::time::sleep(ctx.s3.timeout * 2) => None,
        };
        return match waited {
            Some(Ok(Ok(etag))) if interrupted => Err(stored_anyway(&url, &etag)),
            Some(Ok(Ok(etag))) => {
                if cli.print {
                    print_line(&etag)?;
                }
                Ok(Status::Success)
            }
            Some(Ok(Err(e))) => {
                let e = if interrupted {
                    interrupted_err(&url)
                } else {
                    e
                };
                Err(abort_pending(&ctx, &shared, e).await)
            }
            Some(Err(_)) => Err(anyhow::anyhow!("{url}: the completion task died")),
            None => {
                // No answer in time: stop waiting, and let the key decide.
                task.abort();
                let want = lock(&shared).want.clone().unwrap_or_default();
                let ours = |h: Option<(String, u64)>| h.is_some_and(|(etag, _)| etag == want);
                if ours(confirm(&ctx).await.ok().flatten()) {
                    return Err(stored_anyway(&url, &want));
                }
                let e = abort_pending(&ctx, &shared, interrupted_err(&url)).await;
                // A Complete that landed after all (its abort met NoSuchUpload).
                if ours(confirm(&ctx).await.ok().flatten()) {
                    return Err(stored_anyway(&url, &want));
                }
                Err(e)
            }
        };
    }
    // A Create in flight: wait for its UploadId, so that its upload is aborted too.
    let creating = lock(&shared).creating.take();
    if let Some(task) = creating {
        let _ = tokio::time::timeout(ctx.s3.timeout * 2, task).await;
    }
    let err = if interrupted {
        interrupted_err(&url)
    } else {
        err
    };
    Err(abort_pending(&ctx, &shared, err).await)
}

/// `--print`'s line on stdout; a closed stdout is an error (status 1; 141 for a closed
/// pipe), never a panic.
fn print_line(line: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if sol_common::stdio::started_closed(1) {
        anyhow::bail!("writing --print's line: stdout is closed");
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .context("writing --print's line")
}

fn stored_anyway(url: &S3Url, etag: &str) -> anyhow::Error {
    Fail::interrupted_with(format!(
        "{url}: interrupted after the upload was committed: the object is stored and \
         complete (ETag {etag})"
    ))
    .into()
}

fn interrupted_err(url: &S3Url) -> anyhow::Error {
    Fail::interrupted_with(format!("{url}: interrupted: nothing is stored")).into()
}

/// Abort what is pending; the error, with what could not be cleaned up on the same line.
async fn abort_pending(ctx: &Ctx, shared: &Shared, err: anyhow::Error) -> anyhow::Error {
    let pending = lock(shared).upload_id.take();
    let Some(id) = pending else { return err };
    match abort(ctx, &id).await {
        None => err,
        Some(note) => {
            let status = sol_common::exit::status_of(&err);
            let line = format!("{}{note}", sol_common::exit::one_line(&err));
            Fail {
                status,
                message: line,
            }
            .into()
        }
    }
}

/// HEAD the key first: fail fast, before uploading gigabytes, if it exists.
async fn ensure_absent(ctx: &Ctx) -> anyhow::Result<()> {
    match ctx.s3.head(&ctx.url, None).await {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err(exists(&ctx.url)),
        Err(e) => Err(ctx.failed(&e, "checking the key")),
    }
}

/// Abort the upload; when that fails, what the operator must know (its UploadId and how
/// to remove it), to be told on the same line as the failure.
async fn abort(ctx: &Ctx, id: &str) -> Option<String> {
    let r = ctx
        .s3
        .retry(|| {
            ctx.s3
                .send(0, on_key!(ctx, abort_multipart_upload).upload_id(id).send())
        })
        .await;
    match r {
        Ok(_) => None,
        // Already gone (completed or aborted by someone else).
        Err(e) if e.code() == Some("NoSuchUpload") => None,
        Err(e) => Some(format!(
            "; the upload could not be aborted ({}): its parts stay stored until removed \
             (UploadId {id}; sol-backup removes it after a day, or now: \
             s3-ls --abort-older-than 0s s3://{}/{})",
            e.reason(&ctx.url),
            ctx.url.bucket,
            ctx.url.key
        )),
    }
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
    match crypt::stream_is_complete(&sum.head, sum.total, &sum.tail) {
        Some(true) => {}
        Some(false) => Err(Fail::integrity(format!(
            "{url}: the sol-crypt stream ended early (no final chunk and trailer): not stored"
        )))?,
        None if require => Err(Fail::integrity(format!(
            "{url}: the input is not a sol-crypt stream (--require-complete): not stored"
        )))?,
        None => {}
    }
    Ok(())
}

/// The multipart ETag of our parts (sol_s3::etag).
fn multipart_etag(done: &[Uploaded]) -> String {
    sol_s3::etag::multipart(done.iter().map(|u| &u.md5))
}

async fn run(cli: &Cli, ctx: Arc<Ctx>, shared: Shared) -> anyhow::Result<Status> {
    if !cli.overwrite {
        ensure_absent(&ctx).await?;
    }
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
    let url = ctx.url.clone();
    let summary =
        |reader: std::thread::JoinHandle<std::io::Result<Summary>>| -> anyhow::Result<Summary> {
            reader
                .join()
                .map_err(|_| anyhow::anyhow!("the reader thread died"))?
                .with_context(|| format!("{url}: reading stdin"))
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
        // The PUT is the commit point: it runs on a task a signal waits for, like Complete.
        lock(&shared).want = Some(hex(&Md5::digest(&first.data[..first.len])));
        let etag = commit(&ctx, &shared, {
            let (ctx, args) = (ctx.clone(), cli_create(cli));
            async move { put_single(&args, &ctx, first, metadata).await }
        })
        .await?;
        if cli.print {
            print_line(&format!("{etag}\t{}\t1", sum.total))?;
        }
        return Ok(Status::Success);
    }

    metadata.insert("sol-part-size".into(), cli.part_size.to_string());
    // Create runs on a task of its own: a signal waits for its UploadId and aborts it.
    let id = {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (c, s, cl) = (ctx.clone(), shared.clone(), cli_create(cli));
        let task = tokio::spawn(async move {
            let r = create(&cl, &c, metadata).await;
            if let Ok(id) = &r {
                lock(&s).upload_id = Some(id.clone());
            }
            let _ = tx.send(r);
        });
        lock(&shared).creating = Some(task);
        let r = rx.await.context("the upload task died")?;
        lock(&shared).creating = None;
        r?
    };

    let sem = Arc::new(Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let mut done: Vec<Uploaded> = Vec::new();
    let mut next = Some(first);
    // Every wait below also watches the part tasks, so a part that failed past its
    // retries ends the upload at once (the reader may be waiting for a buffer that only a
    // successful part gives back).
    loop {
        let part = match next.take() {
            Some(p) => p,
            None => {
                let got = tokio::select! {
                    p = part_rx.recv() => p,
                    Some(r) = tasks.join_next(), if !tasks.is_empty() => {
                        done.push(r.context("an upload task died")??);
                        continue;
                    }
                };
                match got {
                    Some(p) => p,
                    None => break,
                }
            }
        };
        if part.len == 0 {
            let _ = pool_tx.send(part.data);
            continue;
        }
        if part.number > MAX_PARTS {
            anyhow::bail!("{}: the stream needs more than {MAX_PARTS} parts", ctx.url);
        }
        let permit = loop {
            tokio::select! {
                p = sem.clone().acquire_owned() => break p.context("semaphore")?,
                Some(r) = tasks.join_next(), if !tasks.is_empty() => {
                    done.push(r.context("an upload task died")??);
                }
            }
        };
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

    // Narrow the window of servers that ignore If-None-Match on Complete: look again
    // right before committing.
    if !cli.overwrite {
        ensure_absent(&ctx).await?;
    }
    let parts = done.len();
    let want = multipart_etag(&done);
    lock(&shared).want = Some(want.clone());
    let etag = commit(&ctx, &shared, {
        let (ctx, id, overwrite, total) = (ctx.clone(), id.clone(), cli.overwrite, sum.total);
        async move { complete(&ctx, &id, &done, overwrite, total).await }
    })
    .await?;
    debug_assert!(!ctx.etag_is_md5 || etag == want);
    if cli.print {
        print_line(&format!("{etag}\t{}\t{parts}", sum.total))?;
    }
    Ok(Status::Success)
}

/// Run the commit (Complete, or the single PUT) on a task of its own, kept in `shared`: if
/// a signal comes while it is in flight, `upload` awaits it there and tells its outcome.
async fn commit(
    ctx: &Ctx,
    shared: &Shared,
    work: impl std::future::Future<Output = anyhow::Result<String>> + Send + 'static,
) -> anyhow::Result<String> {
    let (finished_tx, finished_rx) = tokio::sync::oneshot::channel::<()>();
    let task = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let r = work.await;
            if let Ok(etag) = &r {
                let mut f = lock(&shared);
                f.committed = Some(etag.clone());
                f.upload_id = None;
            }
            let _ = finished_tx.send(());
            r
        })
    };
    lock(shared).completing = Some(task);
    let _ = finished_rx.await;
    let task = lock(shared).completing.take();
    match task {
        Some(t) => t.await.context("the completion task died")?,
        None => anyhow::bail!("{}: the completion task was lost", ctx.url),
    }
}

/// What `create` and `put_single` need from the command line (their tasks outlive it).
struct CreateArgs {
    content_type: Option<String>,
    storage_class: Option<String>,
    sse: Option<String>,
    overwrite: bool,
}

fn cli_create(cli: &Cli) -> CreateArgs {
    CreateArgs {
        content_type: cli.content_type.clone(),
        storage_class: cli.storage_class.clone(),
        sse: cli.sse.clone(),
        overwrite: cli.overwrite,
    }
}

async fn create(
    cli: &CreateArgs,
    ctx: &Ctx,
    metadata: HashMap<String, String>,
) -> anyhow::Result<String> {
    let out = ctx
        .s3
        .retry(|| {
            let mut req = making_object!(ctx, cli, metadata, create_multipart_upload);
            if ctx.checksum == Checksum::Crc32c {
                req = req.checksum_algorithm(ChecksumAlgorithm::Crc32C);
            }
            ctx.s3.send(0, req.send())
        })
        .await
        .map_err(|e| ctx.failed(&e, "starting the upload"))?;
    match out.upload_id() {
        Some(id) if !id.is_empty() => Ok(id.to_string()),
        _ => anyhow::bail!(
            "{}: starting the upload: the server sent no UploadId",
            ctx.url
        ),
    }
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
    let r = ctx
        .s3
        .retry(|| async {
            let mut req = on_key!(ctx, upload_part)
                .upload_id(id)
                .part_number(number as i32)
                .content_length(len as i64)
                .body(ByteStream::from(full.slice(..len)));
            match ctx.checksum {
                Checksum::Md5 => req = req.content_md5(b64(&md5)),
                Checksum::Crc32c => req = req.checksum_algorithm(ChecksumAlgorithm::Crc32C),
                Checksum::None => {}
            }
            let out = ctx.s3.send(len as u64, req.send()).await?;
            let etag = unquote(out.e_tag().unwrap_or_default()).to_string();
            if ctx.etag_is_md5 && is_plain_md5(&etag) && etag != hex(&md5) {
                // The server stored something else: send the part again.
                return Err(S3Error::from(Why::Bad {
                    detail: format!("its ETag {etag} is not the MD5 of the data sent"),
                }));
            }
            Ok((etag, out.checksum_crc32_c().map(str::to_string)))
        })
        .await;
    match r {
        Ok((etag, crc32c)) => {
            // Hand the buffer back for the next part (no copy when nothing else holds it).
            match full.try_into_mut() {
                Ok(m) => {
                    let _ = pool.send(Vec::from(m));
                }
                Err(_) => {
                    let _ = pool.send(Vec::new());
                }
            }
            Ok(Uploaded {
                number,
                etag,
                md5,
                crc32c,
            })
        }
        Err(e) if matches!(e.why, Why::Bad { .. }) => Err(Fail::integrity(format!(
            "{}: uploading part {number}: {}",
            ctx.url,
            e.reason(&ctx.url)
        ))
        .into()),
        Err(e) => Err(ctx.failed(&e, &format!("uploading part {number}"))),
    }
}

async fn put_single(
    cli: &CreateArgs,
    ctx: &Ctx,
    part: Part,
    metadata: HashMap<String, String>,
) -> anyhow::Result<String> {
    let md5: [u8; 16] = Md5::digest(&part.data[..part.len]).into();
    let want = hex(&md5);
    let body = Bytes::from(part.data).slice(..part.len);
    let r = ctx
        .s3
        .retry(|| {
            let mut req = making_object!(ctx, cli, metadata, put_object)
                .content_length(part.len as i64)
                .body(ByteStream::from(body.clone()));
            if !cli.overwrite {
                req = req.if_none_match("*");
            }
            match ctx.checksum {
                Checksum::Md5 => req = req.content_md5(b64(&md5)),
                Checksum::Crc32c => req = req.checksum_algorithm(ChecksumAlgorithm::Crc32C),
                Checksum::None => {}
            }
            ctx.s3.send(part.len as u64, req.send())
        })
        .await;
    let answered = match r {
        Ok(out) => Some(unquote(out.e_tag().unwrap_or_default()).to_string()),
        Err(e) => {
            // The answer may have been lost after the server stored the object (then a
            // retry meets our own object: 412), or the key was taken meanwhile (a server
            // may refuse a conditional PUT before reading its body: the connection drops):
            // the key decides.
            return match confirm(ctx).await {
                Ok(Some((etag, size)))
                    if (ctx.etag_is_md5 && etag == want)
                        || (!ctx.etag_is_md5 && size == part.len as u64) =>
                {
                    Ok(etag)
                }
                Ok(Some(_)) if !cli.overwrite => Err(exists(&ctx.url)),
                _ => Err(ctx.failed(&e, "uploading")),
            };
        }
    };
    match answered {
        Some(etag) if !etag.is_empty() => {
            if ctx.etag_is_md5 && is_plain_md5(&etag) && etag != want {
                Err(Fail::integrity(format!(
                    "{}: stored, but its ETag {etag} is not the MD5 {want} of the data sent",
                    ctx.url
                )))?;
            }
            Ok(etag)
        }
        // No ETag in the answer: the key decides.
        _ => match confirm(ctx).await {
            Ok(Some((etag, _))) if !ctx.etag_is_md5 || etag == want => Ok(etag),
            Ok(Some((etag, size))) => Err(other_object(ctx, &etag, size, &want)),
            Ok(None) => anyhow::bail!(
                "{}: the server answered the upload but the key holds no object",
                ctx.url
            ),
            Err(e) => Err(ctx.failed(&e, "confirming the upload")),
        },
    }
}

/// The key's ETag and size, to confirm an upload whose answer was lost or incomplete.
async fn confirm(ctx: &Ctx) -> Result<Option<(String, u64)>, S3Error> {
    Ok(ctx.s3.head(&ctx.url, None).await?.map(|h| {
        (
            unquote(h.e_tag().unwrap_or_default()).to_string(),
            h.content_length().unwrap_or(0).max(0) as u64,
        )
    }))
}

fn other_object(ctx: &Ctx, etag: &str, size: u64, want: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: not stored: the key holds another object (ETag {etag}, {size} bytes; ours is {want}): \
         a concurrent writer's upload won",
        ctx.url
    )
}

/// Complete, conditional unless --overwrite, and confirm what the key holds. Returns the
/// object's ETag, which is the multipart ETag of our parts.
async fn complete(
    ctx: &Ctx,
    id: &str,
    done: &[Uploaded],
    overwrite: bool,
    total: u64,
) -> anyhow::Result<String> {
    let want = multipart_etag(done);
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
    let mut conditional = !overwrite;
    let r = loop {
        let r = ctx
            .s3
            .retry(|| {
                let mut req = on_key!(ctx, complete_multipart_upload)
                    .upload_id(id)
                    .multipart_upload(mpu.clone());
                if conditional {
                    req = req.if_none_match("*");
                }
                // Servers may take a while to assemble many parts: 0.1 s more per part.
                ctx.s3
                    .send(done.len() as u64 * (s3::FLOOR_RATE / 10), req.send())
            })
            .await;
        match r {
            Err(e) if e.is_not_implemented() && conditional => {
                // No conditional writes here: the HEAD check just before stands in.
                ensure_absent(ctx).await?;
                conditional = false;
            }
            r => break r,
        }
    };
    let answered = match &r {
        Ok(out) => unquote(out.e_tag().unwrap_or_default()).to_string(),
        Err(_) => String::new(),
    };
    if !answered.is_empty() && ctx.etag_is_md5 {
        if answered == want {
            return Ok(answered);
        }
        Err(Fail::integrity(format!(
            "{}: stored, but its ETag {answered} is not the {want} of the data sent",
            ctx.url
        )))?;
    }
    // The answer is missing (lost, unreadable), empty (Ceph RGW), an error that may follow
    // a success (a retry after a lost answer meets NoSuchUpload or 412), or the server
    // encrypts with KMS: what the key holds decides.
    let head = confirm(ctx)
        .await
        .map_err(|e| ctx.failed(&e, "confirming the upload"))?;
    let holds_ours = |etag: &str, size: u64| {
        if ctx.etag_is_md5 {
            etag == want
        } else {
            size == total && etag.ends_with(&format!("-{}", done.len()))
        }
    };
    match (head, r) {
        (Some((etag, size)), Err(_)) if holds_ours(&etag, size) => {
            // Ours, but this upload may still be pending (another writer of the same bytes
            // won the key): remove it.
            let _ = abort(ctx, id).await;
            Ok(etag)
        }
        (Some((etag, size)), _) if holds_ours(&etag, size) => Ok(etag),
        // Another object holds the key and our commit was conditional: it lost.
        (Some(_), Err(_)) if !overwrite => Err(exists(&ctx.url)),
        (Some((etag, size)), Ok(_)) => Err(other_object(ctx, &etag, size, &want)),
        (_, Err(e)) => Err(ctx.failed(&e, "completing the upload")),
        (None, Ok(_)) => anyhow::bail!(
            "{}: completing the upload: the server answered but the key holds no object",
            ctx.url
        ),
    }
}
