//! Site keys, key ids and per-stream key derivation (HKDF-SHA256, HMAC-SHA256 via openssl).
//! Every buffer that holds key bytes is [`Zeroizing`]: wiped when dropped
//! (docs/ARCHITECTURE.md lists them).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context};
use openssl::md::Md;
use openssl::pkey::{Id, PKey};
use openssl::pkey_ctx::PkeyCtx;
use openssl::sign::Signer;
use sol_common::Fail;

use sol_common::hex;
use sol_formats::crypt::{Cipher, KEY_ID_LEN, SALT_LEN};
use zeroize::Zeroizing;

/// Key bytes, wiped when dropped.
pub type Secret = Zeroizing<Vec<u8>>;

pub struct SiteKey {
    bytes: Secret,
    pub id: [u8; KEY_ID_LEN],
}

pub fn hkdf(ikm: &[u8], salt: &[u8], info: &[u8], len: usize) -> Secret {
    let derive = || -> Result<Secret, openssl::error::ErrorStack> {
        let mut ctx = PkeyCtx::new_id(Id::HKDF)?;
        ctx.derive_init()?;
        ctx.set_hkdf_md(Md::sha256())?;
        ctx.set_hkdf_key(ikm)?;
        ctx.set_hkdf_salt(salt)?;
        ctx.add_hkdf_info(info)?;
        let mut out = Zeroizing::new(vec![0u8; len]);
        ctx.derive(Some(&mut out))?;
        Ok(out)
    };
    derive().expect("HKDF-SHA256 is available in every supported OpenSSL")
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mac = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let pkey = PKey::hmac(key)?;
        let mut s = Signer::new(openssl::hash::MessageDigest::sha256(), &pkey)?;
        s.update(data)?;
        s.sign_to_vec()
    };
    let v = mac().expect("HMAC-SHA256 is available in every supported OpenSSL");
    let mut out = [0u8; 32];
    out.copy_from_slice(&v);
    out
}

/// Keys of one stream, derived from the site key and the stream's salt.
pub struct StreamKeys {
    pub payload: Secret,
    pub header_mac: Secret,
}

impl SiteKey {
    pub fn from_bytes(bytes: Secret) -> SiteKey {
        let id_bytes = hkdf(&bytes, b"", b"sol-crypt v1 key id", KEY_ID_LEN);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&id_bytes);
        SiteKey { bytes, id }
    }

    pub fn cipher(&self) -> Cipher {
        if self.bytes.len() == 16 {
            Cipher::Aes128Gcm
        } else {
            Cipher::Aes256Gcm
        }
    }

    pub fn id_hex(&self) -> String {
        hex(&self.id)
    }

    pub fn derive(&self, salt: &[u8; SALT_LEN]) -> StreamKeys {
        StreamKeys {
            payload: hkdf(&self.bytes, salt, b"sol-crypt v1 payload", self.bytes.len()),
            header_mac: hkdf(&self.bytes, salt, b"sol-crypt v1 header", 32),
        }
    }

    /// v2: the key that seals a stream's file key in this key file's stanza.
    pub fn wrap_key(&self, salt: &[u8; SALT_LEN]) -> Secret {
        hkdf(&self.bytes, salt, b"sol-crypt v2 key wrap", 32)
    }

    /// Load a hex key file, refusing one that group or others can read.
    pub fn load(path: &Path) -> anyhow::Result<SiteKey> {
        let name = path.display();
        check_private(path, "key file")?;
        let text =
            Zeroizing::new(fs::read_to_string(path).with_context(|| format!("key file '{name}'"))?);
        let digits = text.strip_suffix('\n').unwrap_or(&text);
        let bytes = parse_hex(digits).filter(|b| b.len() == 16 || b.len() == 32);
        match bytes {
            Some(b) => Ok(SiteKey::from_bytes(b)),
            None => bail!(
                "key file '{name}': not a sol-crypt key (expected exactly 32 or 64 hex digits, \
                 then at most a newline; for an openssl passphrase file use --openssl)"
            ),
        }
    }
}

/// Hex digits only: `u8::from_str_radix` alone would take "+f" for 0x0f.
fn parse_hex(s: &str) -> Option<Secret> {
    let digits = s.as_bytes();
    if digits.len() % 2 != 0 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let value = |d: u8| (d as char).to_digit(16).map(|v| v as u8);
    let mut out = Zeroizing::new(Vec::with_capacity(digits.len() / 2));
    for p in digits.chunks(2) {
        out.push((value(p[0])? << 4) | value(p[1])?);
    }
    Some(out)
}

pub fn check_private(path: &Path, what: &str) -> anyhow::Result<()> {
    let name = path.display();
    let meta = fs::metadata(path).with_context(|| format!("{what} '{name}'"))?;
    let mode = meta.permissions().mode() & 0o777;
    if meta.is_file() && mode & 0o077 != 0 {
        bail!("{what} '{name}': mode {mode:04o} lets group/others read it; run chmod 600 '{name}'");
    }
    Ok(())
}

/// First line of an openssl `-pass file:` passphrase file.
pub fn load_passphrase(path: &Path) -> anyhow::Result<Secret> {
    let name = path.display();
    check_private(path, "key file")?;
    let data = Zeroizing::new(fs::read(path).with_context(|| format!("passphrase file '{name}'"))?);
    let line = data.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        bail!("passphrase file '{name}': the first line is empty");
    }
    Ok(Zeroizing::new(line.to_vec()))
}

pub fn keygen(bits: u32, output: Option<&Path>) -> anyhow::Result<()> {
    let mut key = Zeroizing::new(vec![0u8; (bits / 8) as usize]);
    openssl::rand::rand_bytes(&mut key).context("random number generator")?;
    let line = Zeroizing::new(format!("{}\n", hex(&key)));
    match output {
        None => {
            let mut out = sol_common::stdio::text_output();
            out.write_all(line.as_bytes()).context("writing key")?;
            out.flush().context("writing key")?;
        }
        Some(path) => {
            write_new_private(path, "key file", line.as_bytes())?;
            let id = SiteKey::from_bytes(key).id_hex();
            sol_common::warn(
                super::TOOL,
                format!(
                    "wrote a {bits}-bit key to '{}' (key id {id})",
                    path.display()
                ),
            );
        }
    }
    Ok(())
}

/// Write a secret to a new file of mode 0600 (never over an existing one), synced; an
/// error names the file as `WHAT 'PATH'`.
pub(crate) fn write_new_private(path: &Path, what: &str, text: &[u8]) -> anyhow::Result<()> {
    let name = || format!("{what} '{}'", path.display());
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(name)?;
    f.write_all(text).with_context(name)?;
    f.sync_all().with_context(name)
}

/// The wrong-key error, naming both key ids.
pub fn wrong_key(stream_id: &[u8], key: &SiteKey, key_file: &Path) -> Fail {
    Fail::integrity(format!(
        "wrong key: the stream was encrypted with key id {}, key file '{}' has key id {}",
        hex(stream_id),
        key_file.display(),
        key.id_hex()
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_hex;

    #[test]
    fn hex_is_strict() {
        assert_eq!(parse_hex("0aFf").as_deref(), Some(&vec![0x0a, 0xff]));
        for bad in ["+a", "-a", " a", "0x", "a", "0a ", "g0"] {
            assert_eq!(parse_hex(bad), None, "{bad:?}");
        }
    }
}
