//! Keeps the proposer at the solver's frontier.
//!
//! A difficulty target is a composition depth and, where the proposer was taught literal bounds,
//! the largest literal the problem may have. The controller keeps a continuous difficulty level
//! (a depth) for each literal bound it asks for — one level when it asks for none — and moves it
//! after each round by `gain · (median p̂ − target)` over the proposals asked for that bound:
//! problems solved too often push its level up, too rarely push it down. Each target of the next
//! round asks for a bound with its share, then for a depth around that bound's level: its floor
//! or ceiling by its fractional part, plus a uniform jitter of `spread` so the proposer keeps
//! seeing neighbouring depths.
//!
//! An easy depth whose space the archive has filled is not asked for: the controller keeps, for
//! each bound and depth, the share of copies among the recent valid proposals asked for it, and
//! a depth below the level where it is above `exhausted` is skipped for the next one up.
//! Arithmetic on literals up to 20 has about 800 one-operation problems; once the archive holds
//! them, everything a proposer asked for one operation can write is a copy, which no reward can
//! change, and the solver learns nothing new from them. Only depths the spread reaches below the
//! level's floor are skipped: the median is held by the depths at the level, and skipping one of
//! those would leave the controller nothing easier to ask (measured: with the repetition terms
//! off, copies of two-operation problems passed one half, and a controller that skipped depth 2
//! at level 2.9 held the median at 0.2–0.3). The share is of the proposer's own proposals, so a
//! depth it can still write fresh problems at (wider literals, say) is not skipped.

use std::collections::BTreeMap;

use problem::Target;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The literal bounds asked for (empty: none, for a proposer taught none).
    pub literals: Vec<LiteralBound>,
    /// A depth below the level's floor whose share of copies among the recent proposals asked
    /// for it is above this is exhausted and skipped (1: never).
    pub exhausted: f64,
    /// Proposals asked for a depth before its share of copies is used; the share is a moving
    /// average over about this many of the latest.
    pub exhausted_window: u32,
}

/// One literal bound the controller asks for, with its own level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiteralBound {
    /// Largest literal a problem asked for with this bound may have.
    pub max_literal: u32,
    /// Share of the targets that ask for it (the shares are normalized over the bounds).
    pub share: f64,
    /// Its depths start here (default: the controller's `min_depth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_depth: Option<u32>,
    /// Its level's start (default: the controller's `start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<f64>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            target: 0.5,
            gain: 2.0,
            start: 2.0,
            min_depth: 1,
            max_depth: 6,
            spread: 1,
            literals: Vec::new(),
            exhausted: 0.5,
            exhausted_window: 64,
        }
    }
}

/// What one level of the controller asks for: a bound (or none), its share and its depths.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Class {
    max_literal: Option<u32>,
    share: f64,
    min_depth: u32,
    start: f64,
}

impl ControllerConfig {
    /// One class per literal bound, or a single one without a bound.
    fn classes(&self) -> Vec<Class> {
        if self.literals.is_empty() {
            return vec![Class {
                max_literal: None,
                share: 1.0,
                min_depth: self.min_depth,
                start: self.start,
            }];
        }
        self.literals
            .iter()
            .map(|l| Class {
                max_literal: Some(l.max_literal),
                share: l.share,
                min_depth: l.min_depth.unwrap_or(self.min_depth),
                start: l.start.unwrap_or(self.start),
            })
            .collect()
    }

    /// The literal bounds asked for, in order (`[None]` when none).
    pub fn bounds(&self) -> Vec<Option<u32>> {
        self.classes().iter().map(|c| c.max_literal).collect()
    }

    /// `level` within `min_depth..=max_depth` of `class`.
    fn bound(&self, class: &Class, level: f64) -> f64 {
        level.clamp(f64::from(class.min_depth), f64::from(self.max_depth))
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
        if !(self.exhausted > 0.0 && self.exhausted <= 1.0) {
            return Err(format!("exhausted must be in (0, 1], got {}", self.exhausted));
        }
        if self.exhausted_window == 0 {
            return Err("exhausted_window must be at least 1, got 0".into());
        }
        for (i, l) in self.literals.iter().enumerate() {
            let key = format!("literals[{i}]");
            if !(l.share.is_finite() && l.share > 0.0) {
                return Err(format!("{key}.share must be a positive number, got {}", l.share));
            }
            if let Some(d) = l.min_depth.filter(|&d| d == 0 || d > self.max_depth) {
                return Err(format!(
                    "{key}.min_depth must be in 1..={} (max_depth), got {d}",
                    self.max_depth
                ));
            }
            if l.start.is_some_and(|s| !s.is_finite()) {
                return Err(format!("{key}.start must be a finite number"));
            }
            if self.literals[..i].iter().any(|o| o.max_literal == l.max_literal) {
                return Err(format!("{key}.max_literal {} is given twice", l.max_literal));
            }
        }
        Ok(())
    }
}

