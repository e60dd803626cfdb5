//! X25519 identities (private) and recipients (public): key files and their encodings.
//!
//! Both are Bech32 (BIP 173, without its 90-character limit, as age does) of the 32 raw
//! bytes, with a prefix that says what the string is:
//!
//! ```text
//! recipient  sol-recipient-1<52 data characters><6 checksum characters>   (lowercase)
//! identity   SOL-SECRET-KEY-1<52 data characters><6 checksum characters>  (uppercase)
//! ```
//! Only the canonical form is accepted: one case (recipients lowercase, identities
//! uppercase), the right prefix, a valid checksum, exactly 32 bytes, and zero padding bits.
//!
//! An identity file is text: `#` comment lines and empty lines are skipped, every other line
//! is one identity. `keygen --identity` writes one, with its recipient in a comment.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use openssl::pkey::{Id, PKey, Private, Public};
use sol_common::Fail;

use sol_common::hex;
use zeroize::Zeroizing;

pub const RECIPIENT_HRP: &str = "sol-recipient-";
pub const IDENTITY_HRP: &str = "sol-secret-key-";
pub use sol_formats::crypt::v2::FINGERPRINT_LEN;

/// A public key to seal file keys to.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub public: [u8; 32],
}

/// A private X25519 key, and the file it came from (named in messages).
pub struct Identity {
    key: PKey<Private>,
    pub recipient: Recipient,
    pub file: PathBuf,
}

impl Recipient {
    /// SHA-256("sol-crypt v2 recipient" || public key), first 8 bytes: names the recipient
    /// in stanzas, `sol-crypt info` and messages.
    pub fn fingerprint(&self) -> [u8; FINGERPRINT_LEN] {
        let mut data = b"sol-crypt v2 recipient".to_vec();
        data.extend_from_slice(&self.public);
        let d = openssl::hash::hash(openssl::hash::MessageDigest::sha256(), &data)
            .expect("SHA-256 is available in every supported OpenSSL");
        let mut fp = [0u8; FINGERPRINT_LEN];
        fp.copy_from_slice(&d[..FINGERPRINT_LEN]);
        fp
    }

    pub fn fingerprint_hex(&self) -> String {
        hex(&self.fingerprint())
    }

    pub fn encode(&self) -> String {
        bech32_encode(RECIPIENT_HRP, &self.public)
    }

    /// Parse the canonical (lowercase) encoding.
    pub fn parse(s: &str) -> Result<Recipient, String> {
        let public = bech32_decode(RECIPIENT_HRP, s, false)?;
        Ok(Recipient { public })
    }

    pub fn pkey(&self) -> PKey<Public> {
        PKey::public_key_from_raw_bytes(&self.public, Id::X25519)
            .expect("any 32 bytes are an X25519 public key")
    }
}

impl Identity {
    pub fn from_bytes(secret: &[u8; 32], file: PathBuf) -> Identity {
        let key = PKey::private_key_from_raw_bytes(secret, Id::X25519)
            .expect("any 32 bytes are an X25519 private key");
        let mut public = [0u8; 32];
        public.copy_from_slice(&key.raw_public_key().expect("X25519 public key"));
        Identity {
            key,
            recipient: Recipient { public },
            file,
        }
    }

    pub fn generate() -> anyhow::Result<Identity> {
        let key = PKey::generate_x25519().context("generating an X25519 key")?;
        let mut secret = Zeroizing::new([0u8; 32]);
        let raw = Zeroizing::new(key.raw_private_key().context("X25519 private key")?);
        secret.copy_from_slice(&raw);
        Ok(Identity::from_bytes(&secret, PathBuf::new()))
    }

    pub fn pkey(&self) -> &PKey<Private> {
        &self.key
    }

    fn encode(&self) -> Zeroizing<String> {
        let raw = Zeroizing::new(self.key.raw_private_key().expect("X25519 private key"));
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(&raw);
        let lower = Zeroizing::new(bech32_encode(IDENTITY_HRP, &secret[..]));
        Zeroizing::new(lower.to_ascii_uppercase())
    }

