//! The length-residual term and the length curve it reads: difficulty that length alone
//! explains earns less.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The length-residual term (`docs/DESIGN.md`, "The reward"): difficulty that length alone
/// explains earns less.
///
/// The solver's solve rate on the lab's problems by length in tokens (what a proposer inflates
/// with long literals, repeated terms or `+0` alike) is the length curve, `b(L)`
/// ([`LengthCurve`]). Of a problem's difficulty `1 − p`, the part beyond what its length predicts,
/// `s = clamp((b(L) − p) / (1 − p), 0, 1)`, is structural; the frontier term is paid in full on
/// that share and at `1 − weight` on the rest:
/// `length_factor = 1 − weight · (1 − s)`. With `weight = 0` the term is off; with no estimate
/// for a length yet the factor is 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LengthResidual {
    /// Weight in `[0, 1]` of the length-explained share.
    pub weight: f64,
    /// Each new solve rate moves the curve at its length by this fraction.
    pub rate: f64,
    /// Problems of a length seen before the curve is trusted there.
    pub min_evidence: u32,
}

impl Default for LengthResidual {
    fn default() -> Self {
        LengthResidual { weight: 0.5, rate: 0.05, min_evidence: 16 }
    }
}

impl LengthResidual {
    /// The factor in `[1 − weight, 1]` for solve rate `p` and the curve's `baseline` at the
    /// problem's length.
    pub fn factor(&self, p: f64, baseline: Option<f64>) -> f64 {
        let Some(b) = baseline.filter(|b| b.is_finite()) else { return 1.0 };
        let structural = if p < 1.0 { ((b - p) / (1.0 - p)).clamp(0.0, 1.0) } else { 0.0 };
        1.0 - self.weight * (1.0 - structural)
    }
}

/// The solver's solve rate by problem length in tokens: an exponential moving average per length,
/// fed every valid problem's solve rate each round. Saved with the curriculum.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LengthCurve {
    /// `length → (mean solve rate, problems seen)`.
    points: BTreeMap<u32, (f64, u64)>,
}

impl LengthCurve {
    /// Moves the curve at `length` toward `p` (the first problems of a length are averaged
    /// plainly, later ones at `rate`).
    pub fn observe(&mut self, length: u32, p: f64, rate: f64) {
        if !p.is_finite() {
            return;
        }
        let (mean, n) = self.points.entry(length).or_insert((0.0, 0));
        *n += 1;
        let step = (1.0 / *n as f64).max(rate);
        *mean += step * (p - *mean);
    }

    /// The expected solve rate at `length`, once `min_evidence` problems of it were seen.
    pub fn expected(&self, length: u32, min_evidence: u32) -> Option<f64> {
        self.points.get(&length).filter(|(_, n)| *n >= u64::from(min_evidence)).map(|(m, _)| *m)
    }

    /// `(length, expected solve rate, problems seen)` for every length seen.
    pub fn points(&self) -> impl Iterator<Item = (u32, f64, u64)> + '_ {
        self.points.iter().map(|(&l, &(m, n))| (l, m, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    #[test]
    fn length_residual_pays_difficulty_beyond_the_curve() {
        let l = LengthResidual { weight: 0.5, ..LengthResidual::default() };
        // No estimate, or weight 0: no discount.
        assert_eq!(l.factor(0.5, None), 1.0);
        assert_eq!(LengthResidual { weight: 0.0, ..l }.factor(0.5, Some(0.5)), 1.0);
        // As hard as its length predicts: only the unweighted part is paid.
        assert_eq!(l.factor(0.5, Some(0.5)), 0.5);
        assert_eq!(l.factor(0.5, Some(0.2)), 0.5);
        // A problem of a length the solver always solves, solved half the time: all structural.
        assert_eq!(l.factor(0.5, Some(1.0)), 1.0);
        // Half of the difficulty beyond the curve.
        assert!((l.factor(0.5, Some(0.75)) - 0.75).abs() < 1e-12);
        // Monotone: a higher baseline (the length explains less) never pays less.
        let mut last = 0.0;
        for i in 0..=20 {
            let f = l.factor(0.4, Some(f64::from(i) / 20.0));
            assert!(f >= last && (0.5..=1.0).contains(&f));
            last = f;
        }
        let cfg = RewardConfig::default();
        let r = cfg.reward(&ProblemFacts {
            solve_rate: 0.5,
            length_baseline: Some(0.5),
            ..ProblemFacts::default()
        });
        assert_eq!((r.length_baseline, r.length_factor, r.total), (Some(0.5), 0.5, 0.5));
    }

    #[test]
    fn length_curve_averages_then_tracks() {
        let mut c = LengthCurve::default();
        for p in [1.0, 0.0, 0.5, 0.5] {
            c.observe(3, p, 0.1);
        }
        assert_eq!(c.expected(3, 4), Some(0.5));
        assert_eq!(c.expected(3, 5), None);
        assert_eq!(c.expected(2, 0), None);
        // Past 1/rate problems it moves by `rate`: it follows a drifting solver.
        for _ in 0..200 {
            c.observe(3, 0.9, 0.1);
        }
        assert!((c.expected(3, 1).unwrap() - 0.9).abs() < 1e-6);
        c.observe(3, f64::NAN, 0.1);
        assert_eq!(c.points().count(), 1);
        assert_eq!(c.points().next().unwrap().2, 204);
    }
}
