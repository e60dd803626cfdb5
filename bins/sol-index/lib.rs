//! sol-index: the restore index of an archive (its format is sol_formats::index, its
//! contract man/sol-index.1): made from each stage's side file, listed, turned into the byte
//! ranges that hold some paths, and used to cut and check what a partial restore brings.

pub mod cli;

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use sol_common::stdio::{self, read_full, BLOCK};
use sol_common::{ranges, Fail, Status};
use sol_formats::index::{escape, Index, Kind};

use cli::{Cli, Cmd};

pub const TOOL: &str = "sol-index";

pub fn main() -> ExitCode {
    sol_common::finish(TOOL, run(sol_common::parse_cli::<Cli>(TOOL)))
}

fn read_text(path: Option<&Path>) -> anyhow::Result<String> {
    let name = path.map_or("stdin".to_string(), |p| format!("'{}'", p.display()));
    let mut bytes = Vec::new();
    stdio::open_input(path)?
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {name}"))?;
    String::from_utf8(bytes)
        .map_err(|_| Fail::integrity(format!("{name}: not an index (not text)")).into())
}

/// An index file, refused with status 3 when it is not a whole, consistent index.
fn load(path: Option<&Path>) -> anyhow::Result<Index> {
    let text = read_text(path)?;
    Index::parse(&text).map_err(|e| Fail::integrity(format!("not a valid index: {e}")).into())
}

fn bytes(paths: &[OsString]) -> Vec<Vec<u8>> {
    paths.iter().map(|p| p.as_bytes().to_vec()).collect()
}

/// The members PATH... name, or status 1 naming the first PATH that is not in the archive.
fn select(ix: &Index, paths: &[OsString]) -> anyhow::Result<Vec<usize>> {
    ix.select(&bytes(paths)).map_err(|e| anyhow::anyhow!(e))
}

/// One subcommand: make, list, plan, cut or verify.
pub fn run(cli: Cli) -> anyhow::Result<Status> {
    match cli.cmd {
        Cmd::Make {
            tar,
            zip,
            crypt,
            size,
            etag,
        } => make(&tar, &zip, &crypt, size, &etag)?,
        Cmd::List { index } => list(index.as_deref())?,
        Cmd::Plan { index, paths } => plan(&index, &paths)?,
        Cmd::Cut {
            ranges,
            tar_end,
            force,
        } => {
            let mut out = stdio::binary_output(force)?;
            cut(&mut stdio::input(), &mut out, &ranges.0, tar_end)?;
            out.flush().context("writing output")?;
        }
        Cmd::Verify { index, dir, paths } => {
            let ix = load(Some(&index))?;
            verify(&ix, &select(&ix, &paths)?, &dir)?;
        }
    }
    Ok(Status::Success)
}

/// `make`: the index from the side files of sol-tar, sol-zip and sol-crypt and the stored
/// object's size and ETag, written to stdout.
fn make(tar: &Path, zip: &Path, crypt: &Path, size: u64, etag: &str) -> anyhow::Result<()> {
    let part = |p: &Path| read_text(Some(p));
    let ix = Index::make(&part(tar)?, &part(zip)?, &part(crypt)?, size, etag)
        .map_err(|e| Fail::integrity(format!("the parts do not make an index: {e}")))?;
    let mut out = stdio::text_output();
    out.write_all(ix.render().as_bytes())
        .and_then(|()| out.flush())
        .context("writing output")?;
    Ok(())
}

/// `list`: one line per archive member (type, size, mtime, path; a link's target).
fn list(index: Option<&Path>) -> anyhow::Result<()> {
    let ix = load(index)?;
    let mut out = stdio::text_output();
    for e in &ix.tar {
        let link = match e.kind {
            Kind::Symlink | Kind::HardLink => format!(" -> {}", escape(&e.link)),
            _ => String::new(),
        };
        writeln!(
            out,
            "{} {:>12} {} {}{link}",
            e.kind.letter(),
            e.size,
            sol_common::time::rfc3339(e.mtime),
            escape(&e.path)
        )
        .context("writing output")?;
    }
    out.flush().context("writing output")?;
    Ok(())
}