    /// "identity 'FILE' (recipient fingerprint F)".
    pub fn describe(&self) -> String {
        format!(
            "identity '{}' (recipient fingerprint {})",
            self.file.display(),
            self.recipient.fingerprint_hex()
        )
    }

    /// Every identity in an identity file, refusing a file that group or others can read.
    pub fn load(path: &Path) -> anyhow::Result<Vec<Identity>> {
        let name = path.display();
        super::key::check_private(path, "identity file")?;
        let text = Zeroizing::new(
            fs::read_to_string(path).with_context(|| format!("identity file '{name}'"))?,
        );
        let mut all = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match bech32_decode(IDENTITY_HRP, line, true) {
                Ok(secret) => all.push(Identity::from_bytes(
                    &Zeroizing::new(secret),
                    path.to_path_buf(),
                )),
                Err(e) => bail!(
                    "identity file '{name}', line {}: not a sol-crypt identity: {e}",
                    n + 1
                ),
            }
        }
        if all.is_empty() {
            bail!("identity file '{name}': no identity in it (see sol-crypt keygen --identity)");
        }
        Ok(all)
    }
}

/// Recipients from `-r` strings and `-R` files (one a line, `#` comments, blank lines
/// skipped); a bad one is a usage error naming where it came from.
pub fn recipients(args: &[String], files: &[PathBuf]) -> anyhow::Result<Vec<Recipient>> {
    let mut all = Vec::new();
    for a in args {
        let r = Recipient::parse(a)
            .map_err(|e| Fail::usage(format!("-r '{a}': not a sol-crypt recipient: {e}")))?;
        all.push(r);
    }
    for f in files {
        let name = f.display();
        let text = fs::read_to_string(f).with_context(|| format!("recipients file '{name}'"))?;
        let before = all.len();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let r = Recipient::parse(line).map_err(|e| {
                Fail::usage(format!(
                    "recipients file '{name}', line {}: not a sol-crypt recipient: {e}",
                    n + 1
                ))
            })?;
            all.push(r);
        }
        if all.len() == before {
            Err(Fail::usage(format!(
                "recipients file '{name}': no recipient in it"
            )))?;
        }
    }
    // The same recipient twice would only add a stanza.
    let mut seen = std::collections::HashSet::new();
    all.retain(|r| seen.insert(r.public));
    Ok(all)
}

/// `keygen --identity -o FILE`: a new identity in a new file of mode 0600; its recipient on
/// stdout.
pub fn keygen(output: &Path) -> anyhow::Result<()> {
    let id = Identity::generate()?;
    let name = output.display();
    let recipient = id.recipient.encode();
    let text = Zeroizing::new(format!(
        "# sol-crypt identity (X25519): keep it secret, keep a copy off site\n# recipient: {recipient}\n{}\n",
        *id.encode()
    ));
    super::key::write_new_private(output, "identity file", text.as_bytes())?;
    sol_common::warn(
        super::TOOL,
        format!(
            "wrote an identity to '{name}' (recipient fingerprint {})",
            id.recipient.fingerprint_hex()
        ),
    );
    print_lines(&[recipient])
}

/// `recipient -i FILE`: the recipient of every identity in FILE, one a line.
pub fn print_recipients(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut lines = Vec::new();
    for f in files {
        for id in Identity::load(f)? {
            lines.push(id.recipient.encode());
        }
    }
    print_lines(&lines)
}

fn print_lines(lines: &[String]) -> anyhow::Result<()> {
    let mut out = sol_common::stdio::text_output();
    for l in lines {
        writeln!(out, "{l}").context("writing output")?;
    }
    out.flush().context("writing output")
}

// ---- Bech32 (BIP 173) -------------------------------------------------------------------

