//! `selfplay gen`: random problems of one composition depth, as JSON lines
//! `{"problem": "...", "answer": "...", "depth": D}` (or, with `--text`, the problem text alone).
//! The same seed gives the same lines.

use std::io::Write;

use clap::Args;
use problem::GenSpec;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

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

pub fn run(args: &GenArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let spec = GenSpec { depth: args.depth, max_literal: args.max_literal };
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    for _ in 0..args.count {
        let g = problem::default_domain().generate(&spec, &mut rng)?;
        if args.text {
            out.write_all(g.problem.as_bytes())?;
        } else {
            serde_json::to_writer(&mut *out, &g)?;
        }
        out.write_all(b"\n")?;
    }
    Ok(())
}
