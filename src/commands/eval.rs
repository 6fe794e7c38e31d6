//! `selfplay eval`: a solver checkpoint on a benchmark file.
//!
//! Contract (`--json`): the last line is one object
//! `{"accuracy": a, "pass_at_k": p, "sampled": s, "n": n, "samples": K, "by_depth": {"1": {"accuracy": a,
//! "pass_at_k": p, "sampled": s, "n": n}, ...}, "by_operand_digits": {"1": {...}, "2": {...}}}` —
//! `accuracy` greedy, `sampled` the fraction of the K samples (temperature 1) that are correct,
//! `pass_at_k` some of them; `sampled` absent when K = 0; `by_operand_digits` keyed by the digits
//! of each problem's largest literal.

use std::path::PathBuf;

use std::io::Write;

use anyhow::Context;
use clap::Args;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use lab::evaluate::{load_benchmark, outcomes, Report};

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
    /// Seed of the sampled attempts.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// The last line is one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also write each problem's outcome here, one JSON object per line: `problem`, `answer`,
    /// `depth`, `max_literal`, `greedy_output`, `greedy` (correct), `correct_samples` of `samples`.
    #[arg(long, value_name = "FILE")]
    pub items: Option<PathBuf>,
}

pub fn run(args: &EvalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let device = super::device(&args.device)?;
    let solver::Loaded { model, format, domain, .. } = solver::load(&args.checkpoint, &device)?;
    let items = load_benchmark(&args.benchmark, domain)?;
    let outcomes =
        outcomes(&model, &format, domain, &items, args.samples, &mut ChaCha8Rng::seed_from_u64(args.seed))?;
    if let Some(path) = &args.items {
        let mut lines = String::new();
        for o in &outcomes {
            lines.push_str(&serde_json::to_string(o)?);
            lines.push('\n');
        }
        std::fs::write(path, lines).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let report = Report::of(&outcomes, args.samples);
    if args.json {
        serde_json::to_writer(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", report.table())?;
    }
    Ok(())
}
