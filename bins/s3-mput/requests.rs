//! The S3 requests of one destination, each built by one small function of `Ctx`, and the
//! requests before the commit point: the HEAD checks, Create, UploadPart and Abort. Every
//! request goes through the one retry helper (`S3Client::retry`).

use std::collections::HashMap;

use aws_sdk_s3::operation::abort_multipart_upload::builders::AbortMultipartUploadFluentBuilder;
use aws_sdk_s3::operation::complete_multipart_upload::builders::CompleteMultipartUploadFluentBuilder;
use aws_sdk_s3::operation::create_multipart_upload::builders::CreateMultipartUploadFluentBuilder;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::operation::upload_part::builders::UploadPartFluentBuilder;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, ObjectLockLegalHoldStatus, ServerSideEncryption,
    StorageClass,
};
use bytes::Bytes;
use sol_common::{hex, Fail};
use sol_s3::{Checksum, S3Client, S3Error, S3Url, Why};

use super::cli::Cli;
use super::copy::Source;
use super::lock::Lock;
use super::reader::{Buffers, Part};

/// What every request to one destination needs.
pub struct Ctx {
    pub s3: S3Client,
    pub url: S3Url,
    pub checksum: Checksum,
    /// ETags are MD5s of the data unless the server encrypts with KMS.
    pub etag_is_md5: bool,
    /// What the command line asks of the object.
    pub object: Object,
    /// --copy-of: what the stored object must match.
    pub copy_of: Option<Source>,
}

/// What the command line asks of the object: set alike whichever way it is stored (a single
/// PUT or a multipart upload), and --overwrite.
pub struct Object {
    pub metadata: HashMap<String, String>,
    pub content_type: Option<String>,
    pub storage_class: Option<String>,
    pub sse: Option<String>,
    pub overwrite: bool,
    /// Object Lock, set at creation (and after, where a server ignored it).
    pub lock: Option<Lock>,
}

/// A part the server took: what Complete lists, and its MD5 for the multipart ETag.
pub struct Uploaded {
    pub number: u64,
    pub etag: String,
    pub md5: [u8; 16],
    pub crc32c: Option<String>,
}

/// Base64, as Content-MD5 wants it.
pub fn b64(d: &[u8]) -> String {
    aws_smithy_types::base64::encode(d)
}

/// An ETag without its quotes.
pub fn unquote(etag: &str) -> &str {
    etag.trim_matches('"')
}

