//! How a token is chosen from a row of logits: temperature, top-k, top-p, greedy; and the
//! requests and continuations every sampling path shares.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How to choose tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SampleConfig {
    /// 0 is greedy (argmax); otherwise logits are divided by it.
    pub temperature: f64,
    /// Keep only the `k` most likely tokens.
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probability reaches `p`.
    pub top_p: Option<f64>,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig { temperature: 1.0, top_k: None, top_p: None }
    }
}

impl SampleConfig {
    pub fn greedy() -> Self {
        SampleConfig { temperature: 0.0, top_k: None, top_p: None }
    }
}

/// One sequence to continue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub prompt: Vec<u32>,
    /// Most new tokens (further capped by the model's context).
    pub max_new: usize,
    /// Token that ends the sequence (included in the output when produced).
    pub stop: Option<u32>,
}

/// A continuation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampled {
    /// New tokens, the stop token last when one was produced.
    pub tokens: Vec<u32>,
    /// Log-probability of each new token under the model.
    pub logprobs: Vec<f32>,
    /// Whether the stop token ended the sequence.
    pub stopped: bool,
}

/// `log softmax(logits)[i]`.
pub fn logprob_of(logits: &[f32], i: usize) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + logits.iter().map(|&l| (l - max).exp()).sum::<f32>().ln();
    logits[i] - lse
}

/// The sampling distribution over tokens for one row of logits (probabilities summing to 1).
pub fn distribution(logits: &[f32], cfg: &SampleConfig) -> Vec<f64> {
    let n = logits.len();
    let mut p = vec![0.0; n];
    if cfg.temperature <= 0.0 {
        let best = (0..n).fold(0, |b, i| if logits[i] > logits[b] { i } else { b });
        p[best] = 1.0;
        return p;
    }
    let scaled: Vec<f64> = logits.iter().map(|&l| f64::from(l) / cfg.temperature).collect();
    let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scaled[b].total_cmp(&scaled[a]).then(a.cmp(&b)));
    let k = cfg.top_k.unwrap_or(n).clamp(1, n);
    let weights: Vec<f64> = scaled.iter().map(|&s| (s - max).exp()).collect();
    let total: f64 = order[..k].iter().map(|&i| weights[i]).sum();
    let mut kept = 0.0;
    for (rank, &i) in order[..k].iter().enumerate() {
        if let Some(top_p) = cfg.top_p {
            if rank > 0 && kept >= top_p * total {
                break;
            }
        }
        p[i] = weights[i];
        kept += weights[i];
    }
    p.iter_mut().for_each(|v| *v /= kept);
    p
}

/// Draws one token from `distribution(logits, cfg)`.
pub fn sample_token(logits: &[f32], cfg: &SampleConfig, rng: &mut ChaCha8Rng) -> usize {
    let p = distribution(logits, cfg);
    if cfg.temperature <= 0.0 {
        return p.iter().position(|&v| v == 1.0).unwrap_or(0);
    }
    let u: f64 = rng.random();
    let mut acc = 0.0;
    let mut last = 0;
    for (i, &v) in p.iter().enumerate() {
        if v > 0.0 {
            acc += v;
            last = i;
            if u < acc {
                return i;
            }
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn truncation_keeps_the_right_tokens() {
        let logits = [2.0f32, 1.0, 0.5, 0.0, -1.0];
        let p = distribution(&logits, &SampleConfig { temperature: 1.0, top_k: Some(2), top_p: None });
        assert!(p[2..].iter().all(|&v| v == 0.0));
        let e1 = 1f64.exp();
        assert!((p[0] - e1 / (e1 + 1.0)).abs() < 1e-12);
        // top-p 0.5: the first token alone has probability ≥ 0.5 here.
        let p = distribution(&logits, &SampleConfig { temperature: 1.0, top_k: None, top_p: Some(0.5) });
        assert_eq!(p, vec![1.0, 0.0, 0.0, 0.0, 0.0]);
        let p = distribution(&logits, &SampleConfig { temperature: 1.0, top_k: None, top_p: Some(0.8) });
        assert_eq!(p.iter().filter(|&&v| v > 0.0).count(), 3);
        let p = distribution(&logits, &SampleConfig::greedy());
        assert_eq!(p, vec![1.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn samples_follow_their_distribution() {
        // Chi-square goodness of fit, 40,000 draws, 4 degrees of freedom: the 0.999 quantile is
        // 18.47; a correct sampler exceeds it one time in a thousand.
        let logits = [1.0f32, 0.3, -0.5, 0.0, 2.0];
        for cfg in [
            SampleConfig { temperature: 1.0, top_k: None, top_p: None },
            SampleConfig { temperature: 0.7, top_k: Some(4), top_p: None },
            SampleConfig { temperature: 1.5, top_k: None, top_p: Some(0.9) },
        ] {
            let p = distribution(&logits, &cfg);
            let mut rng = ChaCha8Rng::seed_from_u64(42);
            let n = 40_000;
            let mut counts = [0usize; 5];
            for _ in 0..n {
                counts[sample_token(&logits, &cfg, &mut rng)] += 1;
            }
            let chi2: f64 = (0..5)
                .filter(|&i| p[i] > 0.0)
                .map(|i| {
                    let e = p[i] * n as f64;
                    (counts[i] as f64 - e).powi(2) / e
                })
                .sum();
            assert!(chi2 < 18.47, "{cfg:?}: chi2 {chi2}, counts {counts:?}, p {p:?}");
            assert!((0..5).all(|i| p[i] > 0.0 || counts[i] == 0), "a truncated token was drawn");
        }
    }
}
