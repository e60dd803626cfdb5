//! Archive classes. --classes: each listed object's storage class and, for one in an
//! archive class (GLACIER, DEEP_ARCHIVE), its restore state from a HEAD, as two more fields:
//! CLASS, STATE (`-`, `cold`, `thawing`, `ready-until-T`, `expired-T`). --thaw DAYS: ask for
//! one object to be restored for DAYS days (RestoreObject, at --tier), unless a restore is
//! already in progress, and print its line with its state (`requested` when asked now).

use std::io::Write;

use anyhow::Context;
use sol_common::{Fail, Status};
use sol_s3::cold::{self, Thaw};
use sol_s3::{S3Client, S3Url};

use crate::locks::{each_object, Item};

/// Print each item's line with its class and state, in listing order.
pub async fn print(
    s3: &S3Client,
    url: &S3Url,
    items: Vec<(Item, String)>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    // Only the archived objects need a HEAD.
    let keys: Vec<String> = items
        .iter()
        .filter(|(_, class)| cold::is_archive(class))
        .map(|(i, _)| i.key.clone())
        .collect();
    let states = each_object(s3, url, &keys, |s3, u| async move {
        state(&s3, &u).await.map(|(_, t, _)| t)
    })
    .await?;
    let mut states = states.into_iter();
    for (item, class) in &items {
        let word = match cold::is_archive(class) {
            true => states.next().map_or("-".into(), |t| t.word()),
            false => "-".into(),
        };
        let line = item.line.trim_end_matches('\n');
        writeln!(out, "{line}\t{class}\t{word}").context("writing output")?;
    }
    Ok(())
}

/// One object's class, restore state (on the server's clock) and listing line, from a HEAD.
async fn state(s3: &S3Client, url: &S3Url) -> anyhow::Result<(String, Thaw, String)> {
    let Some(h) = s3
        .head(url, None)
        .await
        .map_err(|e| e.at(url, "reading its storage class"))?
    else {
        anyhow::bail!("{url}: no such object");
    };
    let class = h.storage_class().map_or("STANDARD", |c| c.as_str());
    let thaw = Thaw::of(Some(class), h.restore(), s3.server_now());
    let secs = h.last_modified().map(|d| d.secs()).unwrap_or(0);
    let line = crate::line(&url.key, h.content_length(), secs, h.e_tag());
    Ok((class.to_string(), thaw, line))
}

/// --head --classes: one object's line with its class and state.
pub async fn head(s3: &S3Client, url: &str) -> anyhow::Result<Status> {
    let url = S3Url::parse_object(url).map_err(Fail::usage)?;
    let (class, thaw, line) = state(s3, &url).await?;
    print_one(&line, &class, &thaw.word())
}

fn print_one(line: &str, class: &str, word: &str) -> anyhow::Result<Status> {
    let mut out = sol_common::stdio::text_output();
    writeln!(out, "{}\t{class}\t{word}", line.trim_end_matches('\n')).context("writing output")?;
    out.flush().context("writing output")?;
    Ok(Status::Success)
}

/// --thaw DAYS: the object's restore asked for (unless one is in progress), and its line.
pub async fn thaw(s3: &S3Client, url: &str, days: u32, tier: &str) -> anyhow::Result<Status> {
    let url = S3Url::parse_object(url).map_err(Fail::usage)?;
    let (class, before, mut line) = state(s3, &url).await?;
    let word = match before {
        Thaw::Warm => "-".to_string(),
        Thaw::InProgress => "thawing".to_string(),
        Thaw::Cold | Thaw::Expired(_) => {
            s3.thaw(&url, days, tier).await?;
            "requested".to_string()
        }
        // Asked again when ready: the copy's expiry moves to DAYS from now.
        Thaw::Ready(_) => {
            s3.thaw(&url, days, tier).await?;
            let (_, after, l) = state(s3, &url).await?;
            line = l;
            after.word()
        }
    };
    print_one(&line, &class, &word)
}
