//! --copy-of SOURCE: stdin is a copy of the object at SOURCE (`s3-mget SOURCE | s3-mput
//! --copy-of SOURCE DEST`), stored with the same bytes and the same ETag. The parts are laid
//! out as SOURCE's (the part size s3-mput recorded on it), and before anything is committed
//! the copy's length and ETag must be SOURCE's: a copy that differs is never stored.
//! SOURCE's user metadata goes with the copy (as CopyObject's default does), but for what
//! --metadata names itself and the part size s3-mput records.

use sol_common::Fail;
use sol_s3::{self as s3, S3Url, MAX_PART, MIN_PART};

use super::cli::Cli;

/// What the copy must match.
#[derive(Clone)]
pub struct Source {
    pub url: S3Url,
    pub etag: String,
    pub size: u64,
}

/// SOURCE's ETag, size and part layout (into `cli.part_size`), from one HEAD.
pub async fn layout(cli: &mut Cli) -> anyhow::Result<Option<Source>> {
    let Some(given) = &cli.copy_of else {
        return Ok(None);
    };
    let url = S3Url::parse_object(given).map_err(Fail::usage)?;
    let client = s3::client(&cli.conn, &url).await?;
    let head = client
        .head(&url, None)
        .await
        .map_err(|e| e.at(&url, "reading the source's metadata"))?
        .ok_or_else(|| anyhow::anyhow!("{url}: no such object to copy"))?;
    let etag = head
        .e_tag()
        .unwrap_or_default()
        .trim_matches('"')
        .to_string();
    let size = head.content_length().unwrap_or(0).max(0) as u64;
    let recorded = head
        .metadata()
        .and_then(|m| m.get("sol-part-size"))
        .and_then(|p| p.parse::<u64>().ok());
    keep_metadata(cli, head.metadata());
    cli.part_size = match (etag.contains('-'), recorded) {
        (true, Some(p)) if (MIN_PART..=MAX_PART).contains(&p) => p,
        (true, _) => anyhow::bail!(
            "{url}: its part size is not recorded (it was not stored by s3-mput), so a copy \
             cannot have its ETag ({etag}): not copied"
        ),
        // One part: the copy is one PUT too, whatever its size.
        (false, _) if size < MAX_PART => (size + 1).max(MIN_PART),
        (false, _) => {
            anyhow::bail!("{url}: a single-part object of {size} bytes cannot be copied in one PUT")
        }
    };
    Ok(Some(Source { url, etag, size }))
}

/// Add SOURCE's user metadata to what the copy is stored with, in key order, but for the
/// keys --metadata gives (those win) and the part size (s3-mput records its own).
fn keep_metadata(cli: &mut Cli, source: Option<&std::collections::HashMap<String, String>>) {
    let mut kept: Vec<(String, String)> = source
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != "sol-part-size")
        .filter(|(k, _)| {
            !cli.metadata
                .iter()
                .any(|(given, _)| given.eq_ignore_ascii_case(k))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    kept.sort();
    cli.metadata.extend(kept);
}

/// Stdin ended after `total` bytes: the source's length, or nothing is stored.
pub fn check_length(source: Option<&Source>, total: u64, dest: &S3Url) -> anyhow::Result<()> {
    let differs = |s: &Source| {
        (s.size != total).then(|| format!("{total} bytes arrived, and {} has {}", s.url, s.size))
    };
    refuse(source.and_then(differs), dest)
}

/// The copy's ETag, `ours`, is the source's, or nothing is stored.
pub fn check_etag(source: Option<&Source>, ours: &str, dest: &S3Url) -> anyhow::Result<()> {
    let differs = |s: &Source| {
        (s.etag != ours).then(|| {
            format!(
                "the copy's ETag {ours} is not the ETag {} of {}",
                s.etag, s.url
            )
        })
    };
    refuse(source.and_then(differs), dest)
}

/// An integrity failure naming DEST and WHY, when there is a why.
fn refuse(why: Option<String>, dest: &S3Url) -> anyhow::Result<()> {
    match why {
        Some(why) => Err(Fail::integrity(format!("{dest}: not stored: {why}")))?,
        None => Ok(()),
    }
}
