//! `sol-crypt info`: the header, and whether the stream is complete, without the key.

use std::io::{Read, Write};

use anyhow::Context;
use sol_common::stdio::{read_full, BLOCK};
use sol_common::{Fail, Status};

use sol_common::hex;
use sol_formats::crypt::{self as format, TAG_LEN, TRAILER_LEN};

pub fn info(input: &mut impl Read) -> anyhow::Result<Status> {
    let start = super::stream::read_start(input)?;
    let (head, chunk_size) = if start[8] == format::VERSION_2 {
        let (h, _) = super::recipient::read_rest(&start, input)?;
        let mut text = format!(
            "format\tsol-crypt v{}\ncipher\t{}\nchunk-size\t{}\n",
            format::VERSION_2,
            format::Cipher::Aes256Gcm.name(),
            h.chunk_size
        );
        for s in &h.stanzas {
            text.push_str(&format!("stanza\t{}\n", s.describe()));
        }
        (text, h.chunk_size)
    } else {
        let header = format::Header::parse(&start).map_err(Fail::integrity)?;
        let text = format!(
            "format\tsol-crypt v{}\ncipher\t{}\nchunk-size\t{}\nkey-id\t{}\n",
            format::VERSION,
            header.cipher.name(),
            header.chunk_size,
            hex(&header.key_id),
        );
        (text, header.chunk_size)
    };
    let mut rest = 0u64;
    let mut last16 = Vec::with_capacity(2 * TRAILER_LEN);
    let mut buf = vec![0u8; BLOCK];
    loop {
        let n = read_full(input, &mut buf).context("reading input")?;
        if n == 0 {
            break;
        }
        rest += n as u64;
        last16.extend_from_slice(&buf[n.saturating_sub(TRAILER_LEN)..n]);
        let excess = last16.len().saturating_sub(TRAILER_LEN);
        last16.drain(..excess);
    }
    let sealed = u64::from(chunk_size) + TAG_LEN as u64;
    let complete = format::is_complete(rest, chunk_size, &last16);
    let mut out = sol_common::stdio::text_output();
    let text = format!(
        "{head}chunks\t{}\ncomplete\t{}\n",
        rest.saturating_sub(TRAILER_LEN as u64).div_ceil(sealed),
        if complete { "yes" } else { "no" },
    );
    out.write_all(text.as_bytes()).context("writing output")?;
    out.flush().context("writing output")?;
    if !complete {
        Err(Fail::integrity(
            "incomplete stream: the final chunk is missing or cut short",
        ))?;
    }
    Ok(Status::Success)
}
