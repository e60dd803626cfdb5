//! --metadata: each listed object's user metadata (`x-amz-meta-*`), from a HEAD of each (16
//! at a time), as more fields after the ETag: one `NAME=VALUE` field a pair, by name, the
//! value escaped as keys are. A listing without ETags gets the HEAD's. sol-sync keeps a file's modification time (`mtime`) and MD5
//! (`md5chksum`) there, by the names rclone uses.

use std::io::Write;

use anyhow::Context;
use sol_s3::{S3Client, S3Url};

use crate::locks::{each_object, Item};

/// Print each item's line with its metadata, in listing order.
pub async fn print(
    s3: &S3Client,
    url: &S3Url,
    items: Vec<Item>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let keys: Vec<String> = items.iter().map(|i| i.key.clone()).collect();
    let found = each_object(s3, url, &keys, |s3, u| async move {
        let head = s3
            .head(&u, None)
            .await
            .map_err(|e| e.at(&u, "reading its metadata"))?;
        let etag = head.as_ref().and_then(|h| h.e_tag().map(str::to_string));
        let mut pairs: Vec<(String, String)> = head
            .and_then(|h| h.metadata().cloned())
            .unwrap_or_default()
            .into_iter()
            .collect();
        pairs.sort();
        Ok((etag, pairs))
    })
    .await?;
    for (item, (etag, pairs)) in items.iter().zip(found) {
        let mut line = with_etag(item.line.trim_end_matches('\n'), etag);
        for (name, value) in pairs {
            line.push('\t');
            line.push_str(&crate::escape_key(&name));
            line.push('=');
            line.push_str(&crate::escape_key(&value));
        }
        writeln!(out, "{line}").context("writing output")?;
    }
    Ok(())
}

/// The line with the HEAD's ETag where the listing had none (s3s-fs lists none).
fn with_etag(line: &str, etag: Option<String>) -> String {
    let mut f: Vec<&str> = line.split('\t').collect();
    let etag = etag.unwrap_or_default();
    if f.len() == 4 && f[3].is_empty() {
        f[3] = etag.trim_matches('"');
    }
    f.join("\t")
}
