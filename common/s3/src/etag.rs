//! What an S3 ETag says about an object's bytes: the one home of the rule, for the tool
//! that uploads (s3-mput checks what it stored) and the one that downloads (s3-mget checks
//! what it read).

use md5::{Digest, Md5};
use sol_common::hex;

/// The ETag of a multipart object made of parts with these MD5s, in order:
/// MD5(MD5(part 1) || ... || MD5(part N)) "-" N.
pub fn multipart<'a>(part_md5s: impl ExactSizeIterator<Item = &'a [u8; 16]>) -> String {
    let n = part_md5s.len();
    let mut all = Md5::new();
    for m in part_md5s {
        all.update(m);
    }
    format!("{}-{n}", hex(&all.finalize()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn multipart_is_the_md5_of_the_parts_md5s() {
        use md5::{Digest, Md5};
        let a: [u8; 16] = Md5::digest(b"a").into();
        let b: [u8; 16] = Md5::digest(b"b").into();
        let mut both = a.to_vec();
        both.extend_from_slice(&b);
        let want = format!("{}-2", sol_common::hex(&Md5::digest(&both)));
        assert_eq!(super::multipart([a, b].iter()), want);
    }
}
