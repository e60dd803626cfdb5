//! The on-stream formats of the sol toolkit, one home each: every tool that writes, reads or
//! checks a format imports it from here, and no tool imports another tool's modules.
//!
//! - [`crypt`]: the sol-crypt v1 framing (header, chunks, trailer) and the completeness check
//!   that needs no key (`sol-crypt info`, `s3-mput`); the contract is man/sol-crypt.5.
//! - [`zip`]: sol-zip's gzip member framing (Mgzip size field, start and end members); the
//!   contract is man/sol-zip.5.
//! - [`tar`]: reading a tar stream strictly (`sol-tar list`/`extract`, `tar-md5`); the
//!   contract is man/sol-tar.1, INPUT CHECKS.
//! - [`sniff`]: which of these a stream is, from its first bytes, so a tool fed the wrong
//!   stage's output says which stage comes first.

pub mod crypt;
pub mod index;
pub mod sniff;
pub mod sparse;
pub mod tar;
pub mod zip;

/// `openssl enc` streams (what `sol-crypt --openssl` reads and writes) begin with this.
pub const OPENSSL_ENC_MAGIC: &[u8; 8] = b"Salted__";