/// The controller and its state (serializable, so a resumed run goes on where it was).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Stored")]
pub struct DifficultyController {
    pub cfg: ControllerConfig,
    /// Current difficulty level (a depth) of each literal bound of `cfg.literals`, in order, or
    /// the one level when it has none.
    pub levels: Vec<f64>,
    /// For each level: `depth → (share of copies, valid proposals seen)` of the proposals asked
    /// for that depth.
    pub copies: Vec<BTreeMap<u32, (f64, u64)>>,
}

/// The controller as stored: states written before literal bounds existed hold one `level`.
#[derive(Deserialize)]
struct Stored {
    cfg: ControllerConfig,
    #[serde(default)]
    level: Option<f64>,
    #[serde(default)]
    levels: Vec<f64>,
    #[serde(default)]
    copies: Vec<BTreeMap<u32, (f64, u64)>>,
}

impl From<Stored> for DifficultyController {
    fn from(s: Stored) -> Self {
        let levels = if s.levels.is_empty() { s.level.into_iter().collect() } else { s.levels };
        let mut c = DifficultyController::new(s.cfg);
        // Levels that do not match their configuration's bounds (a state edited by hand) start again.
        if levels.len() == c.levels.len() {
            c.levels = levels;
        }
        // States written before copies were kept start counting them.
        if s.copies.len() == c.copies.len() {
            c.copies = s.copies;
        }
        c
    }
}

impl DifficultyController {
    pub fn new(cfg: ControllerConfig) -> Self {
        let classes = cfg.classes();
        let levels = classes.iter().map(|c| cfg.bound(c, c.start)).collect();
        DifficultyController { levels, copies: vec![BTreeMap::new(); classes.len()], cfg }
    }

    /// The levels under `cfg` (a resumed run's configuration, which may bound the depths
    /// differently), clamped to its depths: a bound asked for before keeps its level, a new one
    /// starts at its start; the copies counted for a bound stay with it.
    pub fn reconfigured(mut self, cfg: ControllerConfig) -> Self {
        let old = self.cfg.bounds();
        let (levels, copies) = cfg
            .classes()
            .iter()
            .map(|c| match old.iter().position(|&b| b == c.max_literal) {
                Some(i) => (cfg.bound(c, self.levels[i]), std::mem::take(&mut self.copies[i])),
                None => (cfg.bound(c, c.start), BTreeMap::new()),
            })
            .unzip();
        DifficultyController { levels, copies, cfg }
    }

    /// The level of the first literal bound (the only one when there is none).
    pub fn level(&self) -> f64 {
        self.levels[0]
    }

    /// The literal bounds asked for, in the order of [`levels`](Self::levels).
    pub fn bounds(&self) -> Vec<Option<u32>> {
        self.cfg.bounds()
    }

    /// Moves each level after a round whose problems asked for its bound had median solve rate
    /// `medians[i]` (no move where none was attempted).
    pub fn update(&mut self, medians: &[Option<f64>]) {
        assert_eq!(medians.len(), self.levels.len(), "one median per level");
        let classes = self.cfg.classes();
        for (i, (class, m)) in classes.iter().zip(medians).enumerate() {
            if let Some(m) = m.filter(|m| m.is_finite()) {
                self.levels[i] =
                    self.cfg.bound(class, self.levels[i] + self.cfg.gain * (m - self.cfg.target));
            }
        }
    }

