//! `selfplay eval`: a solver checkpoint on a benchmark file.
//!
//! Contract (`--json`): the last line is one object
//! `{"accuracy": a, "pass_at_k": p, "sampled": s, "n": n, "samples": K, "by_depth": {"1": {"accuracy": a,
//! "pass_at_k": p, "sampled": s, "n": n}, ...}}` — `accuracy` greedy, `sampled` the fraction of the K
//! samples (temperature 1) that are correct, `pass_at_k` some of them; `sampled` absent when K = 0.

use std::io::Write;

use anyhow::Context;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::cli::EvalArgs;
use lab::evaluate::{load_benchmark, outcomes, Report};
use lab::players::{self, Player};

pub fn run(args: &EvalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let device = super::device(&args.device)?;
    let (model, meta, domain) = players::load(&args.checkpoint, Player::Solver, &device)?;
    let items = load_benchmark(&args.benchmark, domain)?;
    let format = players::solver_format(&meta, domain);
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
