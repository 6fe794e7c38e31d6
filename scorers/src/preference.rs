//! A preference model learned from a person's pairwise ratings: Bradley–Terry over problem
//! features.
//!
//! Each problem has a utility `u(x) = w · z(x)`, with `z` the features standardized over the rated
//! problems. The model says `P(a preferred to b) = σ(u(a) − u(b))`; it is fitted by minimizing the
//! mean logistic loss over the comparisons (a tie is half a win each way) plus `l2/2 · |w|²`, by
//! full-batch gradient descent (the problem is convex and small). The score of a problem is
//! `σ(u(x) − c)`, with `c` the median utility of the rated problems: 0.5 is a typical rated
//! problem, near 1 one the person would prefer to almost all of them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{BoxFuture, ItemResult, Score, ScoreRequest, Scorer};

/// Who won a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    A,
    B,
    Tie,
}

impl Outcome {
    /// The probability target that `a` is preferred.
    fn target(self) -> f64 {
        match self {
            Outcome::A => 1.0,
            Outcome::B => 0.0,
            Outcome::Tie => 0.5,
        }
    }
}

/// Two problems' features and who won.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub a: BTreeMap<String, f64>,
    pub b: BTreeMap<String, f64>,
    pub outcome: Outcome,
}

/// A fitted model, saved as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferenceModel {
    /// Feature names, in the order of the vectors below.
    pub features: Vec<String>,
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    pub weights: Vec<f64>,
    /// Median utility of the rated problems.
    pub center: f64,
    /// Comparisons it was fitted on.
    pub comparisons: usize,
    pub l2: f64,
    /// Fraction of the ratings held out of its fitting (`selfplay rate eval` measures on them).
    #[serde(default)]
    pub holdout: f64,
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^x)`, stable for large |x|.
fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

impl PreferenceModel {
    fn z(&self, f: &BTreeMap<String, f64>) -> Vec<f64> {
        self.features
            .iter()
            .enumerate()
            .map(|(i, k)| (f.get(k).copied().unwrap_or(0.0) - self.mean[i]) / self.scale[i])
            .collect()
    }

    pub fn utility(&self, f: &BTreeMap<String, f64>) -> f64 {
        self.z(f).iter().zip(&self.weights).map(|(z, w)| z * w).sum()
    }

    /// P(a is preferred to b).
    pub fn prob(&self, a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>) -> f64 {
        sigmoid(self.utility(a) - self.utility(b))
    }

    pub fn score(&self, f: &BTreeMap<String, f64>) -> f64 {
        sigmoid(self.utility(f) - self.center)
    }

    /// Mean loss and its gradient in `w`, over standardized differences `d = z(a) − z(b)`.
    pub fn loss_and_grad(w: &[f64], diffs: &[(Vec<f64>, f64)], l2: f64) -> (f64, Vec<f64>) {
        let n = diffs.len().max(1) as f64;
        let mut loss = 0.0;
        let mut grad: Vec<f64> = w.iter().map(|wi| l2 * wi).collect();
        for (d, y) in diffs {
            let s: f64 = d.iter().zip(w).map(|(a, b)| a * b).sum();
            // −[y ln σ(s) + (1−y) ln σ(−s)] = softplus(s) − y·s
            loss += (softplus(s) - y * s) / n;
            let g = (sigmoid(s) - y) / n;
            for (gi, di) in grad.iter_mut().zip(d) {
                *gi += g * di;
            }
        }
        loss += 0.5 * l2 * w.iter().map(|x| x * x).sum::<f64>();
        (loss, grad)
    }

    /// Fits the model; errors when there is nothing to learn from.
    pub fn fit(comparisons: &[Comparison], l2: f64) -> Result<PreferenceModel, String> {
        if comparisons.is_empty() {
            return Err("no comparisons to learn from".into());
        }
        let names: BTreeSet<&String> =
            comparisons.iter().flat_map(|c| c.a.keys().chain(c.b.keys())).collect();
        let features: Vec<String> = names.into_iter().cloned().collect();
        if features.is_empty() {
            return Err("the rated problems have no features".into());
        }
        let items: Vec<&BTreeMap<String, f64>> = comparisons.iter().flat_map(|c| [&c.a, &c.b]).collect();
        let col = |k: &String| items.iter().map(|f| f.get(k).copied().unwrap_or(0.0)).collect::<Vec<_>>();
        let mut mean = Vec::new();
        let mut scale = Vec::new();
        for k in &features {
            let v = col(k);
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64;
            mean.push(m);
            // A constant feature is left at scale 1: its standardized value is always 0.
            scale.push(if var > 1e-12 { var.sqrt() } else { 1.0 });
        }
        let mut model = PreferenceModel {
            features,
            mean,
            scale,
            weights: Vec::new(),
            center: 0.0,
            comparisons: comparisons.len(),
            l2,
            holdout: 0.0,
        };
        model.weights = vec![0.0; model.features.len()];
        let diffs: Vec<(Vec<f64>, f64)> = comparisons
            .iter()
            .map(|c| {
                let (za, zb) = (model.z(&c.a), model.z(&c.b));
                (za.iter().zip(&zb).map(|(a, b)| a - b).collect(), c.outcome.target())
            })
            .collect();
        // Gradient descent with a step halved whenever it would raise the loss.
        let mut w = model.weights.clone();
        let (mut loss, mut grad) = Self::loss_and_grad(&w, &diffs, l2);
        let mut step = 1.0;
        for _ in 0..2000 {
            let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
            if norm < 1e-9 {
                break;
            }
            let trial: Vec<f64> = w.iter().zip(&grad).map(|(wi, gi)| wi - step * gi).collect();
            let (l, g) = Self::loss_and_grad(&trial, &diffs, l2);
            if l <= loss {
                (w, loss, grad) = (trial, l, g);
                step *= 1.2;
            } else {
                step *= 0.5;
                if step < 1e-12 {
                    break;
                }
            }
        }
        model.weights = w;
        let mut utilities: Vec<f64> = items.iter().map(|f| model.utility(f)).collect();
        utilities.sort_by(f64::total_cmp);
        model.center = utilities[utilities.len() / 2];
        Ok(model)
    }

    /// Comparisons (ties left out) whose winner the model prefers: (agreeing, decided).
    pub fn agreement(&self, comparisons: &[Comparison]) -> (usize, usize) {
        let decided: Vec<&Comparison> = comparisons.iter().filter(|c| c.outcome != Outcome::Tie).collect();
        let agree =
            decided.iter().filter(|c| (self.prob(&c.a, &c.b) > 0.5) == (c.outcome == Outcome::A)).count();
        (agree, decided.len())
    }

    /// A short stable digest of the model, its version.
    pub fn version(&self) -> String {
        // FNV-1a over the JSON form: stable across builds and platforms.
        let bytes = serde_json::to_vec(self).expect("models serialize");
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{:08x}", h >> 32)
    }
}

/// The preference model as a scorer.
pub struct Preference {
    model: PreferenceModel,
    version: String,
}

impl Preference {
    pub fn new(model: PreferenceModel) -> Preference {
        let version = model.version();
        Preference { model, version }
    }
}

impl Scorer for Preference {
    fn name(&self) -> &str {
        "preference"
    }

    fn version(&self) -> String {
        self.version.clone()
    }

    fn score<'a>(&'a mut self, batch: &'a [ScoreRequest]) -> BoxFuture<'a, Result<Vec<ItemResult>, String>> {
        let out = batch
            .iter()
            .map(|r| {
                let u = self.model.utility(&r.features);
                Ok(Score { value: self.model.score(&r.features), reason: Some(format!("utility {u:+.2}")) })
            })
            .collect();
        Box::pin(async move { Ok(out) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn item(x: f64, y: f64) -> BTreeMap<String, f64> {
        [("x".to_string(), x), ("y".to_string(), y)].into()
    }

    /// Comparisons drawn from a known Bradley–Terry model with utility 2x − y.
    fn synthetic(n: usize, seed: u64) -> Vec<Comparison> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let a = item(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
                let b = item(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
                let u = |f: &BTreeMap<String, f64>| 2.0 * f["x"] - f["y"];
                let p = sigmoid(u(&a) - u(&b));
                let outcome = if rng.random_bool(p) { Outcome::A } else { Outcome::B };
                Comparison { a, b, outcome }
            })
            .collect()
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let diffs =
            vec![(vec![0.3, -1.2, 0.5], 1.0), (vec![-0.7, 0.1, 2.0], 0.0), (vec![1.5, 0.4, -0.3], 0.5)];
        let w = vec![0.2, -0.4, 0.9];
        let (_, grad) = PreferenceModel::loss_and_grad(&w, &diffs, 0.1);
        for i in 0..w.len() {
            let h = 1e-6;
            let mut up = w.clone();
            up[i] += h;
            let mut down = w.clone();
            down[i] -= h;
            let fd = (PreferenceModel::loss_and_grad(&up, &diffs, 0.1).0
                - PreferenceModel::loss_and_grad(&down, &diffs, 0.1).0)
                / (2.0 * h);
            assert!((fd - grad[i]).abs() < 1e-7, "dimension {i}: {fd} vs {}", grad[i]);
        }
    }

    #[test]
    fn fitting_recovers_the_preference_and_predicts_held_out_choices() {
        let train = synthetic(2000, 1);
        let model = PreferenceModel::fit(&train, 1e-4).unwrap();
        // Standardized weights: x counts about twice as much as y, with opposite signs.
        let (wx, wy) = (model.weights[0] / model.scale[0], model.weights[1] / model.scale[1]);
        assert!((wx / -wy - 2.0).abs() < 0.4, "{wx} {wy}");
        assert!((wx - 2.0).abs() < 0.5, "{wx}");
        let test = synthetic(1000, 2);
        let (agree, n) = model.agreement(&test);
        // The best possible agreement for this model is about 0.76; chance is 0.5.
        assert!(agree as f64 / n as f64 > 0.70, "{agree}/{n}");
        assert!(model.score(&item(1.0, -1.0)) > 0.9 && model.score(&item(-1.0, 1.0)) < 0.1);
        // The loss it reached is below where it started.
        let diffs: Vec<_> = train
            .iter()
            .map(|c| {
                let (a, b) = (model.z(&c.a), model.z(&c.b));
                (a.iter().zip(&b).map(|(x, y)| x - y).collect::<Vec<_>>(), c.outcome.target())
            })
            .collect();
        let start = PreferenceModel::loss_and_grad(&[0.0, 0.0], &diffs, 1e-4).0;
        let end = PreferenceModel::loss_and_grad(&model.weights, &diffs, 1e-4).0;
        assert!(end < start - 0.1, "{start} -> {end}");
    }

    #[test]
    fn ties_and_degenerate_input() {
        assert!(PreferenceModel::fit(&[], 0.1).is_err());
        let tie = Comparison { a: item(1.0, 0.0), b: item(0.0, 0.0), outcome: Outcome::Tie };
        let m = PreferenceModel::fit(&[tie.clone(), tie], 0.1).unwrap();
        assert!(m.weights.iter().all(|w| w.abs() < 1e-6), "ties teach nothing: {:?}", m.weights);
        assert_eq!(m.agreement(&[]), (0, 0));
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<PreferenceModel>(&json).unwrap(), m);
        assert_eq!(m.version().len(), 8);
    }
}
