//! Solver evaluation on a benchmark: greedy pass@1, and from K samples at temperature 1 the
//! sampling policy's pass@1 (the policy self-play trains) and pass@K, overall, by depth and by
//! operand size (the digits of a problem's largest literal: a solver may compose well and still
//! fail at two-digit products).
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
    /// The fraction of the K samples that are correct: the sampling policy's pass@1 (absent when
    /// K = 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled: Option<f64>,
    pub n: usize,
}

/// The result of an evaluation (the `--json` contract of `selfplay eval`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub accuracy: f64,
    pub pass_at_k: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled: Option<f64>,
    pub n: usize,
    /// K.
    pub samples: usize,
    /// Keyed by depth (written as strings in JSON).
    pub by_depth: BTreeMap<u32, Score>,
    /// Keyed by the number of digits of each problem's largest literal (absent from reports made
    /// before it was measured).
    #[serde(default)]
    pub by_operand_digits: BTreeMap<u32, Score>,
}

/// Problems answered per forward batch.
const EVAL_BATCH: usize = 256;

/// How the solver did on one benchmark problem (the lines of `selfplay eval --items`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub problem: String,
    pub answer: String,
    pub depth: u32,
    /// The largest literal of the problem (0 in outcomes written before it was recorded).
    #[serde(default)]
    pub max_literal: u32,
    /// The greedy answer, as the solver wrote it.
    pub greedy_output: String,
    pub greedy: bool,
    /// Correct samples of `samples` (temperature 1).
    pub correct_samples: usize,
    pub samples: usize,
}

