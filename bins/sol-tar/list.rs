//! `sol-tar list`: entry names, or `tar -tv`-like lines with -v.

use std::io::{Read, Write};

use anyhow::Context;
use sol_common::Status;
use tar::EntryType;

use sol_formats::sparse;
use sol_formats::tar::{self as stream, corrupt};

fn type_char(t: EntryType) -> char {
    match t {
        EntryType::Directory => 'd',
        EntryType::Symlink => 'l',
        EntryType::Link => 'h',
        EntryType::Char => 'c',
        EntryType::Block => 'b',
        EntryType::Fifo => 'p',
        _ => '-',
    }
}

fn perms(mode: u32) -> String {
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o40, 'r'),
        (0o20, 'w'),
        (0o10, 'x'),
        (0o4, 'r'),
        (0o2, 'w'),
        (0o1, 'x'),
    ];
    bits.iter()
        .map(|&(b, c)| if mode & b != 0 { c } else { '-' })
        .collect()
}

pub fn list(input: impl Read, verbose: bool) -> anyhow::Result<Status> {
    let mut out = sol_common::stdio::text_output();
    let (mut archive, mut check) = stream::open(input)?;
    let mut entries = archive.entries().map_err(corrupt)?;
    while let Some(mut entry) = check.next(&mut entries)? {
        // A sparse member is listed as the file it stands for: real name, real size.
        let sparse = check.sparse(&mut entry)?;
        let name = sparse::real_name(&entry, sparse.as_ref());
        let size = sparse.as_ref().map_or(entry.size(), |s| s.real_size);
        let h = entry.header();
        if h.entry_type().is_pax_global_extensions() {
            continue;
        }
        let mut line = Vec::new();
        if verbose {
            let t = h.entry_type();
            line.extend_from_slice(
                format!(
                    "{}{} {}/{} {:>12} {} ",
                    type_char(t),
                    perms(h.mode().unwrap_or(0)),
                    h.uid().unwrap_or(0),
                    h.gid().unwrap_or(0),
                    size,
                    &sol_common::time::rfc3339(h.mtime().unwrap_or(0) as i64)[..16]
                        .replace('T', " "),
                )
                .as_bytes(),
            );
        }
        line.extend_from_slice(&name);
        if verbose {
            if let Some(target) = entry.link_name_bytes() {
                let arrow: &[u8] = if h.entry_type() == EntryType::Link {
                    b" link to "
                } else {
                    b" -> "
                };
                line.extend_from_slice(arrow);
                line.extend_from_slice(&target);
            }
        }
        line.push(b'\n');
        out.write_all(&line).context("writing output")?;
    }
    check.finish(archive.into_inner().count)?;
    out.flush().context("writing output")?;
    Ok(Status::Success)
}
