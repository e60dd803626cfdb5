//! Committed man pages are generated from the CLIs: a stale one fails here.
//! `SOL_UPDATE_MAN=1 cargo test man` rewrites them.

use std::path::Path;

#[test]
fn man_pages_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let update = std::env::var_os("SOL_UPDATE_MAN").is_some();
    let mut stale = Vec::new();
    for (name, text) in sol::man::pages() {
        let path = dir.join(&name);
        if update {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "stale man pages {stale:?}: run SOL_UPDATE_MAN=1 cargo test man"
    );
    assert!(
        dir.join("sol-crypt.5").exists(),
        "man/sol-crypt.5 (the format) is missing"
    );
}

#[test]
fn man_pages_render_with_man() {
    if !crate::util::has("man") {
        return;
    }
    for (name, _) in sol::man::pages() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("man")
            .join(&name);
        let out = std::process::Command::new("man")
            .arg("-l")
            .arg(&path)
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("EXIT STATUS"),
            "{name} lacks EXIT STATUS"
        );
    }
}
