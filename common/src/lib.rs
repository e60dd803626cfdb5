//! Shared plumbing of the sol toolkit.
//!
//! Every tool ends through [`exit::finish`], so exit statuses, the one-line error format and the
//! closed-stdout rule of SPEC.md live here once. Stdin/stdout handling (pipe sizing, refusing
//! binary output to a terminal), size parsing and progress reporting live here too.

pub mod cli;
pub mod exit;
pub mod pool;
pub mod progress;
pub mod size;
pub mod stdio;
pub mod time;

pub use cli::{parse_cli, parse_cli_from};
pub use exit::{finish, io_msg, warn, Fail, Status};
pub use size::parse_size;

/// Lower-case hex of some bytes (digests, key ids).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
