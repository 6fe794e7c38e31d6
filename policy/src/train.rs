//! Log-probabilities of completions and the losses that train on them.
//!
//! A [`Batch`] is a set of token sequences, each a prompt followed by a completion. Only
//! completion tokens are scored: the prompt is context, not something the policy chose.
//!
//! * [`cross_entropy`]: masked next-token cross-entropy, for supervised warm start.
//! * [`group_advantages`]: GRPO-style advantages, rewards centred on their group's mean and
//!   optionally divided by its standard deviation; [`keyed_advantages`] for groups named by a key.
//!
//! The clipped policy-gradient objective and update built on them are in [`crate::ppo`].

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, D};

use crate::model::{Dropout, Gpt};

/// Sequences to score, right-padded into one tensor.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[B, T]` token ids, padded with `pad`.
    pub tokens: Tensor,
    /// `[B, T-1]`: 1 where position `i` predicts a completion token `i+1`, else 0.
    pub mask: Tensor,
    /// Completion tokens per sequence.
    pub lengths: Vec<usize>,
    /// The constant Dr. GRPO divides each sequence's token sum by: the batch's longest completion,
    /// or the longest of a whole update when this batch is one part of it.
    pub longest: usize,
}

impl Batch {
    /// Builds a batch from `(prompt, completion)` pairs.
    pub fn new(model: &Gpt, pairs: &[(Vec<u32>, Vec<u32>)], pad: u32) -> Result<Batch> {
        let t = pairs.iter().map(|(p, c)| p.len() + c.len()).max().unwrap_or(0);
        if t < 2 {
            candle_core::bail!("a batch needs a sequence of at least two tokens");
        }
        if t > model.config().context {
            candle_core::bail!("a sequence of {t} tokens exceeds the context of {}", model.config().context);
        }
        let b = pairs.len();
        let mut tokens = vec![pad; b * t];
        let mut mask = vec![0f32; b * (t - 1)];
        for (i, (p, c)) in pairs.iter().enumerate() {
            if p.is_empty() {
                candle_core::bail!("sequence {i} has an empty prompt");
            }
            let seq = [p.as_slice(), c.as_slice()].concat();
            tokens[i * t..i * t + seq.len()].copy_from_slice(&seq);
            // Position j predicts token j+1; completion tokens are p.len()..seq.len().
            for j in p.len() - 1..seq.len() - 1 {
                mask[i * (t - 1) + j] = 1.0;
            }
        }
        let dev = model.device();
        Ok(Batch {
            tokens: Tensor::from_vec(tokens, (b, t), dev)?,
            mask: Tensor::from_vec(mask, (b, t - 1), dev)?.to_dtype(model.dtype())?,
            lengths: pairs.iter().map(|(_, c)| c.len()).collect(),
            longest: pairs.iter().map(|(_, c)| c.len()).max().unwrap_or(0).max(1),
        })
    }
}

/// `[B, T-1]` log-probability of each next token under `model` (all positions; use the mask).
pub fn token_logprobs(model: &Gpt, batch: &Batch, dropout: Option<Dropout>) -> Result<Tensor> {
    of_next_tokens(&next_token_log_softmax(&model.forward(&batch.tokens, dropout)?)?, batch)
}

/// [`token_logprobs`], differentiable, and, `[B, T-1]`, the entropy in nats of each next-token
/// distribution, `−Σ_v p(v) log p(v)` (detached: a diagnostic, not part of any loss), from one
/// forward pass: a policy-gradient step's first epoch reads the sampling policy's statistics off
/// the pass it trains through.
pub(crate) fn token_logprobs_with_entropy(model: &Gpt, batch: &Batch) -> Result<(Tensor, Tensor)> {
    let logp = next_token_log_softmax(&model.forward(&batch.tokens, None)?)?;
    let detached = logp.detach();
    let entropy = (detached.exp()? * &detached)?.sum(D::Minus1)?.neg()?;
    Ok((of_next_tokens(&logp, batch)?, entropy))
}

