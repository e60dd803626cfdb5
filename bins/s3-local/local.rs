//! s3s-fs with what the toolkit relies on and s3s-fs lacks:
//!
//! - One check (`Checks`, s3s's access check) before each operation: a signed request,
//!   keys that name files under their bucket (the object's, a copy's source, each of a
//!   multi-delete), a bucket that exists for a write, and for a read a key that is not a
//!   directory of the store.
//! - Conditional writes are atomic. s3s-fs checks that the key is absent, then writes (a
//!   PUT's body streams in between): two writers with `If-None-Match: *` could both win.
//!   Here every write to a key (PutObject, CompleteMultipartUpload, CopyObject) holds the
//!   lock of the file the key names (`a/k` and `a//k` share one) from the check to the
//!   rename, so exactly one wins and the other gets 412.
//! - ListMultipartUploads, from s3s-fs's own bookkeeping files in the served directory, so
//!   pending uploads can be found and aborted (`s3-ls --uploads`).
//! - GetObject streams the file in 1 MiB reads. s3s-fs reads 4 KiB at a time through
//!   tokio's blocking pool: a 244 MB download cost the server about 1 s of CPU, which the
//!   client's own work then waited for on a small machine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::*;
use s3s::path::S3Path;
use s3s::{S3Request, S3Response, S3Result, S3};
use s3s_fs::FileSystem;

/// One lock per (bucket, key) being written.
type KeyLocks = HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>;

pub struct Local {
    fs: FileSystem,
    root: PathBuf,
    locks: Mutex<KeyLocks>,
}

impl Local {
    pub fn new(root: &Path) -> anyhow::Result<Local> {
        let fs = FileSystem::new(root)
            .map_err(|_| anyhow::anyhow!("'{}': cannot serve this directory", root.display()))?;
        Ok(Local {
            fs,
            root: root.to_path_buf(),
            locks: Mutex::default(),
        })
    }

    /// Hold the lock of one key's file while `f` checks and writes it. Keys that name the
    /// same file ("a/k", "a//k": empty segments name nothing) share one lock.
    async fn locked<T, F>(&self, bucket: &str, key: &str, f: F) -> T
    where
        F: std::future::Future<Output = T>,
    {
        let file: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
        let id = (bucket.to_string(), file.join("/"));
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(id.clone()).or_default().clone()
        };
        let r = {
            let _guard = lock.lock().await;
            f.await
        };
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(&lock) == 2 {
            map.remove(&id);
        }
        r
    }

    /// Uploads s3s-fs has started and not yet completed or aborted in `bucket`:
    /// (key, upload id, initiated). s3s-fs keeps `.upload-ID.json` per pending upload and
    /// `.bucket-B64.object-B64.upload-ID.metadata.json` naming its bucket and key.
    fn pending(&self, bucket: &str) -> std::io::Result<Vec<(String, String, SystemTime)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(rest) = name.strip_prefix(".bucket-") else {
                continue;
            };
            let Some(rest) = rest.strip_suffix(".metadata.json") else {
                continue;
            };
            let Some((b, rest)) = rest.split_once(".object-") else {
                continue;
            };
            let Some((k, id)) = rest.split_once(".upload-") else {
                continue;
            };
            let (Some(b), Some(k)) = (unbase64(b), unbase64(k)) else {
                continue;
            };
            if b != bucket {
                continue;
            }
            let info = self.root.join(format!(".upload-{id}.json"));
            let Ok(meta) = std::fs::metadata(&info) else {
                continue; // completed or aborted
            };
            out.push((k, id.to_string(), meta.modified()?));
        }
        out.sort();
        Ok(out)
    }
}

/// The body s3s-fs would send (its answer's range of the file), read from `file` in 1 MiB
/// steps; None when `file` is no longer what `path` names, or the range is not understood.
async fn large_reads(
    mut file: tokio::fs::File,
    path: &Path,
    output: &GetObjectOutput,
) -> Option<StreamingBlob> {
    use std::os::unix::fs::MetadataExt;
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let (held, named) = (
        file.metadata().await.ok()?,
        tokio::fs::metadata(path).await.ok()?,
    );
    if (held.dev(), held.ino()) != (named.dev(), named.ino()) {
        return None;
    }
    let len = u64::try_from(output.content_length?).ok()?;
    // "bytes FIRST-LAST/SIZE" when a range was asked for.
    let first = match &output.content_range {
        None => 0,
        Some(r) => r.strip_prefix("bytes ")?.split_once('-')?.0.parse().ok()?,
    };
    file.seek(std::io::SeekFrom::Start(first)).await.ok()?;
    let reads = tokio_util::io::ReaderStream::with_capacity(file.take(len), 1 << 20);
    Some(StreamingBlob::wrap(reads))
}

