//! sol-jobs: the drivers behind the sol scripts (man/sol-jobs.1). `sol-backup`, `sol-audit`
//! and `sol-restore` are each `exec sol-jobs KIND "$@"`: this program checks their command
//! lines ([`cli`]), decides what to do per sol ([`backup`], [`audit`], [`restore`]), runs the
//! per-sol commands through GNU parallel ([`engine`]) and prints the report made from the
//! rows they print ([`report`]). What a sol's work is stays in the per-sol scripts
//! (scripts/sol-*-one), a pipeline of the tools a person can read and run by hand.

pub mod cli;

mod as_of;
mod audit;
mod backup;
mod changes;
mod common;
mod copies;
mod engine;
mod locks;
mod paths;
mod prune;
mod pull;
mod pull_state;
mod report;
mod restore;
mod sync;
mod targets;
mod thaw;
mod transfers;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Command, FromArgMatches};
use sol_common::cli::usage_message;

use cli::{Cli, Cmd};

pub const TOOL: &str = "sol-jobs";

pub fn main() -> ExitCode {
    common::on_signals();
    let (prog, cli) = parse(std::env::args_os().collect());
    common::set_scripts(match &cli.cmd {
        Cmd::Backup(a) => a.common.scripts.as_deref(),
        Cmd::Audit(a) => a.common.scripts.as_deref(),
        Cmd::Restore(a) => a.common.scripts.as_deref(),
        Cmd::Prune(_) | Cmd::Sync(_) | Cmd::Pull(_) => None,
    });
    let result = match cli.cmd {
        Cmd::Backup(a) => backup::main(a),
        Cmd::Audit(a) => audit::main(a),
        Cmd::Restore(a) => restore::main(a),
        Cmd::Prune(a) => prune::main(a),
        Cmd::Sync(a) => sync::main(a),
        Cmd::Pull(a) => pull::main(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let status = sol_common::exit::status_of(&err);
            sol_common::warn(prog, sol_common::exit::one_line(&err));
            if status == sol_common::Status::Usage {
                sol_common::warn(prog, format!("try '{prog} --help'"));
            }
            ExitCode::from(status as u8)
        }
    }
}

/// The command line, read as the script's own: `sol-jobs backup ...` is sol-backup's, so
/// its help, version and usage errors name sol-backup.
fn parse(mut args: Vec<OsString>) -> (&'static str, Cli) {
    let kind = args
        .get(1)
        .and_then(|a| a.to_str())
        .unwrap_or("")
        .to_string();
    let prog = match kind.as_str() {
        "backup" => "sol-backup",
        "audit" => "sol-audit",
        "restore" => "sol-restore",
        "prune" => "sol-prune",
        "sync" => "sol-sync",
        "pull" => "sol-pull",
        _ => return (TOOL, sol_common::parse_cli_from::<Cli>(TOOL, args)),
    };
    args.splice(0..2, [OsString::from(prog)]);
    let cmd = Cmd::from(prog, args).unwrap_or_else(|e| fail(prog, e));
    common::set_prog(prog);
    (prog, Cli { cmd })
}

impl Cmd {
    fn from(prog: &'static str, args: Vec<OsString>) -> Result<Cmd, clap::Error> {
        fn one<A: Args + FromArgMatches>(
            prog: &'static str,
            args: Vec<OsString>,
        ) -> Result<A, clap::Error> {
            let cmd = Command::new(prog)
                .version(env!("CARGO_PKG_VERSION"))
                .max_term_width(100);
            A::from_arg_matches(&A::augment_args(cmd).try_get_matches_from(args)?)
        }
        Ok(match prog {
            "sol-backup" => Cmd::Backup(one(prog, args)?),
            "sol-audit" => Cmd::Audit(one(prog, args)?),
            "sol-prune" => Cmd::Prune(one(prog, args)?),
            "sol-sync" => Cmd::Sync(one(prog, args)?),
            "sol-pull" => Cmd::Pull(one(prog, args)?),
            _ => Cmd::Restore(one(prog, args)?),
        })
    }
}

/// Help and version on stdout, status 0; a usage error as every tool's, status 2.
fn fail(prog: &str, e: clap::Error) -> ! {
    use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
    if matches!(e.kind(), DisplayHelp | DisplayVersion) {
        let _ = e.print();
        std::process::exit(0);
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{prog}: {}", usage_message(&e));
    let _ = writeln!(err, "{prog}: try '{prog} --help'");
    std::process::exit(2);
}
