//! Shared pieces of the selfplay benchmarks: realistic records, timing, and memory readings.
//!
//! Every benchmark reports its figures against a reference measured in the same run, so the
//! ratios mean something on any machine.

use std::time::{Duration, Instant};

use problem::{GenSpec, Limits};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use store::{Attempt, ProblemRecord, Rewards};

/// `n` seeded problems of one depth.
pub fn problems(depth: u32, n: usize, seed: u64) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let spec = GenSpec { depth, max_literal: 99 };
    (0..n)
        .map(|_| {
            problem::default_domain().generate(&spec, &mut rng).expect("depth-limited specs generate").problem
        })
        .collect()
}

/// A record like one a self-play round writes: judged, attempted 8 times, rewarded; one in ten
/// invalid.
pub fn record(rng: &mut ChaCha8Rng, run: &str, round: u64) -> ProblemRecord {
    let depth = rng.random_range(1..=6);
    let spec = GenSpec { depth, max_literal: 99 };
    let text = problem::default_domain().generate(&spec, rng).expect("depth-limited specs generate").problem;
    if rng.random_ratio(1, 10) {
        let text = format!("{text}+");
        let err = problem::default_domain().analyze(&text, &Limits::default()).unwrap_err();
        return ProblemRecord {
            run: run.into(),
            round,
            domain: "arith".into(),
            text,
            valid: false,
            reason: Some(err.kind.as_str().into()),
            error: Some(err.to_string()),
            rewards: Some(Rewards { invalid: Some(-1.0), total: -1.0, ..Default::default() }),
            ..Default::default()
        };
    }
    let a =
        problem::default_domain().analyze(&text, &Limits::default()).expect("generated problems are valid");
    let attempts: Vec<Attempt> = (0..8)
        .map(|_| {
            let correct = rng.random_bool(0.5);
            let answer = if correct { a.answer.clone() } else { rng.random_range(-999..999).to_string() };
            Attempt { output: answer.clone(), answer, correct }
        })
        .collect();
    let p = attempts.iter().filter(|a| a.correct).count() as f64 / 8.0;
    ProblemRecord {
        run: run.into(),
        round,
        domain: "arith".into(),
        text,
        valid: true,
        answer: Some(a.answer),
        canonical: Some(a.canonical),
        canonical_hash: Some(a.hash),
        surface_ops: Some(a.surface_ops),
        essential_ops: Some(a.essential_ops),
        depth: Some(a.depth),
        padding: Some(a.padding),
        difficulty_target: Some(depth),
        references: vec![rng.random_range(1..1000), rng.random_range(1..1000)],
        repetition: Some("fresh".into()),
        attempts,
        solve_rate: Some(p),
        rewards: Some(Rewards {
            frontier: Some(1.0 - 2.0 * (p - 0.5).abs()),
            padding_factor: 1.0,
            total: 1.0 - 2.0 * (p - 0.5).abs(),
            ..Default::default()
        }),
        proposer_version: Some("proposer@round-000000".into()),
        solver_version: Some("solver@round-000000".into()),
        ..Default::default()
    }
}

/// Runs `f` `reps` times and returns the median wall time.
pub fn median_time(reps: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[reps / 2]
}

fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resident memory now, in KiB (Linux; `None` elsewhere).
pub fn rss_kb() -> Option<u64> {
    status_kb("VmRSS:")
}

/// Peak resident memory since the last [`reset_peak_rss`], in KiB.
pub fn peak_rss_kb() -> Option<u64> {
    status_kb("VmHWM:")
}

/// Resets the peak-memory mark (Linux: writing 5 to `clear_refs`).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
