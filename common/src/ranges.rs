//! Lists of byte (or chunk) ranges on a command line: `A-B[,C-D]...`, each inclusive at both
//! ends as in HTTP's Range header and `curl -r`, in increasing order and not overlapping.
//! Inside the tools a range is half-open (`start..end`).

use std::ops::Range;

/// Parse `A-B[,C-D]...` (inclusive) into half-open ranges; they must be increasing and must
/// not overlap (they may touch).
pub fn parse(s: &str) -> Result<Vec<Range<u64>>, String> {
    let mut out: Vec<Range<u64>> = Vec::new();
    for part in s.split(',') {
        let (a, b) = part
            .split_once('-')
            .ok_or_else(|| format!("'{part}' is not a range FIRST-LAST"))?;
        let num = |t: &str| -> Result<u64, String> {
            if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
                return Err(format!(
                    "'{part}' is not a range FIRST-LAST (whole numbers)"
                ));
            }
            t.parse::<u64>().map_err(|_| format!("'{t}' is too large"))
        };
        let (a, b) = (num(a)?, num(b)?);
        if b < a {
            return Err(format!("'{part}': its last is before its first"));
        }
        let end = b
            .checked_add(1)
            .ok_or_else(|| format!("'{b}' is too large"))?;
        if let Some(prev) = out.last() {
            if a < prev.end {
                return Err(format!("'{part}' overlaps or precedes the range before it"));
            }
        }
        out.push(a..end);
    }
    Ok(out)
}

/// A parsed list, as one command-line value (clap would take a bare `Vec` for a repeated
/// option).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct List(pub Vec<Range<u64>>);

/// [`parse`] for clap's `value_parser`.
pub fn list(s: &str) -> Result<List, String> {
    parse(s).map(List)
}

/// The inclusive text of half-open ranges (none may be empty).
pub fn format(ranges: &[Range<u64>]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|r| format!("{}-{}", r.start, r.end - 1))
        .collect();
    parts.join(",")
}

/// The number of bytes (or chunks) the ranges cover.
pub fn total(ranges: &[Range<u64>]) -> u64 {
    ranges.iter().map(|r| r.end - r.start).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inclusive_on_the_line_half_open_inside() {
        assert_eq!(parse("0-85,100-199").unwrap(), vec![0..86, 100..200]);
        assert_eq!(format(&[0..86, 100..200]), "0-85,100-199");
        assert_eq!(parse("5-5").unwrap(), vec![5..6]);
        assert_eq!(parse("0-9,10-19").unwrap(), vec![0..10, 10..20]);
        assert_eq!(total(&[0..86, 100..200]), 186);
    }

    #[test]
    fn malformed_lists_are_refused() {
        for bad in [
            "",
            "5",
            "-5",
            "5-",
            "a-b",
            "9-3",
            "0-9,5-12",
            "10-19,0-9",
            "0-9,,20-29",
            "0-1,",
            " 1-2",
            "0x1-0x2",
            "0-18446744073709551615",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
