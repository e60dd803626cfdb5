//! Encryption and decryption of the chunked stream (its framing is sol_formats::crypt, its
//! contract man/sol-crypt.5).

use sol_common::exit::integrity;
use std::io::{Read, Write};
use std::ops::Range;
use std::path::Path;

use anyhow::Context;
use openssl::cipher::CipherRef;
use openssl::cipher_ctx::CipherCtx;
use sol_common::progress::Progress;
use sol_common::stdio::read_full;

use super::key::{self, SiteKey};
use sol_formats::crypt::{
    self as format, Cipher, Header, HEADER_LEN, MAC_OFFSET, SALT_LEN, TAG_LEN, TRAILER_LEN,
};
use sol_formats::sniff::Kind;

/// The OpenSSL cipher of a header's cipher byte.
fn evp(cipher: Cipher) -> &'static CipherRef {
    match cipher {
        Cipher::Aes128Gcm => openssl::cipher::Cipher::aes_128_gcm(),
        Cipher::Aes256Gcm => openssl::cipher::Cipher::aes_256_gcm(),
    }
}

pub fn encrypt(
    input: &mut impl Read,
    out: &mut impl Write,
    key: &SiteKey,
    chunk_size: u32,
    progress: &mut Progress,
) -> anyhow::Result<u64> {
    let mut salt = [0u8; SALT_LEN];
    openssl::rand::rand_bytes(&mut salt).context("random number generator")?;
    let header = Header {
        cipher: key.cipher(),
        chunk_size,
        salt,
        key_id: key.id,
    };
    let keys = key.derive(&salt);
    let signed = header.signed_bytes();
    out.write_all(&signed).context("writing output")?;
    out.write_all(&key::hmac_sha256(&keys.header_mac, &signed))
        .context("writing output")?;
    encrypt_chunks(
        input,
        out,
        header.cipher,
        &keys.payload,
        chunk_size,
        progress,
    )
}

/// The chunks and the trailer (after a v1 or v2 header), under `payload_key`; the plaintext's
/// length.
pub fn encrypt_chunks(
    input: &mut impl Read,
    out: &mut impl Write,
    cipher: format::Cipher,
    payload_key: &[u8],
    chunk_size: u32,
    progress: &mut Progress,
) -> anyhow::Result<u64> {
    let mut ctx = CipherCtx::new()?;
    ctx.encrypt_init(Some(evp(cipher)), Some(payload_key), None)?;
    let size = chunk_size as usize;
    let mut plain = vec![0u8; size];
    let mut sealed = vec![0u8; size + TAG_LEN];
    let mut total = 0u64;
    for counter in 0u64.. {
        let n = read_full(input, &mut plain).context("reading input")?;
        total += n as u64;
        // The final chunk is the first short one (possibly empty): see format::is_complete.
        let last = n < size;
        ctx.encrypt_init(None, None, Some(&format::nonce(counter, last)))?;
        let trailer = format::trailer(total);
        if last {
            ctx.cipher_update(&trailer, None)?; // the trailer is the final chunk's AAD
        }
        let written = ctx.cipher_update(&plain[..n], Some(&mut sealed))?;
        ctx.cipher_final(&mut sealed[written..])?;
        ctx.tag(&mut sealed[n..n + TAG_LEN])?;
        out.write_all(&sealed[..n + TAG_LEN])
            .context("writing output")?;
        progress.add(n as u64);
        if last {
            out.write_all(&trailer).context("writing output")?;
            return Ok(total);
        }
    }
    unreachable!("the chunk counter is unbounded")
}

/// The first 86 bytes of a stream (a v1 header, the start of a v2 one), naming the format
/// of anything that is not sol-crypt.
pub fn read_start(input: &mut impl Read) -> anyhow::Result<[u8; HEADER_LEN]> {
    let mut raw = [0u8; HEADER_LEN];
    let n = read_full(input, &mut raw).context("reading input")?;
    match sol_formats::sniff::sniff(&raw[..n]) {
        Some(Kind::OpensslEnc) => {
            return Err(integrity(
                "not a sol-crypt stream: this is an openssl enc stream (use --openssl)",
            ))
        }
        Some(Kind::Gzip) => {
            return Err(integrity(
                "not a sol-crypt stream: this is a gzip stream (not encrypted): decompress it \
                 with sol-zip -d",
            ))
        }
        _ => {}
    }
    // A tar header is longer than ours: look at the rest of its first block.
    if n == HEADER_LEN && &raw[..8] != format::MAGIC {
        let mut block = raw.to_vec();
        block.resize(sol_formats::sniff::SNIFF_LEN, 0);
        let more = read_full(input, &mut block[HEADER_LEN..]).context("reading input")?;
        block.truncate(HEADER_LEN + more);
        if sol_formats::sniff::sniff(&block) == Some(Kind::Tar) {
            return Err(integrity(
                "not a sol-crypt stream: this is a tar stream (not encrypted or compressed): \
                 read it with sol-tar or tar-md5",
            ));
        }
    }
    if n < HEADER_LEN {
        if n >= 8 && &raw[..8] == format::MAGIC {
            return Err(integrity(format!(
                "truncated stream: header has {n} of {HEADER_LEN} bytes"
            )));
        }
        return Err(integrity("not a sol-crypt stream (too short for a header)"));
    }
    Ok(raw)
}

