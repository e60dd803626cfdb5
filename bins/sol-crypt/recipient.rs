//! The sol-crypt v2 header: a random file key per stream, sealed in one stanza per
//! recipient (X25519, as age does) or key file, the whole header authenticated with a MAC
//! keyed from the file key. The payload is v1's chunked AES-GCM STREAM (stream.rs) under a
//! key derived from the file key. Specified in man/sol-crypt.5.
//!
//! ```text
//! header (H bytes)
//!   0  magic "SOLCRYPT"       8
//!   8  version = 2            1
//!   9  cipher = 2 (AES-256-GCM) 1
//!  10  chunk size, u32 BE     4
//!  14  header length H, u32 BE 4   87 ..= 65536, the MAC included
//!  18  salt                  32   random per stream
//!  50  stanza count N, u16 BE 2   at least 1
//!  52  N stanzas: type (1) || body length, u16 BE (2) || body
//!        type 1 X25519:   recipient fingerprint (8) || ephemeral share (32) || sealed file key (32)
//!        type 2 key file: key id (8) || sealed file key (32)
//! H-32 header MAC          32   HMAC-SHA256(HKDF(file key, salt, "sol-crypt v2 header"), bytes 0..H-32)
//! ```

use sol_common::exit::integrity;
use std::io::{Read, Write};
use std::ops::Range;
use std::path::PathBuf;

use anyhow::Context;
use openssl::derive::Deriver;
use openssl::pkey::{PKey, Private};
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher as SymmCipher};
use sol_common::progress::Progress;
use sol_common::stdio::read_full;
use sol_common::Fail;

use super::identity::{Identity, Recipient};
use super::key::{self, Secret, SiteKey};
use super::stream;
use sol_common::hex;
use sol_formats::crypt::{self as format, Cipher, SALT_LEN};
use zeroize::Zeroizing;

pub use format::v2::FILE_KEY_LEN;
#[cfg(test)]
use format::v2::X25519_BODY;
pub use format::v2::{
    Header, HeaderError, Stanza, FIXED_LEN, MAC_LEN, MAX_HEADER, MIN_HEADER, SEALED_LEN, TYPE_KEY,
    TYPE_X25519, VERSION,
};

/// A stream's file key, wiped when dropped.
pub type FileKey = Zeroizing<[u8; FILE_KEY_LEN]>;
const X25519_LABEL: &[u8] = b"sol-crypt v2 X25519";

/// The keys of one stream, from its file key and salt.
pub fn payload_key(file_key: &[u8; FILE_KEY_LEN], salt: &[u8; SALT_LEN]) -> Secret {
    key::hkdf(file_key, salt, b"sol-crypt v2 payload", 32)
}

pub fn header_mac(file_key: &[u8; FILE_KEY_LEN], salt: &[u8; SALT_LEN], signed: &[u8]) -> [u8; 32] {
    let k = key::hkdf(file_key, salt, b"sol-crypt v2 header", 32);
    key::hmac_sha256(&k, signed)
}

/// ChaCha20-Poly1305 with the all-zero nonce (each wrap key seals one file key only).
fn seal(wrap_key: &[u8], file_key: &[u8; FILE_KEY_LEN]) -> [u8; SEALED_LEN] {
    let mut tag = [0u8; 16];
    let ct = encrypt_aead(
        SymmCipher::chacha20_poly1305(),
        wrap_key,
        Some(&[0; 12]),
        &[],
        file_key,
        &mut tag,
    )
    .expect("ChaCha20-Poly1305 is available in OpenSSL 1.1 and later");
    let mut out = [0u8; SEALED_LEN];
    out[..FILE_KEY_LEN].copy_from_slice(&ct);
    out[FILE_KEY_LEN..].copy_from_slice(&tag);
    out
}

