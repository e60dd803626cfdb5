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
    for format in ["sol-crypt.5", "sol-zip.5"] {
        assert!(
            dir.join(format).exists(),
            "man/{format} (a format) is missing"
        );
    }
    every_option_is_documented(&dir);
}

/// Issue 11, item 7: sol-tar(1) and sol-crypt(1) pointed to sol-tar-create(1) and others that
/// do not exist, options such as -C/--directory and keygen --bits were documented nowhere, and
/// six pages had an empty SUBCOMMANDS heading. Every option of every command and subcommand
/// must be in its tool's page, each subcommand under its own heading.
fn every_option_is_documented(dir: &Path) {
    let mut missing = Vec::new();
    for (name, cmd) in sol::man::commands() {
        let page = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        assert!(
            !page.contains(".SH SUBCOMMANDS"),
            "{name}: SUBCOMMANDS heading"
        );
        let tool = cmd.get_name().replace('-', "\\-");
        let mut all = vec![(cmd.get_name().to_string(), cmd.clone())];
        for sub in sol::man::subcommands(&cmd) {
            let full = format!("{} {}", cmd.get_name(), sub.get_name());
            let heading = format!(".SS {}", full.replace('-', "\\-"));
            if !page.contains(&heading) {
                missing.push(format!("{name}: no section for '{full}'"));
            }
            let page_ref = format!("{tool}\\-{}(1)", sub.get_name());
            assert!(!page.contains(&page_ref), "{name} points to {page_ref}");
            all.push((full, sub.clone()));
        }
        for (what, c) in all {
            for arg in c
                .get_arguments()
                .filter(|a| !a.is_hide_set() && !a.is_positional())
            {
                let shown = match (arg.get_long(), arg.get_short()) {
                    (Some(long), _) => format!("\\fB\\-\\-{}\\fR", long.replace('-', "\\-")),
                    (None, Some(short)) => format!("\\fB\\-{short}\\fR"),
                    (None, None) => continue,
                };
                if !page.contains(&shown) {
                    missing.push(format!("{name}: '{what}' option {shown}"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:#?}");
}

#[test]
fn man_pages_render_with_man() {
    if !crate::util::has("man") {
        crate::util::skip("no man(1) to render the pages");
        return;
    }
    // The tools' pages and the scripts' pages written by hand (sol-backup, sol-backup-one...).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let mut names: Vec<String> = sol::man::pages().into_iter().map(|(n, _)| n).collect();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with("sol-") && n.ends_with(".1") && !names.contains(&n) {
            names.push(n);
        }
    }
    assert!(names.iter().any(|n| n == "sol-backup-one.1"), "{names:?}");
    for name in names {
        let path = dir.join(&name);
        let out = crate::util::output_ok(
            std::process::Command::new("man")
                .arg("-l")
                .arg(&path)
                .env("MANWIDTH", "80"),
            &format!("{name}: "),
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("EXIT STATUS"),
            "{name} lacks EXIT STATUS"
        );
    }
}

/// The shell lists of the tools (what scripts/install installs, what .ci/run builds alone)
/// are the tools of bins/man.rs, the one list.
#[test]
fn the_shell_lists_of_tools_are_the_one_list() {
    let want = crate::util::tools().join(" ");
    for (file, start) in [("scripts/install", "tools=("), (".ci/run", "for p in ")] {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("{file}: no line '{start}...'"));
        let list = line[start.len()..].split([')', ';']).next().unwrap().trim();
        assert_eq!(list, want, "{file}: the tools it names");
    }
}