/// The checks s3s-fs lacks, made before each operation: s3s runs `S3Access::check` for
/// every request of a service with credentials, before it reads the operation's input (a
/// POSTed form excepted: s3s reads it first, to hold it to its policy's conditions), then
/// the hooks below, once the input is read.
pub struct Checks {
    root: PathBuf,
}

impl Checks {
    pub fn new(root: &Path) -> Checks {
        Checks {
            root: root.to_path_buf(),
        }
    }

    /// s3s-fs would create a missing bucket's directory on a write: NoSuchBucket instead.
    fn bucket_exists(&self, bucket: &str) -> S3Result<()> {
        if bucket.is_empty()
            || bucket.contains('/')
            || bucket.starts_with('.')
            || !self.root.join(bucket).is_dir()
        {
            return Err(s3s::s3_error!(NoSuchBucket));
        }
        Ok(())
    }

    /// A key that names a directory of the store (the keys under it are its files) is no
    /// object: NoSuchKey, as S3 answers for a prefix, not s3s-fs's 500.
    fn not_a_directory(&self, bucket: &str, key: &str) -> S3Result<()> {
        match self.root.join(bucket).join(key).is_dir() {
            true => Err(s3s::s3_error!(NoSuchKey)),
            false => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl S3Access for Checks {
    /// A signed request (s3s's own default check), then for an object: its key, and the
    /// bucket or the key as the operation needs them.
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_none() {
            return Err(s3s::s3_error!(AccessDenied, "Signature is required"));
        }
        let S3Path::Object { bucket, key } = cx.s3_path() else {
            return Ok(());
        };
        check_key(key)?;
        match cx.s3_op().name() {
            "CopyObject" | "CreateMultipartUpload" | "CompleteMultipartUpload" => {
                self.bucket_exists(bucket)
            }
            "GetObject" | "HeadObject" => self.not_a_directory(bucket, key),
            _ => Ok(()), // PutObject: below
        }
    }

    /// PutObject, and a POST of a form (PostObject), whose key is a field of the form and
    /// whose path names only the bucket, so `check` sees no key: s3s hands both to this
    /// hook with the key the object will have.
    async fn put_object(&self, req: &mut S3Request<PutObjectInput>) -> S3Result<()> {
        check_key(&req.input.key)?;
        self.bucket_exists(&req.input.bucket)
    }

    /// A copy's source is a key too (s3s-fs would read another bucket's file).
    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        check_source(&req.input.copy_source)
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        check_source(&req.input.copy_source)
    }

    /// So is each key of a multi-delete (s3s-fs would delete another bucket's file).
    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        req.input
            .delete
            .objects
            .iter()
            .try_for_each(|o| check_key(&o.key))
    }
}

/// The key of a copy's source (s3s-fs refuses the other forms, access points and outposts).
fn check_source(source: &CopySource) -> S3Result<()> {
    match source {
        CopySource::Bucket { key, .. } => check_key(key),
        _ => Ok(()),
    }
}

/// s3s-fs stores a key as a path under its bucket's directory: a `.` or `..` segment (or
/// an empty one) would name another file, even another bucket's object. Refused.
fn check_key(key: &str) -> S3Result<()> {
    if key
        .split('/')
        .enumerate()
        .any(|(i, seg)| seg == "." || seg == ".." || (seg.is_empty() && i == 0))
    {
        return Err(s3s::s3_error!(
            InvalidArgument,
            "s3-local stores keys as files: no '.' or '..' segment, no leading '/'"
        ));
    }
    Ok(())
}

/// Decode s3s-fs's URL-safe, unpadded base64 names.
fn unbase64(s: &str) -> Option<String> {
    let mut std: String = s
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while std.len() % 4 != 0 {
        std.push('=');
    }
    let bytes = aws_smithy_types::base64::decode(&std).ok()?;
    String::from_utf8(bytes).ok()
}

