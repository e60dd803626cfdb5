//! --locks: each listed object's Object Lock, from a HEAD of each (16 at a time), as three
//! more fields: MODE, RETAIN-UNTIL, LEGAL-HOLD (`-` where there is none). --extend-locks D:
//! each object that already has a retention ending before the server's now + D gets
//! PutObjectRetention until then, in its own mode; a retention is never shortened and an
//! object without one is never locked.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::primitives::DateTime;
use sol_s3::{S3Client, S3Url};
use tokio::task::JoinSet;

/// One listed object: its whole key, and its line in the listing.
pub struct Item {
    pub key: String,
    pub line: String,
}

/// An object's lock: mode, retain-until (epoch seconds), legal hold.
type Lock = (Option<String>, Option<i64>, bool);

/// Print each item's line with its lock, in listing order; with `extend`, renew first.
/// Returns how many retentions were extended.
pub async fn print(
    s3: &S3Client,
    url: &S3Url,
    items: Vec<Item>,
    extend: Option<Duration>,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let until = extend.map(|d| s3.server_now() + d.as_secs() as i64);
    let keys: Vec<String> = items.iter().map(|i| i.key.clone()).collect();
    let found = each_object(s3, url, &keys, move |s3, u| async move {
        lock_of(&s3, &u, until).await
    })
    .await?;
    let extended = found.iter().filter(|(_, renewed)| *renewed).count();
    let locks = found.into_iter().map(|(lock, _)| Some(lock));
    for (item, lock) in items.iter().zip(locks) {
        let (mode, until, hold) = lock.unwrap_or_default();
        let until = until.map_or("-".into(), sol_common::time::rfc3339);
        let hold = if hold { "ON" } else { "-" };
        let mode = mode.unwrap_or_else(|| "-".into());
        let line = item.line.trim_end_matches('\n');
        writeln!(out, "{line}\t{mode}\t{until}\t{hold}").context("writing output")?;
    }
    Ok(extended)
}

/// `f(s3, URL of KEY)` for each of `keys`, 16 at a time; the results in the keys' order.
pub async fn each_object<T, F, Fut>(
    s3: &S3Client,
    url: &S3Url,
    keys: &[String],
    f: F,
) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(S3Client, S3Url) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let mut found: Vec<Option<T>> = keys.iter().map(|_| None).collect();
    let (mut set, mut next) = (JoinSet::new(), 0);
    loop {
        while set.len() < 16 && next < keys.len() {
            let mut u = url.clone();
            u.key = keys[next].clone();
            let job = f(s3.clone(), u);
            let i = next;
            set.spawn(async move { (i, job.await) });
            next += 1;
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        let (i, r) = done.context("a HEAD task died")?;
        found[i] = Some(r?);
    }
    Ok(found.into_iter().flatten().collect())
}

/// One object's lock from a HEAD; with `extend_to`, a retention ending before it is renewed
/// until then (true when it was).
async fn lock_of(
    s3: &S3Client,
    url: &S3Url,
    extend_to: Option<i64>,
) -> anyhow::Result<(Lock, bool)> {
    let Some(h) = s3
        .head(url, None)
        .await
        .map_err(|e| e.at(url, "reading its lock"))?
    else {
        return Ok(((None, None, false), false));
    };
    let mode = h.object_lock_mode().map(|m| m.as_str().to_string());
    let until = h.object_lock_retain_until_date().map(|d| d.secs());
    let hold = h.object_lock_legal_hold_status().map(|s| s.as_str()) == Some("ON");
    let (Some(m), Some(u), Some(to)) = (&mode, until, extend_to) else {
        return Ok(((mode, until, hold), false));
    };
    if u >= to {
        return Ok(((mode, until, hold), false));
    }
    let version = h.version_id().map(str::to_string);
    let until = DateTime::from_secs(to);
    s3.retain(url, version, (m, until), "extending its retention")
        .await?;
    Ok(((mode, Some(to), hold), true))
}