/// The sealed length is fixed by the stanza's length check before this is called.
fn open(wrap_key: &[u8], sealed: &[u8; SEALED_LEN]) -> Option<FileKey> {
    let pt = Zeroizing::new(
        decrypt_aead(
            SymmCipher::chacha20_poly1305(),
            wrap_key,
            Some(&[0; 12]),
            &[],
            &sealed[..FILE_KEY_LEN],
            &sealed[FILE_KEY_LEN..],
        )
        .ok()?,
    );
    let mut key = Zeroizing::new([0u8; FILE_KEY_LEN]);
    (pt.len() == FILE_KEY_LEN).then(|| key.copy_from_slice(&pt))?;
    Some(key)
}

/// X25519(private, peer); None for an all-zero shared secret (a low-order peer point),
/// which age's rules (and OpenSSL) refuse.
fn x25519(private: &PKey<Private>, peer: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
    let peer = Recipient { public: *peer }.pkey();
    let mut d = Deriver::new(private).ok()?;
    d.set_peer(&peer).ok()?;
    let v = Zeroizing::new(d.derive_to_vec().ok()?);
    let mut secret = Zeroizing::new([0u8; 32]);
    (v.len() == 32).then(|| secret.copy_from_slice(&v))?;
    if openssl::memcmp::eq(&secret[..], &[0; 32]) {
        return None;
    }
    Some(secret)
}

/// HKDF-SHA-256(ikm = shared secret, salt = ephemeral share || recipient, info = label).
fn x25519_wrap_key(secret: &[u8; 32], share: &[u8; 32], recipient: &[u8; 32]) -> Secret {
    key::hkdf(secret, &[&share[..], recipient].concat(), X25519_LABEL, 32)
}

/// Seal `file_key` to `r` with the ephemeral key `e` (fresh for every stanza).
pub fn wrap_x25519(
    r: &Recipient,
    file_key: &[u8; FILE_KEY_LEN],
    e: &PKey<Private>,
) -> anyhow::Result<Stanza> {
    let share: [u8; 32] = e
        .raw_public_key()
        .context("X25519 public key")?
        .try_into()
        .map_err(|_| anyhow::anyhow!("X25519 public key length"))?;
    let Some(secret) = x25519(e, &r.public) else {
        Err(Fail::usage(format!(
            "recipient {}: not usable (a low-order point: the shared secret is all zeros)",
            r.encode()
        )))?
    };
    Ok(Stanza::X25519 {
        fingerprint: r.fingerprint(),
        share,
        sealed: seal(&x25519_wrap_key(&secret, &share, &r.public), file_key),
    })
}

pub fn unwrap_x25519(
    id: &Identity,
    share: &[u8; 32],
    sealed: &[u8; SEALED_LEN],
) -> Result<FileKey, String> {
    let secret = x25519(id.pkey(), share).ok_or_else(|| {
        format!(
            "the stanza for {} has a low-order ephemeral share (all-zero shared secret): refused",
            id.describe()
        )
    })?;
    let wk = x25519_wrap_key(&secret, share, &id.recipient.public);
    open(&wk, sealed).ok_or_else(|| {
        format!(
            "the stanza for {} does not open: the header is corrupt",
            id.describe()
        )
    })
}

fn wrap_key_file(k: &SiteKey, salt: &[u8; SALT_LEN], file_key: &[u8; FILE_KEY_LEN]) -> Stanza {
    Stanza::Key {
        key_id: k.id,
        sealed: seal(&k.wrap_key(salt), file_key),
    }
}

/// The header of a new stream: every stanza, then the MAC.
pub fn seal_header(
    file_key: &[u8; FILE_KEY_LEN],
    salt: &[u8; SALT_LEN],
    chunk_size: u32,
    recipients: &[Recipient],
    ephemerals: &[PKey<Private>],
    key: Option<&SiteKey>,
) -> anyhow::Result<Vec<u8>> {
    let mut stanzas = Vec::new();
    if let Some(k) = key {
        stanzas.push(wrap_key_file(k, salt, file_key));
    }
    for (r, e) in recipients.iter().zip(ephemerals) {
        stanzas.push(wrap_x25519(r, file_key, e)?);
    }
    let header = Header {
        chunk_size,
        salt: *salt,
        stanzas,
    };
    let mut b = header.signed_bytes();
    if b.len() + MAC_LEN > MAX_HEADER {
        Err(Fail::usage("too many recipients for one header (64 KiB)"))?;
    }
    let mac = header_mac(file_key, salt, &b);
    b.extend_from_slice(&mac);
    Ok(b)
}