/// `plan`: what a partial restore of PATH... fetches and cuts, as `name<TAB>value` lines.
fn plan(index: &Path, paths: &[OsString]) -> anyhow::Result<()> {
    let ix = load(Some(index))?;
    let plan = ix.plan(&select(&ix, paths)?);
    let mut out = stdio::text_output();
    let text = format!(
        "archive\t{}\t{}\nmembers\t{}\nfetch-bytes\t{}\nfetch\t{}\nchunks\t{}\nzip\t{}\ntar\t{}\n",
        ix.size,
        escape(ix.etag.as_bytes()),
        plan.members,
        plan.fetch_bytes(),
        ranges::format(&plan.fetch),
        ranges::format(&plan.chunks),
        ranges::format(&plan.zip_cut),
        ranges::format(&plan.tar_cut),
    );
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing output")?;
    Ok(())
}

/// Copy `ranges` of `input` to `out`, then read `input` to its end (so the stage before
/// never sees a closed pipe); with `tar_end`, close with two zero blocks.
pub fn cut(
    input: &mut impl Read,
    out: &mut impl Write,
    ranges: &[std::ops::Range<u64>],
    tar_end: bool,
) -> anyhow::Result<()> {
    let mut buf = vec![0u8; BLOCK];
    let mut at = 0u64;
    for r in ranges {
        while at < r.end {
            let want = (r.end - at).min(buf.len() as u64) as usize;
            let n = read_full(input, &mut buf[..want]).context("reading input")?;
            if n == 0 {
                return Err(Fail::integrity(format!(
                    "the input ended at byte {at}, before the end of range {}-{}",
                    r.start,
                    r.end - 1
                ))
                .into());
            }
            let keep_from = r.start.saturating_sub(at).min(n as u64) as usize;
            out.write_all(&buf[keep_from..n])
                .context("writing output")?;
            at += n as u64;
        }
    }
    if tar_end {
        out.write_all(&[0u8; 1024]).context("writing output")?;
    }
    io::copy(input, &mut io::sink()).context("reading input")?;
    Ok(())
}

/// Each chosen member as restored under `dir`: its type, a file's size, a symlink's target.
fn verify(ix: &Index, chosen: &[usize], dir: &Path) -> anyhow::Result<()> {
    let mut bad = Vec::new();
    for &i in chosen {
        let e = &ix.tar[i];
        let name = escape(&e.path);
        let path = dir.join(std::ffi::OsStr::from_bytes(e.name()));
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(err) => {
                bad.push(format!("'{name}': {}", sol_common::io_msg(&err)));
                continue;
            }
        };
        let t = meta.file_type();
        let problem = match e.kind {
            Kind::Dir => (!t.is_dir()).then(|| "is not a directory".to_string()),
            Kind::HardLink => (!t.is_file()).then(|| "is not a file".to_string()),
            Kind::File if !t.is_file() => Some("is not a file".to_string()),
            Kind::File => (meta.size() != e.size)
                .then(|| format!("has {} bytes, the index says {}", meta.size(), e.size)),
            Kind::Symlink if !t.is_symlink() => Some("is not a symlink".to_string()),
            Kind::Symlink => {
                let target = fs::read_link(&path).context("reading a symlink")?;
                (target.as_os_str().as_bytes() != e.link.as_slice()).then(|| {
                    format!(
                        "points to '{}', the index says '{}'",
                        escape(target.as_os_str().as_bytes()),
                        escape(&e.link)
                    )
                })
            }
        };
        if let Some(p) = problem {
            bad.push(format!("'{name}' {p}"));
        }
    }
    match bad.len() {
        0 => Ok(()),
        1 => Err(Fail::integrity(format!("restored member {}", bad[0])).into()),
        n => {
            Err(Fail::integrity(format!("restored member {} (and {} more)", bad[0], n - 1)).into())
        }
    }
}