/// `[B, T-1, V]`: the log-distribution of the token after each position but the last, from
/// `[B, T, V]` logits.
fn next_token_log_softmax(logits: &Tensor) -> Result<Tensor> {
    let t = logits.dim(1)?;
    candle_nn::ops::log_softmax(&logits.narrow(1, 0, t - 1)?, D::Minus1)
}

/// `[B, T-1]`: of each position's log-distribution, the entry of the batch's next token.
fn of_next_tokens(logp: &Tensor, batch: &Batch) -> Result<Tensor> {
    let next = logp.dim(1)?;
    let targets = batch.tokens.narrow(1, 1, next)?.contiguous()?.unsqueeze(D::Minus1)?;
    logp.gather(&targets, D::Minus1)?.squeeze(D::Minus1)
}

/// Mean of `x` `[B, T-1]` over the batch's completion positions (where its mask is 1: as many as
/// its completion tokens, so the count needs no read-back from the device).
pub(crate) fn masked_mean(x: &Tensor, batch: &Batch) -> Result<Tensor> {
    let n = batch.lengths.iter().sum::<usize>() as f64;
    (x * &batch.mask)?.sum_all()? / n.max(1.0)
}

/// The gradient of `Σ loss(part)` over `parts` for `vars`, and their gradients summed in the
/// parts' order: what one backward pass over the sum gives, up to rounding, and the same from run
/// to run. On the CPU each part's forward and backward pass run side by side on the thread pool;
/// on any other device one after the other, on the calling thread.
///
/// Much of a training step on the CPU is not matrix products but candle's bookkeeping around
/// them — allocations, zero-filled gradients, copies — on one thread; parts in parallel spread
/// that over the cores as well. A GPU queues kernels on one stream per host thread, and nothing
/// would order a worker's backward kernels against the thread that sums the gradients and steps
/// the optimizer: there the parts run in order, and their kernels queue on one stream.
///
/// Returns the summed loss as a scalar tensor (read back by the caller, together with whatever
/// else the step reads: [`crate::optim::AdamW::step_with_stats`]), the gradients, and what `loss`
/// returned besides each part's loss.
pub fn grads_in_parallel<P: Sync, S: Send>(
    vars: &[candle_core::Var],
    parts: &[P],
    loss: impl Fn(&P) -> Result<(Tensor, S)> + Sync,
) -> Result<(Tensor, GradStore, Vec<S>)> {
    use rayon::prelude::*;
    let one = |p: &P| -> Result<(Tensor, GradStore, S)> {
        let (l, extra) = loss(p)?;
        let grads = l.backward()?;
        Ok((l.detach(), grads, extra))
    };
    let on_cpu = vars.first().is_none_or(|v| v.device().is_cpu());
    let done: Vec<(Tensor, GradStore, S)> = if on_cpu {
        parts.par_iter().map(one).collect::<Result<_>>()?
    } else {
        parts.iter().map(one).collect::<Result<_>>()?
    };
    let mut done = done.into_iter();
    let (first_loss, mut grads, first) =
        done.next().ok_or_else(|| candle_core::Error::Msg("no parts to differentiate".into()))?;
    let mut losses = vec![first_loss];
    let mut extras = vec![first];
    for (l, g, extra) in done {
        losses.push(l);
        for v in vars {
            let sum = match (grads.get(v.as_tensor()), g.get(v.as_tensor())) {
                (Some(a), Some(b)) => (a + b)?,
                (None, Some(b)) => b.clone(),
                (_, None) => continue,
            };
            grads.insert(v.as_tensor(), sum);
        }
        extras.push(extra);
    }
    Ok((sum_in_f64(&losses)?, grads, extras))
}

/// `Σ xs` of scalar tensors, added in `f64` in their order, as a scalar `f64` tensor.
fn sum_in_f64(xs: &[Tensor]) -> Result<Tensor> {
    let wide = xs.iter().map(|x| x.to_dtype(DType::F64)?.reshape(1)).collect::<Result<Vec<_>>>()?;
    if wide.len() == 1 {
        return wide[0].reshape(());
    }
    // One element at a time, in order: `sum_all` would add in its own order, and the CPU's
    // figures would move in the last bits against the sum of the parts as read before.
    let mut total = wide[0].clone();
    for x in &wide[1..] {
        total = (total + x)?;
    }
    total.reshape(())
}

