//! Command lines: clap parses, but every usage error reads like every other error of the
//! toolkit (`TOOL: what is wrong`, status 2), followed by one `Try 'TOOL --help'` line, so a
//! failing stage of a pipeline names itself.

use std::ffi::OsString;
use std::io::Write;

use clap::error::ErrorKind;
use clap::Parser;

use crate::exit::{printable, Status};

/// What a tool's man page says beyond what clap writes from its definitions: its own
/// sections (EXAMPLES, FORMAT, ENVIRONMENT, ..., EXIT STATUS, SEE ALSO), in roff files next
/// to its code. The generator is
/// bins/man.rs.
pub struct ManText {
    /// The page's own sections (roff, from `.SH`): DESCRIPTION's details, EXAMPLES, ...
    pub page: &'static str,
    /// An ENVIRONMENT section shared with other tools, after them.
    pub environment: Option<&'static str>,
    /// EXIT STATUS and SEE ALSO, the end of the page.
    pub end: &'static str,
}

impl ManText {
    pub const fn new(page: &'static str, end: &'static str) -> ManText {
        ManText {
            page,
            environment: None,
            end,
        }
    }
}

/// Parse the process's arguments; on a usage error print it as `TOOL: ...` and exit 2.
pub fn parse_cli<C: Parser>(tool: &str) -> C {
    parse_cli_from(tool, std::env::args_os())
}

/// [`parse_cli`] with the arguments given (e.g. rewritten first, as sol-zip's `-1`..`-9`).
pub fn parse_cli_from<C: Parser>(tool: &str, args: impl IntoIterator<Item = OsString>) -> C {
    match C::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => std::process::exit(report(tool, &e)),
    }
}

/// Print a clap error (help and version go to stdout as usual) and return the exit status.
fn report(tool: &str, e: &clap::Error) -> i32 {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // A closed stdout here is not worth a message: help was not wanted.
            let _ = e.print();
            0
        }
        _ => {
            let text = usage_message(e);
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{tool}: {text}");
            let _ = writeln!(err, "Try '{tool} --help' for more information.");
            Status::Usage as i32
        }
    }
}

/// clap's message without its `error: ` prefix, tips and usage block, on one line.
pub fn usage_message(e: &clap::Error) -> String {
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        return "a subcommand or argument is missing".into();
    }
    let rendered = e.render().to_string();
    let first: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect();
    let line = first.join(" ");
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    printable(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    #[command(name = "t")]
    struct Cli {
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=9))]
        level: Option<u32>,
        #[arg(required = true)]
        path: Vec<String>,
    }

    fn message(args: &[&str]) -> String {
        let e = Cli::try_parse_from(args).unwrap_err();
        usage_message(&e)
    }

    #[test]
    fn messages_are_one_line_without_prefix() {
        assert_eq!(
            message(&["t", "--level", "0", "x"]),
            "invalid value '0' for '--level <LEVEL>': 0 is not in 1..=9"
        );
        assert_eq!(
            message(&["t"]),
            "the following required arguments were not provided: <PATH>..."
        );
        assert_eq!(
            message(&["t", "--nope", "x"]),
            "unexpected argument '--nope' found"
        );
    }
}
