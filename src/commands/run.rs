//! `selfplay run` and `selfplay config`.

use std::path::PathBuf;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::exit::MarkExt;
use lab::config::{RunConfig, DEFAULT_TOML};
use lab::round::RoundMetrics;
use lab::run::{self, Budget};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// TOML configuration, read over the embedded default (`selfplay config --default`). Without it
    /// a run resumes on its own `RUN_DIR/config.toml`; one that differs needs --reconfigure.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Replaces one key of the configuration (`--set reward.padding.cost=0.3`); repeatable, checked
    /// like the file, recorded in `RUN_DIR/config-changes.jsonl`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<lab::config::Override>,
    /// Lets a resume change the run's configuration (from --config or --set): the change takes
    /// effect at the next round and is recorded with it.
    #[arg(long)]
    pub reconfigure: bool,
    /// The run directory: archive, checkpoints, metrics.
    #[arg(long, value_name = "DIR", default_value = "runs/default")]
    pub run_dir: PathBuf,
    /// Start from this warm start (a `selfplay pretrain --out DIR`) instead of training one; it is
    /// copied into the run directory.
    #[arg(long, value_name = "DIR")]
    pub warm_start: Option<PathBuf>,
    /// Stop after this many minutes (the round under way finishes).
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Stop after this many rounds in this invocation.
    #[arg(long)]
    pub rounds: Option<u64>,
    /// Replaces the configuration's seed (the same as `--set seed=N`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Sample the solver's attempts on `selfplay worker`s through this NATS server (JetStream on:
    /// `nats-server -js`) instead of in this process; the round's results are the same.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// With --nats: seconds a task may go unacknowledged before another worker gets it (a dead
    /// worker's).
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = super::positive_seconds, requires = "nats")]
    pub nats_ack_wait: f64,
    /// With --nats: longest wait for a worker's next answer, or for the server to come back,
    /// before the round fails (nothing of it written).
    #[arg(long, value_name = "SECONDS", default_value = "300", value_parser = super::positive_seconds, requires = "nats")]
    pub nats_timeout: f64,
    /// The final summary as one JSON object: `run_dir`, `resumed`, `first_round`, `last_round`,
    /// `rounds`, `seconds`, `problems`, `rounds_per_minute`, `problems_per_s`, `stopped_by_request`.
    #[arg(long)]
    pub json: bool,
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

/// The configuration in `path`, or the embedded defaults; validated.
pub(super) fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<RunConfig> {
    match path {
        None => Ok(RunConfig::default_config()),
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            RunConfig::from_toml(&text)
                .with_context(|| format!("configuration {}", p.display()))
                .marked(crate::exit::Kind::Usage)
        }
    }
}

pub fn config(args: &ConfigArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    match &args.check {
        Some(p) => write!(out, "{}", toml::to_string(&load_config(Some(p))?)?)?,
        None => write!(out, "{DEFAULT_TOML}")?,
    }
    Ok(())
}

fn progress_line(m: &RoundMetrics) -> String {
    let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let held_out = m.held_out.as_ref().map_or(String::new(), |h| {
        let accs: Vec<String> = h.iter().map(|(d, a)| format!("d{d} {a:.2}")).collect();
        format!("  held-out {}", accs.join(" "))
    });
    let scorers = m.scorers.as_ref().map_or(String::new(), |all| {
        let troubled: Vec<String> = all
            .iter()
            .filter(|(_, h)| h.state != "closed" || (h.batches > 0 && !h.last_batch_ok))
            .map(|(name, h)| {
                format!("{name} {} ({} failed calls, {} bad answers)", h.state, h.failed_calls, h.bad_answers)
            })
            .collect();
        let interest = fmt(m.mean_interestingness);
        if troubled.is_empty() {
            format!("  interest {interest}")
        } else {
            format!("  interest {interest}  scorers: {}", troubled.join(", "))
        }
    });
    // One level, or one per literal bound (`level 2.35 (≤20) 1.00 (≤99)`).
    let level = match &m.difficulty_levels {
        Some(levels) => levels.iter().map(|(b, l)| format!("{l:.2} (≤{b})")).collect::<Vec<_>>().join(" "),
        None => format!("{:.2}", m.difficulty_level),
    };
    // Depths the controller skips as exhausted (`level 2.40 (skipping 1)`).
    let skipping = if m.skipped_depths.is_empty() {
        String::new()
    } else {
        let d: Vec<String> = m.skipped_depths.iter().map(u32::to_string).collect();
        format!(" (skipping {})", d.join(", "))
    };
    // What the generator would have copied at the same targets (`copies 0.12 (generator 0.10)`).
    let generator = m.generator_duplicate_fraction.map_or(String::new(), |g| format!(" (generator {g:.2})"));
    format!(
        "round {:>5}  valid {:.2}  padded {:.2}  copies {:.2}{generator}  median p {}  in band {:.2}  reward {:+.3}  level {level}{skipping}  {:.1} problems/s{scorers}{held_out}",
        m.round,
        m.valid_fraction,
        m.padded_fraction,
        m.duplicate_fraction,
        fmt(m.median_solve_rate),
        m.band_fraction,
        m.mean_reward,
        m.problems_per_s,
    )
}