/// `sol-crypt -e` with recipients (and perhaps a key file as well): a v2 stream.
pub fn encrypt(
    input: &mut impl Read,
    out: &mut impl Write,
    recipients: &[Recipient],
    key: Option<&SiteKey>,
    chunk_size: u32,
    progress: &mut Progress,
) -> anyhow::Result<u64> {
    let mut file_key = Zeroizing::new([0u8; FILE_KEY_LEN]);
    let mut salt = [0u8; SALT_LEN];
    openssl::rand::rand_bytes(&mut file_key[..]).context("random number generator")?;
    openssl::rand::rand_bytes(&mut salt).context("random number generator")?;
    let ephemerals = recipients
        .iter()
        .map(|_| PKey::generate_x25519().context("generating an X25519 key"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let header = seal_header(&file_key, &salt, chunk_size, recipients, &ephemerals, key)?;
    out.write_all(&header).context("writing output")?;
    let pk = payload_key(&file_key, &salt);
    stream::encrypt_chunks(input, out, Cipher::Aes256Gcm, &pk, chunk_size, progress)
}

/// What `-d` may open streams with: a key file, identities, or both.
pub struct Credentials {
    pub key: Option<(SiteKey, PathBuf)>,
    pub identities: Vec<Identity>,
}

impl Credentials {
    fn describe(&self) -> String {
        let mut who: Vec<String> = self.identities.iter().map(Identity::describe).collect();
        if let Some((k, p)) = &self.key {
            who.push(format!(
                "key file '{}' (key id {})",
                p.display(),
                k.id_hex()
            ));
        }
        who.join(", ")
    }
}

/// The rest of a v2 header after its first 86 bytes (`start`), its length checked first.
pub fn read_rest(
    start: &[u8; format::HEADER_LEN],
    input: &mut impl Read,
) -> anyhow::Result<(Header, Vec<u8>)> {
    let len = u32::from_be_bytes(start[14..18].try_into().expect("4 bytes")) as usize;
    if !(MIN_HEADER..=MAX_HEADER).contains(&len) {
        return Err(integrity(format!(
            "corrupt header: header length {len} out of range"
        )));
    }
    let mut raw = start.to_vec();
    raw.resize(len, 0);
    let n = read_full(input, &mut raw[format::HEADER_LEN..]).context("reading input")?;
    if format::HEADER_LEN + n < len {
        return Err(integrity(format!(
            "truncated stream: header has {} of {len} bytes",
            format::HEADER_LEN + n
        )));
    }
    let header = Header::parse(&raw).map_err(|e| integrity(format!("corrupt header: {e}")))?;
    Ok((header, raw))
}

/// The file key, from the first stanza one of `creds` opens; else status 3 naming them.
fn file_key(header: &Header, creds: &Credentials) -> anyhow::Result<FileKey> {
    for s in &header.stanzas {
        match s {
            Stanza::Key { key_id, sealed } => {
                if let Some((k, p)) = &creds.key {
                    if *key_id == k.id {
                        return open(&k.wrap_key(&header.salt), sealed).ok_or_else(|| {
                            integrity(format!(
                                "the stanza for key file '{}' (key id {}) does not open: the header is corrupt",
                                p.display(),
                                k.id_hex()
                            ))
                        });
                    }
                }
            }
            Stanza::X25519 {
                fingerprint,
                share,
                sealed,
            } => {
                for id in &creds.identities {
                    if *fingerprint == id.recipient.fingerprint() {
                        return unwrap_x25519(id, share, sealed).map_err(integrity);
                    }
                }
            }
            Stanza::Unknown { .. } => {}
        }
    }
    let wrong = if creds.key.is_some() && creds.identities.is_empty() {
        "wrong key: "
    } else {
        ""
    };
    Err(integrity(format!(
        "{wrong}no stanza in this stream for {}: it is sealed to {}",
        creds.describe(),
        header.describe_stanzas()
    )))
}

/// `sol-crypt -d`: a v1 stream with the key file, a v2 one with any credential that has a
/// stanza. Nothing is written before the header is authenticated.
pub fn decrypt(
    input: &mut impl Read,
    out: &mut impl Write,
    creds: &Credentials,
    chunks: Option<&[Range<u64>]>,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let start = stream::read_start(input)?;
    if start[8] != VERSION {
        let header = format::Header::parse(&start).map_err(integrity)?;
        let Some((key, path)) = &creds.key else {
            return Err(integrity(format!(
                "this is a sol-crypt v1 stream, encrypted with key id {}: it opens only with \
                 that key file (-k), not with {}",
                hex(&header.key_id),
                creds.describe()
            )));
        };
        let key = (key, path.as_path());
        return stream::decrypt_v1(&header, &start, input, out, key, chunks, progress);
    }
    let (header, raw) = read_rest(&start, input)?;
    let fk = file_key(&header, creds)?;
    let (signed, mac) = raw.split_at(raw.len() - MAC_LEN);
    if !openssl::memcmp::eq(&header_mac(&fk, &header.salt, signed), mac) {
        return Err(integrity(
            "header authentication failed: the header is corrupt",
        ));
    }
    let pk = payload_key(&fk, &header.salt);
    stream::decrypt_chunks(
        input,
        out,
        Cipher::Aes256Gcm,
        &pk,
        header.chunk_size,
        chunks,
        progress,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn arr(s: &str) -> [u8; 32] {
        unhex(s).try_into().unwrap()
    }

    // RFC 7748, section 6.1.
    const ALICE: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    const ALICE_PUB: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
    const BOB: &str = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
    const BOB_PUB: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
    const SHARED: &str = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

    #[test]
    fn x25519_matches_rfc7748_and_refuses_an_all_zero_secret() {
        let alice = Identity::from_bytes(&arr(ALICE), PathBuf::from("alice"));
        assert_eq!(alice.recipient.public, arr(ALICE_PUB));
        assert_eq!(
            x25519(alice.pkey(), &arr(BOB_PUB)).as_deref(),
            Some(&arr(SHARED))
        );
        // Low-order points (zero, and one of order 8) give an all-zero secret: refused on
        // both sides.
        let order8 = arr("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800");
        for low in [[0u8; 32], order8] {
            assert_eq!(x25519(alice.pkey(), &low), None);
            let e = unwrap_x25519(&alice, &low, &[0; SEALED_LEN]).unwrap_err();
            assert!(e.contains("all-zero shared secret"), "{e}");
            let eph = PKey::generate_x25519().unwrap();
            assert!(wrap_x25519(&Recipient { public: low }, &[1; 16], &eph).is_err());
        }
    }

    /// The format pinned: a fixed file key, salt, ephemeral and key file give these bytes.
    #[test]
    fn known_answer_header() {
        let file_key = [0x42u8; FILE_KEY_LEN];
        let salt = [0x17u8; SALT_LEN];
        let recipient = Recipient {
            public: arr(ALICE_PUB),
        };
        let eph = PKey::private_key_from_raw_bytes(&arr(BOB), openssl::pkey::Id::X25519).unwrap();
        let key = SiteKey::from_bytes(Zeroizing::new(vec![0x11; 32]));
        let h = seal_header(&file_key, &salt, 1024, &[recipient], &[eph], Some(&key)).unwrap();
        assert_eq!(hex(&h), KAT_HEADER);
        assert_eq!(hex(&payload_key(&file_key, &salt)), KAT_PAYLOAD_KEY);
        // The identity opens its stanza; the parse is canonical (re-encodes to the same bytes).
        let parsed = Header::parse(&h).unwrap();
        assert_eq!(parsed.signed_bytes(), h[..h.len() - MAC_LEN]);
        let alice = Identity::from_bytes(&arr(ALICE), PathBuf::from("alice"));
        let Stanza::X25519 { share, sealed, .. } = &parsed.stanzas[1] else {
            panic!("{parsed:?}")
        };
        assert_eq!(share, &arr(BOB_PUB));
        assert_eq!(*unwrap_x25519(&alice, share, sealed).unwrap(), file_key);
        let creds = Credentials {
            key: Some((key, PathBuf::from("k"))),
            identities: vec![],
        };
        assert_eq!(*super::file_key(&parsed, &creds).unwrap(), file_key);
    }

    // Computed independently by tests/vectors/v2/generate.py (Python 'cryptography').
    const KAT_HEADER: &str = "534f4c4352595054020200000400000000ca171717171717171717171717\
        17171717171717171717171717171717171717170002020028871dc26d2afff5bbe284499674acf096c0a1c1\
        e7f920836209133fd1dca1376b97dfbdaa1734b171010048e79d765b68dcee84de9edb7d7b7dc1b4d35b61c2\
        ece435373f8343c85b78674dadfc7e146f882b4fb58aef678b46302f6a30c7357f7dc9ffdec4bf84d0c5867b\
        82eee6a4507296116682231ffc7be6916ac89967a897dc336e7e4923426d47980ddd91a5a609174b";
    const KAT_PAYLOAD_KEY: &str =
        "90e4cc1c2c4a12234e98f0176d5fdb6684bb8d6392df4cfe15c411f49e841dbd";

    #[test]
    fn only_canonical_headers_parse() {
        let eph = PKey::generate_x25519().unwrap();
        let r = Identity::generate().unwrap().recipient;
        let h = seal_header(&[1; 16], &[2; 32], 4096, &[r], &[eph], None).unwrap();
        assert!(Header::parse(&h).is_ok());
        let with_len = |mut b: Vec<u8>| {
            let n = b.len() as u32;
            b[14..18].copy_from_slice(&n.to_be_bytes());
            b
        };
        // A byte more before the MAC, with the length adjusted.
        let mut extra = h.clone();
        extra.insert(h.len() - MAC_LEN, 0);
        let e = Header::parse(&with_len(extra)).unwrap_err();
        assert_eq!(e, HeaderError::TrailingBytes { bytes: 1 });
        // The stated length differs from the bytes.
        let mut longer = h.clone();
        longer.push(0);
        assert!(matches!(
            Header::parse(&longer),
            Err(HeaderError::LengthMismatch { .. })
        ));
        // A known stanza type with a longer body.
        let mut body = h.clone();
        body[FIXED_LEN + 2] += 1;
        body.insert(FIXED_LEN + 3 + X25519_BODY, 0);
        let e = Header::parse(&with_len(body)).unwrap_err();
        assert!(
            matches!(e, HeaderError::StanzaLength { want: 72, .. }),
            "{e}"
        );
        // No stanza at all; a count larger than the stanzas.
        let mut none = h[..FIXED_LEN].to_vec();
        none[50..52].copy_from_slice(&[0, 0]);
        none.extend_from_slice(&[0; 3 + MAC_LEN]);
        assert_eq!(Header::parse(&with_len(none)), Err(HeaderError::NoStanza));
        let mut count = h.clone();
        count[51] = 2;
        assert!(matches!(
            Header::parse(&count),
            Err(HeaderError::StanzaPastHeader { index: 1, count: 2 })
        ));
        // An unknown type is kept (and skipped by identities).
        let mut unknown = h[..h.len() - MAC_LEN].to_vec();
        unknown[51] = 2;
        unknown.extend_from_slice(&[9, 0, 2, 0xaa, 0xbb]);
        unknown.extend_from_slice(&[0; MAC_LEN]);
        let p = Header::parse(&with_len(unknown)).unwrap();
        assert_eq!(p.stanzas[1].describe(), "unknown type 9 (2 bytes)");
    }
}
