//! The curriculum: what the players train on next.
//!
//! * [`FrontierBand`]: which solved-for problems teach the solver (solve rate inside a band).
//! * [`Replay`]: a buffer of past problems sampled by learning potential with a staleness term,
//!   in the manner of Prioritized Level Replay.
//! * [`DifficultyController`]: moves the proposer's difficulty target so that the median solve
//!   rate of its problems stays near a set point.
//! * [`SkillGraph`]: atomic skills and the compositions seen, with their solve rates, on petgraph;
//!   names the frontier (compositions whose parts are mastered but which are not) and exports DOT.

mod controller;
mod replay;
mod skills;

pub use controller::{ControllerConfig, DifficultyController, LiteralBound};
pub use replay::{Replay, ReplayConfig, ReplayItem};
pub use skills::{Skill, SkillGraph, SkillStats};

use serde::{Deserialize, Serialize};

/// Problems whose solve rate lies in `[low, high]` are at the solver's frontier: it sometimes
/// solves them, so their attempts carry a learning signal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrontierBand {
    pub low: f64,
    pub high: f64,
}

impl Default for FrontierBand {
    fn default() -> Self {
        FrontierBand { low: 0.2, high: 0.8 }
    }
}

impl FrontierBand {
    pub fn contains(&self, p: f64) -> bool {
        self.low <= p && p <= self.high
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(0.0 <= self.low && self.low <= self.high && self.high <= 1.0) {
            return Err(format!(
                "frontier band must satisfy 0 <= low <= high <= 1, got [{}, {}]",
                self.low, self.high
            ));
        }
        Ok(())
    }
}

/// The median of some solve rates (`None` when empty).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_and_median() {
        let band = FrontierBand::default();
        assert!(band.contains(0.2) && band.contains(0.5) && band.contains(0.8));
        assert!(!band.contains(0.1) && !band.contains(0.9));
        assert!(FrontierBand { low: 0.9, high: 0.1 }.validate().is_err());
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[0.5]), Some(0.5));
        assert_eq!(median(&[1.0, 0.0, 0.25, 0.75]), Some(0.5));
        assert_eq!(median(&[0.1, f64::NAN, 0.3, 0.2]), Some(0.2));
    }
}