const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn polymod(values: impl Iterator<Item = u8>) -> u32 {
    const GEN: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let mut chk = 1u32;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

fn hrp_expand(hrp: &str) -> Vec<u8> {
    let b = hrp.as_bytes();
    let mut v: Vec<u8> = b.iter().map(|c| c >> 5).collect();
    v.push(0);
    v.extend(b.iter().map(|c| c & 31));
    v
}

/// Groups of `from` bits regrouped into groups of `to` bits (both at most 8), and what is
/// left over: how many bits, and their value.
fn regroup(data: &[u8], from: u32, to: u32) -> (Vec<u8>, u32, u32) {
    // Sized once, so the bytes (an identity's secret bits) are never left behind by a
    // reallocation; the callers wipe the result.
    let cap = (data.len() * from as usize).div_ceil(to as usize) + 1;
    let (mut acc, mut bits, mut out) = (0u32, 0u32, Vec::with_capacity(cap));
    for &g in data {
        acc = (acc << from) | u32::from(g);
        bits += from;
        while bits >= to {
            bits -= to;
            out.push(((acc >> bits) & ((1 << to) - 1)) as u8);
        }
    }
    (out, bits, acc & ((1 << bits) - 1))
}

/// 8-bit bytes to 5-bit groups, the last one zero-padded.
fn to_5bit(data: &[u8]) -> Vec<u8> {
    let (mut out, bits, rest) = regroup(data, 8, 5);
    if bits > 0 {
        out.push(((rest << (5 - bits)) & 31) as u8);
    }
    out
}

/// 5-bit groups to bytes; refuses padding of 5 bits or more and non-zero padding bits.
fn from_5bit(data: &[u8]) -> Result<Vec<u8>, String> {
    let (out, bits, rest) = regroup(data, 5, 8);
    if bits >= 5 {
        return Err("non-canonical encoding (excess padding)".into());
    }
    if rest != 0 {
        return Err("non-canonical encoding (non-zero padding bits)".into());
    }
    Ok(out)
}

pub fn bech32_encode(hrp: &str, data: &[u8]) -> String {
    let groups = Zeroizing::new(to_5bit(data));
    let mut values = Zeroizing::new(Vec::with_capacity(2 * hrp.len() + 1 + groups.len() + 6));
    values.extend_from_slice(&hrp_expand(hrp));
    values.extend_from_slice(&groups);
    values.extend_from_slice(&[0; 6]);
    let pm = polymod(values.iter().copied()) ^ 1;
    let mut s = String::with_capacity(hrp.len() + 1 + groups.len() + 6);
    s.push_str(hrp);
    s.push('1');
    for &g in groups.iter() {
        s.push(CHARSET[g as usize] as char);
    }
    for i in 0..6 {
        s.push(CHARSET[((pm >> (5 * (5 - i))) & 31) as usize] as char);
    }
    s
}

/// Decode `s`, which must be the canonical encoding of 32 bytes with prefix `hrp`: all
/// lowercase, or all uppercase when `upper`.
pub fn bech32_decode(hrp: &str, s: &str, upper: bool) -> Result<[u8; 32], String> {
    if !s.bytes().all(|c| (33..=126).contains(&c)) {
        return Err("it holds a character that is not printable ASCII".into());
    }
    let canonical = Zeroizing::new(if upper {
        s.to_ascii_uppercase()
    } else {
        s.to_ascii_lowercase()
    });
    if s != canonical.as_str() {
        let case = if upper { "uppercase" } else { "lowercase" };
        return Err(format!("non-canonical encoding (not all {case})"));
    }
    let lower = Zeroizing::new(s.to_ascii_lowercase());
    let Some(rest) = lower.strip_prefix(hrp).and_then(|r| r.strip_prefix('1')) else {
        let want = if upper {
            hrp.to_ascii_uppercase()
        } else {
            hrp.to_string()
        };
        return Err(format!("it does not start with '{want}1'"));
    };
    let groups: Zeroizing<Vec<u8>> = Zeroizing::new(
        rest.bytes()
            .map(|c| CHARSET.iter().position(|&x| x == c).map(|p| p as u8))
            .collect::<Option<_>>()
            .ok_or("it holds a character outside the Bech32 alphabet")?,
    );
    if groups.len() < 6 {
        return Err("too short".into());
    }
    let mut values = Zeroizing::new(Vec::with_capacity(2 * hrp.len() + 1 + groups.len()));
    values.extend_from_slice(&hrp_expand(hrp));
    values.extend_from_slice(&groups);
    if polymod(values.iter().copied()) != 1 {
        return Err("bad checksum (a typing error?)".into());
    }
    let bytes = Zeroizing::new(from_5bit(&groups[..groups.len() - 6])?);
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| format!("{} bytes, not 32", bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bech32_matches_bip173() {
        // BIP 173's valid strings: checksums verify, and encoding reproduces one.
        assert_eq!(bech32_encode("a", &[]), "a12uel5l");
        for s in [
            "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
            "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
        ] {
            let (hrp, data) = s.rsplit_once('1').unwrap();
            let mut values = hrp_expand(hrp);
            values.extend(
                data.bytes()
                    .map(|c| CHARSET.iter().position(|&x| x == c).unwrap() as u8),
            );
            assert_eq!(polymod(values.into_iter()), 1, "{s}");
        }
        let r = Recipient { public: [0; 32] };
        let s = r.encode();
        assert!(s.starts_with("sol-recipient-1qqqq"));
        assert_eq!(Recipient::parse(&s).unwrap().public, [0; 32]);
    }

    #[test]
    fn recipients_round_trip_and_only_the_canonical_form_parses() {
        let id = Identity::generate().unwrap();
        let s = id.recipient.encode();
        assert_eq!(s.len(), "sol-recipient-1".len() + 52 + 6);
        assert_eq!(Recipient::parse(&s).unwrap().public, id.recipient.public);
        assert!(Recipient::parse(&s.to_ascii_uppercase()).is_err());
        let mut mixed = s.clone().into_bytes();
        let i = mixed.len() - 3;
        mixed[i] = mixed[i].to_ascii_uppercase();
        if mixed[i] != s.as_bytes()[i] {
            assert!(Recipient::parse(std::str::from_utf8(&mixed).unwrap()).is_err());
        }
        // One changed character breaks the checksum.
        let mut typo = s.clone().into_bytes();
        let j = 20;
        typo[j] = if typo[j] == b'q' { b'p' } else { b'q' };
        assert!(Recipient::parse(std::str::from_utf8(&typo).unwrap())
            .unwrap_err()
            .contains("checksum"));
        // An identity is not a recipient, nor the other way round.
        assert!(Recipient::parse(&id.encode()).is_err());
        assert!(bech32_decode(IDENTITY_HRP, &s, true).is_err());
        let enc = id.encode();
        assert!(enc.starts_with("SOL-SECRET-KEY-1"));
        assert!(bech32_decode(IDENTITY_HRP, &enc.to_ascii_lowercase(), true).is_err());
        assert!(bech32_decode(IDENTITY_HRP, &enc, true).is_ok());
    }

    #[test]
    fn non_zero_padding_bits_and_wrong_lengths_are_refused() {
        // 32 bytes are 52 groups with 4 padding bits: set one, fix the checksum.
        let mut groups = to_5bit(&[0xff; 32]);
        assert_eq!(groups.len(), 52);
        *groups.last_mut().unwrap() |= 1;
        let reencode = |groups: &[u8]| {
            let mut values = hrp_expand(RECIPIENT_HRP);
            values.extend_from_slice(groups);
            values.extend_from_slice(&[0; 6]);
            let pm = polymod(values.into_iter()) ^ 1;
            let mut s = format!("{RECIPIENT_HRP}1");
            for &g in groups {
                s.push(CHARSET[g as usize] as char);
            }
            for i in 0..6 {
                s.push(CHARSET[((pm >> (5 * (5 - i))) & 31) as usize] as char);
            }
            s
        };
        let e = Recipient::parse(&reencode(&groups)).unwrap_err();
        assert!(e.contains("non-zero padding"), "{e}");
        // 31 and 33 bytes.
        assert!(Recipient::parse(&bech32_encode(RECIPIENT_HRP, &[1; 31]))
            .unwrap_err()
            .contains("31 bytes"));
        assert!(Recipient::parse(&bech32_encode(RECIPIENT_HRP, &[1; 33])).is_err());
        // Excess padding: one more zero group.
        let mut more = to_5bit(&[0xff; 32]);
        more.push(0);
        assert!(Recipient::parse(&reencode(&more)).is_err());
    }
}