/// Sequences per part when [`cross_entropy_grads`] splits a batch: a fixed count, not one part
/// per core, so that a run's numbers do not depend on the machine's core count.
pub const SUPERVISED_PART: usize = 16;

/// Masked next-token cross-entropy over `pairs` and its gradient for `vars`, the pairs split in
/// parts of [`SUPERVISED_PART`] run by [`grads_in_parallel`]: the loss is the mean over every
/// completion token of the whole batch, as [`cross_entropy`] of one batch of them all.
pub fn cross_entropy_grads(
    model: &Gpt,
    vars: &[candle_core::Var],
    pairs: &[(Vec<u32>, Vec<u32>)],
    pad: u32,
) -> Result<(Tensor, GradStore)> {
    let tokens = pairs.iter().map(|(_, c)| c.len()).sum::<usize>().max(1) as f64;
    let parts: Vec<&[(Vec<u32>, Vec<u32>)]> = pairs.chunks(SUPERVISED_PART).collect();
    let (loss, grads, _) = grads_in_parallel(vars, &parts, |part| {
        let batch = Batch::new(model, part, pad)?;
        let share = batch.lengths.iter().sum::<usize>() as f64 / tokens;
        Ok(((cross_entropy(model, &batch, None)? * share)?, ()))
    })?;
    Ok((loss, grads))
}

/// Masked next-token cross-entropy (mean over completion tokens).
pub fn cross_entropy(model: &Gpt, batch: &Batch, dropout: Option<Dropout>) -> Result<Tensor> {
    masked_mean(&token_logprobs(model, batch, dropout)?, batch)?.neg()
}

/// Group-relative advantages: each reward minus its group's mean, divided by the group's standard
/// deviation (plus `1e-6`) when `normalize_std`. Rewards come in consecutive groups of `group`.
pub fn group_advantages(rewards: &[f32], group: usize, normalize_std: bool) -> Vec<f32> {
    assert!(group > 0 && rewards.len().is_multiple_of(group), "rewards must come in whole groups");
    rewards
        .chunks(group)
        .flat_map(|g| {
            let n = g.len() as f32;
            let mean = g.iter().sum::<f32>() / n;
            let std = (g.iter().map(|r| (r - mean).powi(2)).sum::<f32>() / n).sqrt();
            g.iter().map(move |r| if normalize_std { (r - mean) / (std + 1e-6) } else { r - mean })
        })
        .collect()
}

