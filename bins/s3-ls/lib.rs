//! s3-ls: list the objects under a prefix, one tab-separated line each.

pub mod cli;
mod cold;
mod locks;
mod meta;
pub mod uploads;
mod versions;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use aws_sdk_s3::primitives::DateTimeFormat;
use sol_common::{Fail, Status};
use sol_s3::{self as s3, S3Url};

pub const TOOL: &str = "s3-ls";

pub fn main() -> ExitCode {
    sol_common::finish(TOOL, run(sol_common::parse_cli::<cli::Cli>(TOOL)))
}

/// `2026-11-20T00:00:00Z`, `2026-11-20` (midnight UTC) or seconds since the epoch.
pub fn parse_since(s: &str) -> Result<i64, String> {
    use aws_sdk_s3::primitives::DateTime;
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    DateTime::from_str(&full, DateTimeFormat::DateTime)
        .map(|d| d.secs())
        .map_err(|_| {
            format!(
                "'{s}': expected an RFC 3339 time (2026-11-20T00:00:00Z), a date or epoch seconds"
            )
        })
}

fn run(cli: cli::Cli) -> anyhow::Result<Status> {
    let url = S3Url::parse(&cli.url).map_err(Fail::usage)?;
    let since = cli
        .since
        .as_deref()
        .map(parse_since)
        .transpose()
        .map_err(Fail::usage)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let s3 = s3::client(&cli.conn, &url).await?;
        if cli.uploads || cli.abort_older_than.is_some() {
            return uploads::run(&s3, &url, cli.abort_older_than, TOOL).await;
        }
        if cli.clock {
            return clock(&s3, &url).await;
        }
        if cli.head && cli.classes {
            return cold::head(&s3, &cli.url).await;
        }
        if cli.head {
            return head(&s3, &cli.url).await;
        }
        if let Some(days) = cli.thaw {
            return cold::thaw(&s3, &cli.url, days, &cli.tier).await;
        }
        if cli.versions {
            return versions::list(&s3, &url, &mut sol_common::stdio::text_output()).await;
        }
        if cli.delete_versions {
            return versions::delete(&s3, &url, cli.bypass_governance).await;
        }
        list(&s3, &url, &cli, since).await?;
        warn_of_skew(&s3);
        Ok(Status::Success)
    })
}

/// The listing: a line per object (--since filters, --relative shortens the keys); with
/// --locks or --extend-locks, each line with the object's lock; with --metadata, with its
/// user metadata.
async fn list(
    s3: &s3::S3Client,
    url: &S3Url,
    cli: &cli::Cli,
    since: Option<i64>,
) -> anyhow::Result<()> {
    let mut out = sol_common::stdio::text_output();
    let with_locks = cli.locks || cli.extend_locks.is_some();
    let (mut items, mut classes, mut metas) = (Vec::new(), Vec::new(), Vec::new());
    s3.list_objects(url, |page| {
        for o in page {
            let secs = o.last_modified().map(|d| d.secs()).unwrap_or(0);
            if since.is_some_and(|s| secs < s) {
                continue;
            }
            let key = o.key().unwrap_or_default();
            let shown = if cli.relative {
                key.strip_prefix(url.key.as_str()).unwrap_or(key)
            } else {
                key
            };
            let line = line(shown, o.size(), secs, o.e_tag());
            if cli.classes {
                let class = o.storage_class().map_or("STANDARD", |c| c.as_str());
                let key = key.to_string();
                classes.push((locks::Item { key, line }, class.to_string()));
                continue;
            }
            if with_locks {
                let key = key.to_string();
                items.push(locks::Item { key, line });
                continue;
            }
            if cli.metadata {
                let key = key.to_string();
                metas.push(locks::Item { key, line });
                continue;
            }
            out.write_all(line.as_bytes()).context("writing output")?;
        }
        Ok(())
    })
    .await?;
    if cli.classes {
        cold::print(s3, url, classes, &mut out).await?;
    }
    if cli.metadata {
        meta::print(s3, url, metas, &mut out).await?;
    }
    if with_locks {
        let n = locks::print(s3, url, items, cli.extend_locks, &mut out).await?;
        if cli.extend_locks.is_some() {
            sol_common::warn(TOOL, format!("{n} retentions extended"));
        }
    }
    out.flush().context("writing output")?;
    Ok(())
}

