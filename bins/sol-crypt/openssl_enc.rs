//! `openssl enc -aes-256-cbc -pbkdf2 -pass file:F` streams: "Salted__", 8-byte salt, then
//! AES-256-CBC with PKCS#7 padding; key and IV from PBKDF2-HMAC-SHA256(passphrase, salt).

use std::io::{Read, Write};

use anyhow::Context;
use openssl::hash::MessageDigest;
use openssl::symm::{Cipher, Crypter, Mode};
use sol_common::progress::Progress;
use sol_common::stdio::{read_full, BLOCK};
use sol_common::Fail;

pub use sol_formats::OPENSSL_ENC_MAGIC as MAGIC;

fn crypter(mode: Mode, pass: &[u8], salt: &[u8], iter: u32) -> anyhow::Result<Crypter> {
    let mut kiv = zeroize::Zeroizing::new([0u8; 48]);
    openssl::pkcs5::pbkdf2_hmac(
        pass,
        salt,
        iter as usize,
        MessageDigest::sha256(),
        &mut kiv[..],
    )?;
    Ok(Crypter::new(
        Cipher::aes_256_cbc(),
        mode,
        &kiv[..32],
        Some(&kiv[32..]),
    )?)
}

fn pump(
    input: &mut impl Read,
    out: &mut impl Write,
    c: &mut Crypter,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let mut buf = vec![0u8; BLOCK];
    let mut res = vec![0u8; BLOCK + 32];
    loop {
        let n = read_full(input, &mut buf).context("reading input")?;
        if n == 0 {
            break;
        }
        let k = c.update(&buf[..n], &mut res)?;
        out.write_all(&res[..k]).context("writing output")?;
        progress.add(n as u64);
    }
    let k = c.finalize(&mut res).map_err(|_| {
        Fail::integrity("bad decrypt: wrong passphrase, or a corrupt or truncated stream")
    })?;
    out.write_all(&res[..k]).context("writing output")?;
    Ok(())
}

/// Encrypt `input` to `out` (a fresh salt after the magic), or decrypt it (`encrypt` false).
pub fn crypt(
    encrypt: bool,
    input: &mut impl Read,
    out: &mut impl Write,
    pass: &[u8],
    iter: u32,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let mut head = [0u8; 16];
    let mode = if encrypt {
        head[..8].copy_from_slice(MAGIC);
        openssl::rand::rand_bytes(&mut head[8..])?;
        out.write_all(&head).context("writing output")?;
        Mode::Encrypt
    } else {
        let n = read_full(input, &mut head).context("reading input")?;
        if n < 16 || &head[..8] != MAGIC {
            Err(Fail::integrity(
                "not an openssl enc stream (no 'Salted__' header)",
            ))?;
        }
        Mode::Decrypt
    };
    pump(
        input,
        out,
        &mut crypter(mode, pass, &head[8..], iter)?,
        progress,
    )
}
