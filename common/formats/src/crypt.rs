//! The sol-crypt v1 stream format (documented in man/sol-crypt.5).
//!
//! ```text
//! header (86 bytes)
//!   0  magic "SOLCRYPT"      8
//!   8  version = 1           1
//!   9  cipher (1=AES-128-GCM, 2=AES-256-GCM)  1
//!  10  chunk size, u32 BE    4   plaintext bytes per chunk
//!  14  salt                 32   random per stream
//!  46  key id                8   HKDF(site key, "sol-crypt v1 key id")
//!  54  header MAC           32   HMAC-SHA256(header key, bytes 0..54)
//! chunks
//!   ciphertext (chunk size bytes, or fewer for the final chunk) + 16-byte GCM tag
//!   nonce = 11-byte big-endian chunk counter || 0x00 (0x01 for the final chunk)
//!   the final chunk is always shorter than the chunk size (possibly empty)
//! trailer (16 bytes)
//!   magic "SOLC-END" + total plaintext length, u64 BE; the final chunk's AAD
//! ```
//! Completeness can be checked without the key from the total length and the trailer: see
//! [`is_complete`], or [`stream_is_complete`] for a whole stream seen from outside. Version 2
//! (recipients: [`v2`]) has the same fields at 0..14, then its header length: see
//! [`header_len`]. The ciphers themselves (OpenSSL) are sol-crypt's: this crate
//! only frames.

pub mod v2;

pub const MAGIC: &[u8; 8] = b"SOLCRYPT";
pub const VERSION: u8 = 1;
/// Stanzas for recipients and key files ([`v2`]); the header length at 14..18.
pub const VERSION_2: u8 = 2;
pub const HEADER_LEN: usize = 86;
pub const MAC_OFFSET: usize = 54;
pub const TAG_LEN: usize = 16;
pub const SALT_LEN: usize = 32;
pub const KEY_ID_LEN: usize = 8;
pub const TRAILER_LEN: usize = 16;
pub const TRAILER_MAGIC: &[u8; 8] = b"SOLC-END";
pub const MIN_CHUNK: u32 = 1 << 10;
pub const MAX_CHUNK: u32 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    Aes128Gcm = 1,
    Aes256Gcm = 2,
}

impl Cipher {
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Gcm => 16,
            Cipher::Aes256Gcm => 32,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes128Gcm => "AES-128-GCM",
            Cipher::Aes256Gcm => "AES-256-GCM",
        }
    }
}

/// Why a sol-crypt header is refused: one kind each. The text of each is what the tools
/// print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptError {
    NotSolCrypt,
    UnsupportedVersion { version: u8 },
    UnknownCipher { code: u8 },
    ChunkSizeOutOfRange { chunk_size: u32 },
}

impl std::fmt::Display for CryptError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            CryptError::NotSolCrypt => write!(f, "not a sol-crypt stream (bad magic)"),
            CryptError::UnsupportedVersion { version } => {
                write!(f, "unsupported sol-crypt version {version}")
            }
            CryptError::UnknownCipher { code } => write!(f, "unknown cipher {code} in header"),
            CryptError::ChunkSizeOutOfRange { chunk_size } => {
                write!(f, "chunk size {chunk_size} out of range in header")
            }
        }
    }
}

impl std::error::Error for CryptError {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub cipher: Cipher,
    pub chunk_size: u32,
    pub salt: [u8; SALT_LEN],
    pub key_id: [u8; KEY_ID_LEN],
}

impl Header {
    /// The 54 bytes the MAC covers.
    pub fn signed_bytes(&self) -> [u8; MAC_OFFSET] {
        let mut b = [0u8; MAC_OFFSET];
        b[..8].copy_from_slice(MAGIC);
        b[8] = VERSION;
        b[9] = self.cipher as u8;
        b[10..14].copy_from_slice(&self.chunk_size.to_be_bytes());
        b[14..46].copy_from_slice(&self.salt);
        b[46..54].copy_from_slice(&self.key_id);
        b
    }

    /// Parse the unauthenticated fields (the caller checks the MAC once it has the key).
    pub fn parse(b: &[u8; HEADER_LEN]) -> Result<Header, CryptError> {
        if &b[..8] != MAGIC {
            return Err(CryptError::NotSolCrypt);
        }
        if b[8] != VERSION {
            return Err(CryptError::UnsupportedVersion { version: b[8] });
        }
        let cipher = match b[9] {
            1 => Cipher::Aes128Gcm,
            2 => Cipher::Aes256Gcm,
            code => return Err(CryptError::UnknownCipher { code }),
        };
        let chunk_size = u32::from_be_bytes([b[10], b[11], b[12], b[13]]);
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk_size) {
            return Err(CryptError::ChunkSizeOutOfRange { chunk_size });
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&b[14..46]);
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(&b[46..54]);
        Ok(Header {
            cipher,
            chunk_size,
            salt,
            key_id,
        })
    }
}

