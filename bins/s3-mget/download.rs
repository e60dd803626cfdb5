//! Ranged, parallel, verified download: [`download`] plans from the object's HEAD, fetches
//! the ranges in order (the window and the writer thread: window.rs; one range, resumed
//! across attempts: fetch.rs), and verifies what it wrote against the ETag.

use std::io::Write;
use std::sync::Arc;

use sol_common::hex;
use sol_common::pool::Pool;
use sol_common::stdio::BLOCK;
use sol_s3::cold::{self, Thaw};
use sol_s3::{self as s3, S3Client, S3Url};

use super::cli::Cli;
use super::fetch::Ctx;
use super::window::{Window, Writer};
use sol_common::exit::integrity;

/// Write the object (or the ranges --range names) to `out`: plan from the HEAD, fetch the
/// ranges in order, verify against the ETag.
pub async fn download(
    cli: &Cli,
    url: &S3Url,
    out: impl Write + Send + 'static,
) -> anyhow::Result<sol_common::Status> {
    let s3 = s3::client(&cli.conn, url).await?;
    let Plan {
        etag,
        version_id,
        layout,
        ranges,
    } = plan(cli, url, &s3).await?;

    // Blocks the network's chunks are copied into: what a range holds is exactly its bytes
    // (a chunk from the HTTP stack can pin a larger buffer).
    let pool = Pool::new(|| Vec::with_capacity(BLOCK));
    let ctx = Arc::new(Ctx {
        pool: pool.clone(),
        s3,
        url: url.clone(),
        etag: etag.clone(),
        version_id,
    });
    let whole = matches!(layout, Layout::WholeMd5);
    let progress_on = cli.progress || sol_common::stdio::is_terminal(2);
    let writer = Writer::spawn(out, pool, whole, progress_on);
    let parts = matches!(layout, Layout::Parts(_));
    let mut window = Window::new(ctx, ranges, usize::from(cli.concurrency), parts);

    // A fetch task that died ends the download at once; a range that failed is reported
    // once the writer is done, unless the writer's own error comes first.
    let fetched = window.run(&writer).await?;
    let whole_md5 = writer.finish()?;
    fetched?;

    verify(url, &layout, &etag, whole_md5, window.md5s())?;
    Ok(sol_common::Status::Success)
}

// ---- Plan: what to fetch, and what can be verified, before any byte is written ----

/// What the download fetches and how it is checked, all decided from the HEAD.
struct Plan {
    /// The object's ETag, without its quotes: every range is pinned to it.
    etag: String,
    /// The version every range reads: the HEAD's, else --version-id.
    version_id: Option<String>,
    /// What the ETag lets us verify, and how a whole download is cut.
    layout: Layout,
    /// The byte ranges to fetch, half-open, in the order they are written.
    ranges: Vec<(u64, u64)>,
}

/// How the object is cut into ranges, and what its ETag lets us verify.
enum Layout {
    /// Single-part: ETag = MD5 of everything.
    WholeMd5,
    /// Multipart with s3-mput's schedule: ETag = MD5 of the parts' MD5s, "-N".
    Parts(u64),
    /// Nothing to verify against (foreign multipart, SSE-KMS).
    Unverified,
}

/// HEAD the object, hold it to --if-match, see what its ETag lets us verify, and cut what is
/// to be written into ranges.
async fn plan(cli: &Cli, url: &S3Url, s3: &S3Client) -> anyhow::Result<Plan> {
    let head = Head::of(s3, url, cli.version_id.clone()).await?;
    check_if_match(cli, url, &head.etag)?;
    let layout = Layout::of(cli, &head);
    // Ranges follow s3-mput's parts when known (each range then is one part); with --range,
    // the ranges asked for, cut at multiples of --part-size.
    let ranges = match &cli.range {
        Some(list) => {
            check_inside(url, &list.0, head.size)?;
            pieces(&list.0, cli.part_size)
        }
        None => whole(head.size, &layout, cli.part_size),
    };
    Ok(Plan {
        etag: head.etag,
        version_id: head.version_id.or(cli.version_id.clone()),
        layout,
        ranges,
    })
}

