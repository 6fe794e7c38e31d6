//! Solver evaluation on a benchmark: greedy pass@1 and sampled pass@K, overall and by depth.
//!
//! A benchmark is JSON lines `{"problem": "...", "answer": "...", "depth": D}`, `depth` optional
//! (computed by the domain when absent). `selfplay gen` writes such files.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use policy::{Gpt, SampleConfig};
use problem::{Domain, Limits};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use solver::SolverFormat;

/// One benchmark problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub problem: String,
    pub answer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
}

/// Reads a benchmark file; errors name the line.
pub fn load_benchmark(path: &Path, domain: &dyn Domain) -> anyhow::Result<Vec<Item>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read benchmark {}", path.display()))?;
    let mut items = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}: line {}", path.display(), i + 1);
        let mut item: Item =
            serde_json::from_str(&line).with_context(|| format!("{}: not a benchmark item", at()))?;
        let analysis = domain
            .analyze(&item.problem, &Limits::default())
            .map_err(|e| anyhow!("{}: problem {:?} is invalid: {e}", at(), item.problem))?;
        if analysis.answer != item.answer {
            bail!("{}: answer {:?} is wrong; {:?} is {}", at(), item.answer, item.problem, analysis.answer);
        }
        item.depth.get_or_insert(analysis.depth);
        items.push(item);
    }
    if items.is_empty() {
        bail!("benchmark {} holds no problems", path.display());
    }
    Ok(items)
}

/// Accuracy figures for a set of problems.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Score {
    /// Greedy pass@1.
    pub accuracy: f64,
    /// Some of K samples correct (K = `samples`; equals `accuracy` when K = 0).
    pub pass_at_k: f64,
    pub n: usize,
}

/// The result of an evaluation (the `--json` contract of `selfplay eval`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub accuracy: f64,
    pub pass_at_k: f64,
    pub n: usize,
    /// K.
    pub samples: usize,
    /// Keyed by depth (written as strings in JSON).
    pub by_depth: BTreeMap<u32, Score>,
}

/// Problems answered per forward batch.
const EVAL_BATCH: usize = 256;

/// Greedy answers (and, with `samples > 0`, `samples` sampled answers) for every item.
pub fn evaluate(
    model: &Gpt,
    format: &SolverFormat,
    domain: &dyn Domain,
    items: &[Item],
    samples: usize,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<Report> {
    let mut greedy_ok = vec![false; items.len()];
    let mut any_ok = vec![false; items.len()];
    for (chunk_i, chunk) in items.chunks(EVAL_BATCH).enumerate() {
        let base = chunk_i * EVAL_BATCH;
        let mut requests = Vec::new();
        for item in chunk {
            requests
                .extend(format.requests(&item.problem, 1).map_err(|e| anyhow!("{:?}: {e}", item.problem))?);
        }
        let out = policy::sample(model, &requests, &SampleConfig::greedy(), rng, true)?;
        for (j, s) in out.iter().enumerate() {
            let ok = judge::verify(domain, &chunk[j].answer, &format.output_text(s)).correct;
            greedy_ok[base + j] = ok;
            any_ok[base + j] = ok;
        }
        if samples > 0 {
            let mut requests = Vec::new();
            for item in chunk {
                requests.extend(format.requests(&item.problem, samples).map_err(|e| anyhow!("{e}"))?);
            }
            let out = policy::sample(model, &requests, &SampleConfig::default(), rng, true)?;
            for (j, s) in out.iter().enumerate() {
                let item = j / samples;
                if judge::verify(domain, &chunk[item].answer, &format.output_text(s)).correct {
                    any_ok[base + item] = true;
                }
            }
        }
    }
    let score = |idx: &mut dyn Iterator<Item = usize>| {
        let (mut n, mut g, mut a) = (0, 0, 0);
        for i in idx {
            n += 1;
            g += usize::from(greedy_ok[i]);
            a += usize::from(any_ok[i]);
        }
        Score { accuracy: g as f64 / n.max(1) as f64, pass_at_k: a as f64 / n.max(1) as f64, n }
    };
    let all = score(&mut (0..items.len()));
    let mut depths: Vec<u32> = items.iter().map(|i| i.depth.unwrap_or(0)).collect();
    depths.sort_unstable();
    depths.dedup();
    let by_depth = depths
        .into_iter()
        .map(|d| (d, score(&mut (0..items.len()).filter(|&i| items[i].depth.unwrap_or(0) == d))))
        .collect();
    Ok(Report { accuracy: all.accuracy, pass_at_k: all.pass_at_k, n: all.n, samples, by_depth })
}

impl Report {
    /// A table for people.
    pub fn table(&self) -> String {
        let mut out =
            format!("{:>6} {:>6} {:>9} {:>9}\n", "depth", "n", "pass@1", format!("pass@{}", self.samples));
        for (d, s) in &self.by_depth {
            out.push_str(&format!("{d:>6} {:>6} {:>9.3} {:>9.3}\n", s.n, s.accuracy, s.pass_at_k));
        }
        out.push_str(&format!("{:>6} {:>6} {:>9.3} {:>9.3}\n", "all", self.n, self.accuracy, self.pass_at_k));
        out
    }
}
