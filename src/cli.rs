//! Command-line arguments and dispatch.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::commands;

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

#[derive(Debug, Args)]
pub struct RunArgs {
    /// TOML configuration, read over the embedded default (`selfplay config --default`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The run directory: archive, checkpoints, metrics.
    #[arg(long, value_name = "DIR", default_value = "runs/default")]
    pub run_dir: PathBuf,
    /// Stop after this many minutes (the round under way finishes).
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Stop after this many rounds in this invocation.
    #[arg(long)]
    pub rounds: Option<u64>,
    /// Replaces the configuration's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct RateArgs {
    /// The run directory: ratings go to its archive, the model to DIR/preference.json.
    #[arg(long, value_name = "DIR", default_value = "runs/default", global = true)]
    pub run_dir: PathBuf,
    /// Without a subcommand: compare problems two at a time in the terminal.
    #[command(subcommand)]
    pub command: Option<RateCommand>,
}

#[derive(Debug, Subcommand)]
pub enum RateCommand {
    /// Add ratings from JSON lines `{"a": "...", "b": "...", "winner": "a"|"b"|"tie"}`; a side that
    /// is all digits is an archive id, anything else a problem's text. All or nothing; judgements
    /// an earlier import stored are not stored again.
    Import {
        /// Input file; `-` reads standard input.
        input: PathBuf,
    },
    /// Fit the preference scorer to the ratings, except the held-out ones.
    Train {
        /// Fraction of ratings held out for `rate eval` (by a fixed hash of their ids).
        #[arg(long, default_value_t = 0.2)]
        holdout: f64,
        /// L2 penalty on the weights.
        #[arg(long, default_value_t = 0.01)]
        l2: f64,
        /// Where to write the model (default: DIR/preference.json).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// How often the fitted model picks the winner of held-out ratings, with a 95% interval.
    Eval {
        /// The model (default: DIR/preference.json).
        #[arg(long, value_name = "FILE")]
        model: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run directory.
    #[arg(long, value_name = "DIR")]
    pub run_dir: PathBuf,
    /// Where to write the page (default: DIR/report.html).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// While a daemon holds the archive: seconds to wait for each part of its answer.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = positive_seconds)]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print the embedded default configuration.
    #[arg(long)]
    pub default: bool,
    /// Check a configuration file and print it complete.
    #[arg(long, value_name = "FILE", conflicts_with = "default")]
    pub check: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PretrainArgs {
    /// A run configuration (as `selfplay run --config` takes): its `[warm_start]` is trained;
    /// the flags below override it. Without it, the embedded defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the checkpoints go: DIR/solver, DIR/proposer, and DIR/report.json.
    #[arg(long, value_name = "DIR", default_value = "runs/warmstart")]
    pub out: PathBuf,
    /// The warm start's seed (default: `warm_start.seed` of the configuration, 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Step budget of the solver.
    #[arg(long)]
    pub solver_steps: Option<u64>,
    /// Step budget of the proposer.
    #[arg(long)]
    pub proposer_steps: Option<u64>,
    /// Examples per step, both players.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Largest literal in training problems.
    #[arg(long)]
    pub max_literal: Option<u32>,
    /// Model width, both players.
    #[arg(long)]
    pub d_model: Option<usize>,
    #[arg(long)]
    pub layers: Option<usize>,
    #[arg(long)]
    pub heads: Option<usize>,
    /// Validate every this many steps.
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A solver checkpoint, or a directory holding one in `solver/`.
    #[arg(long, value_name = "DIR")]
    pub checkpoint: PathBuf,
    /// JSON lines with `problem`, `answer` and optional `depth`.
    #[arg(long, value_name = "FILE")]
    pub benchmark: PathBuf,
    /// K for sampled pass@K (temperature 1); 0 skips sampling.
    #[arg(long, default_value_t = 8)]
    pub samples: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// The last line is one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also write each problem's outcome here, one JSON object per line: `problem`, `answer`,
    /// `depth`, `greedy_output`, `greedy` (correct), `correct_samples` of `samples`.
    #[arg(long, value_name = "FILE")]
    pub items: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Median milliseconds per training step (AdamW, f32, forward + backward + update).
    Train(BenchTrainArgs),
    /// New tokens per second, with the KV cache and recomputing the prefix.
    Sample(BenchSampleArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BenchModelArgs {
    #[arg(long, default_value_t = 128)]
    pub d_model: usize,
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    #[arg(long, default_value_t = 32)]
    pub vocab: usize,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchTrainArgs {
    #[command(flatten)]
    pub model: BenchModelArgs,
    #[arg(long, default_value_t = 64)]
    pub ctx: usize,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Timed steps (after 2 untimed ones).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
}

#[derive(Debug, Args)]
pub struct BenchSampleArgs {
    #[command(flatten)]
    pub model: BenchModelArgs,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Prompt tokens per sequence.
    #[arg(long, default_value_t = 16)]
    pub prompt: usize,
    /// New tokens per sequence.
    #[arg(long, default_value_t = 48)]
    pub new: usize,
    /// Timed repetitions of each mode.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
}

#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// File with one problem per line; `-` or nothing reads standard input.
    pub input: Option<PathBuf>,
    /// One JSON object per input line, in order.
    #[arg(long)]
    pub json: bool,
    /// Token budget: longer problems are invalid.
    #[arg(long, default_value_t = problem::Limits::default().max_tokens)]
    pub max_tokens: usize,
    /// Deepest nesting of parentheses allowed.
    #[arg(long, default_value_t = problem::Limits::default().max_nesting)]
    pub max_nesting: usize,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Composition depth: number of operations, none of them padding.
    #[arg(long)]
    pub depth: u32,
    /// How many problems.
    #[arg(long)]
    pub count: u64,
    /// Largest literal (at most 999).
    #[arg(long, default_value_t = 99)]
    pub max_literal: u32,
    /// Random seed: the same seed gives the same problems.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Only the problem text, one per line (what `selfplay judge` reads), instead of JSON lines.
    #[arg(long)]
    pub text: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("where").required(true).args(["db", "run_dir"])))]
pub struct ArchiveArgs {
    /// The archive database directory.
    #[arg(long, value_name = "DIR")]
    pub db: Option<PathBuf>,
    /// A run directory (its archive is DIR/archive).
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// While a daemon holds the archive: seconds to wait for each part of its answer.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = positive_seconds)]
    pub timeout: f64,
    #[command(subcommand)]
    pub command: ArchiveCommand,
}

impl ArchiveArgs {
    /// The database directory these flags name.
    pub fn db_path(&self) -> PathBuf {
        match (&self.db, &self.run_dir) {
            (Some(db), _) => db.clone(),
            (None, Some(run)) => run.join("archive"),
            (None, None) => unreachable!("clap requires one of --db and --run-dir"),
        }
    }
}

#[derive(Debug, Clone, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveCommand {
    /// List problems a page at a time: oldest first, newest first, or sorted by a field.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// Problems per page.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// In id order: start after this id (the last id of the previous page).
        #[arg(long, value_name = "ID", conflicts_with_all = ["sort", "offset"])]
        after: Option<u64>,
        /// Newest first (id order).
        #[arg(long, conflicts_with = "sort")]
        newest: bool,
        /// Sort by this field, ascending; problems without it come last. Reads every match.
        #[arg(long, value_enum, value_name = "FIELD")]
        sort: Option<SortKey>,
        /// With --sort: descending.
        #[arg(long, requires = "sort")]
        desc: bool,
        /// With --sort: skip this many (the pages before).
        #[arg(long, default_value_t = 0, requires = "sort")]
        offset: usize,
        /// One JSON record per line.
        #[arg(long)]
        json: bool,
    },
    /// Show one problem with everything known about it.
    Show {
        id: u64,
        #[arg(long)]
        json: bool,
    },
    /// Problems with the same canonical form as problem ID, or as a problem given as text.
    Equivalents {
        #[arg(required_unless_present = "problem", conflicts_with = "problem")]
        id: Option<u64>,
        /// A problem's text instead of an id, e.g. `"2*(3+4)"`: its canonical form is searched.
        #[arg(long, value_name = "TEXT")]
        problem: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// The reference problems ID came from, and the problems it was a reference for, as trees.
    Lineage {
        id: u64,
        /// Generations to follow each way.
        #[arg(long, default_value_t = 3)]
        depth: usize,
        #[arg(long)]
        json: bool,
    },
    /// Counts and histograms.
    Stats {
        #[command(flatten)]
        filter: FilterArgs,
        /// Also per window of this many rounds (JSON: a `windows` list).
        #[arg(long, value_name = "ROUNDS")]
        window: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Write problems as JSON lines or CSV.
    Export {
        #[arg(long, value_enum)]
        format: ExportFormat,
        #[command(flatten)]
        filter: FilterArgs,
        /// Output file (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// A terminal UI: scroll the problems, filter, read one whole, follow its lineage.
    Browse,
    /// Read problems from JSON lines as written by `export --format jsonl` (creates the archive).
    Import {
        /// Input file; `-` reads standard input.
        input: PathBuf,
        /// Give the problems fresh ids after the archive's last instead of keeping theirs.
        #[arg(long)]
        renumber: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

/// Filters shared by `list`, `stats` and `export`. Ranges are inclusive: `LO..HI`, `LO..`, `..HI`
/// or a single value.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct FilterArgs {
    /// Only this run.
    #[arg(long)]
    pub run: Option<String>,
    /// Round range, e.g. `10..20`.
    #[arg(long, value_name = "RANGE")]
    pub rounds: Option<String>,
    /// Only valid problems.
    #[arg(long, conflicts_with = "invalid")]
    pub valid: bool,
    /// Only invalid problems.
    #[arg(long)]
    pub invalid: bool,
    /// Only invalid problems with this reason (syntax, range, literal, too_long, ...).
    #[arg(long)]
    pub reason: Option<String>,
    /// Solve-rate range within [0, 1], e.g. `0.2..0.8`.
    #[arg(long, value_name = "RANGE")]
    pub solve_rate: Option<String>,
    /// Padding range within [0, 1], e.g. `0.1..`.
    #[arg(long, value_name = "RANGE")]
    pub padding: Option<String>,
    /// Composition depth or range, e.g. `3` or `2..4`.
    #[arg(long, value_name = "RANGE")]
    pub depth: Option<String>,
    /// Problem text contains this.
    #[arg(long, value_name = "TEXT")]
    pub contains: Option<String>,
    /// Canonical hash (hex, as `judge --json` prints it).
    #[arg(long, value_name = "HEX")]
    pub hash: Option<String>,
    /// Interestingness range within [0, 1]; problems without a score never match.
    #[arg(long, value_name = "RANGE")]
    pub interestingness: Option<String>,
    /// Scored by this scorer: `name` (any version) or `name@version`.
    #[arg(long, value_name = "NAME")]
    pub scorer: Option<String>,
}

/// Fields `archive list --sort` orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SortKey {
    Id,
    Round,
    SolveRate,
    Padding,
    Depth,
    Interestingness,
    /// Proposer reward.
    Reward,
    /// Text length in characters.
    Length,
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
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
    let result = commands::run(cli.command, &mut out).and_then(|()| out.flush().map_err(Into::into));
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

/// Logging: to standard error (`RUST_LOG` sets the filter; `info` for long-running commands,
/// `warn` otherwise and under a progress bar) and, with `log_dir`, to daily rolling files there.
/// The guard flushes the files on drop. Installs once per process; later calls do nothing. Fails
/// when the log directory cannot be made or written.
pub fn init_tracing(
    log_dir: Option<&Path>,
    stderr_default: &str,
) -> anyhow::Result<Option<tracing_appender::non_blocking::WorkerGuard>> {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;
    let stderr_filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(stderr_default))
        .add_directive("logfile=off".parse().expect("a valid directive"));
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_filter(stderr_filter);
    let (file_layer, guard) = match log_dir {
        Some(dir) => {
            let appender = tracing_appender::rolling::RollingFileAppender::builder()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_prefix("selfplay.log")
                .build(dir)
                .map_err(|e| anyhow::anyhow!("cannot write logs in {}: {e}", dir.display()))?;
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer)
                .with_filter(EnvFilter::new("info"));
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    Ok(tracing_subscriber::registry().with(stderr_layer).with(file_layer).try_init().ok().and(guard))
}