/// One object's line: KEY<TAB>SIZE<TAB>LAST-MODIFIED<TAB>ETAG (ETag without its quotes).
fn line(key: &str, size: Option<i64>, secs: i64, etag: Option<&str>) -> String {
    format!(
        "{}\t{}\t{}\t{}\n",
        escape_key(key),
        size.unwrap_or(0),
        sol_common::time::rfc3339(secs),
        etag.unwrap_or_default().trim_matches('"')
    )
}

/// Clocks further apart than this are worth a warning after a listing.
pub const WARN_SKEW: i64 = 60;

/// `s3-ls: warning: the server's clock is N s ahead of this host's`, when it is.
fn warn_of_skew(s3: &s3::S3Client) {
    if let Some(skew) = s3.skew().filter(|s| s.abs() > WARN_SKEW) {
        sol_common::warn(
            TOOL,
            format!(
                "warning: the server's clock is {} s {} this host's",
                skew.abs(),
                if skew > 0 { "ahead of" } else { "behind" }
            ),
        );
    }
}

/// `--clock`: the skew from the answer to one cheap request. Any answer will do, a refusal
/// too (a refusal is what a clock far off gets).
async fn clock(s3: &s3::S3Client, url: &S3Url) -> anyhow::Result<Status> {
    // Three answers; the quickest round trip tells the time best.
    let mut best: Option<(i64, i64)> = None;
    for _ in 0..3 {
        let sent = s3::epoch_ms(std::time::SystemTime::now());
        let answer = s3.first_key(url).await;
        let trip = s3::epoch_ms(std::time::SystemTime::now()) - sent;
        match (s3.clock.skew_sent_at(sent), answer) {
            (Some(skew), _) if best.map_or(true, |(t, _)| trip < t) => best = Some((trip, skew)),
            (Some(_), _) => {}
            (None, Err(e)) if e.status().is_none() => Err(e.at(url, "asking the time"))?,
            (None, _) => anyhow::bail!(
                "{url}: the answer from {} has no Date header, so the server's clock is not known",
                s3.endpoint
            ),
        }
    }
    let skew = best.map(|(_, skew)| skew).context("no answer")?;
    let mut out = sol_common::stdio::text_output();
    writeln!(out, "{skew}").context("writing output")?;
    out.flush().context("writing output")?;
    Ok(Status::Success)
}

/// `--head`: one object's line, from a HEAD of exactly its key.
async fn head(s3: &s3::S3Client, url: &str) -> anyhow::Result<Status> {
    let url = S3Url::parse_object(url).map_err(Fail::usage)?;
    let Some(h) = s3
        .head(&url, None)
        .await
        .map_err(|e| e.at(&url, "looking the object up"))?
    else {
        anyhow::bail!("{url}: no such object");
    };
    let secs = h.last_modified().map(|d| d.secs()).unwrap_or(0);
    let line = line(&url.key, h.content_length(), secs, h.e_tag());
    let mut out = sol_common::stdio::text_output();
    out.write_all(line.as_bytes()).context("writing output")?;
    out.flush().context("writing output")?;
    Ok(Status::Success)
}

pub use sol_common::escape_key;

#[cfg(test)]
mod tests {
    use super::escape_key;

    #[test]
    fn keys_print_as_one_unambiguous_field() {
        assert_eq!(escape_key("sol0001.tar.gz.sc"), "sol0001.tar.gz.sc");
        assert_eq!(
            escape_key("junk\nsol0200.tar.gz.sc"),
            "junk\\nsol0200.tar.gz.sc"
        );
        assert_eq!(
            escape_key("a\tb\\c\r\x01\x7f\u{85}"),
            "a\\tb\\\\c\\r\\x01\\x7f\\u{0085}"
        );
        assert_eq!(escape_key("sol with spaces 'q' *"), "sol with spaces 'q' *");
    }
}