/// A v1 stream after its header: the key id, the MAC, then the chunks.
pub fn decrypt_v1(
    header: &Header,
    raw: &[u8; HEADER_LEN],
    input: &mut impl Read,
    out: &mut impl Write,
    (key, key_file): (&SiteKey, &Path),
    chunks: Option<&[Range<u64>]>,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    if header.key_id != key.id {
        return Err(key::wrong_key(&header.key_id, key, key_file).into());
    }
    let keys = key.derive(&header.salt);
    let mac = key::hmac_sha256(&keys.header_mac, &raw[..MAC_OFFSET]);
    if !openssl::memcmp::eq(&mac, &raw[MAC_OFFSET..]) || header.cipher != key.cipher() {
        return Err(integrity(
            "header authentication failed: the header is corrupt",
        ));
    }
    decrypt_chunks(
        input,
        out,
        header.cipher,
        &keys.payload,
        header.chunk_size,
        chunks,
        progress,
    )
}

/// Open one sealed chunk (`sealed` = ciphertext and tag) into `plain`; false when it does
/// not authenticate.
fn open_chunk(
    ctx: &mut CipherCtx,
    sealed: &[u8],
    counter: u64,
    trailer: Option<&[u8]>,
    plain: &mut [u8],
) -> anyhow::Result<bool> {
    let body = sealed.len() - TAG_LEN;
    ctx.decrypt_init(None, None, Some(&format::nonce(counter, trailer.is_some())))?;
    if let Some(aad) = trailer {
        ctx.cipher_update(aad, None)?;
    }
    ctx.set_tag(&sealed[body..])?;
    let written = ctx.cipher_update(&sealed[..body], Some(plain))?;
    Ok(ctx.cipher_final(&mut plain[written..]).is_ok())
}

/// The chunks and the trailer (after a v1 or v2 header), under `payload_key`.
///
/// With `chunks` (runs of chunk numbers, `sol-crypt -d --chunks`), the input after the header
/// holds just those chunks' sealed bytes, back to back (the stream's final chunk with its
/// trailer); each is opened under its own number, and the input must end after the last.
pub fn decrypt_chunks(
    input: &mut impl Read,
    out: &mut impl Write,
    cipher: format::Cipher,
    payload_key: &[u8],
    chunk_size: u32,
    chunks: Option<&[Range<u64>]>,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let mut opener = Opener::new(input, out, cipher, payload_key, chunk_size, progress)?;
    let whole = [Range {
        start: 0,
        end: u64::MAX,
    }];
    let runs = chunks.unwrap_or(&whole);
    for (r, run) in runs.iter().enumerate() {
        for counter in run.clone() {
            // Where a --chunks list ends inside the stream, the input ends after a whole
            // chunk (the stream's own final chunk is shorter, and has the trailer).
            let list_end = chunks.is_some() && r + 1 == runs.len() && counter + 1 == run.end;
            if opener.next_chunk(counter, list_end, chunks.is_some())? {
                return Ok(());
            }
        }
    }
    unreachable!("the chunk counter is unbounded, and a --chunks list ends at its last chunk")
}

/// `authentication failed at chunk N`: a chunk that does not open under its number.
fn auth_failed(counter: u64) -> anyhow::Error {
    integrity(format!(
        "authentication failed at chunk {counter}: the stream is corrupt, reordered or truncated"
    ))
}

/// Decrypts the chunks one at a time through a window of one sealed chunk plus a trailer:
/// when it cannot be filled, what it holds is the final chunk and the trailer.
struct Opener<'a, R, W> {
    input: &'a mut R,
    out: &'a mut W,
    progress: &'a mut Progress,
    ctx: CipherCtx,
    /// Plaintext bytes in a whole chunk.
    size: usize,
    /// Sealed bytes in a whole chunk (ciphertext and tag).
    sealed: usize,
    /// The window's length: one sealed chunk and a trailer.
    window: usize,
    buf: Vec<u8>,
    /// How much of `buf` holds input.
    have: usize,
    plain: Vec<u8>,
}