/// What the HEAD says about the object, as far as the plan needs it.
struct Head {
    /// The object's length in bytes.
    size: u64,
    /// Without its quotes; empty when the server sent none.
    etag: String,
    /// The part size s3-mput recorded (`sol-part-size`), if any.
    part_size: Option<u64>,
    /// Encrypted with SSE-KMS: the ETag is then not the data's MD5.
    kms: bool,
    /// The version the HEAD answered for (a versioned bucket).
    version_id: Option<String>,
}

impl Head {
    /// HEAD `url` (at `version_id`); a missing object is an error that says whether its
    /// bucket is missing too.
    async fn of(s3: &S3Client, url: &S3Url, version_id: Option<String>) -> anyhow::Result<Head> {
        let head = s3
            .head(url, version_id)
            .await
            .map_err(|e| e.at(url, "reading the object's metadata"))?;
        let Some(head) = head else {
            return Err(missing(s3, url).await);
        };
        // An archived object's GET would be refused (InvalidObjectState): say why, and how
        // to thaw it.
        let class = head.storage_class().map(|c| c.as_str());
        let thaw = Thaw::of(class, head.restore(), s3.server_now());
        if !thaw.readable() {
            let why = cold::why_unreadable(class.unwrap_or_default(), &thaw, &url.to_string());
            anyhow::bail!("{url}: {why}");
        }
        Ok(Head {
            size: head.content_length().unwrap_or(0).max(0) as u64,
            etag: head
                .e_tag()
                .unwrap_or_default()
                .trim_matches('"')
                .to_string(),
            part_size: head
                .metadata()
                .and_then(|m| m.get("sol-part-size"))
                .and_then(|v| v.parse::<u64>().ok()),
            kms: head
                .server_side_encryption()
                .is_some_and(|s| s.as_str() == "aws:kms"),
            version_id: head.version_id().map(str::to_string),
        })
    }
}

/// The error for an object the HEAD did not find: no such bucket, or no such object.
async fn missing(s3: &S3Client, url: &S3Url) -> anyhow::Error {
    // A HEAD's 404 has no body to say whether the key or the bucket is missing.
    let bucket = s3
        .send(0, s3.client.head_bucket().bucket(&url.bucket).send())
        .await;
    match bucket {
        Err(e) if e.status() == Some(404) => anyhow::anyhow!(
            "{url}: no such bucket (the bucket '{}' does not exist)",
            url.bucket
        ),
        _ => anyhow::anyhow!("{url}: no such object"),
    }
}

impl Layout {
    /// What the object's ETag lets this download verify (nothing with --no-md5 or --range).
    fn of(cli: &Cli, head: &Head) -> Layout {
        let etag = &head.etag;
        match (etag.split_once('-'), head.part_size) {
            // Ranges are some of the bytes: there is no MD5 of them to check against.
            _ if cli.no_md5 || cli.range.is_some() || head.kms || etag.is_empty() => {
                Layout::Unverified
            }
            (None, _) if etag.len() == 32 => Layout::WholeMd5,
            (Some(_), Some(p)) if p >= 1 << 20 => Layout::Parts(p),
            _ => Layout::Unverified,
        }
    }
}

/// The ranges of a whole download: s3-mput's parts where it recorded their size, else
/// `part_size` each (the last one shorter).
fn whole(size: u64, layout: &Layout, part_size: u64) -> Vec<(u64, u64)> {
    let mut v = Vec::new();
    let mut start = 0;
    let mut n = 1;
    while start < size {
        let len = match layout {
            Layout::Parts(p) => s3::part_size(*p, n),
            _ => part_size,
        };
        let end = (start + len).min(size);
        v.push((start, end));
        start = end;
        n += 1;
    }
    v
}