/// Advantages centred within the groups `keys` name (samples with equal keys, anywhere in the
/// batch), scaled, when `normalize_std`, by one standard deviation pooled over the whole batch:
/// the root mean square of every reward's distance to its group's mean (plus `1e-6`).
///
/// For samples whose prompts differ in something the policy cannot choose (the proposer's
/// difficulty target): the mean of its group is the baseline of what that prompt earns, so a
/// sample is credited only for beating what others did with the same prompt. The pooled scale
/// keeps small groups (a few samples) from having their differences blown up to unit size. With
/// one key throughout this is [`group_advantages`] over the whole batch.
pub fn keyed_advantages<K: Eq + std::hash::Hash>(
    rewards: &[f32],
    keys: &[K],
    normalize_std: bool,
) -> Vec<f32> {
    assert_eq!(rewards.len(), keys.len(), "one key per reward");
    let mut groups: std::collections::HashMap<&K, (f32, usize)> = std::collections::HashMap::new();
    for (r, k) in rewards.iter().zip(keys) {
        let g = groups.entry(k).or_default();
        g.0 += r;
        g.1 += 1;
    }
    let centred: Vec<f32> = rewards
        .iter()
        .zip(keys)
        .map(|(r, k)| {
            let (sum, n) = groups[k];
            r - sum / n as f32
        })
        .collect();
    if !normalize_std || centred.is_empty() {
        return centred;
    }
    let std = (centred.iter().map(|c| c.powi(2)).sum::<f32>() / centred.len() as f32).sqrt();
    centred.into_iter().map(|c| c / (std + 1e-6)).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{ModelConfig, Positions};
    use crate::ops::tests::{assert_close, numeric_grad};
    use candle_core::Device;

    pub(crate) fn tiny_with(dtype: DType, positions: Positions) -> Gpt {
        let cfg =
            ModelConfig { vocab: 11, d_model: 8, layers: 2, heads: 2, context: 12, dropout: 0.0, positions };
        Gpt::new(&cfg, 9, dtype, &Device::Cpu).unwrap()
    }

    pub(crate) fn tiny(dtype: DType) -> Gpt {
        tiny_with(dtype, Positions::Learned)
    }

    #[test]
    fn entropy_is_that_of_each_next_token_distribution() {
        let model = tiny(DType::F64);
        let batch = Batch::new(&model, &pairs(), 0).unwrap();
        let (logp, entropy) = token_logprobs_with_entropy(&model, &batch).unwrap();
        let want = token_logprobs(&model, &batch, None).unwrap();
        assert_eq!(logp.to_vec2::<f64>().unwrap(), want.to_vec2::<f64>().unwrap());
        // Against −Σ p log p from the model's own softmax, position by position.
        let logits = model.forward(&batch.tokens, None).unwrap();
        let probs: Vec<Vec<Vec<f64>>> =
            candle_nn::ops::softmax(&logits, D::Minus1).unwrap().to_vec3().unwrap();
        let got: Vec<Vec<f64>> = entropy.to_vec2().unwrap();
        let ln_vocab = (model.config().vocab as f64).ln();
        for (b, row) in got.iter().enumerate() {
            for (t, &h) in row.iter().enumerate() {
                let direct: f64 = probs[b][t].iter().map(|&p| -p * p.ln()).sum();
                assert!((h - direct).abs() < 1e-12, "[{b}, {t}]: {h} vs {direct}");
                assert!(h > 0.0 && h <= ln_vocab + 1e-12, "{h}");
            }
        }
    }

    #[test]
    fn parts_in_parallel_give_the_whole_batchs_loss_and_gradient() {
        // 40 sequences of 2 to 11 tokens: three parts of SUPERVISED_PART, each padded to its own
        // longest sequence, against one batch padded to the longest of all.
        let pairs: Vec<(Vec<u32>, Vec<u32>)> = (0..40u32)
            .map(|i| {
                let prompt: Vec<u32> = (0..1 + i % 3).map(|j| (i + j) % 11).collect();
                let completion: Vec<u32> = (0..1 + (i * 7) % 8).map(|j| (i * 3 + j) % 11).collect();
                (prompt, completion)
            })
            .collect();
        assert!(pairs.len() > 2 * SUPERVISED_PART);
        for positions in [Positions::Learned, Positions::Rotary] {
            let model = tiny_with(DType::F64, positions);
            let vars: Vec<_> = model.named_vars().into_iter().map(|(_, v)| v).collect();
            let whole = cross_entropy(&model, &Batch::new(&model, &pairs, 0).unwrap(), None).unwrap();
            let expected = whole.backward().unwrap();
            let (loss, grads) = cross_entropy_grads(&model, &vars, &pairs, 0).unwrap();
            let loss = loss.to_scalar::<f64>().unwrap();
            assert!((loss - whole.to_scalar::<f64>().unwrap()).abs() < 1e-12);
            for (name, v) in model.named_vars() {
                let (a, b) = (grads.get(v.as_tensor()).unwrap(), expected.get(v.as_tensor()).unwrap());
                let diff: f64 = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
                assert!(diff < 1e-12, "{name}: {diff}");
            }
        }
    }

    #[test]
    fn fused_causal_attention_gives_the_general_paths_logits() {
        // `forward` (training and scoring) takes the fused attention; sampling takes the general
        // path with an additive mask. Both must give one model.
        let tokens = Tensor::new(&[[1u32, 4, 5, 6, 4, 2], [3, 3, 7, 1, 0, 0]], &Device::Cpu).unwrap();
        for positions in [Positions::Learned, Positions::Rotary] {
            let model = tiny_with(DType::F64, positions);
            let fused = model.forward(&tokens, None).unwrap();
            let general = model.forward_unfused(&tokens).unwrap();
            let diff: f64 = (fused - general).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
            assert!(diff < 1e-12, "{positions:?}: {diff}");
        }
    }

    #[test]
    fn rotary_attention_sees_relative_positions_only() {
        let dev = Device::Cpu;
        let tokens = Tensor::new(&[[1u32, 4, 5, 6, 4]], &dev).unwrap();
        for positions in [Positions::Learned, Positions::Rotary] {
            let model = tiny_with(DType::F64, positions);
            let mask = model.causal_mask(5, &[]).unwrap();
            let at = |start: u32| {
                let pos = Tensor::arange(start, start + 5, &dev).unwrap().unsqueeze(0).unwrap();
                model.forward_with(&tokens, &pos, &mask, None, None).unwrap()
            };
            let moved: f64 = (at(0) - at(6)).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
            match positions {
                // The same tokens further along give the same logits.
                Positions::Rotary => assert!(moved < 1e-9, "{moved}"),
                Positions::Learned => assert!(moved > 1e-6, "{moved}"),
            }
        }
    }

    pub(crate) fn pairs() -> Vec<(Vec<u32>, Vec<u32>)> {
        vec![(vec![1, 4, 5], vec![6, 7, 2]), (vec![1, 9], vec![3, 3, 8, 10, 2]), (vec![1, 6, 6, 6], vec![2])]
    }

    #[test]
    fn the_mask_covers_completions_only() {
        let model = tiny(DType::F32);
        let batch = Batch::new(&model, &pairs(), 0).unwrap();
        let mask: Vec<Vec<f32>> = batch.mask.to_vec2().unwrap();
        assert_eq!(mask[0], vec![0., 0., 1., 1., 1., 0.]);
        assert_eq!(mask[1], vec![0., 1., 1., 1., 1., 1.]);
        assert_eq!(mask[2], vec![0., 0., 0., 1., 0., 0.]);
    }

    #[test]
    fn logprobs_agree_with_sampling() {
        use crate::sample::{sample, Request, SampleConfig};
        use rand::SeedableRng;
        let model = tiny(DType::F32);
        let reqs: Vec<Request> =
            pairs().into_iter().map(|(p, _)| Request { prompt: p, max_new: 6, stop: Some(2) }).collect();
        let out = sample(
            &model,
            &reqs,
            &SampleConfig::default(),
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(2),
            true,
        )
        .unwrap();
        let sampled: Vec<(Vec<u32>, Vec<u32>)> =
            reqs.iter().zip(&out).map(|(r, o)| (r.prompt.clone(), o.tokens.clone())).collect();
        let batch = Batch::new(&model, &sampled, 0).unwrap();
        let lp: Vec<Vec<f32>> = token_logprobs(&model, &batch, None).unwrap().to_vec2().unwrap();
        for (i, (r, o)) in reqs.iter().zip(&out).enumerate() {
            for (j, want) in o.logprobs.iter().enumerate() {
                let got = lp[i][r.prompt.len() - 1 + j];
                assert!((got - want).abs() < 1e-4, "seq {i} token {j}: {got} vs {want}");
            }
        }
    }

    /// The whole model's gradient, through embeddings, attention, fused ops and the tied head,
    /// against central differences in f64, for a sample of parameters of every tensor.
    #[test]
    fn model_gradients_match_finite_differences() {
        for positions in [Positions::Learned, Positions::Rotary] {
            model_gradients_match(&tiny_with(DType::F64, positions));
        }
    }

    fn model_gradients_match(model: &Gpt) {
        let batch = Batch::new(model, &pairs(), 0).unwrap();
        let loss = || cross_entropy(model, &batch, None).unwrap();
        let grads = loss().backward().unwrap();
        for (name, var) in model.named_vars() {
            let analytic: Vec<f64> =
                grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let original = var.as_tensor().copy().unwrap();
            let n = original.elem_count();
            // Up to 6 entries of each tensor, spread over it.
            let picks: Vec<usize> = (0..6).map(|k| k * n / 6).collect();
            let numeric: Vec<f64> = picks
                .iter()
                .map(|&i| {
                    let f = |x: &Tensor| -> candle_core::Result<f64> {
                        var.set(x)?;
                        loss().to_scalar()
                    };
                    let flat: Vec<f64> = original.flatten_all().unwrap().to_vec1().unwrap();
                    let one = Tensor::from_vec(vec![flat[i]], 1, &Device::Cpu).unwrap();
                    let g = numeric_grad(&one, &|v| {
                        let mut w = flat.clone();
                        w[i] = v.to_vec1::<f64>()?[0];
                        f(&Tensor::from_vec(w, original.shape(), &Device::Cpu)?)
                    })
                    .unwrap()[0];
                    var.set(&original).unwrap();
                    g
                })
                .collect();
            let analytic: Vec<f64> = picks.iter().map(|&i| analytic[i]).collect();
            assert_close(&analytic, &numeric, 1e-5, &name);
        }
    }

    #[test]
    fn supervised_loss_falls() {
        use crate::optim::{AdamW, OptimConfig};
        let model = tiny(DType::F32);
        let batch = Batch::new(&model, &pairs(), 0).unwrap();
        let cfg = OptimConfig { lr: 1e-2, warmup_steps: 5, decay_steps: 100, ..Default::default() };
        let mut opt = AdamW::new(model.named_vars(), cfg).unwrap();
        let first = cross_entropy(&model, &batch, None).unwrap().to_scalar::<f32>().unwrap();
        for _ in 0..80 {
            opt.backward_step(&cross_entropy(&model, &batch, None).unwrap()).unwrap();
        }
        let last = cross_entropy(&model, &batch, None).unwrap().to_scalar::<f32>().unwrap();
        assert!(first > 2.0 && last < 0.1 * first, "{first} -> {last}");
    }

    #[test]
    fn keyed_advantages_centre_on_their_group_and_share_one_scale() {
        // Two groups interleaved: A = {1, 3}, B = {-1, 0, -2}.
        let rewards = [1.0, -1.0, 3.0, 0.0, -2.0];
        let keys = ['a', 'b', 'a', 'b', 'b'];
        let centred = keyed_advantages(&rewards, &keys, false);
        assert_eq!(centred, vec![-1.0, 0.0, 1.0, 1.0, -1.0]);
        // Pooled: sqrt((1 + 0 + 1 + 1 + 1) / 5).
        let scaled = keyed_advantages(&rewards, &keys, true);
        let std = (4.0f32 / 5.0).sqrt();
        for (s, c) in scaled.iter().zip(&centred) {
            assert!((s - c / std).abs() < 1e-5, "{scaled:?}");
        }
        // A sample alone in its group has nothing to beat; identical rewards give nothing.
        assert_eq!(keyed_advantages(&[5.0, 1.0, 1.0], &[0, 1, 1], true), vec![0.0, 0.0, 0.0]);
        // The best of a group with low rewards gains although it is below the batch's mean.
        let a = keyed_advantages(&[0.0, -0.5, -0.5, 0.8, 0.6], &[1, 1, 1, 2, 2], true);
        assert!(a[0] > 0.0 && a[1] < 0.0 && a[3] > 0.0 && a[4] < 0.0, "{a:?}");
        assert!(group_advantages(&[0.0, -0.5, -0.5, 0.8, 0.6], 5, true)[0] < 0.0);
        // One key throughout: the whole batch is one group, bit for bit.
        let rewards = [0.3, -1.0, 0.25, 0.0, 0.7, -0.4];
        for std in [false, true] {
            assert_eq!(keyed_advantages(&rewards, &[(); 6], std), group_advantages(&rewards, 6, std));
        }
    }

    #[test]
    fn advantages_are_group_relative() {
        let a = group_advantages(&[1.0, 0.0, 0.0, 1.0, 5.0, 5.0, 5.0, 5.0], 4, false);
        assert_eq!(a, vec![0.5, -0.5, -0.5, 0.5, 0.0, 0.0, 0.0, 0.0]);
        let a = group_advantages(&[1.0, 0.0, 0.0, 1.0], 4, true);
        for v in a {
            assert!((v.abs() - 1.0).abs() < 1e-4);
        }
    }
}
