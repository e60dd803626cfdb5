//! s3s-fs with what the toolkit relies on and s3s-fs lacks:
//!
//! - Conditional writes are atomic. s3s-fs checks that the key is absent, then writes (a
//!   PUT's body streams in between): two writers with `If-None-Match: *` could both win.
//!   Here every write to a key (PutObject, CompleteMultipartUpload, CopyObject) holds that
//!   key's lock from the check to the rename, so exactly one wins and the other gets 412.
//! - ListMultipartUploads, from s3s-fs's own bookkeeping files in the served directory, so
//!   pending uploads can be found and aborted (`s3-ls --uploads`).
//! - GetObject streams the file in 1 MiB reads. s3s-fs reads 4 KiB at a time through
//!   tokio's blocking pool: a 244 MB download cost the server about 1 s of CPU, which the
//!   client's own work then waited for on a small machine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use s3s::dto::*;
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

    /// Hold the lock of one key while `f` checks and writes it.
    async fn locked<T, F>(&self, bucket: &str, key: &str, f: F) -> T
    where
        F: std::future::Future<Output = T>,
    {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            map.entry((bucket.to_string(), key.to_string()))
                .or_default()
                .clone()
        };
        let r = {
            let _guard = lock.lock().await;
            f.await
        };
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(&lock) == 2 {
            map.remove(&(bucket.to_string(), key.to_string()));
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

/// s3s-fs stores a key as a path under its bucket's directory: a `.` or `..` segment (or
/// an empty one) would name another file, even another bucket's object. Refused.
impl Local {
    /// A key that names a directory of the store (the keys under it are its files) is no
    /// object: NoSuchKey, as S3 answers for a prefix, not s3s-fs's 500.
    fn not_a_directory(&self, bucket: &str, key: &str) -> S3Result<()> {
        match self.root.join(bucket).join(key).is_dir() {
            true => Err(s3s::s3_error!(NoSuchKey)),
            false => Ok(()),
        }
    }
}

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

#[async_trait::async_trait]
impl S3 for Local {
    // What s3s-fs implements, as it does it.
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.fs.delete_bucket(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        check_key(&req.input.key)?;
        self.fs.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.fs.delete_objects(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        check_key(&req.input.key)?;
        self.not_a_directory(&req.input.bucket, &req.input.key)?;
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

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        check_key(&req.input.key)?;
        self.not_a_directory(&req.input.bucket, &req.input.key)?;
        self.fs.head_object(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.fs.list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.fs.list_objects_v2(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        check_key(&req.input.key)?;
        self.bucket_exists(&req.input.bucket)?;
        self.fs.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        check_key(&req.input.key)?;
        self.fs.upload_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        check_key(&req.input.key)?;
        self.fs.upload_part_copy(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        check_key(&req.input.key)?;
        self.fs.list_parts(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        check_key(&req.input.key)?;
        self.fs.abort_multipart_upload(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let (b, k) = (req.input.bucket.clone(), req.input.key.clone());
        check_key(&k)?;
        self.bucket_exists(&b)?;
        self.locked(&b, &k, self.fs.put_object(req)).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let (b, k) = (req.input.bucket.clone(), req.input.key.clone());
        check_key(&k)?;
        self.locked(&b, &k, self.fs.complete_multipart_upload(req))
            .await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let (b, k) = (req.input.bucket.clone(), req.input.key.clone());
        check_key(&k)?;
        self.bucket_exists(&b)?;
        self.locked(&b, &k, self.fs.copy_object(req)).await
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
