use std::ffi::OsString;

use clap::Parser;
use sol_common::ManText;

/// Smallest and largest --block-size: gzp needs at least a 32 KiB window; the decoder refuses
/// members beyond member::MAX_BLOCK.
fn parse_block(s: &str) -> Result<usize, String> {
    let n = sol_common::parse_size(s)?;
    let (min, max) = (64u64 << 10, 8u64 << 20);
    if !(min..=max).contains(&n) {
        return Err(format!("block size must be between {min} and {max} bytes"));
    }
    Ok(n as usize)
}

/// Parallel gzip: compress stdin to stdout, or decompress with -d.
///
/// Output is standard gzip (gunzip, pigz -d, zcat and any zlib reader decode it), written as
/// independent members with a size index (Mgzip framing) so that `sol-zip -d` decompresses
/// it on all cores. `sol-zip -d` also decodes any other gzip stream, single-threaded. Every
/// member's CRC-32 and length are verified; a truncated or corrupt stream exits with status 3.
#[derive(Debug, Parser)]
#[command(name = "sol-zip", version, max_term_width = 100)]
pub struct Cli {
    /// Decompress instead of compress.
    #[arg(short = 'd', long = "decompress")]
    pub decompress: bool,

    /// Compression level, 1 (fastest) to 9 (smallest); -1 .. -9 are accepted as well.
    #[arg(short = 'l', long = "level", default_value_t = 6,
          value_parser = clap::value_parser!(u32).range(1..=9))]
    pub level: u32,

    /// Worker threads [default: all cores].
    #[arg(short = 'p', long = "threads", value_name = "THREADS",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,

    /// Bytes of input per independently compressed member. Larger blocks compress a little
    /// better (fewer dictionary resets); each thread holds about two blocks.
    #[arg(short = 'b', long = "block-size", value_name = "SIZE", default_value = "1M",
          value_parser = parse_block)]
    pub block_size: usize,

    /// When compressing: once the stream is complete, write to FILE where each member's
    /// input and output lie (sol-zip's part of the restore index, see sol-index(1)).
    #[arg(long, value_name = "FILE", conflicts_with = "decompress")]
    pub index: Option<std::path::PathBuf>,

    /// Write binary data even when stdout is a terminal.
    #[arg(short = 'f', long = "force")]
    pub force: bool,

    /// Write to stdout (always so; accepted for gzip compatibility).
    #[arg(short = 'c', long = "stdout", hide = true)]
    pub stdout: bool,

    /// Show bytes, rate and elapsed time on stderr.
    #[arg(long)]
    pub progress: bool,

    /// Input file; stdin when absent or '-'. Output always goes to stdout.
    #[arg(value_name = "FILE")]
    pub file: Option<String>,
}

/// gzip's `-1` .. `-9` become `--level=N` before clap sees them (clap has no numeric flags).
pub fn expand_level_flags(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut options_done = false;
    for arg in args {
        let is_level = !options_done
            && arg.to_str().is_some_and(|s| {
                s.len() == 2 && s.starts_with('-') && s.as_bytes()[1].is_ascii_digit() && s != "-0"
            });
        if arg == "--" {
            options_done = true;
        }
        if is_level {
            let s = arg.to_str().unwrap_or_default();
            out.push(OsString::from(format!("--level={}", &s[1..])));
        } else {
            out.push(arg);
        }
    }
    out
}

/// The man page's own text: bins/man.rs adds the rest from the definitions above.
pub const MAN: ManText = ManText::new(include_str!("man.roff"), include_str!("end.roff"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_flags_expand() {
        let args = ["sol-zip", "-9", "-d", "--", "-3"].map(OsString::from);
        let got = expand_level_flags(args);
        assert_eq!(
            got,
            ["sol-zip", "--level=9", "-d", "--", "-3"].map(OsString::from)
        );
    }
}
