use std::fs;

use crate::util::*;

#[test]
fn the_full_pipe_restores_the_tree_byte_exact() {
    let (t, src) = awkward_src(33);
    let k = keyfile(t.path(), "site.key", 256);
    let dest = t.path().join("dest");
    sh(&format!(
        "sol-tar create -C '{s}' sol0001 | sol-zip -p 2 | sol-crypt -e -k '{k}' > '{t}/a.sc'\n\
         sol-crypt info < '{t}/a.sc' > /dev/null\n\
         sol-crypt -d -k '{k}' < '{t}/a.sc' | sol-zip -d | sol-tar extract -C '{d}'\n\
         sol-crypt -d -k '{k}' < '{t}/a.sc' | sol-zip -d | tar-md5 --check '{s}'",
        s = src.display(),
        k = k.display(),
        d = dest.display(),
        t = t.path().display()
    ))
    .run()
    .ok();
    assert_same_tree(&src, &dest);
}

#[test]
fn the_classic_tools_read_every_stage() {
    let (t, src) = awkward_src(34);
    let pass = t.path().join("pass");
    fs::write(&pass, "pw\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&pass, fs::Permissions::from_mode(0o600)).unwrap();
    let dest = t.path().join("dest");
    fs::create_dir(&dest).unwrap();
    sh(&format!(
        "sol-tar create -C '{s}' sol0001 | sol-zip | sol-crypt --openssl -e -k '{p}' |\n\
         openssl enc -d -aes-256-cbc -pbkdf2 -pass file:'{p}' | gzip -dc | tar -xf - -C '{d}'",
        s = src.display(),
        p = pass.display(),
        d = dest.display()
    ))
    .run()
    .ok();
    assert_same_tree(&src, &dest);
}