    /// Takes in one valid proposal asked for `target`, a copy (of the round or the archive) or
    /// not. A target of a bound not asked for is ignored.
    pub fn observe_copy(&mut self, target: &Target, copy: bool) {
        let Some(i) = self.class_of(target) else { return };
        let window = self.cfg.exhausted_window.max(1);
        let (share, n) = self.copies[i].entry(target.depth).or_insert((0.0, 0));
        *n += 1;
        let step = (1.0 / *n as f64).max(1.0 / f64::from(window));
        *share += step * (f64::from(u8::from(copy)) - *share);
    }

    /// Whether depth `depth` of level `i` is exhausted: above `exhausted` copies among the
    /// proposals asked for it, once `exhausted_window` were seen.
    pub fn is_exhausted(&self, i: usize, depth: u32) -> bool {
        self.copies.get(i).and_then(|c| c.get(&depth)).is_some_and(|&(share, n)| {
            n >= u64::from(self.cfg.exhausted_window) && share > self.cfg.exhausted
        })
    }

    /// Whether depth `depth` of level `i` is skipped: exhausted, and below the level's floor.
    pub fn is_skipped(&self, i: usize, depth: u32) -> bool {
        f64::from(depth) < self.levels[i].floor() && self.is_exhausted(i, depth)
    }

    /// The depths of level `i` skipped now, in order.
    pub fn skipped_depths(&self, i: usize) -> Vec<u32> {
        let class = self.cfg.classes()[i];
        (class.min_depth..=self.cfg.max_depth).filter(|&d| self.is_skipped(i, d)).collect()
    }

    /// The index in [`levels`](Self::levels) of the bound `target` asks for.
    pub fn class_of(&self, target: &Target) -> Option<usize> {
        self.bounds().iter().position(|&b| b == target.max_literal)
    }

