//! The sol toolkit's tools as a library: each `bins/<tool>/` folder is a module here, so the
//! thin binaries, the man-page generator and the tests share one definition of every CLI.

pub mod man;
pub mod sniff;

#[path = "s3-local/mod.rs"]
pub mod s3_local;
#[path = "s3-ls/mod.rs"]
pub mod s3_ls;
#[path = "s3-mget/mod.rs"]
pub mod s3_mget;
#[path = "s3-mput/mod.rs"]
pub mod s3_mput;
#[path = "sol-crypt/mod.rs"]
pub mod sol_crypt;
#[path = "sol-tar/mod.rs"]
pub mod sol_tar;
#[path = "sol-zip/mod.rs"]
pub mod sol_zip;
#[path = "tar-md5/mod.rs"]
pub mod tar_md5;
