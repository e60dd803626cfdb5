//! `s3-ls --versions`: every version of every key under a prefix (ListObjectVersions), one a
//! line: KEY<TAB>VERSION-ID<TAB>SIZE<TAB>LAST-MODIFIED<TAB>ETAG<TAB>KIND, KIND `latest`,
//! `old` or `marker` (a delete marker); an unversioned bucket's versions are `null`.
//! `s3-ls --delete-versions`: delete the versions named on stdin (`KEY<TAB>VERSION-ID` a
//! line, keys under the prefix only), each by its id, so its bytes are gone rather than
//! hidden behind a delete marker; a version Object Lock keeps is `retained`, not an error.

use std::io::{BufRead, Write};

use anyhow::Context;
use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use sol_common::Status;
use sol_s3::requests::Markers;
use sol_s3::{S3Client, S3Url};

/// Print every version under the prefix.
pub async fn list(s3: &S3Client, url: &S3Url, out: &mut impl Write) -> anyhow::Result<Status> {
    let fetch = |m: Option<Markers>| async move {
        let first = m.is_none();
        match s3.versions_page(url, m.unwrap_or_default()).await {
            // A server without versions (s3-local): each object is its only, null, version.
            Err(e) if e.status() == Some(501) && first => Ok(None),
            r => r.map(Some).map_err(|e| e.at(url, "listing versions")),
        }
    };
    let next = |p: &Option<ListObjectVersionsOutput>| {
        let Some(p) = p else { return (false, None) };
        let key = p.next_key_marker().map(str::to_string);
        let id = p.next_version_id_marker().map(str::to_string);
        (
            p.is_truncated() == Some(true),
            key.is_some().then_some((key, id)),
        )
    };
    let mut versioned = true;
    sol_s3::pages(url, fetch, next, |page| {
        let Some(page) = page else {
            versioned = false;
            return Ok(());
        };
        for v in page.versions() {
            let kind = if v.is_latest() == Some(true) {
                "latest"
            } else {
                "old"
            };
            let secs = v.last_modified().map(|d| d.secs()).unwrap_or(0);
            let (key, id) = (
                v.key().unwrap_or_default(),
                v.version_id().unwrap_or("null"),
            );
            let etag = v.e_tag().unwrap_or_default().trim_matches('"');
            let (size, when) = (v.size().unwrap_or(0), sol_common::time::rfc3339(secs));
            let key = crate::escape_key(key);
            writeln!(out, "{key}\t{id}\t{size}\t{when}\t{etag}\t{kind}")
                .context("writing output")?;
        }
        for m in page.delete_markers() {
            let secs = m.last_modified().map(|d| d.secs()).unwrap_or(0);
            let (key, id) = (
                m.key().unwrap_or_default(),
                m.version_id().unwrap_or("null"),
            );
            let (key, when) = (crate::escape_key(key), sol_common::time::rfc3339(secs));
            writeln!(out, "{key}\t{id}\t0\t{when}\t\tmarker").context("writing output")?;
        }
        Ok(())
    })
    .await?;
    if !versioned {
        return unversioned(s3, url, out).await;
    }
    out.flush().context("writing output")?;
    Ok(Status::Success)
}

/// The objects of a server that keeps no versions, each as its `null` version.
async fn unversioned(s3: &S3Client, url: &S3Url, out: &mut impl Write) -> anyhow::Result<Status> {
    s3.list_objects(url, |page| {
        for o in page {
            let secs = o.last_modified().map(|d| d.secs()).unwrap_or(0);
            let key = crate::escape_key(o.key().unwrap_or_default());
            let etag = o.e_tag().unwrap_or_default().trim_matches('"');
            let (size, when) = (o.size().unwrap_or(0), sol_common::time::rfc3339(secs));
            writeln!(out, "{key}\tnull\t{size}\t{when}\t{etag}\tlatest")
                .context("writing output")?;
        }
        Ok(())
    })
    .await?;
    out.flush().context("writing output")?;
    Ok(Status::Success)
}

/// Delete each version named on stdin: `deleted` or `retained` (until T) a line on stdout;
/// any other failure a line on stderr, and status 1 at the end.
pub async fn delete(s3: &S3Client, url: &S3Url, bypass: bool) -> anyhow::Result<Status> {
    let mut out = sol_common::stdio::text_output();
    let mut failed = 0;
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading stdin")?;
        let Some((key, version)) = line.split_once('\t') else {
            anyhow::bail!("stdin: '{line}': expected KEY<TAB>VERSION-ID");
        };
        if key.contains('\\') {
            anyhow::bail!(
                "stdin: '{key}': a key with a backslash is ambiguous (--versions escapes it): \
                 nothing deleted from here on"
            );
        }
        if !key.starts_with(url.key.as_str()) {
            anyhow::bail!("stdin: '{key}' is not under {url}: nothing deleted from here on");
        }
        let mut one = url.clone();
        one.key = key.to_string();
        let id = (version != "null").then(|| version.to_string());
        match s3.delete_version(&one, id.clone(), bypass).await {
            Ok(_) => writeln!(out, "deleted\t{key}\t{version}"),
            Err(e) => match retained(s3, &one, id).await {
                Some(until) => writeln!(out, "retained\t{key}\t{version}\t{until}"),
                None => {
                    sol_common::warn(crate::TOOL, e.at(&one, "deleting a version"));
                    failed += 1;
                    Ok(())
                }
            },
        }
        .context("writing output")?;
    }
    out.flush().context("writing output")?;
    if failed > 0 {
        anyhow::bail!("{failed} version(s) could not be deleted");
    }
    Ok(Status::Success)
}

/// Until when Object Lock keeps this version (a retention in the future, or a legal hold).
async fn retained(s3: &S3Client, url: &S3Url, version: Option<String>) -> Option<String> {
    let h = s3.head(url, version).await.ok()??;
    if h.object_lock_legal_hold_status().map(|s| s.as_str()) == Some("ON") {
        return Some("a legal hold is removed".into());
    }
    let until = h.object_lock_retain_until_date()?.secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    (until > now + s3.skew().unwrap_or(0)).then(|| sol_common::time::rfc3339(until))
}
