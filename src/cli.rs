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
    about = "A lab where a proposer and a solver teach each other by self-play"
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
    /// The run configuration.
    Config(ConfigArgs),
    /// Warm start: teach the solver one-operation steps and the proposer well-formed problems.
    Pretrain(PretrainArgs),
    /// Solver accuracy on a benchmark file: greedy pass@1 and sampled pass@K, by depth.
    Eval(EvalArgs),
    /// Speed of the policy: training steps and sampling.
    #[command(subcommand)]
    Bench(BenchCommand),
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
        Command::Eval(args) => eval::run(&args, out),
        Command::Bench(args) => bench::run(&args, out),
    }
}

/// Parses the command line, runs the command, and turns errors into a message and an exit code.
pub fn main() -> ExitCode {
    policy::device::keep_freed_memory();
    policy::device::fix_thread_count();
    let cli = Cli::parse();
    // `run` sets up its own logging once its configuration has been checked.
    if !matches!(cli.command, Command::Run(_)) {
        init_tracing(None, if matches!(cli.command, Command::Pretrain(_)) { "info" } else { "warn" })
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
            ExitCode::FAILURE
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
