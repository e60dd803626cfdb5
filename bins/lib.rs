//! The root package of the sol toolkit: the man pages, generated from every tool's command
//! line (each tool is a package of its own in `bins/<tool>/`), and the integration tests in
//! `tests/it`, which run every binary. docs/ARCHITECTURE.md shows how the packages depend on
//! each other.

pub mod man;

// The tools' libraries, for the tests that need one in process (s3-local's server).
pub use {s3_local, s3_ls, s3_mget, s3_mput, sol_crypt, sol_index, sol_tar, sol_zip, tar_md5};
