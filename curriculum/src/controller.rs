//! Keeps the proposer at the solver's frontier.
//!
//! The controller holds a continuous difficulty level (a composition depth) and moves it after
//! each round by `gain · (median p̂ − target)`: problems solved too often push the level up, too
//! rarely push it down. Targets for the next round are drawn around the level: its floor or ceiling
//! by its fractional part, plus a uniform jitter of `spread` so the proposer keeps seeing
//! neighbouring depths.

use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerConfig {
    /// Median solve rate to hold.
    pub target: f64,
    /// Depth change per unit of median error.
    pub gain: f64,
    pub start: f64,
    pub min_depth: u32,
    pub max_depth: u32,
    /// Targets are jittered by up to this many depths either way.
    pub spread: u32,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig { target: 0.5, gain: 2.0, start: 2.0, min_depth: 1, max_depth: 6, spread: 1 }
    }
}

impl ControllerConfig {
    /// `level` within `min_depth..=max_depth`.
    fn bound(&self, level: f64) -> f64 {
        level.clamp(f64::from(self.min_depth), f64::from(self.max_depth))
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.target) {
            return Err(format!("target must be in [0, 1], got {}", self.target));
        }
        if !(self.gain.is_finite() && self.gain >= 0.0) {
            return Err(format!("gain must be a finite non-negative number, got {}", self.gain));
        }
        if self.min_depth == 0 || self.min_depth > self.max_depth {
            return Err("depths must satisfy 1 <= min_depth <= max_depth".into());
        }
        Ok(())
    }
}

/// The controller and its state (serializable, so a resumed run goes on where it was).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DifficultyController {
    pub cfg: ControllerConfig,
    /// Current difficulty level, a depth.
    pub level: f64,
}

impl DifficultyController {
    pub fn new(cfg: ControllerConfig) -> Self {
        DifficultyController { level: cfg.bound(cfg.start), cfg }
    }

    /// The same level under `cfg` (a resumed run's configuration, which may bound the depths
    /// differently), clamped to its depths.
    pub fn reconfigured(self, cfg: ControllerConfig) -> Self {
        DifficultyController { level: cfg.bound(self.level), cfg }
    }

    /// Moves the level after a round whose problems had median solve rate `median` (no move when
    /// no problem was attempted).
    pub fn update(&mut self, median: Option<f64>) {
        if let Some(m) = median.filter(|m| m.is_finite()) {
            self.level = self.cfg.bound(self.level + self.cfg.gain * (m - self.cfg.target));
        }
    }

    /// `n` target depths for the next round.
    pub fn targets(&self, n: usize, rng: &mut dyn RngCore) -> Vec<u32> {
        let floor = self.level.floor();
        let frac = self.level - floor;
        (0..n)
            .map(|_| {
                let base = if rng.random::<f64>() < frac { floor + 1.0 } else { floor } as i64;
                let s = i64::from(self.cfg.spread);
                let jitter = if s > 0 { rng.random_range(-s..=s) } else { 0 };
                (base + jitter).clamp(i64::from(self.cfg.min_depth), i64::from(self.cfg.max_depth)) as u32
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn easy_rounds_raise_the_level_and_hard_ones_lower_it() {
        let mut c = DifficultyController::new(ControllerConfig::default());
        c.update(Some(0.9));
        assert!((c.level - 2.8).abs() < 1e-12);
        c.update(Some(0.1));
        assert!((c.level - 2.0).abs() < 1e-12);
        c.update(None);
        assert!((c.level - 2.0).abs() < 1e-12);
        for _ in 0..100 {
            c.update(Some(0.0));
        }
        assert_eq!(c.level, 1.0);
    }

    #[test]
    fn a_resumed_controller_keeps_its_level_within_the_new_bounds() {
        let mut c = DifficultyController::new(ControllerConfig { max_depth: 12, ..Default::default() });
        for _ in 0..20 {
            c.update(Some(1.0));
        }
        assert_eq!(c.level, 12.0);
        let narrow = ControllerConfig { max_depth: 6, ..Default::default() };
        let r = c.clone().reconfigured(narrow);
        assert_eq!((r.level, r.cfg), (6.0, narrow));
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        assert!(r.targets(200, &mut rng).iter().all(|&d| (5..=6).contains(&d)));
        let mid = DifficultyController { level: 3.5, ..c }.reconfigured(narrow);
        assert_eq!(mid.level, 3.5);
    }

    #[test]
    fn the_loop_settles_where_the_solver_is_at_half() {
        // A solver that solves depth d with probability 1 / (1 + 2^(d − 4)): p = 0.5 at depth 4.
        let mut c = DifficultyController::new(ControllerConfig { spread: 0, ..Default::default() });
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..200 {
            let rates: Vec<f64> = c
                .targets(64, &mut rng)
                .iter()
                .map(|&d| 1.0 / (1.0 + 2f64.powf(f64::from(d) - 4.0)))
                .collect();
            c.update(crate::median(&rates));
        }
        assert!((c.level - 4.0).abs() < 0.6, "{}", c.level);
    }

    #[test]
    fn targets_follow_the_level() {
        let mut c = DifficultyController::new(ControllerConfig { spread: 0, ..Default::default() });
        c.level = 3.25;
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let t = c.targets(4000, &mut rng);
        let fours = t.iter().filter(|&&d| d == 4).count() as f64 / 4000.0;
        assert!(t.iter().all(|&d| d == 3 || d == 4));
        assert!((fours - 0.25).abs() < 0.03, "{fours}");
        let c = DifficultyController::new(ControllerConfig { spread: 2, start: 1.0, ..Default::default() });
        assert!(c.targets(500, &mut rng).iter().all(|&d| (1..=3).contains(&d)));
    }
}
