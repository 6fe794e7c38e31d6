//! `selfplay eval`: a solver checkpoint on a benchmark file.
//!
//! Contract (`--json`): the last line is one object
//! `{"accuracy": a, "pass_at_k": p, "n": n, "samples": K, "by_depth": {"1": {"accuracy": a, "pass_at_k": p, "n": n}, ...}}`.

use std::io::Write;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::cli::EvalArgs;
use crate::evaluate::{evaluate, load_benchmark};
use crate::players::{self, Player};

pub fn run(args: &EvalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let device = super::device(&args.device)?;
    let (model, meta, domain) = players::load(&args.checkpoint, Player::Solver, &device)?;
    let items = load_benchmark(&args.benchmark, domain)?;
    let format = players::solver_format(&meta, domain);
    let report =
        evaluate(&model, &format, domain, &items, args.samples, &mut ChaCha8Rng::seed_from_u64(args.seed))?;
    if args.json {
        serde_json::to_writer(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", report.table())?;
    }
    Ok(())
}
