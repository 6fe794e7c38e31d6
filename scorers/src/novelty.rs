//! Novelty, in the manner of OMNI's model of interestingness: a problem is compared with its
//! nearest neighbours among the problems seen so far, in a space of canonical structure (operator
//! counts, which operator feeds which, tree height, literal sizes); a near-copy of a problem the
//! solver has mastered is not interesting, one far from everything seen is.
//!
//! ```text
//! near(x)  = max over the k nearest y of  exp(−d(x, y)² / 2r²) · (1 + mastery(y)) / 2
//! score(x) = 1 − near(x)
//! ```
//!
//! where `mastery(y)` is y's solve rate (0 when never attempted). An exact copy of a mastered
//! problem scores 0, of a problem never solved 0.5; a problem far from all scores near 1. Padding
//! does not move a problem in this space: `+0` buys no novelty.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::{BoxFuture, ItemResult, Score, ScoreRequest, Scorer, Seen};

/// Structural features and the scale each is measured in (a difference of one scale is distance 1).
const SPACE: [(&str, f64); 17] = [
    ("ops", 2.0),
    ("height", 2.0),
    ("add", 1.0),
    ("sub", 1.0),
    ("mul", 1.0),
    ("add_in_add", 1.0),
    ("add_in_sub", 1.0),
    ("add_in_mul", 1.0),
    ("sub_in_add", 1.0),
    ("sub_in_sub", 1.0),
    ("sub_in_mul", 1.0),
    ("mul_in_add", 1.0),
    ("mul_in_sub", 1.0),
    ("mul_in_mul", 1.0),
    ("literals", 2.0),
    ("max_digits", 1.0),
    ("trivial_literals", 1.0),
];

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoveltyConfig {
    /// Problems remembered (the most recent).
    pub memory: usize,
    /// Neighbours compared with.
    pub neighbours: usize,
    /// Distance at which similarity has fallen to e^(−1/2).
    pub radius: f64,
}

impl Default for NoveltyConfig {
    fn default() -> Self {
        NoveltyConfig { memory: 20_000, neighbours: 5, radius: 1.0 }
    }
}

impl NoveltyConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.memory == 0 || self.neighbours == 0 {
            return Err("memory and neighbours must be positive".into());
        }
        if !(self.radius.is_finite() && self.radius > 0.0) {
            return Err(format!("radius must be positive, got {}", self.radius));
        }
        Ok(())
    }
}

struct Memory {
    point: Vec<f64>,
    mastery: f64,
    problem: String,
}

/// See the module documentation.
pub struct Novelty {
    cfg: NoveltyConfig,
    memory: VecDeque<Memory>,
}

fn point(features: &BTreeMap<String, f64>) -> Vec<f64> {
    SPACE.iter().map(|(k, scale)| features.get(*k).copied().unwrap_or(0.0) / scale).collect()
}

impl Novelty {
    pub fn new(cfg: NoveltyConfig) -> Novelty {
        Novelty { cfg, memory: VecDeque::new() }
    }

    pub fn remembered(&self) -> usize {
        self.memory.len()
    }

    /// The score of one problem, and the neighbour that decided it.
    pub fn score_one(&self, features: &BTreeMap<String, f64>) -> Score {
        let x = point(features);
        let mut nearest: Vec<(f64, &Memory)> = self
            .memory
            .iter()
            .map(|m| (x.iter().zip(&m.point).map(|(a, b)| (a - b) * (a - b)).sum::<f64>(), m))
            .collect();
        let k = self.cfg.neighbours.min(nearest.len());
        if k == 0 {
            return Score { value: 1.0, reason: Some("nothing seen yet".into()) };
        }
        nearest.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
        let two_r2 = 2.0 * self.cfg.radius * self.cfg.radius;
        let (near, who) = nearest[..k]
            .iter()
            .map(|(d2, m)| ((-d2 / two_r2).exp() * (1.0 + m.mastery) / 2.0, (d2.sqrt(), *m)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .expect("k > 0");
        let (d, m) = who;
        Score {
            value: (1.0 - near).clamp(0.0, 1.0),
            reason: Some(format!(
                "closest to {:?} (distance {d:.2}, solve rate {:.2})",
                m.problem, m.mastery
            )),
        }
    }
}

impl Scorer for Novelty {
    fn name(&self) -> &str {
        "novelty"
    }

    fn version(&self) -> String {
        "1".into()
    }

    fn score<'a>(&'a mut self, batch: &'a [ScoreRequest]) -> BoxFuture<'a, Result<Vec<ItemResult>, String>> {
        let out = batch.iter().map(|r| Ok(self.score_one(&r.features))).collect();
        Box::pin(async move { Ok(out) })
    }

    fn observe(&mut self, seen: &[Seen]) {
        for s in seen {
            if self.memory.len() == self.cfg.memory {
                self.memory.pop_front();
            }
            self.memory.push_back(Memory {
                point: point(&s.features),
                mastery: s.solve_rate.unwrap_or(0.0).clamp(0.0, 1.0),
                problem: s.problem.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use problem::Domain;

    fn features(text: &str) -> BTreeMap<String, f64> {
        let a = problem::Arith.analyze(text, &problem::Limits::default()).unwrap();
        problem::Arith.features(text, &a)
    }

    fn seen(text: &str, p: f64) -> Seen {
        Seen { problem: text.into(), features: features(text), solve_rate: Some(p) }
    }

    #[test]
    fn copies_of_mastered_problems_score_low_and_new_structure_high() {
        let mut n = Novelty::new(NoveltyConfig::default());
        assert_eq!(n.score_one(&features("1+2")).value, 1.0, "nothing seen: all new");
        n.observe(&[seen("3+4", 1.0), seen("5*6", 0.0)]);
        let copy_mastered = n.score_one(&features("4+3")).value;
        let copy_unsolved = n.score_one(&features("6*5")).value;
        let padded_copy = n.score_one(&features("(3+4)*1+0")).value;
        let new_shape = n.score_one(&features("(2+3)*(4-1)*7")).value;
        assert!(copy_mastered < 1e-9, "{copy_mastered}");
        assert!((copy_unsolved - 0.5).abs() < 1e-9, "{copy_unsolved}");
        assert!(padded_copy < 1e-9, "padding buys no novelty: {padded_copy}");
        assert!(new_shape > 0.9, "{new_shape}");
        // Monotone in distance: one more operation is less novel than three more.
        let one_more = n.score_one(&features("3+4+5")).value;
        assert!(copy_mastered < one_more && one_more < new_shape);
    }

    #[test]
    fn memory_is_bounded_and_keeps_the_latest() {
        let mut n = Novelty::new(NoveltyConfig { memory: 2, ..Default::default() });
        n.observe(&[seen("1+1", 1.0), seen("2*2", 1.0), seen("5-2", 1.0)]);
        assert_eq!(n.remembered(), 2);
        assert!(n.score_one(&features("1+2")).value > 0.3, "the oldest, 1+1, is forgotten");
        assert!(n.score_one(&features("6-3")).value < 1e-9);
    }
}
