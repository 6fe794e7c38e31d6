//! Replay of past problems by learning potential, in the manner of Prioritized Level Replay.
//!
//! Each problem in the buffer has a score, its learning potential `4·p̂·(1 − p̂)`: 1 at p̂ = ½,
//! 0 for problems always or never solved. Sampling mixes two distributions:
//!
//! ```text
//! P(i) = (1 − ρ) · P_S(i) + ρ · P_C(i)
//! P_S(i) ∝ (1 / rank(score_i))^(1/β)      rank 1 = highest score
//! P_C(i) ∝ round − last_sampled_i          staleness: problems not seen for long come back
//! ```
//!
//! so that the solver trains on what it half-knows, and estimates that have gone stale get
//! refreshed. When full, the buffer drops its lowest-scoring problem.

use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayConfig {
    pub capacity: usize,
    /// Temperature β of the rank prioritization: small β concentrates on the top ranks.
    pub temperature: f64,
    /// Weight ρ of staleness.
    pub staleness: f64,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig { capacity: 4096, temperature: 0.3, staleness: 0.1 }
    }
}

impl ReplayConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.capacity == 0 {
            return Err("capacity must be positive".into());
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(format!("temperature must be positive, got {}", self.temperature));
        }
        if !(0.0..=1.0).contains(&self.staleness) {
            return Err(format!("staleness must be in [0, 1], got {}", self.staleness));
        }
        Ok(())
    }
}

/// A problem in the buffer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayItem {
    /// Archive id.
    pub id: u64,
    pub problem: String,
    pub answer: String,
    /// Latest solve-rate estimate.
    pub solve_rate: f64,
    /// Round it was last sampled or scored in.
    pub last_round: u64,
    /// The solver's attempts at it over every round it was scored in, and the correct ones
    /// (absent from checkpoints written before they were kept: 0, no evidence).
    #[serde(default)]
    pub attempts: u64,
    #[serde(default)]
    pub correct: u64,
}

impl ReplayItem {
    /// The solve rate over every attempt it was given, and how many: a steadier estimate than
    /// one round's handful of attempts (8 attempts at a true rate of 0.5 give 2 or fewer, or 6
    /// or more, 3 times in 10).
    pub fn pooled_rate(&self) -> Option<(f64, u64)> {
        (self.attempts > 0).then(|| (self.correct as f64 / self.attempts as f64, self.attempts))
    }

    /// Learning potential `4·p·(1 − p)`.
    pub fn score(&self) -> f64 {
        let p = self.solve_rate.clamp(0.0, 1.0);
        4.0 * p * (1.0 - p)
    }
}

/// The replay buffer and its state (serializable for resume).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replay {
    pub cfg: ReplayConfig,
    items: Vec<ReplayItem>,
}