/// An ETag that is an MD5 (not a multipart or KMS one).
pub fn is_plain_md5(etag: &str) -> bool {
    etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The key is taken and --overwrite was not given.
pub fn exists(url: &S3Url) -> anyhow::Error {
    anyhow::anyhow!("{url}: already exists (use --overwrite to replace it)")
}

impl Ctx {
    /// The context of the upload of stdin to `url` as the command line asks, through `s3`.
    pub fn new(s3: S3Client, url: S3Url, cli: &Cli) -> Ctx {
        Ctx {
            s3,
            url,
            checksum: cli.conn.checksum,
            etag_is_md5: cli.sse.as_deref() != Some("aws:kms"),
            object: Object {
                metadata: cli.metadata.iter().cloned().collect(),
                content_type: cli.content_type.clone(),
                storage_class: cli.storage_class.clone(),
                sse: cli.sse.clone(),
                overwrite: cli.overwrite,
                lock: None,
            },
            copy_of: None,
        }
    }

    /// `URL: WHAT: REASON`, with a hint when the server refused --sse or --storage-class.
    pub fn failed(&self, e: &S3Error, what: &str) -> anyhow::Error {
        // A server that refuses a header may answer before it has read the body, and close
        // the connection: a large PUT then sees only the connection drop (s3s-fs).
        let refused = matches!(e.status(), Some(400 | 403 | 501) | None)
            && !matches!(
                e.code(),
                Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch")
            );
        let mut hint = String::new();
        if e.code() == Some("InvalidStorageClass") {
            if let Some(c) = &self.object.storage_class {
                hint = format!(" (--storage-class {c})");
            }
        } else if refused {
            if let Some(a) = &self.object.sse {
                hint = format!(
                    " (the server may refuse --sse {a}: Ceph RGW refuses SSE over plain HTTP)"
                );
            } else if let Some(c) = &self.object.storage_class {
                hint = format!(" (the server may not accept --storage-class {c})");
            }
        }
        anyhow::anyhow!("{}: {what}: {}{hint}", self.url, e.reason(&self.url))
    }

    /// PutObject of the whole object `body` (MD5 `md5`), conditional unless --overwrite.
    pub fn put_request(&self, body: Bytes, md5: &[u8; 16]) -> PutObjectFluentBuilder {
        let o = &self.object;
        let req = self
            .s3
            .client
            .put_object()
            .bucket(&self.url.bucket)
            .key(&self.url.key)
            .set_metadata(Some(o.metadata.clone()))
            .set_content_type(o.content_type.clone())
            .set_storage_class(o.storage_class.as_deref().map(StorageClass::from))
            .set_server_side_encryption(o.sse.as_deref().map(ServerSideEncryption::from))
            .content_length(body.len() as i64)
            .body(ByteStream::from(body))
            .set_if_none_match((!o.overwrite).then(|| "*".to_string()));
        let req = locked_put(req, o.lock.as_ref());
        match self.checksum {
            // A locked write must carry a checksum (AWS refuses it otherwise).
            Checksum::None if o.lock.is_some() => req.content_md5(b64(md5)),
            Checksum::Md5 => req.content_md5(b64(md5)),
            Checksum::Crc32c => req.checksum_algorithm(ChecksumAlgorithm::Crc32C),
            Checksum::None => req,
        }
    }

    /// CreateMultipartUpload with the object's attributes, as `put_request` sets them, and
    /// `metadata` (the object's and the part size).
    fn create_request(
        &self,
        metadata: &HashMap<String, String>,
    ) -> CreateMultipartUploadFluentBuilder {
        let o = &self.object;
        let req = self
            .s3
            .client
            .create_multipart_upload()
            .bucket(&self.url.bucket)
            .key(&self.url.key)
            .set_metadata(Some(metadata.clone()))
            .set_content_type(o.content_type.clone())
            .set_storage_class(o.storage_class.as_deref().map(StorageClass::from))
            .set_server_side_encryption(o.sse.as_deref().map(ServerSideEncryption::from));
        let req = match &o.lock {
            Some(l) => req
                .set_object_lock_mode(l.until.map(|_| l.mode.clone()))
                .set_object_lock_retain_until_date(l.until)
                .set_object_lock_legal_hold_status(l.hold.then_some(ObjectLockLegalHoldStatus::On)),
            None => req,
        };
        match self.checksum {
            Checksum::Crc32c => req.checksum_algorithm(ChecksumAlgorithm::Crc32C),
            _ => req,
        }
    }

    /// UploadPart of part `number` of upload `id`: `body`, whose MD5 is `md5`.
    fn part_request(
        &self,
        id: &str,
        number: u64,
        body: Bytes,
        md5: &[u8; 16],
    ) -> UploadPartFluentBuilder {
        let req = self
            .s3
            .client
            .upload_part()
            .bucket(&self.url.bucket)
            .key(&self.url.key)
            .upload_id(id)
            .part_number(number as i32)
            .content_length(body.len() as i64)
            .body(ByteStream::from(body));
        match self.checksum {
            Checksum::None if self.object.lock.is_some() => req.content_md5(b64(md5)),
            Checksum::Md5 => req.content_md5(b64(md5)),
            Checksum::Crc32c => req.checksum_algorithm(ChecksumAlgorithm::Crc32C),
            Checksum::None => req,
        }
    }

    /// CompleteMultipartUpload of upload `id` with `parts`; If-None-Match when `conditional`.
    pub fn complete_request(
        &self,
        id: &str,
        parts: &CompletedMultipartUpload,
        conditional: bool,
    ) -> CompleteMultipartUploadFluentBuilder {
        self.s3
            .client
            .complete_multipart_upload()
            .bucket(&self.url.bucket)
            .key(&self.url.key)
            .upload_id(id)
            .multipart_upload(parts.clone())
            .set_if_none_match(conditional.then(|| "*".to_string()))
    }

    /// AbortMultipartUpload of upload `id`.
    fn abort_request(&self, id: &str) -> AbortMultipartUploadFluentBuilder {
        self.s3
            .client
            .abort_multipart_upload()
            .bucket(&self.url.bucket)
            .key(&self.url.key)
            .upload_id(id)
    }
}

/// HEAD the key first: fail fast, before uploading gigabytes, if it exists.
pub async fn ensure_absent(ctx: &Ctx) -> anyhow::Result<()> {
    match ctx.s3.head(&ctx.url, None).await {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err(exists(&ctx.url)),
        Err(e) => Err(ctx.failed(&e, "checking the key")),
    }
}

/// The key's ETag and size, to confirm an upload whose answer was lost or incomplete.
pub async fn confirm(ctx: &Ctx) -> Result<Option<(String, u64)>, S3Error> {
    Ok(ctx.s3.head(&ctx.url, None).await?.map(|h| {
        (
            unquote(h.e_tag().unwrap_or_default()).to_string(),
            h.content_length().unwrap_or(0).max(0) as u64,
        )
    }))
}

/// Abort the upload; when that fails, what the operator must know (its UploadId and how
/// to remove it), to be told on the same line as the failure.
pub async fn abort(ctx: &Ctx, id: &str) -> Option<String> {
    let r = ctx
        .s3
        .retry(|| ctx.s3.send(0, ctx.abort_request(id).send()))
        .await;
    match r {
        Ok(_) => None,
        // Already gone (completed or aborted by someone else).
        Err(e) if e.code() == Some("NoSuchUpload") => None,
        Err(e) => Some(format!(
            "; the upload could not be aborted ({}): its parts stay stored until removed \
             (UploadId {id}; sol-backup removes it after a day, or now: \
             s3-ls --abort-older-than 0s {})",
            e.reason(&ctx.url),
            ctx.url
        )),
    }
}

/// Start a multipart upload of parts of `part_size` (recorded in the metadata): its UploadId.
pub async fn create(ctx: &Ctx, part_size: u64) -> anyhow::Result<String> {
    let mut metadata = ctx.object.metadata.clone();
    metadata.insert("sol-part-size".into(), part_size.to_string());
    let out = ctx
        .s3
        .retry(|| ctx.s3.send(0, ctx.create_request(&metadata).send()))
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

/// Upload `part` under upload `id`, its buffer given back to `buffers` once the server took
/// it; a part the server stored otherwise than sent is an integrity failure.
pub async fn upload_part(
    ctx: &Ctx,
    id: &str,
    part: Part,
    buffers: &Buffers,
) -> anyhow::Result<Uploaded> {
    let (number, len, md5) = (part.number, part.len, part.md5());
    let body = part.data.slice(..len);
    let r = ctx
        .s3
        .retry(|| send_part(ctx, id, number, body.clone(), &md5))
        .await;
    drop(body);
    match r {
        Ok((etag, crc32c)) => {
            part.recycle(buffers);
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

/// One attempt at part `number`: its ETag (checked against `md5` when it is one) and CRC32C.
async fn send_part(
    ctx: &Ctx,
    id: &str,
    number: u64,
    body: Bytes,
    md5: &[u8; 16],
) -> Result<(String, Option<String>), S3Error> {
    let len = body.len() as u64;
    let out = ctx
        .s3
        .send(len, ctx.part_request(id, number, body, md5).send())
        .await?;
    let etag = unquote(out.e_tag().unwrap_or_default()).to_string();
    if ctx.etag_is_md5 && is_plain_md5(&etag) && etag != hex(md5) {
        // The server stored something else: send the part again.
        return Err(S3Error::from(Why::Bad {
            detail: format!("its ETag {etag} is not the MD5 of the data sent"),
        }));
    }
    Ok((etag, out.checksum_crc32_c().map(str::to_string)))
}

/// A PutObject with the lock asked for, if any (a mode only with a retention).
fn locked_put(req: PutObjectFluentBuilder, lock: Option<&Lock>) -> PutObjectFluentBuilder {
    match lock {
        Some(l) => req
            .set_object_lock_mode(l.until.map(|_| l.mode.clone()))
            .set_object_lock_retain_until_date(l.until)
            .set_object_lock_legal_hold_status(l.hold.then_some(ObjectLockLegalHoldStatus::On)),
        None => req,
    }
}

/// --storage-class: the class the stored object really got (a HEAD), or one line saying
/// that the server put it elsewhere (s3s-fs takes GLACIER on a multipart upload and stores
/// it as STANDARD; a Ceph zone maps a class it lacks to its default).
pub async fn confirm_class(s3: &S3Client, url: &S3Url, asked: &str) -> anyhow::Result<()> {
    let h = s3
        .head(url, None)
        .await
        .map_err(|e| e.at(url, "stored, but confirming its storage class"))?;
    let got = h
        .as_ref()
        .and_then(|h| h.storage_class())
        .map_or("STANDARD", |c| c.as_str());
    if got != asked {
        anyhow::bail!(
            "{url}: stored, but in {got}, not {asked}: the server does not keep that class \
             as configured (the object stays stored, in {got})"
        );
    }
    Ok(())
}