/// `impl S3 for Local`: the operations after `as_is` are s3s-fs's own; those after
/// `locked` are s3s-fs's run holding the key's lock (`Local::locked`), so that a
/// conditional write is atomic; the methods after them are s3-local's own. The checks
/// every operation needs come first, in `Checks`.
macro_rules! s3_for_local {
    (
        as_is: $($op:ident($input:ident) -> $output:ident),*;
        locked: $($write:ident($winput:ident) -> $woutput:ident),*;
        $($own:tt)*
    ) => {
        #[async_trait::async_trait]
        impl S3 for Local {
            $(
                async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    self.fs.$op(req).await
                }
            )*
            $(
                async fn $write(
                    &self,
                    req: S3Request<$winput>,
                ) -> S3Result<S3Response<$woutput>> {
                    let (b, k) = (req.input.bucket.clone(), req.input.key.clone());
                    self.locked(&b, &k, self.fs.$write(req)).await
                }
            )*
            $($own)*
        }
    };
}

s3_for_local! {
    as_is:
        create_bucket(CreateBucketInput) -> CreateBucketOutput,
        delete_bucket(DeleteBucketInput) -> DeleteBucketOutput,
        head_bucket(HeadBucketInput) -> HeadBucketOutput,
        get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput,
        list_buckets(ListBucketsInput) -> ListBucketsOutput,
        list_objects(ListObjectsInput) -> ListObjectsOutput,
        list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output,
        head_object(HeadObjectInput) -> HeadObjectOutput,
        delete_object(DeleteObjectInput) -> DeleteObjectOutput,
        delete_objects(DeleteObjectsInput) -> DeleteObjectsOutput,
        create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput,
        upload_part(UploadPartInput) -> UploadPartOutput,
        upload_part_copy(UploadPartCopyInput) -> UploadPartCopyOutput,
        list_parts(ListPartsInput) -> ListPartsOutput,
        abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput;
    locked:
        put_object(PutObjectInput) -> PutObjectOutput,
        copy_object(CopyObjectInput) -> CopyObjectOutput,
        complete_multipart_upload(CompleteMultipartUploadInput) -> CompleteMultipartUploadOutput;

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        // Our own descriptor of the object, opened before s3s-fs opens its: if the key still
        // names the same file afterwards, both descriptors are that file (a write replaces
        // a key by renaming a new file over it), and ours serves the body.
        let path = self.root.join(&req.input.bucket).join(&req.input.key);
        let ours = tokio::fs::File::open(&path).await.ok();
        let mut resp = self.fs.get_object(req).await?;
        if let Some(file) = ours {
            if let Some(body) = large_reads(file, &path, &resp.output).await {
                resp.output.body = Some(body);
            }
        }
        Ok(resp)
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        if !self.root.join(&input.bucket).is_dir() {
            return Err(s3s::s3_error!(NoSuchBucket));
        }
        let all = self
            .pending(&input.bucket)
            .map_err(|e| s3s::s3_error!(e, InternalError))?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let key_marker = input.key_marker.clone().unwrap_or_default();
        let id_marker = input.upload_id_marker.clone().unwrap_or_default();
        let max = input.max_uploads.unwrap_or(1000).clamp(1, 1000) as usize;
        let mut matching = all.into_iter().filter(|(k, id, _)| {
            k.starts_with(&prefix)
                && (key_marker.is_empty()
                    || k.as_str() > key_marker.as_str()
                    || (k == &key_marker
                        && !id_marker.is_empty()
                        && id.as_str() > id_marker.as_str()))
        });
        let page: Vec<_> = matching.by_ref().take(max).collect();
        let truncated = matching.next().is_some();
        let last = page.last().cloned();
        let uploads = page
            .into_iter()
            .map(|(k, id, t)| MultipartUpload {
                key: Some(k),
                upload_id: Some(id),
                initiated: Some(Timestamp::from(t)),
                storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                ..Default::default()
            })
            .collect();
        let output = ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: last.as_ref().filter(|_| truncated).map(|l| l.0.clone()),
            next_upload_id_marker: last.filter(|_| truncated).map(|l| l.1),
            uploads: Some(uploads),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }
}
