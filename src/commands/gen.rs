//! `selfplay gen`: random problems of one composition depth, as JSON lines
//! `{"problem": "...", "answer": "...", "depth": D}` (or, with `--text`, the problem text alone).
//! The same seed gives the same lines.

use std::io::Write;

use problem::GenSpec;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::cli::GenArgs;

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