impl<'a, R: Read, W: Write> Opener<'a, R, W> {
    /// An empty window, and a cipher context keyed with `payload_key`.
    fn new(
        input: &'a mut R,
        out: &'a mut W,
        cipher: format::Cipher,
        payload_key: &[u8],
        chunk_size: u32,
        progress: &'a mut Progress,
    ) -> anyhow::Result<Self> {
        let mut ctx = CipherCtx::new()?;
        ctx.decrypt_init(Some(evp(cipher)), Some(payload_key), None)?;
        let size = chunk_size as usize;
        let sealed = size + TAG_LEN;
        let window = sealed + TRAILER_LEN;
        Ok(Opener {
            input,
            out,
            progress,
            ctx,
            size,
            sealed,
            window,
            buf: vec![0u8; window],
            have: 0,
            plain: vec![0u8; sealed],
        })
    }

    /// Reads, authenticates and writes chunk `counter`; true when it was the last one to
    /// read (the stream's final chunk, or the end of a --chunks list).
    fn next_chunk(&mut self, counter: u64, list_end: bool, listed: bool) -> anyhow::Result<bool> {
        self.have += read_full(self.input, &mut self.buf[self.have..]).context("reading input")?;
        if list_end && self.list_end(counter)? {
            return Ok(true);
        }
        let (body, aad) = self.frame(counter)?;
        self.open_and_write(counter, body, aad.as_deref())?;
        if let Some(t) = aad {
            check_trailer(&t, counter, self.size, body, listed && !list_end)?;
            return Ok(true);
        }
        self.buf.copy_within(self.sealed..self.have, 0);
        self.have -= self.sealed;
        Ok(false)
    }

    /// The last chunk a --chunks list names: the input must end after it. True when it was a
    /// whole chunk, now written; false when it may be the stream's final chunk instead.
    fn list_end(&mut self, counter: u64) -> anyhow::Result<bool> {
        if self.have == self.window {
            return Err(integrity(format!(
                "the input goes on after chunk {counter}, the last one --chunks names"
            )));
        }
        if self.have != self.sealed {
            return Ok(false);
        }
        let sealed = self.sealed;
        if open_chunk(
            &mut self.ctx,
            &self.buf[..sealed],
            counter,
            None,
            &mut self.plain,
        )? {
            self.out
                .write_all(&self.plain[..self.size])
                .context("writing output")?;
            self.progress.add(self.size as u64);
            return Ok(true);
        }
        // Not a whole chunk; the stream's last one, if it ends with the trailer.
        if &self.buf[sealed - TRAILER_LEN..sealed - 8] != format::TRAILER_MAGIC {
            return Err(auth_failed(counter));
        }
        Ok(false)
    }

    /// The length of chunk `counter`'s ciphertext in the window, and for the final chunk
    /// (a window not filled) the trailer after it, its AAD.
    fn frame(&self, counter: u64) -> anyhow::Result<(usize, Option<Vec<u8>>)> {
        let have = self.have;
        if have >= self.window {
            return Ok((self.size, None));
        }
        if have < TAG_LEN + TRAILER_LEN {
            return Err(integrity(if counter > 0 && have == 0 {
                format!("truncated stream: the final chunk is missing after {counter} chunks")
            } else {
                format!("truncated stream: chunk {counter} is cut short")
            }));
        }
        let t = &self.buf[have - TRAILER_LEN..have];
        if &t[..8] != format::TRAILER_MAGIC {
            return Err(integrity(format!(
                "no end trailer after chunk {counter}: the stream is truncated (final chunk missing) or has trailing data"
            )));
        }
        Ok((have - TRAILER_LEN - TAG_LEN, Some(t.to_vec())))
    }

    /// Opens the chunk at the start of the window (`body` bytes and the tag) and writes its
    /// plaintext: only authenticated plaintext is ever written.
    fn open_and_write(
        &mut self,
        counter: u64,
        body: usize,
        aad: Option<&[u8]>,
    ) -> anyhow::Result<()> {
        let sealed = &self.buf[..body + TAG_LEN];
        if !open_chunk(&mut self.ctx, sealed, counter, aad, &mut self.plain)? {
            return Err(auth_failed(counter));
        }
        self.out
            .write_all(&self.plain[..body])
            .context("writing output")?;
        self.progress.add(body as u64);
        Ok(())
    }
}

/// The final chunk's trailer `t` (authenticated, as AAD): its length must match what arrived,
/// and with `more_listed` (--chunks names chunks after it) the list is wrong.
fn check_trailer(
    t: &[u8],
    counter: u64,
    size: usize,
    body: usize,
    more_listed: bool,
) -> anyhow::Result<()> {
    let total = counter * size as u64 + body as u64;
    if u64::from_be_bytes(t[8..].try_into().expect("8 bytes")) != total {
        return Err(integrity(
            "the end trailer's length does not match the stream",
        ));
    }
    if more_listed {
        return Err(integrity(format!(
            "chunk {counter} is the stream's last, but --chunks names more"
        )));
    }
    Ok(())
}
