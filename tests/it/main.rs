//! Integration tests: the built binaries, run on real data, checked with the real tar, gzip,
//! pigz, openssl and md5sum they claim compatibility with.

mod audit;
mod cli;
mod counting;
mod fuzz;
mod man;
mod multihost;
mod pipeline;
mod readme;
mod recipients;
mod restore_index;
mod restore_path;
mod s3;
mod s3_cold;
mod s3_lock;
mod s3_promises;
mod s3_prune;
mod s3_ranges;
mod s3_sync;
mod s3env;
mod scripts;
mod scripts_faults;
mod sol_crypt;
mod sol_tar;
mod sol_zip;
mod sparse;
mod tar_md5;
mod targets;
mod util;
mod vendors;
