//! The command line: the `selfplay` commands, and what runs each.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::archive::ArchiveArgs;
use crate::commands::bench::BenchCommand;
use crate::commands::eval::EvalArgs;
use crate::commands::gen::GenArgs;
use crate::commands::judge::JudgeArgs;
use crate::commands::pretrain::PretrainArgs;
use crate::commands::run::{ConfigArgs, RunArgs};
use crate::commands::{archive, bench, eval, gen, judge, pretrain, run};
use crate::logging::init_tracing;
use crate::rate::RateArgs;
use crate::report::ReportArgs;

#[derive(Debug, Parser)]
#[command(
    name = "selfplay",
    version,
    about = "A lab where a proposer and a solver teach each other by self-play",
    after_help = "Exit codes: 0 success; 1 failure; 2 usage error or refused configuration; \
                  3 archive busy or its daemon unreachable; 4 archive damaged."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Judge problems, one per input line: validity, exact answer, canonical form, padding.
    Judge(JudgeArgs),
    /// Generate random problems of one composition depth, as JSON lines.
    Gen(GenArgs),
    /// Browse, query, export and import an archive.
    Archive(Box<ArchiveArgs>),
    /// Rate problems pairwise (a terminal UI), import ratings, fit and check the preference scorer.
    Rate(RateArgs),
    /// One HTML page about a run: accuracy, solve rates, validity, padding, rewards, skills.
    Report(ReportArgs),
    /// Run self-play in a run directory: warm start if needed, then rounds; resumes where it stopped.
    Run(RunArgs),
    /// Sample the solver's attempts of runs started with `selfplay run --nats`, until stopped.
    Worker(crate::commands::worker::WorkerArgs),
    /// The run configuration.
    Config(ConfigArgs),
    /// Warm start: teach the solver one-operation steps and the proposer well-formed problems.
    Pretrain(PretrainArgs),
    /// Solver accuracy on a benchmark file: greedy pass@1 and sampled pass@K, by depth.
    Eval(EvalArgs),
    /// Speed of the policy: training steps and sampling.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Shell completions for `selfplay`, printed for bash, zsh or fish
    /// (`selfplay completions bash > ~/.local/share/bash-completion/completions/selfplay`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Runs one command, writing its results to `out`.
pub fn dispatch(command: Command, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        Command::Judge(args) => judge::run(&args, out),
        Command::Gen(args) => gen::run(&args, out),
        Command::Archive(args) => archive::run(*args, out),
        Command::Pretrain(args) => pretrain::run(&args, out),
        Command::Report(args) => crate::report::run(&args, out),
        Command::Rate(args) => crate::rate::run(args, out),
        Command::Run(args) => run::run(&args, out),
        Command::Config(args) => run::config(&args, out),
        Command::Worker(args) => crate::commands::worker::run(&args),
        Command::Eval(args) => eval::run(&args, out),
        Command::Bench(args) => bench::run(&args, out),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "selfplay", out);
            Ok(())
        }
    }
}

/// Parses the command line, runs the command, and turns errors into a message and an exit code.
pub fn main() -> ExitCode {
    policy::device::keep_freed_memory();
    policy::device::fix_thread_count();
    let cli = Cli::parse();
    // Fault tests only (docs/RELIABILITY.md): without the variable every fail point is inert.
    if let Ok(spec) = std::env::var("SELFPLAY_FAILPOINTS") {
        if let Err(e) = store::failpoint::configure(&spec) {
            eprintln!("error: SELFPLAY_FAILPOINTS: {e}");
            return ExitCode::from(2);
        }
    }
    // `run` sets up its own logging once its configuration has been checked.
    if !matches!(cli.command, Command::Run(_)) {
        init_tracing(
            None,
            if matches!(cli.command, Command::Pretrain(_) | Command::Worker(_)) { "info" } else { "warn" },
        )
        .expect("logging to standard error needs no file");
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = dispatch(cli.command, &mut out).and_then(|()| out.flush().map_err(Into::into));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`selfplay archive list | head`) is not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            drop(out);
            // To the log file only (run); standard error gets the one line below.
            tracing::error!(target: "logfile", "{e:#}");
            eprintln!("error: {e:#}");
            crate::exit::code_of(&e)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<store::StoreError>().is_some_and(
                |s| matches!(s, store::StoreError::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe),
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command, flag and argument says what it is in `--help`.
    #[test]
    fn every_command_flag_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} --{}", arg.get_long().unwrap_or(arg.get_id().as_str())));
                }
            }
            for sub in cmd.get_subcommands() {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() && sub.get_name() != "help" {
                    missing.push(sub_path.clone());
                }
                walk(sub, &sub_path, missing);
            }
        }
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&cmd, "selfplay", &mut missing);
        assert!(missing.is_empty(), "without help text:\n{}", missing.join("\n"));
    }
}
