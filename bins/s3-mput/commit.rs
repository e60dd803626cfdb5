//! The commit point: the single PUT, or CompleteMultipartUpload, and the confirmation of what
//! the key then holds. Whenever the answer is missing, empty (Ceph RGW answers Complete with
//! an empty ETag), unreadable or an error, a HEAD of the key decides: the upload succeeded
//! exactly when the key holds our data's ETag.

use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use sol_common::{hex, Fail};
use sol_s3::{self as s3, S3Error};

use super::reader::Part;
use super::requests::{
    abort, confirm, ensure_absent, exists, is_plain_md5, unquote, Ctx, Uploaded,
};

/// The multipart ETag of our parts (sol_s3::etag).
pub fn multipart_etag(done: &[Uploaded]) -> String {
    sol_s3::etag::multipart(done.iter().map(|u| &u.md5))
}

/// The key holds another object than ours: a concurrent writer won.
fn other_object(ctx: &Ctx, etag: &str, size: u64, want: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: not stored: the key holds another object (ETag {etag}, {size} bytes; ours is {want}): \
         a concurrent writer's upload won",
        ctx.url
    )
}

/// Store `part`, all of stdin, whose MD5 is `md5`, with one PutObject (conditional unless
/// --overwrite), and confirm it. Returns the object's ETag.
pub async fn put_single(ctx: &Ctx, part: Part, md5: [u8; 16]) -> anyhow::Result<String> {
    let want = hex(&md5);
    let len = part.len;
    let body = part.data.slice(..len);
    let r = ctx
        .s3
        .retry(|| {
            ctx.s3
                .send(len as u64, ctx.put_request(body.clone(), &md5).send())
        })
        .await;
    match r {
        Ok(out) => put_answered(ctx, unquote(out.e_tag().unwrap_or_default()), &want).await,
        Err(e) => put_failed(ctx, e, &want, len as u64).await,
    }
}

/// The PUT failed for good (`e`); what the key holds decides whether our `len` bytes, whose
/// MD5 is `want`, are stored after all.
async fn put_failed(ctx: &Ctx, e: S3Error, want: &str, len: u64) -> anyhow::Result<String> {
    // The answer may have been lost after the server stored the object (then a retry meets
    // our own object: 412), or the key was taken meanwhile (a server may refuse a
    // conditional PUT before reading its body: the connection drops).
    match confirm(ctx).await {
        Ok(Some((etag, size)))
            if (ctx.etag_is_md5 && etag == want) || (!ctx.etag_is_md5 && size == len) =>
        {
            Ok(etag)
        }
        Ok(Some(_)) if !ctx.object.overwrite => Err(exists(&ctx.url)),
        _ => Err(ctx.failed(&e, "uploading")),
    }
}

/// The PUT's answer `etag` checked against `want`, our MD5; without one, the key decides.
async fn put_answered(ctx: &Ctx, etag: &str, want: &str) -> anyhow::Result<String> {
    if etag.is_empty() {
        return match confirm(ctx).await {
            Ok(Some((etag, _))) if !ctx.etag_is_md5 || etag == want => Ok(etag),
            Ok(Some((etag, size))) => Err(other_object(ctx, &etag, size, want)),
            Ok(None) => anyhow::bail!(
                "{}: the server answered the upload but the key holds no object",
                ctx.url
            ),
            Err(e) => Err(ctx.failed(&e, "confirming the upload")),
        };
    }
    if ctx.etag_is_md5 && is_plain_md5(etag) && etag != want {
        Err(Fail::integrity(format!(
            "{}: stored, but its ETag {etag} is not the MD5 {want} of the data sent",
            ctx.url
        )))?;
    }
    Ok(etag.to_string())
}

/// Complete upload `id` of the parts `done` (in order; `total` bytes), conditional unless
/// --overwrite, and confirm what the key holds: its ETag, the multipart ETag of our parts.
pub async fn complete(
    ctx: &Ctx,
    id: &str,
    done: &[Uploaded],
    total: u64,
) -> anyhow::Result<String> {
    let want = multipart_etag(done);
    let r = send_complete(ctx, id, done).await?;
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
    let ours = Ours {
        want: &want,
        parts: done.len(),
        total,
    };
    complete_decided(ctx, id, r.err(), &ours).await
}

/// CompleteMultipartUpload, retried; conditional unless --overwrite, and on a server without
/// conditional writes unconditional after all, the HEAD check just before standing in.
async fn send_complete(
    ctx: &Ctx,
    id: &str,
    done: &[Uploaded],
) -> anyhow::Result<Result<CompleteMultipartUploadOutput, S3Error>> {
    let mpu = completed_parts(done);
    let mut conditional = !ctx.object.overwrite;
    loop {
        let r = ctx
            .s3
            .retry(|| {
                // Servers may take a while to assemble many parts: 0.1 s more per part.
                let req = ctx.complete_request(id, &mpu, conditional);
                ctx.s3
                    .send(done.len() as u64 * (s3::FLOOR_RATE / 10), req.send())
            })
            .await;
        match r {
            Err(e) if e.is_not_implemented() && conditional => {
                ensure_absent(ctx).await?;
                conditional = false;
            }
            r => return Ok(r),
        }
    }
}

/// The list Complete sends: each part's number, ETag and CRC32C.
fn completed_parts(done: &[Uploaded]) -> CompletedMultipartUpload {
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
    CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build()
}

/// What our object looks like on the key: its ETag (`want`), or, when ETags are not MD5s
/// (KMS), its size and number of parts.
struct Ours<'a> {
    want: &'a str,
    parts: usize,
    total: u64,
}

impl Ours<'_> {
    /// Whether the key's `etag` and `size` are our object's.
    fn held(&self, ctx: &Ctx, etag: &str, size: u64) -> bool {
        if ctx.etag_is_md5 {
            etag == self.want
        } else {
            size == self.total && etag.ends_with(&format!("-{}", self.parts))
        }
    }
}

/// After Complete answered `err` (None: Ok without a usable ETag), what the key holds
/// decides whether upload `id` is stored.
async fn complete_decided(
    ctx: &Ctx,
    id: &str,
    err: Option<S3Error>,
    ours: &Ours<'_>,
) -> anyhow::Result<String> {
    let head = confirm(ctx)
        .await
        .map_err(|e| ctx.failed(&e, "confirming the upload"))?;
    match (head, err) {
        (Some((etag, size)), Some(_)) if ours.held(ctx, &etag, size) => {
            // Ours, but this upload may still be pending (another writer of the same bytes
            // won the key): remove it.
            let _ = abort(ctx, id).await;
            Ok(etag)
        }
        (Some((etag, size)), _) if ours.held(ctx, &etag, size) => Ok(etag),
        // Another object holds the key and our commit was conditional: it lost.
        (Some(_), Some(_)) if !ctx.object.overwrite => Err(exists(&ctx.url)),
        (Some((etag, size)), None) => Err(other_object(ctx, &etag, size, ours.want)),
        (_, Some(e)) => Err(ctx.failed(&e, "completing the upload")),
        (None, None) => anyhow::bail!(
            "{}: completing the upload: the server answered but the key holds no object",
            ctx.url
        ),
    }
}
