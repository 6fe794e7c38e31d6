//! The generator probe: on evaluation rounds, problems from the domain's own generator at the
//! round's difficulty targets, attempted by the same solver as the proposals — the frontier hit
//! rate a fixed generator would have had that round, beside the proposer's.
//!
//! It is the baseline a learning proposer is measured against over a run (SFL, Rutherford et al.
//! 2024, trains on nothing else); the generator arm (`round.arm = "generator"`) is the same
//! baseline for the solver's learning. The probe draws from its own random stream and trains
//! nothing, so a run's problems, attempts and updates are the same with it or without it.

use std::collections::BTreeMap;

use policy::SampleConfig;
use problem::{Limits, Target};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Lab;

/// Seed offset of the probe's stream, apart from the run's and the held-out problems'.
const PROBE_SEED: u64 = 0x9e4e_7a70;

/// The probe's result: of the generator's problems for each target depth, those whose solve
/// rate fell in the frontier band and those attempted.
#[derive(Debug, Default)]
pub(super) struct Probe {
    pub by_depth: BTreeMap<u32, (usize, usize)>,
}

impl Probe {
    /// The share in band over every target.
    pub fn band_fraction(&self) -> Option<f64> {
        let (hit, n) = self.by_depth.values().fold((0, 0), |(h, n), (a, b)| (h + a, n + b));
        (n > 0).then(|| hit as f64 / n as f64)
    }

    /// The share in band for each target depth.
    pub fn band_by_depth(&self) -> BTreeMap<u32, f64> {
        self.by_depth
            .iter()
            .filter(|(_, (_, n))| *n > 0)
            .map(|(d, (h, n))| (*d, *h as f64 / *n as f64))
            .collect()
    }
}

impl Lab {
    /// Up to `round.generator_probe` of `targets` (in order), each given one generator problem,
    /// attempted `round.attempts` times at the round's temperature.
    pub(super) fn generator_probe(
        &self,
        targets: &[Target],
        sampling: &SampleConfig,
        round: u64,
    ) -> anyhow::Result<Probe> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.cfg.seed ^ PROBE_SEED ^ round);
        let max_literal = self.cfg.warm_start.proposer.max_literal;
        let k = self.cfg.round.attempts;
        let mut problems = Vec::new();
        for t in targets.iter().take(self.cfg.round.generator_probe) {
            let Some(text) = super::propose::generator_problem(self.domain, t, max_literal, &mut rng) else {
                continue;
            };
            let Ok(analysis) = self.domain.analyze(&text, &Limits::default()) else { continue };
            problems.push((t.depth, text, analysis.answer));
        }
        let mut requests = Vec::with_capacity(problems.len() * k);
        for (_, text, _) in &problems {
            requests.extend(self.solver_format.requests(text, k)?);
        }
        let sampled = policy::sample(&self.solver.model, &requests, sampling, &mut rng, true)?;
        let mut probe = Probe::default();
        for ((depth, text, answer), outputs) in problems.iter().zip(sampled.chunks(k.max(1))) {
            let correct = outputs
                .iter()
                .filter(|s| {
                    judge::verify(self.domain, text, answer, &self.solver_format.output_text(s)).correct
                })
                .count();
            let slot = probe.by_depth.entry(*depth).or_default();
            slot.0 += usize::from(self.cfg.frontier.contains(correct as f64 / k as f64));
            slot.1 += 1;
        }
        Ok(probe)
    }
}

#[cfg(test)]
mod tests {
    use super::Probe;

    #[test]
    fn shares_are_taken_over_the_problems_attempted() {
        let probe = Probe { by_depth: [(2, (1, 4)), (3, (3, 4)), (4, (0, 0))].into_iter().collect() };
        assert_eq!(probe.band_fraction(), Some(0.5));
        let by_depth = probe.band_by_depth();
        assert_eq!(by_depth.get(&2), Some(&0.25));
        assert_eq!(by_depth.get(&3), Some(&0.75));
        assert!(!by_depth.contains_key(&4), "a depth with nothing attempted has no share");
        assert_eq!(Probe::default().band_fraction(), None);
    }
}
