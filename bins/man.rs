//! Man pages: generated from each tool's clap definition (clap_mangen) plus its
//! [`ManText`] (`cli::MAN` of the tool: hand-written sections such as EXAMPLES, the exit
//! statuses it lists, from which EXIT STATUS is written, SEE ALSO). A tool's subcommands are
//! folded into its own page (a COMMANDS section with each one's synopsis, description and
//! options), so every option of every command is documented in one place.
//! `tests/it/man.rs` fails when a committed page is stale or misses an option;
//! `SOL_UPDATE_MAN=1 cargo test --test it man` regenerates them.

use clap::{Command, CommandFactory};
use sol_common::ManText;

/// The date in every page's footer: the one place to change it, when the pages change in
/// substance (a release).
pub const MAN_DATE: &str = "2026-11-21";

/// One tool: its command line (clap) and the man text beyond it.
pub struct Tool {
    pub name: &'static str,
    pub command: fn() -> Command,
    pub man: &'static ManText,
}

fn tool<C: CommandFactory>(name: &'static str, man: &'static ManText) -> Tool {
    Tool {
        name,
        command: C::command,
        man,
    }
}

/// Every tool of the toolkit, each the binary of its own package (bins/<tool>/): the one
/// list that the man pages and the tests (tests/it/util.rs) read. `scripts/install` and
/// `.ci/run` name the tools in shell; tests/it/man.rs checks that they name these.
pub fn tools() -> Vec<Tool> {
    vec![
        tool::<sol_tar::cli::Cli>("sol-tar", &sol_tar::cli::MAN),
        tool::<sol_zip::cli::Cli>("sol-zip", &sol_zip::cli::MAN),
        tool::<sol_crypt::cli::Cli>("sol-crypt", &sol_crypt::cli::MAN),
        tool::<tar_md5::cli::Cli>("tar-md5", &tar_md5::cli::MAN),
        tool::<s3_mput::cli::Cli>("s3-mput", &s3_mput::cli::MAN),
        tool::<s3_mget::cli::Cli>("s3-mget", &s3_mget::cli::MAN),
        tool::<s3_ls::cli::Cli>("s3-ls", &s3_ls::cli::MAN),
        tool::<s3_local::cli::Cli>("s3-local", &s3_local::cli::MAN),
        tool::<sol_index::cli::Cli>("sol-index", &sol_index::cli::MAN),
        tool::<sol_jobs::cli::Cli>("sol-jobs", &sol_jobs::cli::MAN),
    ]
}

/// Every tool page: (file name in man/, roff text).
pub fn pages() -> Vec<(String, String)> {
    tools().iter().map(|t| page((t.command)(), t.man)).collect()
}

/// The tools' command definitions, by page name (for the completeness check).
pub fn commands() -> Vec<(String, Command)> {
    tools()
        .iter()
        .map(|t| (format!("{}.1", t.name), (t.command)()))
        .collect()
}

/// A command's documented subcommands (not clap's implicit `help`, not hidden ones).
pub fn subcommands(cmd: &Command) -> Vec<&Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect()
}

fn man(cmd: Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd)
        .date(MAN_DATE)
        .source("sol toolkit")
        .manual("User Commands")
}

fn page(mut cmd: Command, extra: &ManText) -> (String, String) {
    cmd.build();
    let name = cmd.get_name().to_string();
    let m = man(cmd.clone());
    let mut out = Vec::new();
    m.render_title(&mut out).expect("render to memory");
    m.render_name_section(&mut out).expect("render to memory");
    usage_sections(&m, &mut out);
    let subs = subcommands(&cmd);
    if !subs.is_empty() {
        out.extend_from_slice(b".SH COMMANDS\n");
        for sub in subs {
            let full = format!("{name} {}", sub.get_name());
            let sub = sub.clone().bin_name(full.clone());
            let mut section = Vec::new();
            usage_sections(&man(sub.clone()), &mut section);
            let text = String::from_utf8(section).expect("roff is UTF-8");
            // The subcommand's own sections become subsections of COMMANDS.
            let text = text
                .replace(".SH SYNOPSIS\n", &format!(".SS {}\n", roff_escape(&full)))
                .replace(".SH DESCRIPTION\n", ".PP\n")
                .replace(".SH OPTIONS\n", ".PP\nOptions:\n");
            out.extend_from_slice(text.as_bytes());
        }
    }
    let mut text = String::from_utf8(out).expect("roff is UTF-8");
    text.push_str(extra.page);
    text.push_str(extra.environment.unwrap_or_default());
    text.push_str(extra.end);
    (format!("{name}.1"), text)
}

/// SYNOPSIS, DESCRIPTION and OPTIONS of a command.
fn usage_sections(m: &clap_mangen::Man, out: &mut Vec<u8>) {
    m.render_synopsis_section(out).expect("render to memory");
    m.render_description_section(out).expect("render to memory");
    m.render_options_section(out).expect("render to memory");
}

fn roff_escape(s: &str) -> String {
    s.replace('-', "\\-")
}

#[cfg(test)]
mod tests {
    /// clap's own checks of every tool's definition (was one test in each tool's cli.rs).
    #[test]
    fn every_cli_is_consistent() {
        for (_, cmd) in super::commands() {
            cmd.debug_assert();
        }
    }
}
