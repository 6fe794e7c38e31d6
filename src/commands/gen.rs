//! `selfplay gen`: random problems of one composition depth, as JSON lines
//! `{"problem": "...", "answer": "...", "depth": D}` (or, with `--text`, the problem text alone);
//! with `--mutate FILE`, mutations of given problems instead, each line naming its `reference`.
//! The same seed gives the same lines.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use problem::{EditSize, GenSpec, Limits};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::exit::MarkExt;

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Composition depth: number of operations, none of them padding. With --mutate, the
    /// mutations' depth (default: each reference's own).
    #[arg(long, required_unless_present = "mutate")]
    pub depth: Option<u32>,
    /// How many problems; with --mutate, how many mutations of each reference.
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
    /// Mutate the problems of FILE (`-` for standard input; JSON lines with a "problem" key, as
    /// `gen` and `archive export` write, or one problem per line) instead of drawing new ones.
    #[arg(long, value_name = "FILE")]
    pub mutate: Option<PathBuf>,
    /// With --mutate: `free` edits (new literals and operators drawn as the generator draws them)
    /// or `small` ones (a literal nudged, no operator changed, one-digit literals added).
    #[arg(long, default_value = "free", value_parser = parse_edits, requires = "mutate")]
    pub edits: EditSize,
    /// The problems' domain: `arith` (`(3+4)*2`) or `program` (`x=4;a=x*3;a-1`).
    #[arg(long, default_value = "arith", value_parser = super::domain_name)]
    pub domain: String,
}

fn parse_edits(s: &str) -> Result<EditSize, String> {
    match s {
        "free" => Ok(EditSize::Free),
        "small" => Ok(EditSize::Small),
        _ => Err(format!("{s:?} is not an edit size: free or small")),
    }
}

pub fn run(args: &GenArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if let Some(path) = &args.mutate {
        return mutate(args, path, out);
    }
    let depth = args.depth.expect("clap requires --depth without --mutate");
    let spec = GenSpec { depth, max_literal: args.max_literal };
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    for _ in 0..args.count {
        let g = super::domain(&args.domain).generate(&spec, &mut rng)?;
        if args.text {
            out.write_all(g.problem.as_bytes())?;
        } else {
            serde_json::to_writer(&mut *out, &g)?;
        }
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The text of a problem line: a JSON object's "problem" (or "text", as the archive exports it),
/// or the line itself.
fn problem_of(line: &str) -> anyhow::Result<String> {
    if !line.trim_start().starts_with('{') {
        return Ok(line.trim().to_string());
    }
    let v: serde_json::Value = serde_json::from_str(line)?;
    ["problem", "text"]
        .iter()
        .find_map(|k| v.get(*k).and_then(|p| p.as_str()).map(str::to_string))
        .ok_or_else(|| anyhow::anyhow!("a JSON line needs a \"problem\" or \"text\" string"))
}

/// `--count` mutations of every valid problem of `path`; an invalid one is named on standard
/// error and skipped, a line that cannot be read stops with its number.
fn mutate(args: &GenArgs, path: &std::path::Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let domain = super::domain(&args.domain);
    let input = super::open_input(Some(path))?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    for (n, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let reference = problem_of(&line)
            .with_context(|| format!("{} line {}", path.display(), n + 1))
            .marked(crate::exit::Kind::Usage)?;
        let analysis = match domain.analyze(&reference, &Limits::default()) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("{} line {}: skipped, not a valid problem: {e}", path.display(), n + 1);
                continue;
            }
        };
        let spec = GenSpec { depth: args.depth.unwrap_or(analysis.depth), max_literal: args.max_literal };
        for _ in 0..args.count {
            let Some(m) = domain.mutate(&reference, &spec, args.edits, &mut rng) else { continue };
            if args.text {
                out.write_all(m.as_bytes())?;
            } else {
                let a = domain.analyze(&m, &Limits::default())?;
                let line = serde_json::json!({
                    "problem": m,
                    "answer": a.answer,
                    "depth": a.depth,
                    "reference": reference,
                });
                serde_json::to_writer(&mut *out, &line)?;
            }
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}
