//! `s3-ls --uploads`: the multipart uploads under a prefix that were started and never
//! completed or aborted (their parts stay stored, and billed), and `--abort-older-than` to
//! remove them. Only pending uploads are touched, never an object.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::operation::list_multipart_uploads::ListMultipartUploadsOutput;
use sol_common::Status;
use sol_s3::requests::Markers;
use sol_s3::{S3Client, S3Url};

/// One pending upload.
struct Pending {
    key: String,
    id: String,
    initiated: i64,
}

async fn list(s3: &S3Client, url: &S3Url) -> anyhow::Result<Vec<Pending>> {
    let mut all = Vec::new();
    let fetch = |m: Option<Markers>| async move {
        s3.uploads_page(url, m.unwrap_or_default())
            .await
            .map_err(|e| e.at(url, "listing pending multipart uploads"))
    };
    let next = |p: &ListMultipartUploadsOutput| {
        let key = p.next_key_marker().map(str::to_string);
        let id = p.next_upload_id_marker().map(str::to_string);
        (
            p.is_truncated() == Some(true),
            key.is_some().then_some((key, id)),
        )
    };
    sol_s3::pages(url, fetch, next, |page| {
        for u in page.uploads() {
            all.push(Pending {
                key: u.key().unwrap_or_default().to_string(),
                id: u.upload_id().unwrap_or_default().to_string(),
                initiated: u.initiated().map(|t| t.secs()).unwrap_or(0),
            });
        }
        Ok(())
    })
    .await?;
    Ok(all)
}

/// Print `KEY<TAB>UPLOAD-ID<TAB>INITIATED`; with `abort_older`, abort those started longer
/// ago than that, one line each on stderr, and a count.
pub async fn run(
    s3: &S3Client,
    url: &S3Url,
    abort_older: Option<Duration>,
    tool: &str,
) -> anyhow::Result<Status> {
    let pending = list(s3, url).await?;
    let mut out = sol_common::stdio::text_output();
    let now = now_secs();
    let (mut aborted, mut failed) = (0, 0);
    for p in &pending {
        let line = format!(
            "{}\t{}\t{}\n",
            p.key,
            p.id,
            sol_common::time::rfc3339(p.initiated)
        );
        out.write_all(line.as_bytes()).context("writing output")?;
        let Some(age) = abort_older else { continue };
        if now - p.initiated < age.as_secs() as i64 {
            continue;
        }
        match abort(s3, url, p, tool).await {
            Aborted::Yes => aborted += 1,
            Aborted::Gone => {}
            Aborted::Failed => failed += 1,
        }
    }
    out.flush().context("writing output")?;
    if let (Some(age), true) = (abort_older, aborted + failed > 0) {
        sol_common::warn(
            tool,
            format!(
                "{url}: {} pending upload(s), {aborted} older than {} s aborted",
                pending.len(),
                age.as_secs()
            ),
        );
    }
    if failed > 0 {
        anyhow::bail!("{url}: {failed} pending upload(s) could not be aborted");
    }
    Ok(Status::Success)
}

/// Seconds since the epoch now (0 if the clock is before it).
fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What became of one abort.
enum Aborted {
    Yes,
    /// The upload was gone already (NoSuchUpload): nothing to say.
    Gone,
    /// The abort failed (said on stderr).
    Failed,
}

/// Aborts the pending upload `p` under `url`'s bucket, saying on stderr what became of it.
async fn abort(s3: &S3Client, url: &S3Url, p: &Pending, tool: &str) -> Aborted {
    let at = S3Url {
        profile: url.profile.clone(),
        bucket: url.bucket.clone(),
        key: p.key.clone(),
    };
    match s3.abort_upload(&at, &p.id).await {
        Ok(_) => {
            sol_common::warn(
                tool,
                format!(
                    "{at}: aborted the upload started {} (UploadId {})",
                    sol_common::time::rfc3339(p.initiated),
                    p.id
                ),
            );
            Aborted::Yes
        }
        Err(e) if e.code() == Some("NoSuchUpload") => Aborted::Gone,
        Err(e) => {
            sol_common::warn(
                tool,
                format!(
                    "{at}: could not abort the upload {}: {}",
                    p.id,
                    e.reason(&at)
                ),
            );
            Aborted::Failed
        }
    }
}