/// Greedy answers (and, with `samples > 0`, `samples` sampled answers) for every item.
pub fn evaluate(
    model: &Gpt,
    format: &SolverFormat,
    domain: &dyn Domain,
    items: &[Item],
    samples: usize,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<Report> {
    Ok(Report::of(&outcomes(model, format, domain, items, samples, rng)?, samples))
}

/// What [`evaluate`] summarises: each item's greedy answer and how many of its samples are right.
pub fn outcomes(
    model: &Gpt,
    format: &SolverFormat,
    domain: &dyn Domain,
    items: &[Item],
    samples: usize,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<Vec<Outcome>> {
    let mut outcomes = Vec::with_capacity(items.len());
    for chunk in items.chunks(EVAL_BATCH) {
        let mut requests = Vec::new();
        for item in chunk {
            requests
                .extend(format.requests(&item.problem, 1).map_err(|e| anyhow!("{:?}: {e}", item.problem))?);
        }
        let out = policy::sample(model, &requests, &SampleConfig::greedy(), rng, true)?;
        let first = outcomes.len();
        for (item, s) in chunk.iter().zip(&out) {
            let greedy_output = format.output_text(s);
            outcomes.push(Outcome {
                problem: item.problem.clone(),
                answer: item.answer.clone(),
                depth: item.depth.unwrap_or(0),
                max_literal: domain.analyze(&item.problem, &Limits::default()).map_or(0, |a| a.max_literal),
                greedy: judge::verify(domain, &item.problem, &item.answer, &greedy_output).correct,
                greedy_output,
                correct_samples: 0,
                samples,
            });
        }
        if samples > 0 {
            let problems: Vec<(&str, &str)> =
                chunk.iter().map(|i| (i.problem.as_str(), i.answer.as_str())).collect();
            let counts =
                correct_samples(model, format, domain, &problems, samples, &SampleConfig::default(), rng)?;
            for (o, correct) in outcomes[first..].iter_mut().zip(counts) {
                o.correct_samples = correct;
            }
        }
    }
    Ok(outcomes)
}

/// For each `(problem, answer)`, how many of `k` answers sampled with `sampling` are verified
/// right.
pub fn correct_samples(
    model: &Gpt,
    format: &SolverFormat,
    domain: &dyn Domain,
    problems: &[(&str, &str)],
    k: usize,
    sampling: &SampleConfig,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<Vec<usize>> {
    let mut requests = Vec::with_capacity(problems.len() * k);
    for (problem, _) in problems {
        requests.extend(format.requests(problem, k).map_err(|e| anyhow!("{problem:?}: {e}"))?);
    }
    let out = policy::sample(model, &requests, sampling, rng, true)?;
    Ok(problems
        .iter()
        .zip(out.chunks(k.max(1)))
        .map(|((problem, answer), answers)| {
            answers
                .iter()
                .filter(|s| judge::verify(domain, problem, answer, &format.output_text(s)).correct)
                .count()
        })
        .collect())
}

impl Score {
    fn of<'a>(outcomes: impl Iterator<Item = &'a Outcome>, samples: usize) -> Score {
        let (mut n, mut greedy, mut any, mut correct) = (0, 0, 0, 0);
        for o in outcomes {
            n += 1;
            greedy += usize::from(o.greedy);
            any += usize::from(o.greedy || o.correct_samples > 0);
            correct += o.correct_samples;
        }
        Score {
            accuracy: greedy as f64 / n.max(1) as f64,
            pass_at_k: any as f64 / n.max(1) as f64,
            sampled: (samples > 0).then(|| correct as f64 / (n * samples).max(1) as f64),
            n,
        }
    }
}

/// The number of decimal digits of `n`.
fn digits(n: u32) -> u32 {
    n.checked_ilog10().map_or(1, |l| l + 1)
}

impl Report {
    /// The figures of `outcomes`, overall, by depth and by operand digits.
    pub fn of(outcomes: &[Outcome], samples: usize) -> Report {
        let all = Score::of(outcomes.iter(), samples);
        let by = |key: &dyn Fn(&Outcome) -> u32| -> BTreeMap<u32, Score> {
            let mut keys: Vec<u32> = outcomes.iter().map(key).collect();
            keys.sort_unstable();
            keys.dedup();
            keys.into_iter()
                .map(|k| (k, Score::of(outcomes.iter().filter(|o| key(o) == k), samples)))
                .collect()
        };
        Report {
            accuracy: all.accuracy,
            pass_at_k: all.pass_at_k,
            sampled: all.sampled,
            n: all.n,
            samples,
            by_depth: by(&|o| o.depth),
            by_operand_digits: by(&|o| digits(o.max_literal)),
        }
    }

    /// A table for people.
    pub fn table(&self) -> String {
        let k = self.samples;
        let mut out = format!("{:>6} {:>6} {:>9}", "depth", "n", "greedy");
        if k > 0 {
            out.push_str(&format!(" {:>9} {:>9}", "sampled", format!("pass@{k}")));
        }
        out.push('\n');
        let row = |label: &str, s: &Score| {
            let mut line = format!("{label:>6} {:>6} {:>9.3}", s.n, s.accuracy);
            if let Some(sampled) = s.sampled {
                line.push_str(&format!(" {sampled:>9.3} {:>9.3}", s.pass_at_k));
            }
            line + "\n"
        };
        for (d, s) in &self.by_depth {
            out.push_str(&row(&d.to_string(), s));
        }
        let all =
            Score { accuracy: self.accuracy, pass_at_k: self.pass_at_k, sampled: self.sampled, n: self.n };
        out.push_str(&row("all", &all));
        // Operand sizes only where there is more than one to compare.
        if self.by_operand_digits.len() > 1 {
            out.push_str("largest literal:\n");
            for (d, s) in &self.by_operand_digits {
                out.push_str(&row(&format!("{d}-dig"), s));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(depth: u32, greedy: bool, correct_samples: usize) -> Outcome {
        Outcome {
            problem: format!("{depth}+{correct_samples}"),
            answer: String::new(),
            depth,
            max_literal: depth * 7,
            greedy_output: String::new(),
            greedy,
            correct_samples,
            samples: 4,
        }
    }

    #[test]
    fn a_report_counts_greedy_sampled_and_any_correct_by_depth() {
        let outcomes = [
            outcome(1, true, 4),
            outcome(1, false, 1),
            outcome(2, false, 0),
            outcome(2, true, 0),
            outcome(2, false, 2),
        ];
        let r = Report::of(&outcomes, 4);
        let one = r.by_depth[&1];
        assert_eq!((one.n, one.accuracy, one.pass_at_k, one.sampled), (2, 0.5, 1.0, Some(5.0 / 8.0)));
        let two = r.by_depth[&2];
        // Greedy right counts as a success of pass@K, whatever the samples did.
        assert_eq!((two.n, two.pass_at_k, two.sampled), (3, 2.0 / 3.0, Some(2.0 / 12.0)));
        assert!((two.accuracy - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!((r.n, r.accuracy, r.pass_at_k, r.sampled), (5, 0.4, 0.8, Some(7.0 / 20.0)));
        assert!(r.table().contains("sampled"));
        // Largest literals 7 (depth 1) and 14 (depth 2): one digit and two.
        assert_eq!(r.by_operand_digits[&1], one);
        assert_eq!(r.by_operand_digits[&2], two);
        assert!(r.table().contains("2-dig"));
        assert_eq!((digits(0), digits(9), digits(10), digits(999)), (1, 1, 2, 3));
        // Without samples there is no sampled accuracy, and pass@K is the greedy accuracy.
        let greedy: Vec<Outcome> =
            outcomes.iter().map(|o| Outcome { correct_samples: 0, samples: 0, ..o.clone() }).collect();
        let r = Report::of(&greedy, 0);
        assert_eq!((r.accuracy, r.pass_at_k, r.sampled), (0.4, 0.4, None));
        assert!(!r.table().contains("sampled"));
    }
}
