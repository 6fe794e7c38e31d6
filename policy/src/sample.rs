//! Sampling a batch of requests: the CPU decoder, or candle's graph (token choice: `choice`).
//!
//! Every request draws from its own random stream (stream `i` of one seed), so its tokens do not
//! depend on the requests beside it. On the CPU, an `f32` model samples through the graph-free
//! decoder (`crate::decode`), continuously batched. Elsewhere it goes through candle's graph: the
//! prompts are left-padded to the longest; padding keys are masked and positions count from each
//! prompt's own start, so every sequence sees exactly what it would see alone. The prompt is read
//! in one forward pass that fills the cache; each further step feeds one token per sequence.
//! Sequences stop at their stop token or their own length limit (the context less their prompt),
//! and leave the batch (and the cache) once a quarter of those still in it have stopped.
//!
//! Returned log-probabilities are those of the model itself (temperature 1, no truncation), the
//! same numbers [`crate::train::token_logprobs`] computes for the same tokens: what a policy-
//! gradient update needs as the behaviour policy's log-probs when sampling at temperature 1.

use candle_core::{DType, Result, Tensor};
use rand::RngCore;
use rand_chacha::ChaCha8Rng;

pub use crate::choice::{distribution, logprob_of, sample_token, Request, SampleConfig, Sampled};
use crate::decode::{self, Job};
use crate::model::{Gpt, KvCache};

/// How [`sample_jobs`] computes: the CPU decoder, or candle's graph with a KV cache (any
/// device), or candle's graph recomputing the whole prefix every step (the slow reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    Decoder,
    Cached,
    Recomputed,
}

/// Continues every request, each drawing from its own random stream seeded by one draw from
/// `rng`: a request's tokens do not depend on the others in the call. With `use_cache` false,
/// every step recomputes the whole prefix (the slow reference the fast paths are tested against).
pub fn sample(
    model: &Gpt,
    requests: &[Request],
    cfg: &SampleConfig,
    rng: &mut ChaCha8Rng,
    use_cache: bool,
) -> Result<Vec<Sampled>> {
    let jobs = jobs(requests, cfg, rng.next_u64());
    let path = match (use_cache, decode::serves(model)) {
        (false, _) => Path::Recomputed,
        (true, true) => Path::Decoder,
        (true, false) => Path::Cached,
    };
    sample_jobs(model, &jobs, path)
}

/// The jobs [`sample`] runs: request `i` on stream `i` of `seed`.
pub(crate) fn jobs<'a>(requests: &'a [Request], cfg: &SampleConfig, seed: u64) -> Vec<Job<'a>> {
    requests
        .iter()
        .enumerate()
        .map(|(i, request)| Job { request, sampling: *cfg, seed, stream: i as u64 })
        .collect()
}

/// Continues every job along `path`; the result is in the jobs' order.
pub(crate) fn sample_jobs(model: &Gpt, jobs: &[Job], path: Path) -> Result<Vec<Sampled>> {
    let context = model.config().context;
    for (i, job) in jobs.iter().enumerate() {
        let len = job.request.prompt.len();
        if len == 0 {
            candle_core::bail!("request {i}: every prompt needs at least one token");
        }
        if len > context {
            candle_core::bail!("request {i}: a prompt of {len} tokens exceeds the context of {context}");
        }
        let vocab = model.config().vocab;
        if let Some(t) = job.request.prompt.iter().find(|&&t| t as usize >= vocab) {
            candle_core::bail!("request {i}: token {t} is outside the vocabulary of {vocab}");
        }
    }
    match path {
        Path::Decoder => decode::run(model, jobs),
        Path::Cached => padded_batch(model, jobs, true),
        Path::Recomputed => padded_batch(model, jobs, false),
    }
}