pub fn run(args: &RunArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let mut overrides = args.overrides.clone();
    if let Some(seed) = args.seed {
        // TOML integers are signed 64-bit: the seeds a configuration can hold.
        let seed = i64::try_from(seed)
            .map_err(|_| anyhow::anyhow!("--seed must be at most {}", i64::MAX))
            .marked(crate::exit::Kind::Usage)?;
        overrides.push(lab::config::Override { key: "seed".into(), value: toml::Value::Integer(seed) });
    }
    let settled = lab::settle::settle(&args.run_dir, args.config.as_deref(), &overrides, args.reconfigure)
        .marked(crate::exit::Kind::Usage)?;
    // A warm start that cannot be used stops the run before the run directory is made.
    if let Some(from) = &args.warm_start {
        run::check_warm_start(from).marked(crate::exit::Kind::Usage)?;
    }
    let device = super::device(&args.device)?;
    let nats = args.nats.as_ref().map(|url| workers::LearnerOptions {
        url: url.clone(),
        ack_wait: std::time::Duration::from_secs_f64(args.nats_ack_wait),
        timeout: std::time::Duration::from_secs_f64(args.nats_timeout),
    });
    if let Some(options) = &nats {
        options.validate().marked(crate::exit::Kind::Usage)?;
    }
    // Made owner-only before anything (the log files first) is written into it.
    lab::settle::create_run_dir(&args.run_dir)?;
    let terminal = std::io::stderr().is_terminal();
    let _log_guard = crate::logging::init_tracing(
        Some(&args.run_dir.join("logs")),
        if terminal { "warn" } else { "info" },
    )?;
    let archive = Arc::new(run::open_run_dir(&settled, &args.run_dir)?);
    crate::provenance::Provenance::of_this_process(&args.device).append(&args.run_dir)?;
    if let Some(from) = &args.warm_start {
        run::adopt_warm_start(from, &args.run_dir).marked(crate::exit::Kind::Usage)?;
    }
    if let Some((_, changes)) = &settled.change {
        let keys: Vec<String> = changes.iter().map(ToString::to_string).collect();
        tracing::warn!("configuration changed: {}", keys.join("; "));
    }
    let cfg = settled.config;
    // The server is reached before the warm start: one that is not there stops the run at once.
    let rollouts: Box<dyn lab::rollouts::Rollouts> = match nats {
        None => Box::new(lab::rollouts::InProcess),
        Some(options) => {
            Box::new(workers::NatsRollouts::connect(options, workers::protocol::run_id(&args.run_dir)?)?)
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let run_dir = args.run_dir.clone();
    let budget = Budget { minutes: args.minutes, rounds: args.rounds };
    // On a terminal, a progress bar; otherwise (and always in the log files) tracing lines.
    let bar = terminal.then(|| {
        let bar = match args.rounds {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {pos:>5} rounds {wide_msg}",
            )
            .expect("the template is valid"),
        );
        bar
    });
    let summary = runtime.block_on(async {
        // Queries from `selfplay archive` while this process holds the archive. Without the
        // endpoint the run goes on; the CLI then reports the archive as in use.
        let socket = crate::endpoint::socket_path(archive.path());
        let _endpoint = match crate::endpoint::Server::start(archive.clone(), &socket) {
            Ok(server) => {
                tracing::info!("answering archive queries at {}", server.path().display());
                Some(server)
            }
            Err(e) => {
                tracing::warn!("no query endpoint: {e:#}");
                None
            }
        };
        let flag = stop.clone();
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let terminated = async {
                match term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminated => {}
            }
            flag.store(true, Ordering::SeqCst);
            tracing::warn!("stop requested: the round under way finishes, then a checkpoint is written");
        });
        let flag = stop.clone();
        let bar = bar.clone();
        let archive = archive.clone();
        tokio::task::spawn_blocking(move || {
            let mut log = |line: &str| match &bar {
                Some(b) => {
                    b.set_message(line.to_string());
                    tracing::info!("{line}");
                }
                None => tracing::info!("{line}"),
            };
            let mut on_round = |m: &RoundMetrics| {
                let line = progress_line(m);
                tracing::info!(round = m.round, "{line}");
                if let Some(b) = &bar {
                    b.inc(1);
                    b.set_message(line);
                }
            };
            run::run(&cfg, &run_dir, &archive, budget, &device, rollouts, &flag, &mut log, &mut on_round)
        })
        .await?
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let summary = summary?;
    if args.json {
        let rounds = summary.last_round - summary.first_round;
        let per = |n: f64, unit: f64| (summary.seconds > 0.0).then(|| n * unit / summary.seconds);
        let said = serde_json::json!({
            "run_dir": args.run_dir,
            "resumed": summary.resumed,
            "first_round": summary.first_round + 1,
            "last_round": summary.last_round,
            "rounds": rounds,
            "seconds": summary.seconds,
            "problems": summary.problems,
            "rounds_per_minute": per(rounds as f64, 60.0),
            "problems_per_s": per(summary.problems as f64, 1.0),
            "stopped_by_request": summary.stopped_by_request,
        });
        writeln!(out, "{said}")?;
        return Ok(());
    }
    if summary.stopped_by_request && summary.last_round == summary.first_round {
        writeln!(
            out,
            "stopped on request before round {} in {}",
            summary.first_round + 1,
            args.run_dir.display()
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{} rounds {}..{} in {}{}",
        if summary.resumed { "resumed; ran" } else { "ran" },
        summary.first_round + 1,
        summary.last_round,
        args.run_dir.display(),
        if summary.stopped_by_request { " (stopped on request)" } else { "" }
    )?;
    let rounds = summary.last_round - summary.first_round;
    if rounds > 0 && summary.seconds > 0.0 {
        writeln!(
            out,
            "{rounds} rounds in {:.1} s: {:.1} rounds/min, {:.1} problems/s",
            summary.seconds,
            rounds as f64 * 60.0 / summary.seconds,
            summary.problems as f64 / summary.seconds
        )?;
    }
    Ok(())
}