impl Replay {
    pub fn new(cfg: ReplayConfig) -> Self {
        Replay { cfg, items: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn items(&self) -> &[ReplayItem] {
        &self.items
    }

    /// Adds a problem, or updates it when its id is already in (new solve rate, round).
    pub fn insert(&mut self, item: ReplayItem) {
        match self.items.iter_mut().find(|i| i.id == item.id) {
            Some(existing) => *existing = item,
            None => self.items.push(item),
        }
        if self.items.len() > self.cfg.capacity {
            // Lowest score goes; among equals, the one seen longest ago.
            let worst = (0..self.items.len())
                .min_by(|&a, &b| {
                    let (x, y) = (&self.items[a], &self.items[b]);
                    x.score().total_cmp(&y.score()).then(x.last_round.cmp(&y.last_round))
                })
                .expect("the buffer is not empty");
            self.items.swap_remove(worst);
        }
    }

    /// The sampling distribution at `round`, one probability per item.
    pub fn probabilities(&self, round: u64) -> Vec<f64> {
        let n = self.items.len();
        if n == 0 {
            return Vec::new();
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| self.items[b].score().total_cmp(&self.items[a].score()).then(a.cmp(&b)));
        let mut p_s = vec![0.0; n];
        for (rank, &i) in order.iter().enumerate() {
            p_s[i] = (1.0 / (rank + 1) as f64).powf(1.0 / self.cfg.temperature);
        }
        let total_s: f64 = p_s.iter().sum();
        let stale: Vec<f64> = self.items.iter().map(|i| round.saturating_sub(i.last_round) as f64).collect();
        let total_c: f64 = stale.iter().sum();
        let rho = if total_c > 0.0 { self.cfg.staleness } else { 0.0 };
        (0..n)
            .map(|i| {
                (1.0 - rho) * p_s[i] / total_s + if total_c > 0.0 { rho * stale[i] / total_c } else { 0.0 }
            })
            .collect()
    }

    /// Draws up to `n` distinct problems for `round` and marks them seen.
    pub fn sample(&mut self, n: usize, round: u64, rng: &mut dyn RngCore) -> Vec<ReplayItem> {
        let mut p = self.probabilities(round);
        let mut chosen = Vec::new();
        for _ in 0..n.min(self.items.len()) {
            let total: f64 = p.iter().sum();
            if total <= 0.0 {
                break;
            }
            let mut u = rng.random::<f64>() * total;
            let mut pick = p.len() - 1;
            for (i, &w) in p.iter().enumerate() {
                if u < w {
                    pick = i;
                    break;
                }
                u -= w;
            }
            p[pick] = 0.0;
            chosen.push(pick);
        }
        chosen
            .into_iter()
            .map(|i| {
                self.items[i].last_round = round;
                self.items[i].clone()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn item(id: u64, p: f64, last: u64) -> ReplayItem {
        ReplayItem {
            id,
            problem: format!("{id}+1"),
            answer: String::new(),
            solve_rate: p,
            last_round: last,
            attempts: 0,
            correct: 0,
        }
    }

    #[test]
    fn probabilities_rank_learning_potential_and_staleness() {
        let mut r = Replay::new(ReplayConfig { capacity: 10, temperature: 1.0, staleness: 0.0 });
        r.insert(item(1, 0.5, 0)); // score 1: rank 1
        r.insert(item(2, 0.9, 0)); // 0.36: rank 3
        r.insert(item(3, 0.25, 0)); // 0.75: rank 2
        let p = r.probabilities(0);
        let z = 1.0 + 0.5 + 1.0 / 3.0;
        for (got, want) in p.iter().zip([1.0 / z, 1.0 / 3.0 / z, 0.5 / z]) {
            assert!((got - want).abs() < 1e-12);
        }
        // Pure staleness: proportional to rounds since last seen.
        r.cfg.staleness = 1.0;
        r.insert(item(2, 0.9, 6));
        let p = r.probabilities(10);
        for (got, want) in p.iter().zip([10.0 / 24.0, 4.0 / 24.0, 10.0 / 24.0]) {
            assert!((got - want).abs() < 1e-12);
        }
    }

    #[test]
    fn sampling_follows_the_probabilities() {
        let mut r = Replay::new(ReplayConfig { capacity: 10, temperature: 0.5, staleness: 0.2 });
        for (id, p, last) in [(1, 0.5, 0), (2, 0.1, 3), (3, 0.7, 1), (4, 1.0, 0)] {
            r.insert(item(id, p, last));
        }
        let probs = r.probabilities(5);
        let mut counts = [0usize; 4];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 20_000;
        for _ in 0..n {
            let mut copy = r.clone();
            let picked = copy.sample(1, 5, &mut rng);
            counts[(picked[0].id - 1) as usize] += 1;
        }
        // Chi-square, 3 degrees of freedom: 0.999 quantile 16.27.
        let chi2: f64 =
            (0..4).map(|i| (counts[i] as f64 - probs[i] * n as f64).powi(2) / (probs[i] * n as f64)).sum();
        assert!(chi2 < 16.27, "chi2 {chi2} counts {counts:?} probs {probs:?}");
    }

    #[test]
    fn sampling_is_without_replacement_and_marks_rounds() {
        let mut r = Replay::new(ReplayConfig::default());
        for id in 0..5 {
            r.insert(item(id, 0.5, 0));
        }
        let got = r.sample(10, 7, &mut ChaCha8Rng::seed_from_u64(0));
        let mut ids: Vec<u64> = got.iter().map(|i| i.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![0, 1, 2, 3, 4]);
        assert!(r.items().iter().all(|i| i.last_round == 7));
    }

    #[test]
    fn a_full_buffer_drops_the_least_useful() {
        let mut r = Replay::new(ReplayConfig { capacity: 3, ..Default::default() });
        r.insert(item(1, 0.5, 0));
        r.insert(item(2, 1.0, 5));
        r.insert(item(3, 0.0, 1));
        r.insert(item(4, 0.4, 2));
        let mut ids: Vec<u64> = r.items().iter().map(|i| i.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 2, 4], "the zero-score item seen longest ago went");
        r.insert(item(2, 0.5, 6));
        assert_eq!(r.len(), 3, "an update does not grow the buffer");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Replay>(&json).unwrap(), r);
    }
}