/// The requests for a list of ranges (increasing, not overlapping): ranges that touch are
/// joined, and each is cut at every multiple of `part`, as a whole download would cut it.
fn pieces(list: &[std::ops::Range<u64>], part: u64) -> Vec<(u64, u64)> {
    let mut joined: Vec<(u64, u64)> = Vec::new();
    for r in list {
        match joined.last_mut() {
            Some(last) if last.1 == r.start => last.1 = r.end,
            _ => joined.push((r.start, r.end)),
        }
    }
    let mut out = Vec::new();
    for (mut start, end) in joined {
        while start < end {
            let cut = (start / part + 1).saturating_mul(part).min(end);
            out.push((start, cut));
            start = cut;
        }
    }
    out
}

// ---- Verify: the checks against the ETag and the object, before and after the bytes ----
// (Each answer's ETag and length are checked as it arrives, in fetch.rs.)

/// --if-match: the object must still have the ETag asked for (status 3, nothing written).
fn check_if_match(cli: &Cli, url: &S3Url, etag: &str) -> anyhow::Result<()> {
    if let Some(want) = &cli.if_match {
        if *want != etag {
            return Err(integrity(format!(
                "{url}: the object's ETag is \"{etag}\", not \"{want}\" (it was replaced)"
            )));
        }
    }
    Ok(())
}

/// --range: every range must lie inside the object (the first that does not is named).
fn check_inside(url: &S3Url, list: &[std::ops::Range<u64>], size: u64) -> anyhow::Result<()> {
    if let Some(r) = list.iter().find(|r| r.end > size) {
        anyhow::bail!(
            "{url}: the range {} ends past the object's end (it has {size} bytes)",
            sol_common::ranges::format(std::slice::from_ref(r))
        );
    }
    Ok(())
}

/// After the last byte: the data's MD5, or the parts' MD5s, must give the ETag (status 3).
fn verify(
    url: &S3Url,
    layout: &Layout,
    etag: &str,
    whole_md5: Option<[u8; 16]>,
    part_md5s: &[[u8; 16]],
) -> anyhow::Result<()> {
    match layout {
        Layout::WholeMd5 => {
            let got = hex(&whole_md5.unwrap_or_default());
            if got != etag {
                return Err(integrity(format!(
                    "{url}: the data's MD5 {got} does not match the ETag {etag}"
                )));
            }
        }
        Layout::Parts(_) => {
            let got = sol_s3::etag::multipart(part_md5s.iter());
            if got != etag {
                return Err(integrity(format!(
                    "{url}: the parts' MD5s give {got}, not the ETag {etag}"
                )));
            }
        }
        Layout::Unverified => {}
    }
    Ok(())
}

#[cfg(test)]
// A list holding one range is what a `--range` of one range is.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::pieces;

    #[test]
    fn ranges_are_joined_where_they_touch_and_cut_at_part_multiples() {
        let m = 1 << 20;
        assert_eq!(pieces(&[5..6], m), vec![(5, 6)]);
        assert_eq!(pieces(&[0..10, 10..20, 30..40], m), vec![(0, 20), (30, 40)]);
        assert_eq!(
            pieces(&[900_000..3_200_000], m),
            vec![(900_000, m), (m, 2 * m), (2 * m, 3 * m), (3 * m, 3_200_000)]
        );
        assert_eq!(pieces(&[m - 1..m + 1], m), vec![(m - 1, m), (m, m + 1)]);
        assert_eq!(pieces(&[0..m, m..2 * m], m), vec![(0, m), (m, 2 * m)]);
        // Every byte asked for, once, in order.
        let list = [
            3..70_000,
            70_000..70_001,
            2 * m - 5..5 * m + 7,
            9 * m..9 * m + 1,
        ];
        let p = pieces(&list, m);
        let bytes: u64 = p.iter().map(|(s, e)| e - s).sum();
        assert_eq!(bytes, sol_common::ranges::total(&list));
        assert!(p.windows(2).all(|w| w[0].1 <= w[1].0));
        assert!(p.iter().all(|(s, e)| s < e && e - s <= m));
    }
}
