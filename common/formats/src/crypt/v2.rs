//! The sol-crypt v2 header (recipients and key files; documented in man/sol-crypt.5): the
//! same fields as v1 at 0..14 (magic, version 2, cipher, chunk size), then its length, the
//! salt, the stanzas and the MAC. Parsing is canonical: every length is checked, known
//! stanza types have their exact body length, and the stanzas fill the header exactly.
//! Sealing and opening the stanzas (X25519, the key file's wrap) are sol-crypt's.

use sol_common::hex;

use super::{Cipher, KEY_ID_LEN, MAGIC, MAX_CHUNK, MIN_CHUNK, SALT_LEN};

pub const VERSION: u8 = super::VERSION_2;
/// The file key every stanza seals.
pub const FILE_KEY_LEN: usize = 16;
/// How many bytes of a recipient's hash name it in its stanza.
pub const FINGERPRINT_LEN: usize = 8;
pub const FIXED_LEN: usize = 52;
pub const MAC_LEN: usize = 32;
pub const MIN_HEADER: usize = FIXED_LEN + 3 + MAC_LEN;
pub const MAX_HEADER: usize = 65536;
pub const TYPE_X25519: u8 = 1;
pub const TYPE_KEY: u8 = 2;
pub const SEALED_LEN: usize = FILE_KEY_LEN + 16;
pub const X25519_BODY: usize = FINGERPRINT_LEN + 32 + SEALED_LEN;
const KEY_BODY: usize = KEY_ID_LEN + SEALED_LEN;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stanza {
    X25519 {
        fingerprint: [u8; FINGERPRINT_LEN],
        share: [u8; 32],
        sealed: [u8; SEALED_LEN],
    },
    Key {
        key_id: [u8; KEY_ID_LEN],
        sealed: [u8; SEALED_LEN],
    },
    /// A type this version does not know: skipped (as age's identities skip stanzas they do
    /// not recognise), yet covered by the MAC.
    Unknown { kind: u8, body: Vec<u8> },
}

impl Stanza {
    /// How `sol-crypt info` and messages show it: its type and whom it is for, no secret.
    pub fn describe(&self) -> String {
        match self {
            Stanza::X25519 { fingerprint, .. } => {
                format!("x25519 recipient fingerprint {}", hex(fingerprint))
            }
            Stanza::Key { key_id, .. } => format!("key-file key id {}", hex(key_id)),
            Stanza::Unknown { kind, body } => format!("unknown type {kind} ({} bytes)", body.len()),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let (kind, body): (u8, Vec<u8>) = match self {
            Stanza::X25519 {
                fingerprint,
                share,
                sealed,
            } => (TYPE_X25519, [&fingerprint[..], share, sealed].concat()),
            Stanza::Key { key_id, sealed } => (TYPE_KEY, [&key_id[..], sealed].concat()),
            Stanza::Unknown { kind, body } => (*kind, body.clone()),
        };
        out.push(kind);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(&body);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub chunk_size: u32,
    pub salt: [u8; SALT_LEN],
    pub stanzas: Vec<Stanza>,
}

impl Header {
    /// Every byte before the MAC (the header length field counts the MAC).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(FIXED_LEN + 80 * self.stanzas.len());
        b.extend_from_slice(MAGIC);
        b.push(VERSION);
        b.push(Cipher::Aes256Gcm as u8);
        b.extend_from_slice(&self.chunk_size.to_be_bytes());
        b.extend_from_slice(&[0; 4]); // the length, below
        b.extend_from_slice(&self.salt);
        b.extend_from_slice(&(self.stanzas.len() as u16).to_be_bytes());
        for s in &self.stanzas {
            s.encode(&mut b);
        }
        let total = (b.len() + MAC_LEN) as u32;
        b[14..18].copy_from_slice(&total.to_be_bytes());
        b
    }

    /// Parse a whole header (MAC included; the caller checks it once it has the file key).
    /// Every length is checked, and only the canonical layout is accepted: known stanza types
    /// have their exact body length, the stanzas fill the header exactly.
    pub fn parse(raw: &[u8]) -> Result<Header, HeaderError> {
        let (chunk_size, salt, count) = parse_fixed(raw)?;
        let stanzas = parse_stanzas(raw, count)?;
        Ok(Header {
            chunk_size,
            salt,
            stanzas,
        })
    }

    pub fn describe_stanzas(&self) -> String {
        let all: Vec<String> = self.stanzas.iter().map(Stanza::describe).collect();
        all.join(", ")
    }
}

/// The fixed fields before the stanzas (magic, version, cipher, chunk size, header length,
/// salt, stanza count), each checked: the chunk size, salt and stanza count.
fn parse_fixed(raw: &[u8]) -> Result<(u32, [u8; SALT_LEN], u16), HeaderError> {
    if raw.len() < MIN_HEADER || &raw[..8] != MAGIC || raw[8] != VERSION {
        return Err(HeaderError::NotV2);
    }
    if raw[9] != Cipher::Aes256Gcm as u8 {
        return Err(HeaderError::UnknownCipher { code: raw[9] });
    }
    let chunk_size = u32::from_be_bytes(raw[10..14].try_into().expect("4 bytes"));
    if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk_size) {
        return Err(HeaderError::ChunkSizeOutOfRange { chunk_size });
    }
    let len = u32::from_be_bytes(raw[14..18].try_into().expect("4 bytes")) as usize;
    if len != raw.len() {
        return Err(HeaderError::LengthMismatch {
            stated: len,
            actual: raw.len(),
        });
    }
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&raw[18..50]);
    let count = u16::from_be_bytes([raw[50], raw[51]]);
    if count == 0 {
        return Err(HeaderError::NoStanza);
    }
    Ok((chunk_size, salt, count))
}

