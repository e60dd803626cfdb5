//! What a stream is, from its first bytes: each decoder asks here when its input is not its
//! own format, so the message says what the input is and which stage comes first, e.g.
//! `this is a sol-crypt stream: decrypt it first with sol-crypt -d`. The magic numbers
//! themselves stay in each format's module.

/// Bytes a caller should offer (a tar header block); fewer are fine for the other formats.
pub const SNIFF_LEN: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gzip,
    SolCrypt,
    OpensslEnc,
    Tar,
}

/// The format `head` (the stream's first bytes) starts with, if it is one of the toolkit's.
pub fn sniff(head: &[u8]) -> Option<Kind> {
    if head.starts_with(crate::crypt::MAGIC) {
        Some(Kind::SolCrypt)
    } else if head.starts_with(crate::OPENSSL_ENC_MAGIC) {
        Some(Kind::OpensslEnc)
    } else if head.starts_with(&crate::zip::GZIP_MAGIC) {
        Some(Kind::Gzip)
    } else if head.len() >= 263 && &head[257..262] == b"ustar" {
        Some(Kind::Tar)
    } else {
        None
    }
}

/// Why `head` is not what the tool reading it expects: what it is, and the stage it needs
/// first; None when it is none of the toolkit's formats.
pub fn wrong_stage(head: &[u8]) -> Option<&'static str> {
    Some(match sniff(head)? {
        Kind::SolCrypt => "this is a sol-crypt stream: decrypt it first with sol-crypt -d",
        Kind::OpensslEnc => {
            "this is an openssl enc stream: decrypt it first with sol-crypt -d --openssl"
        }
        Kind::Gzip => "this is a gzip stream: decompress it first with sol-zip -d",
        Kind::Tar => "this is a tar stream (not compressed): read it with sol-tar or tar-md5",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(sniff(b"SOLCRYPT\x01"), Some(Kind::SolCrypt));
        assert_eq!(sniff(b"Salted__12345678"), Some(Kind::OpensslEnc));
        assert_eq!(sniff(&[0x1f, 0x8b, 8]), Some(Kind::Gzip));
        let mut tar = vec![0u8; 512];
        tar[257..263].copy_from_slice(b"ustar\0");
        assert_eq!(sniff(&tar), Some(Kind::Tar));
        assert_eq!(sniff(b"hello"), None);
    }
}