/// Sampling through candle's graph: the prompts left-padded to the longest, one token per
/// sequence a step. The path of every device but the CPU, and the reference.
fn padded_batch(model: &Gpt, jobs: &[Job], use_cache: bool) -> Result<Vec<Sampled>> {
    let b = jobs.len();
    if b == 0 {
        return Ok(Vec::new());
    }
    let requests: Vec<&Request> = jobs.iter().map(|j| j.request).collect();
    let mut rngs: Vec<ChaCha8Rng> = jobs.iter().map(Job::rng).collect();
    let context = model.config().context;
    let longest = requests.iter().map(|r| r.prompt.len()).max().unwrap_or(0);
    let pads: Vec<usize> = requests.iter().map(|r| longest - r.prompt.len()).collect();
    // Positions count from each sequence's own start, so each may fill the context.
    let max_new: Vec<usize> = requests.iter().map(|r| r.max_new.min(context - r.prompt.len())).collect();
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
            let token = sample_token(&last[r], &jobs[i].sampling, &mut rngs[i]);
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
    fn every_path_agrees_with_the_recomputed_reference() {
        for positions in [Positions::Learned, Positions::Rotary] {
            paths_agree(&tiny_with(positions), &requests());
            paths_agree(&tiny_with(positions), &staggered());
        }
    }

    fn paths_agree(model: &Gpt, requests: &[Request]) {
        for cfg in
            [SampleConfig::greedy(), SampleConfig { temperature: 1.0, top_k: Some(5), top_p: Some(0.9) }]
        {
            let jobs = jobs(requests, &cfg, 11);
            let reference = sample_jobs(model, &jobs, Path::Recomputed).unwrap();
            for path in [Path::Decoder, Path::Cached] {
                let out = sample_jobs(model, &jobs, path).unwrap();
                for (c, r) in out.iter().zip(&reference) {
                    assert_eq!(c.tokens, r.tokens, "{path:?}");
                    assert_eq!(c.stopped, r.stopped, "{path:?}");
                    for (a, b) in c.logprobs.iter().zip(&r.logprobs) {
                        assert!((a - b).abs() < 1e-4, "{path:?}: {a} vs {b}");
                    }
                }
            }
        }
    }

    /// The decoder's batches depend on timing; its results may not: a request sampled alone, in
    /// any batch, on one thread or two, gives the same bits.
    #[test]
    fn a_request_samples_the_same_bits_in_any_batch_on_any_threads() {
        let model = tiny_with(Positions::Rotary);
        let all = staggered();
        let cfg = SampleConfig::default();
        let on = |threads: usize, jobs: &[Job]| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| sample_jobs(&model, jobs, Path::Decoder).unwrap())
        };
        let together = on(2, &jobs(&all, &cfg, 11));
        assert_eq!(on(1, &jobs(&all, &cfg, 11)), together);
        for (i, job) in jobs(&all, &cfg, 11).into_iter().enumerate() {
            assert_eq!(on(1, &[job]), vec![together[i].clone()], "request {i}");
        }
        // More requests than a worker has slots: slots are refilled as sequences end.
        let many: Vec<Request> = (0..3 * decode::MAX_SLOTS).map(|i| all[i % all.len()].clone()).collect();
        let out = on(2, &jobs(&many, &cfg, 11));
        for (i, s) in out.iter().enumerate() {
            let alone = on(1, &[Job { request: &many[i], sampling: cfg, seed: 11, stream: i as u64 }]);
            assert_eq!(&alone[0], s, "request {i}");
        }
    }

    /// What sampling reports as a token's log-probability is what training computes for it: the
    /// behaviour policy's log-probs of a policy-gradient update.
    #[test]
    fn sampled_logprobs_are_the_models() {
        for positions in [Positions::Learned, Positions::Rotary] {
            let model = tiny_with(positions);
            let reqs = staggered();
            let out =
                sample(&model, &reqs, &SampleConfig::default(), &mut ChaCha8Rng::seed_from_u64(3), true)
                    .unwrap();
            let pairs: Vec<(Vec<u32>, Vec<u32>)> =
                reqs.iter().zip(&out).map(|(r, s)| (r.prompt.clone(), s.tokens.clone())).collect();
            let batch = crate::train::Batch::new(&model, &pairs, 0).unwrap();
            let lp: Vec<Vec<f32>> =
                crate::train::token_logprobs(&model, &batch, None).unwrap().to_vec2().unwrap();
            for (i, ((prompt, _), s)) in pairs.iter().zip(&out).enumerate() {
                for (j, &got) in s.logprobs.iter().enumerate() {
                    let want = lp[i][prompt.len() - 1 + j];
                    assert!(
                        (got - want).abs() < 1e-4,
                        "{positions:?} sequence {i} token {j}: {got} vs {want}"
                    );
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
        let unknown = vec![Request { prompt: vec![1, 13], max_new: 1, stop: None }];
        let err = sample(&model, &unknown, &SampleConfig::default(), &mut ChaCha8Rng::seed_from_u64(0), true)
            .unwrap_err();
        assert!(err.to_string().contains("token 13 is outside the vocabulary of 13"), "{err}");
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
}