/// The `count` stanzas after the fixed fields, which must fill the header up to the MAC
/// exactly.
fn parse_stanzas(raw: &[u8], count: u16) -> Result<Vec<Stanza>, HeaderError> {
    let body_end = raw.len() - MAC_LEN;
    let mut at = FIXED_LEN;
    let mut stanzas = Vec::with_capacity(usize::from(count).min(raw.len() / 3));
    for i in 0..count {
        let (kind, body) = stanza_at(raw, &mut at, body_end)
            .ok_or(HeaderError::StanzaPastHeader { index: i, count })?;
        stanzas.push(Stanza::from_body(i, kind, body)?);
    }
    if at != body_end {
        return Err(HeaderError::TrailingBytes {
            bytes: body_end - at,
        });
    }
    Ok(stanzas)
}

/// The type and body of the stanza at `*at`, moving `at` past it; None when it runs past
/// `end`.
fn stanza_at<'a>(raw: &'a [u8], at: &mut usize, end: usize) -> Option<(u8, &'a [u8])> {
    if *at + 3 > end {
        return None;
    }
    let kind = raw[*at];
    let n = usize::from(u16::from_be_bytes([raw[*at + 1], raw[*at + 2]]));
    *at += 3;
    if *at + n > end {
        return None;
    }
    let body = &raw[*at..*at + n];
    *at += n;
    Some((kind, body))
}

impl Stanza {
    /// Stanza `i` of type `kind` from its body; a known type must have its exact length.
    fn from_body(i: u16, kind: u8, body: &[u8]) -> Result<Stanza, HeaderError> {
        let n = body.len();
        let want = match kind {
            TYPE_X25519 => X25519_BODY,
            TYPE_KEY => KEY_BODY,
            _ => n,
        };
        if n != want {
            return Err(HeaderError::StanzaLength {
                index: i,
                kind,
                len: n,
                want,
            });
        }
        Ok(match kind {
            TYPE_X25519 => Stanza::X25519 {
                fingerprint: body[..8].try_into().expect("8 bytes"),
                share: body[8..40].try_into().expect("32 bytes"),
                sealed: body[40..].try_into().expect("32 bytes"),
            },
            TYPE_KEY => Stanza::Key {
                key_id: body[..8].try_into().expect("8 bytes"),
                sealed: body[8..].try_into().expect("32 bytes"),
            },
            _ => Stanza::Unknown {
                kind,
                body: body.to_vec(),
            },
        })
    }
}

/// Why a v2 header is refused: one kind each; the text is what sol-crypt prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    NotV2,
    UnknownCipher {
        code: u8,
    },
    ChunkSizeOutOfRange {
        chunk_size: u32,
    },
    /// The header length field and the bytes read disagree.
    LengthMismatch {
        stated: usize,
        actual: usize,
    },
    NoStanza,
    /// Stanza INDEX of COUNT runs past the header.
    StanzaPastHeader {
        index: u16,
        count: u16,
    },
    /// Bytes between the last stanza and the MAC.
    TrailingBytes {
        bytes: usize,
    },
    /// A known stanza type with another body length.
    StanzaLength {
        index: u16,
        kind: u8,
        len: usize,
        want: usize,
    },
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        use HeaderError::*;
        match *self {
            NotV2 => write!(f, "not a sol-crypt v2 header"),
            UnknownCipher { code } => write!(f, "unknown cipher {code} in header"),
            ChunkSizeOutOfRange { chunk_size } => {
                write!(f, "chunk size {chunk_size} out of range in header")
            }
            LengthMismatch { stated, actual } => {
                write!(f, "header length {stated} does not match ({actual})")
            }
            NoStanza => write!(f, "no stanza in header"),
            StanzaPastHeader { index, count } => {
                write!(f, "stanza {index} of {count} runs past the header")
            }
            TrailingBytes { bytes } => write!(f, "{bytes} bytes after the last stanza"),
            StanzaLength {
                index,
                kind,
                len,
                want,
            } => {
                write!(
                    f,
                    "stanza {index} (type {kind}) has {len} bytes, not {want}"
                )
            }
        }
    }
}

impl std::error::Error for HeaderError {}
