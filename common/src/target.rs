//! How a target is written: `s3://BUCKET/KEY`, or `PROFILE:s3://BUCKET/KEY` for one reached
//! through a profile of the shared AWS config files (the S3 tools connect it: sol-s3's
//! `target`). The one rule for the syntax, for the S3 tools and the drivers alike.

/// A profile name as a target may carry it: letters, digits, `_ . -` (the colon that ends
/// it cannot be part of it).
pub fn valid_profile(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `PROFILE` split from the rest of a target, when it has one: (`Some("a")`, `s3://b/k`)
/// for `a:s3://b/k`, (None, the whole) otherwise.
pub fn split(s: &str) -> (Option<&str>, &str) {
    match s.split_once(':') {
        Some((p, rest)) if rest.starts_with("s3://") && valid_profile(p) => (Some(p), rest),
        _ => (None, s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_at_the_profile() {
        assert_eq!(split("s3://b/k"), (None, "s3://b/k"));
        assert_eq!(split("ceph:s3://b/k"), (Some("ceph"), "s3://b/k"));
        assert_eq!(split("a.b_c-1:s3://b/"), (Some("a.b_c-1"), "s3://b/"));
        for whole in [
            ":s3://b/k",
            "a b:s3://b/k",
            "a/b:s3://b/k",
            "http://b/k",
            "a:b",
        ] {
            assert_eq!(split(whole), (None, whole), "{whole}");
        }
    }
}
