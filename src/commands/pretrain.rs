//! `selfplay pretrain`: the warm start of both players.

use std::path::PathBuf;

use std::io::Write;

use anyhow::Context;
use clap::Args;

use lab::warmstart;

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
    /// Transformer blocks, both players.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Attention heads per block, both players.
    #[arg(long)]
    pub heads: Option<usize>,
    /// Validate every this many steps.
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &PretrainArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let device = super::device(&args.device)?;
    let run_cfg = super::run::load_config(args.config.as_deref())?;
    let domain = run_cfg.domain();
    let mut cfg = run_cfg.warm_start;
    if let Some(seed) = args.seed {
        cfg.seed = seed;
    }
    for p in [&mut cfg.solver, &mut cfg.proposer] {
        if let Some(b) = args.batch {
            p.batch = b;
        }
        if let Some(m) = args.max_literal {
            p.max_literal = m;
        }
        if let Some(d) = args.d_model {
            p.d_model = d;
        }
        if let Some(l) = args.layers {
            p.layers = l;
        }
        if let Some(h) = args.heads {
            p.heads = h;
        }
        if let Some(e) = args.eval_every {
            p.eval_every = e;
        }
    }
    for (p, steps) in [(&mut cfg.solver, args.solver_steps), (&mut cfg.proposer, args.proposer_steps)] {
        if let Some(s) = steps {
            p.steps = s;
            p.optim.decay_steps = s.saturating_sub(p.optim.warmup_steps).max(1);
            p.optim.warmup_steps = p.optim.warmup_steps.min(s / 4 + 1);
        }
    }
    cfg.validate(domain).context("the warm start with the flags applied")?;
    let stop = super::stop_on_signal()?;
    // What this warm start creates, removed again if it is stopped: a next try starts clean.
    let created: Vec<PathBuf> = [args.out.clone(), args.out.join("solver"), args.out.join("proposer")]
        .into_iter()
        .filter(|p| !p.exists())
        .collect();
    let bar = progress_bar(cfg.solver.steps + cfg.proposer.steps);
    let solver_budget = cfg.solver.steps;
    let mut log = |line: &str| match &bar {
        Some(b) => b.suspend(|| tracing::info!("{line}")),
        None => tracing::info!("{line}"),
    };
    let mut on_step = |s: warmstart::Step| {
        if let Some(b) = &bar {
            let done = if s.player == "solver" { s.step } else { solver_budget + s.step };
            b.set_position(done);
            b.set_message(s.player.to_string());
        }
    };
    let result = warmstart::run_watched(&cfg, domain, &args.out, &device, &stop, &mut log, &mut on_step);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = match result {
        Err(e) if e.is::<warmstart::Stopped>() => {
            // Deepest first: the players' directories, then `out` if this run made it.
            for path in created.iter().rev() {
                let _ = std::fs::remove_dir_all(path);
            }
            writeln!(
                out,
                "stopped on request: the unfinished warm start was removed from {}; run again to start over",
                args.out.display()
            )?;
            return Ok(());
        }
        other => other?,
    };
    if args.json {
        serde_json::to_writer(&mut *out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "warm start written to {} in {:.0} s", args.out.display(), report.seconds)?;
    writeln!(out, "solver: {} steps, final loss {:.4}", report.solver_steps, report.solver_final_loss)?;
    writeln!(out, "  greedy accuracy by depth (fresh problems, literals <= {}):", cfg.solver.max_literal)?;
    for (d, a) in &report.solver_accuracy_by_depth {
        writeln!(out, "    depth {d}: {a:.3}")?;
    }
    writeln!(out, "proposer: {} steps, final loss {:.4}", report.proposer_steps, report.proposer_final_loss)?;
    writeln!(
        out,
        "  sampled proposals by target depth: valid / exactly on target / padded / padded and on target"
    )?;
    let share = |m: &std::collections::BTreeMap<u32, f64>, d: &u32| {
        m.get(d).map_or("-".to_string(), |p| format!("{p:.3}"))
    };
    for (d, v) in &report.proposer_valid_by_target {
        writeln!(
            out,
            "    depth {d}: {v:.3} / {:.3} / {} / {}",
            report.proposer_on_target_by_target[d],
            share(&report.proposer_padded_by_target, d),
            share(&report.proposer_padded_on_target_by_target, d)
        )?;
    }
    Ok(())
}

/// On a terminal, a bar over both players' step budgets with the time left; elsewhere none
/// (the log lines say how far it is).
fn progress_bar(steps: u64) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "warm start {msg:8} [{elapsed_precise}] {wide_bar} {pos}/{len} steps, ETA {eta}",
        )
        .expect("the template is valid"),
    );
    Some(bar)
}
