//! One range: GETs pinned to the ETag, resumed from where a dropped connection left it, its
//! bytes passed on in blocks as they fill (and hashed on the way when asked).

use md5::{Digest, Md5};
use sol_common::pool::Pool;
use sol_common::stdio::BLOCK;
use sol_s3::{self as s3, S3Client, S3Url, Why};
use tokio::sync::mpsc;

use sol_common::exit::integrity;

/// What every range's requests share: the client, the object pinned to its ETag (and
/// version), and the pool of blocks the bytes are copied into.
pub(crate) struct Ctx {
    pub(crate) pool: Pool,
    pub(crate) s3: S3Client,
    pub(crate) url: S3Url,
    pub(crate) etag: String,
    pub(crate) version_id: Option<String>,
}

/// One range, resumed from where a dropped connection left it. Its bytes go to `tx` in
/// blocks as they fill (a resumed attempt continues after the last byte received); with
/// `hash`, the range's MD5 is computed on the way, on this task, so ranges hash in parallel.
pub(crate) async fn fetch(
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

/// An empty block from the pool.
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
    pinned(ctx, resp.e_tag())?;
    let mut body = resp.body;
    let why = loop {
        let next = tokio::time::timeout(ctx.s3.timeout, body.try_next()).await;
        match next {
            Ok(Ok(Some(chunk))) => st.receive(ctx, &chunk, want, tx)?,
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

/// An answer must carry the ETag the download is pinned to, when it carries one (else the
/// object changed: not retried).
fn pinned(ctx: &Ctx, etag: Option<&str>) -> Result<(), s3::S3Error> {
    let got_etag = etag.unwrap_or_default().trim_matches('"');
    if !got_etag.is_empty() && got_etag != ctx.etag {
        return Err(not_retried(
            Why::Bad {
                detail: format!("{CHANGED} (ETag {} became {got_etag})", ctx.etag),
            }
            .into(),
        ));
    }
    Ok(())
}

impl Range {
    /// Take in a chunk of the answer: counted, hashed, and copied into blocks, each sent on
    /// `tx` when full or the range's last. More than the range asked for is not retried.
    fn receive(
        &mut self,
        ctx: &Ctx,
        chunk: &[u8],
        want: u64,
        tx: &mpsc::UnboundedSender<Vec<u8>>,
    ) -> Result<(), s3::S3Error> {
        if self.sent + chunk.len() as u64 > want {
            return Err(not_retried(
                Why::Bad {
                    detail: format!("{CHANGED}: the server sent more than the range asked"),
                }
                .into(),
            ));
        }
        self.sent += chunk.len() as u64;
        if let Some(h) = self.md5.as_mut() {
            h.update(chunk);
        }
        let mut rest = chunk;
        while !rest.is_empty() {
            let n = rest.len().min(BLOCK - self.block.len());
            self.block.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            let last = self.sent == want && rest.is_empty();
            if self.block.len() == BLOCK || last {
                let next = if last { Vec::new() } else { empty(ctx) };
                if tx.send(std::mem::replace(&mut self.block, next)).is_err() {
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
        Ok(())
    }
}

/// An error the retry helper gives up on at once.
fn not_retried(mut e: s3::S3Error) -> s3::S3Error {
    if let Why::Bad { detail } = e.why {
        e.why = Why::Other { detail };
    }
    e
}
