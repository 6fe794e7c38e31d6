//! Batched sampling with a KV cache.
//!
//! A batch of prompts of different lengths is left-padded to the longest; padding keys are masked
//! and positions count from each prompt's own start, so every sequence sees exactly what it would
//! see alone. The prompt is read in one forward pass that fills the cache; each further step feeds
//! one token per sequence. Sequences stop at their stop token or their own length limit, and
//! leave the batch (and the cache) once a quarter of those still in it have stopped.
//!
//! Returned log-probabilities are those of the model itself (temperature 1, no truncation), the
//! same numbers [`crate::train::token_logprobs`] computes for the same tokens: what a policy-
//! gradient update needs as the behaviour policy's log-probs when sampling at temperature 1.

use candle_core::{DType, Result, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::model::{Gpt, KvCache};

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

/// Continues every request. With `use_cache` false, every step recomputes the whole prefix (the
/// slow reference the cache is measured and tested against).
pub fn sample(
    model: &Gpt,
    requests: &[Request],
    cfg: &SampleConfig,
    rng: &mut ChaCha8Rng,
    use_cache: bool,
) -> Result<Vec<Sampled>> {
    let b = requests.len();
    if b == 0 {
        return Ok(Vec::new());
    }
    let context = model.config().context;
    let longest = requests.iter().map(|r| r.prompt.len()).max().unwrap_or(0);
    if requests.iter().any(|r| r.prompt.is_empty()) {
        candle_core::bail!("every prompt needs at least one token");
    }
    if longest > context {
        candle_core::bail!("a prompt of {longest} tokens exceeds the context of {context}");
    }
    let pads: Vec<usize> = requests.iter().map(|r| longest - r.prompt.len()).collect();
    let max_new: Vec<usize> = requests.iter().map(|r| r.max_new.min(context - longest)).collect();
    let steps = max_new.iter().copied().max().unwrap_or(0);
    let dev = model.device();

    // Left-padded token rows, each grown by one token per step while it is in the batch.
    let mut rows: Vec<Vec<u32>> =
        requests.iter().zip(&pads).map(|(r, &pad)| [vec![0; pad], r.prompt.clone()].concat()).collect();
    // The rows still in the batch, in order. Once a quarter of them are finished they leave it
    // (and the KV cache): in a round most answers stop long before the longest, and a finished
    // row would otherwise cost a full row of every step until then. A quarter keeps the copies
    // of the cache a compaction makes to a few per batch.
    let mut active: Vec<usize> = (0..b).collect();
    let positions_for = |active: &[usize], start: usize, len: usize| -> Result<Tensor> {
        let v: Vec<u32> = active
            .iter()
            .flat_map(|&i| {
                let pad = pads[i];
                (start..start + len).map(move |t| t.saturating_sub(pad) as u32)
            })
            .collect();
        Tensor::from_vec(v, (active.len(), len), dev)
    };
    let matrix = |rows: &[Vec<u32>], active: &[usize], from: usize| -> Result<Tensor> {
        let len = rows[active[0]].len() - from;
        Tensor::from_vec(
            active.iter().flat_map(|&i| rows[i][from..].iter().copied()).collect::<Vec<u32>>(),
            (active.len(), len),
            dev,
        )
    };
    let pads_of = |active: &[usize]| -> Vec<usize> { active.iter().map(|&i| pads[i]).collect() };

    let mut out: Vec<Sampled> =
        (0..b).map(|_| Sampled { tokens: Vec::new(), logprobs: Vec::new(), stopped: false }).collect();
    let mut done: Vec<bool> = max_new.iter().map(|&m| m == 0).collect();
    let mut cache = KvCache::new(model.config().layers);
    let logits = model.forward_with(
        &matrix(&rows, &active, 0)?,
        &positions_for(&active, 0, longest)?,
        &model.causal_mask(longest, &pads)?,
        use_cache.then_some(&mut cache),
        None,
    )?;
    // Row `r` of `last` is the logits of sequence `active[r]`.
    let mut last = Gpt::last_logits(&logits)?.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    for step in 0..steps {
        for (r, &i) in active.iter().enumerate() {
            if done[i] {
                rows[i].push(0);
                continue;
            }
            let token = sample_token(&last[r], cfg, rng);
            out[i].tokens.push(token as u32);
            out[i].logprobs.push(logprob_of(&last[r], token));
            rows[i].push(token as u32);
            if requests[i].stop == Some(token as u32) {
                out[i].stopped = true;
                done[i] = true;
            } else if out[i].tokens.len() == max_new[i] {
                done[i] = true;
            }
        }
        let finished = active.iter().filter(|&&i| done[i]).count();
        if finished == active.len() || step + 1 == steps {
            break;
        }
        // The reference without the cache keeps every row: it checks the compaction too.
        if use_cache && finished * 4 >= active.len() {
            let kept: Vec<u32> = (0..active.len() as u32).filter(|&r| !done[active[r as usize]]).collect();
            cache.retain(&Tensor::new(kept.as_slice(), dev)?)?;
            active.retain(|&i| !done[i]);
        }
        let t = longest + step + 1;
        let logits = if use_cache {
            model.forward_with(
                &matrix(&rows, &active, t - 1)?,
                &positions_for(&active, t - 1, 1)?,
                &model.step_mask(t, &pads_of(&active))?,
                Some(&mut cache),
                None,
            )?
        } else {
            model.forward_with(
                &matrix(&rows, &active, 0)?,
                &positions_for(&active, 0, t)?,
                &model.causal_mask(t, &pads_of(&active))?,
                None,
                None,
            )?
        };
        last = Gpt::last_logits(&logits)?.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelConfig, Positions};
    use candle_core::Device;
    use rand::SeedableRng;

    fn tiny_with(positions: Positions) -> Gpt {
        let cfg =
            ModelConfig { vocab: 13, d_model: 16, layers: 2, heads: 2, context: 24, dropout: 0.0, positions };
        Gpt::new(&cfg, 3, DType::F32, &Device::Cpu).unwrap()
    }

    fn tiny() -> Gpt {
        tiny_with(Positions::Learned)
    }

    fn requests() -> Vec<Request> {
        vec![
            Request { prompt: vec![1, 5, 6, 7], max_new: 9, stop: Some(2) },
            Request { prompt: vec![1, 8], max_new: 12, stop: None },
            Request { prompt: vec![1, 9, 10, 11, 12, 3, 4], max_new: 5, stop: Some(4) },
        ]
    }

    /// Ten sequences that stop at different steps: finished ones leave the batch several times.
    fn staggered() -> Vec<Request> {
        (0..10)
            .map(|i| Request {
                prompt: (0..1 + i % 4).map(|j| 1 + (i + j) as u32 % 12).collect(),
                max_new: 1 + (i * 7) % 13,
                stop: (i % 3 == 0).then_some(2 + i as u32 % 5),
            })
            .collect()
    }

    #[test]
    fn cache_and_recompute_agree_and_batching_changes_nothing() {
        for positions in [Positions::Learned, Positions::Rotary] {
            cache_and_recompute_agree(&tiny_with(positions), &requests());
            cache_and_recompute_agree(&tiny_with(positions), &staggered());
        }
    }

    fn cache_and_recompute_agree(model: &Gpt, requests: &[Request]) {
        for cfg in
            [SampleConfig::greedy(), SampleConfig { temperature: 1.0, top_k: Some(5), top_p: Some(0.9) }]
        {
            let cached = sample(model, requests, &cfg, &mut ChaCha8Rng::seed_from_u64(1), true).unwrap();
            let recomputed = sample(model, requests, &cfg, &mut ChaCha8Rng::seed_from_u64(1), false).unwrap();
            for (c, r) in cached.iter().zip(&recomputed) {
                assert_eq!(c.tokens, r.tokens);
                for (a, b) in c.logprobs.iter().zip(&r.logprobs) {
                    assert!((a - b).abs() < 1e-4, "{a} vs {b}");
                }
            }
            if cfg.temperature == 0.0 {
                // Greedy: each sequence alone gives what it gets in the padded batch.
                for (i, req) in requests.iter().cloned().enumerate() {
                    let alone = sample(model, &[req], &cfg, &mut ChaCha8Rng::seed_from_u64(1), true).unwrap();
                    assert_eq!(alone[0].tokens, cached[i].tokens, "sequence {i}");
                }
            }
        }
    }

    #[test]
    fn limits_and_stop_tokens_are_per_sequence() {
        let model = tiny();
        let out =
            sample(&model, &requests(), &SampleConfig::default(), &mut ChaCha8Rng::seed_from_u64(5), true)
                .unwrap();
        for (o, r) in out.iter().zip(requests()) {
            assert!(o.tokens.len() <= r.max_new);
            assert_eq!(o.tokens.len(), o.logprobs.len());
            assert!(o.logprobs.iter().all(|&l| l <= 0.0 && l.is_finite()));
            let stop_at = o.tokens.iter().position(|&t| Some(t) == r.stop);
            assert_eq!(o.stopped, stop_at.is_some());
            if let Some(at) = stop_at {
                assert_eq!(at, o.tokens.len() - 1, "nothing after the stop token");
            } else {
                assert_eq!(o.tokens.len(), r.max_new);
            }
        }
        // Context caps the length: 24 - 7 = 17 for the longest prompt.
        let long = vec![Request { prompt: vec![1; 7], max_new: 100, stop: None }];
        let out =
            sample(&model, &long, &SampleConfig::default(), &mut ChaCha8Rng::seed_from_u64(0), true).unwrap();
        assert_eq!(out[0].tokens.len(), 17);
        let too_long = vec![Request { prompt: vec![1; 25], max_new: 1, stop: None }];
        assert!(sample(&model, &too_long, &SampleConfig::default(), &mut ChaCha8Rng::seed_from_u64(0), true)
            .is_err());
    }

    #[test]
    fn seeded_sampling_is_reproducible() {
        let model = tiny();
        let run = |seed| {
            sample(&model, &requests(), &SampleConfig::default(), &mut ChaCha8Rng::seed_from_u64(seed), true)
                .unwrap()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

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
