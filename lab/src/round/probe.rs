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

/// Problems in the frontier band and problems counted, by the depth of the target each was asked
/// for: the proposer's in a round's metrics, the generator's in the probe.
#[derive(Debug, Default)]
pub(super) struct BandTally {
    by_depth: BTreeMap<u32, (usize, usize)>,
}

impl BandTally {
    /// Counts one problem asked for `depth`, in the band or not.
    pub fn add(&mut self, depth: u32, in_band: bool) {
        let slot = self.by_depth.entry(depth).or_default();
        slot.0 += usize::from(in_band);
        slot.1 += 1;
    }

    /// The share in band over every target; `None` with nothing counted.
    pub fn band_fraction(&self) -> Option<f64> {
        let (hit, n) = self.by_depth.values().fold((0, 0), |(h, n), (a, b)| (h + a, n + b));
        (n > 0).then(|| hit as f64 / n as f64)
    }

    /// The share in band for each target depth; `None` with nothing counted.
    pub fn band_by_depth(&self) -> Option<BTreeMap<u32, f64>> {
        (!self.by_depth.is_empty())
            .then(|| self.by_depth.iter().map(|(d, (h, n))| (*d, *h as f64 / *n as f64)).collect())
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
    ) -> anyhow::Result<BandTally> {
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
        let asked: Vec<(&str, &str)> = problems.iter().map(|(_, p, a)| (p.as_str(), a.as_str())).collect();
        let counts = crate::evaluate::correct_samples(
            &self.solver.model,
            &self.solver_format,
            self.domain,
            &asked,
            k,
            sampling,
            &mut rng,
        )?;
        let mut tally = BandTally::default();
        for ((depth, _, _), correct) in problems.iter().zip(counts) {
            tally.add(*depth, self.cfg.frontier.contains(correct as f64 / k as f64));
        }
        Ok(tally)
    }
}

#[cfg(test)]
mod tests {
    use super::BandTally;

    #[test]
    fn shares_are_taken_over_the_problems_counted() {
        let mut tally = BandTally::default();
        assert_eq!((tally.band_fraction(), tally.band_by_depth()), (None, None));
        for (depth, in_band) in
            [(2, true), (2, false), (2, false), (2, false), (3, true), (3, true), (3, true), (3, false)]
        {
            tally.add(depth, in_band);
        }
        assert_eq!(tally.band_fraction(), Some(0.5));
        let by_depth = tally.band_by_depth().unwrap();
        assert_eq!(by_depth.get(&2), Some(&0.25));
        assert_eq!(by_depth.get(&3), Some(&0.75));
        assert!(!by_depth.contains_key(&4), "a depth never asked has no share");
    }
}
