//! --lock-canary: proof that Object Lock holds at URL, with this host's own credentials.
//! Once stdin is stored there locked (a new version of the same key each run), try what an
//! intruder with these credentials would: delete that version by its id, and overwrite the
//! key; then read the version back. The lock holds when the version still reads back the
//! same bytes (on a versioned bucket an overwrite only adds a version: not a failure).

use std::io::Write;

use anyhow::Context;
use aws_sdk_s3::primitives::ByteStream;
use sol_common::{hex, Fail, Status};
use sol_s3::{self as s3, ConnArgs, S3Client, S3Url};

/// The attempts, after the canary was stored at `url`: prints `URL<TAB>VERSION<TAB>holds`,
/// or fails with status 3 saying what got through.
pub async fn prove(conn: &ConnArgs, url: &S3Url) -> anyhow::Result<Status> {
    let s3 = s3::client(conn, url).await?;
    let h = s3
        .head(url, None)
        .await
        .map_err(|e| e.at(url, "reading the canary"))?
        .ok_or_else(|| anyhow::anyhow!("{url}: the canary is not there after it was stored"))?;
    let Some(version) = h.version_id().filter(|v| !v.is_empty() && *v != "null") else {
        anyhow::bail!("{url}: the bucket keeps no versions, so no lock can hold there");
    };
    let version = version.to_string();
    let etag = h.e_tag().unwrap_or_default().trim_matches('"').to_string();
    let deleted = attempt_delete(&s3, url, &version).await;
    let same = reads_back(&s3, url, &version, &etag).await;
    if deleted || !same {
        let what = if deleted {
            "its locked version was deleted with this host's credentials"
        } else {
            "its locked version no longer reads back the same bytes"
        };
        Err(Fail::integrity(format!(
            "{url}: the lock does not hold: {what}"
        )))?;
    }
    let mut out = sol_common::stdio::text_output();
    writeln!(out, "{url}\t{version}\tholds").context("writing output")?;
    out.flush().context("writing output")?;
    Ok(Status::Success)
}

/// An intruder's tries with these credentials: delete the version by its id, plainly and
/// with the governance bypass (true when it was deleted), then overwrite the key.
async fn attempt_delete(s3: &S3Client, url: &S3Url, version: &str) -> bool {
    let (b, k) = (&url.bucket, &url.key);
    let del = s3
        .client
        .delete_object()
        .bucket(b)
        .key(k)
        .version_id(version);
    // As an intruder would: plainly, then with the GOVERNANCE bypass (which credentials
    // allowed s3:BypassGovernanceRetention can send).
    let deleted = del.clone().send().await.is_ok()
        || del.bypass_governance_retention(true).send().await.is_ok();
    let junk = b"an overwrite of the lock canary".to_vec();
    let md5 = aws_smithy_types::base64::encode(md5_of(&junk));
    let put = s3.client.put_object().bucket(b).key(k).content_md5(md5);
    let _ = put.body(ByteStream::from(junk)).send().await;
    deleted
}

/// Does the version still read back the bytes whose MD5 is `etag`?
async fn reads_back(s3: &S3Client, url: &S3Url, version: &str, etag: &str) -> bool {
    let get = s3.client.get_object().bucket(&url.bucket).key(&url.key);
    match get.version_id(version).send().await {
        Ok(o) => {
            let body = o.body.collect().await.map(|d| d.into_bytes().to_vec());
            body.is_ok_and(|d| hex(&md5_of(&d)) == etag)
        }
        Err(_) => false,
    }
}

fn md5_of(data: &[u8]) -> [u8; 16] {
    use md5::{Digest, Md5};
    Md5::digest(data).into()
}
