//! The process plumbing of the sol toolkit, shared by every tool.
//!
//! Every tool ends through [`exit::finish`], so exit statuses (and the table their man text
//! comes from), the one-line error format, the one warning path ([`exit::warn`]) and the
//! closed-stdout rule (README.md, Conventions; each man page's EXIT STATUS) live here once.
//! Stdin/stdout handling (pipe sizing, refusing binary output to a terminal), command-line
//! parsing, sizes, durations, progress reporting and the bounded ordered-results worker
//! pool ([`ordered`]) live here too. The S3 client is the crate next door (common/s3), the
//! on-stream formats another (common/formats).

pub mod cli;
pub mod exit;
pub mod ordered;
pub mod pool;
pub mod progress;
pub mod ranges;
pub mod size;
pub mod stdio;
pub mod target;
pub mod time;

pub use cli::{parse_cli, parse_cli_from, ManText};
pub use exit::{finish, io_msg, warn, Fail, Status};
pub use size::parse_size;

/// Lower-case hex of some bytes (digests, key ids).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
