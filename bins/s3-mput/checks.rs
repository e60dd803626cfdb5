//! What must hold of the input once stdin ended, before anything is committed: a sol-crypt
//! stream is complete, and --commit-file says `commit`.

use sol_common::Fail;
use sol_formats::crypt;
use sol_s3::S3Url;

use super::cli::Cli;
use super::reader::Summary;

/// With --commit-file, the pipeline upstream must have said `commit` by the time stdin ended.
pub fn check_commit(cli: &Cli, url: &S3Url) -> anyhow::Result<()> {
    let Some(f) = &cli.commit_file else {
        return Ok(());
    };
    let verdict = std::fs::read_to_string(f).unwrap_or_default();
    let first = verdict.lines().next().unwrap_or("").trim();
    if first != "commit" {
        let said = if first.is_empty() {
            "nothing".to_string()
        } else {
            format!("'{first}'")
        };
        anyhow::bail!(
            "{url}: not stored: the pipeline upstream failed ('{}' says {said})",
            f.display()
        );
    }
    Ok(())
}

/// A sol-crypt stream is only complete with its trailer (see sol-crypt(5)).
pub fn check_complete(sum: &Summary, require: bool, url: &S3Url) -> anyhow::Result<()> {
    match crypt::stream_is_complete(&sum.head, sum.total, &sum.tail) {
        Some(true) => {}
        Some(false) => Err(Fail::integrity(format!(
            "{url}: the sol-crypt stream ended early (no final chunk and trailer): not stored"
        )))?,
        None if require => Err(Fail::integrity(format!(
            "{url}: the input is not a sol-crypt stream (--require-complete): not stored"
        )))?,
        None => {}
    }
    Ok(())
}
