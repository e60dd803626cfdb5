//! The Mgzip member layout (gzp's framing) and sol-zip's stream markers.
//!
//! A member: gzip header with FEXTRA, XLEN = 8, one subfield `IG` of 4 bytes holding the
//! member's total size (header + deflate data + 8-byte trailer); deflate data; CRC-32; ISIZE.

/// Bytes of an Mgzip header.
pub const HEADER: usize = 20;
/// Bytes of the CRC-32 + ISIZE trailer.
pub const TRAILER: usize = 8;
/// Largest member (compressed) or block (decompressed) we accept: sol-zip writes blocks of at
/// most 8 MiB (1 MiB by default, gzp's own default is 128 KiB);
/// anything far beyond is corruption, and the bound keeps memory flat on garbage.
pub const MAX_BLOCK: usize = 16 << 20;

const fn marker(tag: u8) -> [u8; 30] {
    [
        0x1f, 0x8b, 8, 4, b'S', b'Z', 1, tag, 0, 255, 8, 0, b'I', b'G', 4, 0, 30, 0, 0,
        0, // header
        3, 0, // an empty final deflate block
        0, 0, 0, 0, 0, 0, 0, 0, // CRC-32 and ISIZE of nothing
    ]
}

/// Opens every sol-zip stream: "an end marker follows".
pub const START: [u8; 30] = marker(b'S');
/// Closes every sol-zip stream.
pub const END: [u8; 30] = marker(b'E');

/// The member's total size when `h` is an Mgzip header, else None.
pub fn mgzip_size(h: &[u8]) -> Option<usize> {
    let is_mgzip = h.len() >= HEADER
        && h[0] == 0x1f
        && h[1] == 0x8b
        && h[2] == 8
        && h[3] == 4
        && h[10] == 8
        && h[11] == 0
        && &h[12..14] == b"IG"
        && h[14] == 4
        && h[15] == 0;
    is_mgzip.then(|| u32::from_le_bytes([h[16], h[17], h[18], h[19]]) as usize)
}
