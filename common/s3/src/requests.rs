//! The requests the tools make of one key or prefix, each written here once: a tool asks
//! for an operation by name (a listing, a page of versions or pending uploads, a HEAD, a
//! retention, a legal hold, a thaw, an abort, a delete) and gets the SDK's answer, or the
//! failure: the error line naming the URL where the request is told what it was for, else
//! the [`S3Error`] for the caller to word ([`S3Error::at`]). Each is retried as every
//! request is ([`S3Client::call`]).
//!
//! What stays with its tool: the transfers (s3-mput's PUTs and its multipart uploads from
//! create to commit or abort, s3-mget's ranged GETs), s3-mput's read of a bucket's Object
//! Lock configuration and s3-mget's HEAD of a bucket after a 404, and the lock canary's
//! tries, which it sends once each, as an intruder would.

use anyhow::Context;
use aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadOutput;
use aws_sdk_s3::operation::delete_object::DeleteObjectOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::list_multipart_uploads::ListMultipartUploadsOutput;
use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{
    GlacierJobParameters, ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockRetention,
    ObjectLockRetentionMode, RestoreRequest, Tier,
};

use crate::{pages, S3Client, S3Error, S3Url};

/// Where a page of versions or of pending uploads starts: after this key and this version
/// or upload id (both None: the first page).
pub type Markers = (Option<String>, Option<String>);

impl S3Client {
    /// Every object under the URL's key as a prefix (ListObjectsV2), a page at a time
    /// given to `each`, in key order.
    pub async fn list_objects(
        &self,
        url: &S3Url,
        mut each: impl FnMut(&[aws_sdk_s3::types::Object]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let fetch = |token: Option<String>| async move {
            let page = self.call(|c| {
                c.list_objects_v2()
                    .bucket(&url.bucket)
                    .prefix(&url.key)
                    .set_continuation_token(token.clone())
                    .send()
            });
            page.await.map_err(|e| e.at(url, "listing"))
        };
        let next = |p: &ListObjectsV2Output| {
            let token = p.next_continuation_token().map(str::to_string);
            (p.is_truncated() == Some(true), token)
        };
        pages(url, fetch, next, |p| each(p.contents())).await
    }

    /// Set the retention of the object's VERSION (its latest when None) to MODE until
    /// UNTIL (PutObjectRetention); `what` says why, for the error.
    pub async fn retain(
        &self,
        url: &S3Url,
        version: Option<String>,
        (mode, until): (&str, DateTime),
        what: &str,
    ) -> anyhow::Result<()> {
        let retention = ObjectLockRetention::builder()
            .mode(ObjectLockRetentionMode::from(mode))
            .retain_until_date(until)
            .build();
        self.call(|c| {
            c.put_object_retention()
                .bucket(&url.bucket)
                .key(&url.key)
                .set_version_id(version.clone())
                .retention(retention.clone())
                .send()
        })
        .await
        .map_err(|e| e.at(url, what))?;
        Ok(())
    }

    /// HEAD the object: Ok(None) when there is none.
    pub async fn head(
        &self,
        url: &S3Url,
        version_id: Option<String>,
    ) -> Result<Option<HeadObjectOutput>, S3Error> {
        let r = self
            .call(|c| {
                c.head_object()
                    .bucket(&url.bucket)
                    .key(&url.key)
                    .set_version_id(version_id.clone())
                    .send()
            })
            .await;
        match r {
            Ok(h) => Ok(Some(h)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The first key under the URL's key as a prefix (ListObjectsV2 of one key): the
    /// cheapest request there is, for what its answer's headers say.
    pub async fn first_key(&self, url: &S3Url) -> Result<ListObjectsV2Output, S3Error> {
        self.call(|c| {
            c.list_objects_v2()
                .bucket(&url.bucket)
                .prefix(&url.key)
                .max_keys(1)
                .send()
        })
        .await
    }

    /// One page of ListObjectVersions under the URL's key as a prefix, after `markers`.
    pub async fn versions_page(
        &self,
        url: &S3Url,
        (key, id): Markers,
    ) -> Result<ListObjectVersionsOutput, S3Error> {
        self.call(|c| {
            c.list_object_versions()
                .bucket(&url.bucket)
                .prefix(&url.key)
                .set_key_marker(key.clone())
                .set_version_id_marker(id.clone())
                .send()
        })
        .await
    }

    /// One page of ListMultipartUploads under the URL's key as a prefix, after `markers`.
    pub async fn uploads_page(
        &self,
        url: &S3Url,
        (key, id): Markers,
    ) -> Result<ListMultipartUploadsOutput, S3Error> {
        self.call(|c| {
            c.list_multipart_uploads()
                .bucket(&url.bucket)
                .prefix(&url.key)
                .set_key_marker(key.clone())
                .set_upload_id_marker(id.clone())
                .send()
        })
        .await
    }

    /// Put a legal hold on the object's VERSION (its latest when None) (PutObjectLegalHold);
    /// `what` says why, for the error.
    pub async fn hold(
        &self,
        url: &S3Url,
        version: Option<String>,
        what: &str,
    ) -> anyhow::Result<()> {
        let hold = ObjectLockLegalHold::builder()
            .status(ObjectLockLegalHoldStatus::On)
            .build();
        self.call(|c| {
            c.put_object_legal_hold()
                .bucket(&url.bucket)
                .key(&url.key)
                .set_version_id(version.clone())
                .legal_hold(hold.clone())
                .send()
        })
        .await
        .map_err(|e| e.at(url, what))?;
        Ok(())
    }

    /// Ask for the archived object to be restored for DAYS days at TIER (RestoreObject); one
    /// already in progress is no error.
    pub async fn thaw(&self, url: &S3Url, days: u32, tier: &str) -> anyhow::Result<()> {
        let job = GlacierJobParameters::builder()
            .tier(Tier::from(tier))
            .build()
            .context("a restore tier")?;
        let req = RestoreRequest::builder()
            .days(days as i32)
            .glacier_job_parameters(job)
            .build();
        let r = self
            .call(|c| {
                c.restore_object()
                    .bucket(&url.bucket)
                    .key(&url.key)
                    .restore_request(req.clone())
                    .send()
            })
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("RestoreAlreadyInProgress") => Ok(()),
            Err(e) => Err(e.at(url, &format!("asking for a {tier} restore"))),
        }
    }

    /// Abort the multipart upload `id` of the URL's key (AbortMultipartUpload).
    pub async fn abort_upload(
        &self,
        url: &S3Url,
        id: &str,
    ) -> Result<AbortMultipartUploadOutput, S3Error> {
        self.call(|c| {
            c.abort_multipart_upload()
                .bucket(&url.bucket)
                .key(&url.key)
                .upload_id(id)
                .send()
        })
        .await
    }

    /// Delete the URL's key's VERSION (its latest when None: a delete marker where the
    /// bucket keeps versions) (DeleteObject); `bypass` sends the GOVERNANCE bypass.
    pub async fn delete_version(
        &self,
        url: &S3Url,
        version: Option<String>,
        bypass: bool,
    ) -> Result<DeleteObjectOutput, S3Error> {
        self.call(|c| {
            c.delete_object()
                .bucket(&url.bucket)
                .key(&url.key)
                .set_version_id(version.clone())
                .set_bypass_governance_retention(bypass.then_some(true))
                .send()
        })
        .await
    }
}