    /// `n` targets for the next round.
    pub fn targets(&self, n: usize, rng: &mut dyn RngCore) -> Vec<Target> {
        let classes = self.cfg.classes();
        let total: f64 = classes.iter().map(|c| c.share).sum();
        (0..n)
            .map(|_| {
                // One class draws nothing, so a controller without bounds draws as it always did.
                let i = if classes.len() == 1 {
                    0
                } else {
                    let mut u = rng.random::<f64>() * total;
                    classes
                        .iter()
                        .position(|c| {
                            u -= c.share;
                            u < 0.0
                        })
                        .unwrap_or(classes.len() - 1)
                };
                let (class, level) = (&classes[i], self.levels[i]);
                let whole = level.floor();
                let frac = level - whole;
                let base = if rng.random::<f64>() < frac { whole + 1.0 } else { whole } as i64;
                let s = i64::from(self.cfg.spread);
                let jitter = if s > 0 { rng.random_range(-s..=s) } else { 0 };
                let mut depth =
                    (base + jitter).clamp(i64::from(class.min_depth), i64::from(self.cfg.max_depth)) as u32;
                // An exhausted depth below the level's floor is skipped for the next one up (at
                // most the floor, which is never skipped).
                while self.is_skipped(i, depth) {
                    depth += 1;
                }
                Target { depth, max_literal: class.max_literal }
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
        c.update(&[Some(0.9)]);
        assert!((c.level() - 2.8).abs() < 1e-12);
        c.update(&[Some(0.1)]);
        assert!((c.level() - 2.0).abs() < 1e-12);
        c.update(&[None]);
        assert!((c.level() - 2.0).abs() < 1e-12);
        for _ in 0..100 {
            c.update(&[Some(0.0)]);
        }
        assert_eq!(c.level(), 1.0);
    }

    #[test]
    fn a_resumed_controller_keeps_its_level_within_the_new_bounds() {
        let mut c = DifficultyController::new(ControllerConfig { max_depth: 12, ..Default::default() });
        for _ in 0..20 {
            c.update(&[Some(1.0)]);
        }
        assert_eq!(c.level(), 12.0);
        let narrow = ControllerConfig { max_depth: 6, ..Default::default() };
        let r = c.clone().reconfigured(narrow.clone());
        assert_eq!((r.level(), &r.cfg), (6.0, &narrow));
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        assert!(r
            .targets(200, &mut rng)
            .iter()
            .all(|t| (5..=6).contains(&t.depth) && t.max_literal.is_none()));
        let mid = DifficultyController { levels: vec![3.5], ..c }.reconfigured(narrow.clone());
        assert_eq!(mid.level(), 3.5);
        // Given literal bounds, a bound asked for before would keep its level; these are new.
        let bounded = ControllerConfig { literals: bounds(), ..narrow };
        let b = mid.reconfigured(bounded.clone());
        assert_eq!(b.levels, vec![2.0, 1.0]);
        let back = DifficultyController { levels: vec![4.5, 1.5], ..b }
            .reconfigured(ControllerConfig { literals: bounds().into_iter().rev().collect(), ..bounded });
        assert_eq!(back.levels, vec![1.5, 4.5]);
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
                .map(|t| 1.0 / (1.0 + 2f64.powf(f64::from(t.depth) - 4.0)))
                .collect();
            c.update(&[crate::median(&rates)]);
        }
        assert!((c.level() - 4.0).abs() < 0.6, "{}", c.level());
    }

    #[test]
    fn targets_follow_the_level() {
        let mut c = DifficultyController::new(ControllerConfig { spread: 0, ..Default::default() });
        c.levels = vec![3.25];
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let t = c.targets(4000, &mut rng);
        let fours = t.iter().filter(|t| t.depth == 4).count() as f64 / 4000.0;
        assert!(t.iter().all(|t| t.depth == 3 || t.depth == 4));
        assert!((fours - 0.25).abs() < 0.03, "{fours}");
        let c = DifficultyController::new(ControllerConfig { spread: 2, start: 1.0, ..Default::default() });
        assert!(c.targets(500, &mut rng).iter().all(|t| (1..=3).contains(&t.depth)));
    }

    /// Literals up to 20 from depth 2 on, three times as often as literals up to 99 from depth 1.
    fn bounds() -> Vec<LiteralBound> {
        vec![
            LiteralBound { max_literal: 20, share: 3.0, min_depth: Some(2), start: None },
            LiteralBound { max_literal: 99, share: 1.0, min_depth: None, start: Some(1.0) },
        ]
    }

    #[test]
    fn each_literal_bound_has_its_share_its_depths_and_its_level() {
        let cfg = ControllerConfig { spread: 0, literals: bounds(), ..Default::default() };
        let mut c = DifficultyController::new(cfg.clone());
        assert_eq!((c.levels.clone(), c.bounds()), (vec![2.0, 1.0], vec![Some(20), Some(99)]));
        c.levels = vec![2.5, 1.0];
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let t = c.targets(8000, &mut rng);
        let wide: Vec<_> = t.iter().filter(|t| t.max_literal == Some(99)).collect();
        let share = wide.len() as f64 / 8000.0;
        assert!((share - 0.25).abs() < 0.015, "{share}");
        assert!(wide.iter().all(|t| t.depth == 1));
        let threes = t.iter().filter(|t| t.max_literal == Some(20) && t.depth == 3).count() as f64;
        assert!((threes / (8000.0 - wide.len() as f64) - 0.5).abs() < 0.03, "{threes}");
        assert!(t.iter().all(|t| c.class_of(t).is_some()));
        assert_eq!(c.class_of(&Target { depth: 1, max_literal: Some(50) }), None);
        // Each level follows its own median; a bound nobody was asked for stays; its floor holds.
        c.update(&[Some(0.9), None]);
        assert_eq!(c.levels, vec![3.3, 1.0]);
        for _ in 0..10 {
            c.update(&[Some(0.0), Some(0.0)]);
        }
        assert_eq!(c.levels, vec![2.0, 1.0]);
        // With spread, depths below a bound's floor are not asked either.
        let c = DifficultyController::new(ControllerConfig { spread: 2, ..cfg });
        let t = c.targets(2000, &mut rng);
        assert!(t.iter().all(|t| t.max_literal != Some(20) || (2..=4).contains(&t.depth)));
        assert!(t.iter().any(|t| t.max_literal == Some(99) && t.depth == 3));
    }

    #[test]
    fn an_exhausted_depth_below_the_level_is_skipped() {
        let cfg = ControllerConfig { exhausted_window: 10, ..Default::default() };
        let mut c = DifficultyController::new(cfg.clone());
        c.levels = vec![2.5];
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        assert!(c.targets(500, &mut rng).iter().any(|t| t.depth == 1));
        // Copies at depth 1, and at depth 3 too few to judge by; fresh problems at depth 2.
        for i in 0..10 {
            c.observe_copy(&Target::depth(1), i != 0);
            c.observe_copy(&Target::depth(2), i == 0);
        }
        for _ in 0..9 {
            c.observe_copy(&Target::depth(3), true);
        }
        assert!((c.copies[0][&1].0 - 0.9).abs() < 1e-12);
        assert_eq!(c.skipped_depths(0), vec![1]);
        let depths: Vec<u32> = c.targets(2000, &mut rng).iter().map(|t| t.depth).collect();
        assert!(depths.iter().all(|d| (2..=4).contains(d)) && depths.contains(&4));
        // Below the level's floor only: at level 1.5 the median is held at depths 1 and 2, and
        // depth 1 is asked, exhausted or not; the level itself moves as it always did.
        c.update(&[Some(0.0)]);
        assert_eq!((c.level(), c.skipped_depths(0)), (1.5, vec![]));
        assert!(c.is_exhausted(0, 1));
        assert!(c.targets(500, &mut rng).iter().any(|t| t.depth == 1));
        // Depth 3 exhausted too: at level 4.0 depths 1 and 3 are skipped for the next one up.
        c.observe_copy(&Target::depth(3), true);
        c.levels = vec![4.0];
        assert_eq!(c.skipped_depths(0), vec![1, 3]);
        let c4 = DifficultyController { cfg: ControllerConfig { spread: 3, ..cfg.clone() }, ..c.clone() };
        let depths: Vec<u32> = c4.targets(3000, &mut rng).iter().map(|t| t.depth).collect();
        assert!(depths.iter().all(|d| [2, 4, 5, 6].contains(d)) && depths.contains(&2));
        // Fresh problems bring a depth back (the proposer found a way to write new ones).
        for _ in 0..10 {
            c.observe_copy(&Target::depth(1), false);
        }
        assert_eq!(c.skipped_depths(0), vec![3]);
        // Off at 1; the state survives a save and a reconfiguration that keeps its bound.
        let off = c.clone().reconfigured(ControllerConfig { exhausted: 1.0, ..cfg.clone() });
        assert!(off.skipped_depths(0).is_empty() && off.copies == c.copies);
        let again: DifficultyController = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
        // Copies are counted per literal bound; a bound not asked for is ignored.
        let mut b =
            DifficultyController::new(ControllerConfig { literals: bounds(), exhausted_window: 1, ..cfg });
        b.levels = vec![3.0, 2.0];
        b.observe_copy(&Target { depth: 1, max_literal: Some(99) }, true);
        b.observe_copy(&Target { depth: 1, max_literal: Some(50) }, true);
        assert_eq!((b.skipped_depths(0), b.skipped_depths(1)), (vec![], vec![1]));
        let bad = ControllerConfig { exhausted: 0.0, ..Default::default() };
        assert_eq!(bad.validate().unwrap_err(), "exhausted must be in (0, 1], got 0");
    }

    #[test]
    fn states_written_before_literal_bounds_read_back() {
        let old = r#"{"cfg":{"target":0.5,"gain":2.0,"start":2.0,"min_depth":1,"max_depth":6,"spread":1},"level":2.75}"#;
        let c: DifficultyController = serde_json::from_str(old).unwrap();
        assert_eq!((c.levels.clone(), c.cfg.clone()), (vec![2.75], ControllerConfig::default()));
        let again: DifficultyController = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
        let cfg = ControllerConfig { literals: bounds(), ..Default::default() };
        let c = DifficultyController { levels: vec![3.0, 1.5], ..DifficultyController::new(cfg) };
        let again: DifficultyController = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn literal_bounds_are_validated() {
        let with = |l: Vec<LiteralBound>| ControllerConfig { literals: l, ..Default::default() }.validate();
        assert_eq!(with(bounds()), Ok(()));
        let mut b = bounds();
        b[1].share = 0.0;
        assert_eq!(with(b).unwrap_err(), "literals[1].share must be a positive number, got 0");
        let mut b = bounds();
        b[0].min_depth = Some(7);
        assert_eq!(with(b).unwrap_err(), "literals[0].min_depth must be in 1..=6 (max_depth), got 7");
        let mut b = bounds();
        b[1].max_literal = 20;
        assert_eq!(with(b).unwrap_err(), "literals[1].max_literal 20 is given twice");
    }
}
