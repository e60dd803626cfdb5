//! Man pages: generated from each tool's clap definition (clap_mangen) plus hand-written
//! sections (EXAMPLES, EXIT STATUS, ...). `tests/man.rs` fails when a committed page is stale.

use clap::CommandFactory;

/// Every tool page: (file name in man/, roff text).
pub fn pages() -> Vec<(String, String)> {
    vec![
        page::<crate::sol_tar::cli::Cli>(crate::sol_tar::cli::EXTRA_MAN),
        page::<crate::sol_zip::cli::Cli>(crate::sol_zip::cli::EXTRA_MAN),
        page::<crate::sol_crypt::cli::Cli>(crate::sol_crypt::cli::EXTRA_MAN),
        page::<crate::tar_md5::cli::Cli>(crate::tar_md5::cli::EXTRA_MAN),
        page::<crate::s3_mput::cli::Cli>(crate::s3_mput::cli::EXTRA_MAN),
        page::<crate::s3_mget::cli::Cli>(crate::s3_mget::cli::EXTRA_MAN),
        page::<crate::s3_ls::cli::Cli>(crate::s3_ls::cli::EXTRA_MAN),
        page::<crate::s3_local::cli::Cli>(crate::s3_local::cli::EXTRA_MAN),
    ]
}

fn page<C: CommandFactory>(extra: &str) -> (String, String) {
    let cmd = C::command();
    let name = cmd.get_name().to_string();
    let man = clap_mangen::Man::new(cmd)
        .date("2026-11-21")
        .source("sol toolkit")
        .manual("User Commands");
    let mut out = Vec::new();
    man.render_title(&mut out).expect("render to memory");
    man.render_name_section(&mut out).expect("render to memory");
    man.render_synopsis_section(&mut out)
        .expect("render to memory");
    man.render_description_section(&mut out)
        .expect("render to memory");
    man.render_options_section(&mut out)
        .expect("render to memory");
    man.render_subcommands_section(&mut out)
        .expect("render to memory");
    let mut text = String::from_utf8(out).expect("roff is UTF-8");
    text.push_str(extra);
    (format!("{name}.1"), text)
}