/// The header length of a sol-crypt stream of either version from its first bytes (at least
/// 18), without the key; None when `head` is not the start of one.
pub fn header_len(head: &[u8]) -> Option<u64> {
    if head.len() < 18 || &head[..8] != MAGIC {
        return None;
    }
    match head[8] {
        VERSION => Some(HEADER_LEN as u64),
        VERSION_2 => Some(u64::from(u32::from_be_bytes([
            head[14], head[15], head[16], head[17],
        ]))),
        _ => None,
    }
}

/// 96-bit GCM nonce of chunk `counter`.
pub fn nonce(counter: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// The trailer that closes a stream of `plain_len` plaintext bytes.
pub fn trailer(plain_len: u64) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    t[..8].copy_from_slice(TRAILER_MAGIC);
    t[8..].copy_from_slice(&plain_len.to_be_bytes());
    t
}

/// Sealed bytes after the header for `plain_len` bytes of plaintext (chunks and trailer).
pub fn sealed_len(plain_len: u64, chunk_size: u32) -> u64 {
    let c = u64::from(chunk_size);
    let tag = TAG_LEN as u64;
    (plain_len / c) * (c + tag) + (plain_len % c) + tag + TRAILER_LEN as u64
}

/// Whether a stream whose part after the header is `len_after_header` bytes long and ends
/// with `last16` is complete: the trailer is there and its length accounts for every byte.
/// Needs no key (s3-mput uses it); the trailer itself is authenticated on decryption.
pub fn is_complete(len_after_header: u64, chunk_size: u32, last16: &[u8]) -> bool {
    if last16.len() != TRAILER_LEN || &last16[..8] != TRAILER_MAGIC {
        return false;
    }
    let plain_len = u64::from_be_bytes(last16[8..].try_into().expect("8 bytes"));
    plain_len <= u64::MAX / 2 && sealed_len(plain_len, chunk_size) == len_after_header
}

/// Whether a stream is a sol-crypt stream of either version (None when `head`, its first
/// bytes, does not start with a whole header) and then whether it is complete: `total` bytes long in all,
/// ending with `last16`. What `sol-crypt info` says, from the outside (s3-mput refuses to
/// store an incomplete stream). Needs no key.
pub fn stream_is_complete(head: &[u8], total: u64, last16: &[u8]) -> Option<bool> {
    let header_len = header_len(head).filter(|_| head.len() >= HEADER_LEN)?;
    let chunk_size = u32::from_be_bytes([head[10], head[11], head[12], head[13]]);
    let rest = total.checked_sub(header_len);
    Some(rest.is_some_and(|rest| is_complete(rest, chunk_size, last16)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completeness_needs_the_trailer_and_the_right_length() {
        let c = 1024u32;
        assert_eq!(sealed_len(0, c), 16 + 16); // one empty final chunk + trailer
        assert_eq!(sealed_len(1024, c), 1040 + 16 + 16); // full chunk, empty final, trailer
        assert_eq!(sealed_len(1500, c), 1040 + 476 + 16 + 16);
        assert!(is_complete(32, c, &trailer(0)));
        assert!(is_complete(1040 + 476 + 32, c, &trailer(1500)));
        assert!(!is_complete(1040 + 476 + 32, c, &trailer(1499)));
        assert!(!is_complete(1040 + 476 + 31, c, &trailer(1500)));
        let mut cut = trailer(1500);
        cut[0] = b'x';
        assert!(!is_complete(1040 + 476 + 32, c, &cut));
        assert!(!is_complete(0, c, &[]));
    }

    /// A header as written (its MAC left zero: no key here).
    fn header(cipher: Cipher, chunk_size: u32) -> (Header, [u8; HEADER_LEN]) {
        let h = Header {
            cipher,
            chunk_size,
            salt: [7; 32],
            key_id: [9; 8],
        };
        let mut full = [0u8; HEADER_LEN];
        full[..MAC_OFFSET].copy_from_slice(&h.signed_bytes());
        (h, full)
    }

    #[test]
    fn a_whole_stream_is_judged_from_its_header_length_and_end() {
        let (_, head) = header(Cipher::Aes128Gcm, 1024);
        let total = HEADER_LEN as u64 + sealed_len(1500, 1024);
        assert_eq!(stream_is_complete(&head, total, &trailer(1500)), Some(true));
        assert_eq!(
            stream_is_complete(&head, total - 1, &trailer(1500)),
            Some(false)
        );
        assert_eq!(stream_is_complete(&head[..50], total, &trailer(1500)), None);
        assert_eq!(stream_is_complete(b"Salted__", 8, &[]), None);
    }

    #[test]
    fn header_round_trip_and_nonce_layout() {
        let (h, mut full) = header(Cipher::Aes256Gcm, 65536);
        assert_eq!(Header::parse(&full).unwrap(), h);
        full[0] = b'X';
        assert_eq!(Header::parse(&full), Err(CryptError::NotSolCrypt));
        full[0] = MAGIC[0];
        full[9] = 7;
        assert_eq!(
            Header::parse(&full),
            Err(CryptError::UnknownCipher { code: 7 })
        );
        assert_eq!(nonce(1, true), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(nonce(0x0102, false)[9..], [1, 2, 0]);
    }
}
