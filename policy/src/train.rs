//! Log-probabilities of completions and the losses that train on them.
//!
//! A [`Batch`] is a set of token sequences, each a prompt followed by a completion. Only
//! completion tokens are scored: the prompt is context, not something the policy chose.
//!
//! * [`cross_entropy`]: masked next-token cross-entropy, for supervised warm start.
//! * [`group_advantages`]: GRPO-style advantages, rewards centred on their group's mean and
//!   optionally divided by its standard deviation; [`keyed_advantages`] for groups named by a key.
//! * [`ppo_loss`]: the clipped-ratio policy-gradient objective, usable for several epochs over one
//!   batch, with an optional KL penalty to a frozen reference model.

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
    let logits = model.forward(&batch.tokens, dropout)?;
    let t = logits.dim(1)?;
    let logp = candle_nn::ops::log_softmax(&logits.narrow(1, 0, t - 1)?, D::Minus1)?;
    let targets = batch.tokens.narrow(1, 1, t - 1)?.contiguous()?.unsqueeze(D::Minus1)?;
    logp.gather(&targets, D::Minus1)?.squeeze(D::Minus1)
}

/// Mean of `x` `[B, T-1]` over the batch's completion positions (where its mask is 1: as many as
/// its completion tokens, so the count needs no read-back from the device).
fn masked_mean(x: &Tensor, batch: &Batch) -> Result<Tensor> {
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
    assert!(group > 0 && rewards.len() % group == 0, "rewards must come in whole groups");
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

/// Settings of the clipped policy-gradient update.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Ratio clip `ε`: the objective ignores ratios beyond `1 ± ε` in the favourable direction.
    pub clip: f64,
    /// Passes over one batch of samples.
    pub epochs: usize,
    /// Weight `β` of the KL penalty to the reference model (0: no reference needed).
    pub kl_coef: f64,
    /// Weight of negative advantages: 1 is the plain policy gradient; 0 learns only from samples
    /// better than their group (rejection-sampling fine-tuning), which never pushes probability
    /// off a sampled token onto tokens nobody sampled.
    pub negative_weight: f64,
    /// How advantages are scaled and tokens averaged.
    pub estimator: Estimator,
}

impl Default for PpoConfig {
    fn default() -> Self {
        PpoConfig { clip: 0.2, epochs: 2, kl_coef: 0.0, negative_weight: 1.0, estimator: Estimator::Grpo }
    }
}

/// The policy-gradient estimator: how a group's advantages are scaled and a sequence's tokens
/// weighed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Estimator {
    /// GRPO: advantages divided by their group's standard deviation; each sequence's objective
    /// is the mean over its tokens.
    #[default]
    Grpo,
    /// Dr. GRPO: advantages only centred; each sequence's objective is the sum over its tokens
    /// divided by one constant (the batch's longest completion). Without the per-sequence mean,
    /// tokens shared by a group's samples (the start of a solution) get advantages that sum to
    /// zero whatever the samples' lengths; without the division by the standard deviation,
    /// problems almost always or never solved do not weigh more than the rest.
    DrGrpo,
}

impl Estimator {
    /// Whether advantages are divided by their group's standard deviation.
    pub fn normalizes_std(self) -> bool {
        self == Estimator::Grpo
    }
}

/// The configuration's spelling: `grpo` or `dr_grpo`.
impl std::str::FromStr for Estimator {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "grpo" => Ok(Estimator::Grpo),
            "dr_grpo" => Ok(Estimator::DrGrpo),
            other => Err(format!("an estimator is grpo or dr_grpo, not {other:?}")),
        }
    }
}

/// What one evaluation of the policy-gradient loss saw, as scalar tensors still on the model's
/// device (read them with [`crate::device::read_scalars`], together with whatever else a step
/// reads).
#[derive(Debug, Clone)]
pub struct PpoStats {
    /// Fraction of completion tokens whose ratio was clipped.
    pub clip_fraction: Tensor,
    /// Mean KL estimate to the reference (0 without one).
    pub kl: Tensor,
}

impl PpoStats {
    /// `(clip_fraction, kl)` read back, in one transfer.
    pub fn read(&self) -> Result<(f64, f64)> {
        let v = crate::device::read_scalars(&[self.clip_fraction.clone(), self.kl.clone()])?;
        Ok((v[0], v[1]))
    }
}

/// The clipped-ratio loss (to minimize):
///
/// ```text
/// r = exp(logp − logp_old)
/// L = −mean_seq mean_tok [ min(r·A, clip(r, 1−ε, 1+ε)·A) − β·KL ]     (GRPO; Dr. GRPO sums the
///                                                                    tokens over a constant)
/// KL = exp(logp_ref − logp) − (logp_ref − logp) − 1      (the k3 estimator, ≥ 0)
/// ```
///
/// `old_logprobs` `[B, T-1]` are the sampling policy's (detached); `advantages` one per sequence,
/// the negative ones scaled by `cfg.negative_weight`; `reference_logprobs` `[B, T-1]` the frozen
/// reference's ([`token_logprobs`] of it: the same for every epoch over a batch, so computed once).
pub fn ppo_loss(
    model: &Gpt,
    batch: &Batch,
    old_logprobs: &Tensor,
    advantages: &[f32],
    reference_logprobs: Option<&Tensor>,
    cfg: &PpoConfig,
) -> Result<(Tensor, PpoStats)> {
    let logp = token_logprobs(model, batch, None)?;
    let (b, _) = logp.dims2()?;
    if advantages.len() != b {
        candle_core::bail!("{} advantages for {b} sequences", advantages.len());
    }
    let weighted: Vec<f32> =
        advantages.iter().map(|&a| if a < 0.0 { a * cfg.negative_weight as f32 } else { a }).collect();
    let adv = Tensor::from_vec(weighted, (b, 1), model.device())?.to_dtype(model.dtype())?;
    let ratio = (&logp - old_logprobs.detach())?.exp()?;
    let surr1 = ratio.broadcast_mul(&adv)?;
    let surr2 = ratio.clamp(1.0 - cfg.clip, 1.0 + cfg.clip)?.broadcast_mul(&adv)?;
    let mut objective = surr1.minimum(&surr2)?;
    let clipped = surr1.ne(&surr2)?.to_dtype(model.dtype())?;
    let mut stats = PpoStats {
        clip_fraction: masked_mean(&clipped, batch)?.detach(),
        kl: Tensor::zeros((), model.dtype(), model.device())?,
    };
    if let (Some(ref_logp), true) = (reference_logprobs, cfg.kl_coef > 0.0) {
        let diff = (ref_logp.detach() - &logp)?;
        let kl = ((diff.exp()? - &diff)? - 1.0)?;
        stats.kl = masked_mean(&kl, batch)?.detach();
        objective = (objective - (kl * cfg.kl_coef)?)?;
    }
    // Per sequence: the mean over its completion tokens (GRPO) or their sum over the longest
    // completion (Dr. GRPO); then the mean over sequences.
    let per_seq = (objective * &batch.mask)?.sum(D::Minus1)?;
    let longest = batch.longest.max(1);
    let lengths: Vec<f32> = batch
        .lengths
        .iter()
        .map(|&l| match cfg.estimator {
            Estimator::Grpo => l.max(1) as f32,
            Estimator::DrGrpo => longest as f32,
        })
        .collect();
    let lengths = Tensor::from_vec(lengths, b, model.device())?.to_dtype(model.dtype())?;
    let loss = (per_seq / lengths)?.mean_all()?.neg()?;
    Ok((loss, stats))
}

/// What one [`ppo_update`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PpoOutcome {
    /// The loss of the last epoch.
    pub loss: f64,
    /// The mean KL estimate to the reference in the last epoch (0 without one).
    pub kl: f64,
    /// The fraction of completion tokens clipped in the last epoch.
    pub clip_fraction: f64,
}

/// Sequences per part of a [`ppo_update`]: parts are sorted by length, so that a short sequence is
/// padded only to the longest of its part, not of the whole update.
pub const UPDATE_PART: usize = 32;

/// The clipped policy-gradient update of `t` on `pairs` with their `advantages`: `cfg.epochs`
/// optimizer steps over the one batch, with the KL penalty to `reference` when `cfg.kl_coef > 0`.
///
/// The sequences are sorted by length and scored in parts of `part` sequences ([`UPDATE_PART`]
/// in self-play; `usize::MAX`: one part, every sequence padded to the longest), each padded to
/// its own longest sequence; the parts' losses, weighted by their share of the sequences, add up to
/// exactly the loss of the whole batch (Dr. GRPO's constant is the whole update's longest
/// completion); the parts' forward and backward passes run side by side on the CPU, one after
/// the other elsewhere ([`grads_in_parallel`]), and their gradients are summed. Each epoch
/// reads its loss, gradient norm and statistics back once.
pub fn ppo_update(
    t: &mut crate::Trainable,
    reference: Option<&Gpt>,
    pairs: &[(Vec<u32>, Vec<u32>)],
    advantages: &[f32],
    pad: u32,
    cfg: &PpoConfig,
    part: usize,
) -> Result<PpoOutcome> {
    if pairs.is_empty() || advantages.len() != pairs.len() {
        candle_core::bail!("{} advantages for {} sequences", advantages.len(), pairs.len());
    }
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by_key(|&i| (pairs[i].0.len() + pairs[i].1.len(), i));
    let longest = pairs.iter().map(|(_, c)| c.len()).max().unwrap_or(0).max(1);
    let tokens = pairs.iter().map(|(_, c)| c.len()).sum::<usize>().max(1) as f64;
    struct Part {
        batch: Batch,
        old: Tensor,
        reference: Option<Tensor>,
        advantages: Vec<f32>,
        /// Shares of the update's sequences (the loss is a mean over them) and of its tokens
        /// (the statistics are means over those).
        share: f64,
        token_share: f64,
    }
    let chunks: Vec<&[usize]> = order.chunks(part.max(1)).collect();
    let model = &t.model;
    let prepare = |chunk: &&[usize]| -> Result<Part> {
        let part_pairs: Vec<(Vec<u32>, Vec<u32>)> = chunk.iter().map(|&i| pairs[i].clone()).collect();
        let mut batch = Batch::new(model, &part_pairs, pad)?;
        batch.longest = longest;
        let old = token_logprobs(model, &batch, None)?.detach();
        let reference = match reference {
            Some(r) if cfg.kl_coef > 0.0 => Some(token_logprobs(r, &batch, None)?.detach()),
            _ => None,
        };
        let advantages = chunk.iter().map(|&i| advantages[i]).collect();
        let token_share = batch.lengths.iter().sum::<usize>() as f64 / tokens;
        let share = chunk.len() as f64 / pairs.len() as f64;
        Ok(Part { batch, old, reference, advantages, share, token_share })
    };
    // Side by side on the CPU; in order on a GPU, where threads would queue on separate streams.
    let parts: Vec<Part> = if model.device().is_cpu() {
        use rayon::prelude::*;
        chunks.par_iter().map(prepare).collect::<Result<_>>()?
    } else {
        chunks.iter().map(prepare).collect::<Result<_>>()?
    };
    let vars: Vec<candle_core::Var> = t.model.named_vars().into_iter().map(|(_, v)| v).collect();
    let mut outcome = PpoOutcome { loss: f64::NAN, kl: 0.0, clip_fraction: 0.0 };
    for _ in 0..cfg.epochs {
        let model = &t.model;
        let (total, grads, stats) = grads_in_parallel(&vars, &parts, |p| {
            let (loss, stats) = ppo_loss(model, &p.batch, &p.old, &p.advantages, p.reference.as_ref(), cfg)?;
            Ok(((loss * p.share)?, stats))
        })?;
        let scalars: Vec<Tensor> = stats.into_iter().flat_map(|s| [s.kl, s.clip_fraction]).collect();
        let (report, values) = t.optim.step_with_stats(&grads, &total, &scalars)?;
        // Weighted by each part's share of the tokens, added in the parts' order.
        let (mut kl, mut clipped) = (0.0, 0.0);
        for (p, v) in parts.iter().zip(values.chunks_exact(2)) {
            kl += v[0] * p.token_share;
            clipped += v[1] * p.token_share;
        }
        outcome = PpoOutcome { loss: report.loss, kl, clip_fraction: clipped };
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelConfig, Positions};
    use crate::ops::tests::{assert_close, numeric_grad};
    use candle_core::Device;

    #[test]
    fn estimator_parses_as_the_config_spells_it() {
        for e in [Estimator::Grpo, Estimator::DrGrpo] {
            let spelled = serde_json::to_value(e).unwrap();
            assert_eq!(spelled.as_str().unwrap().parse::<Estimator>(), Ok(e));
        }
        assert_eq!("ppo".parse::<Estimator>().unwrap_err(), "an estimator is grpo or dr_grpo, not \"ppo\"");
    }

    fn tiny_with(dtype: DType, positions: Positions) -> Gpt {
        let cfg =
            ModelConfig { vocab: 11, d_model: 8, layers: 2, heads: 2, context: 12, dropout: 0.0, positions };
        Gpt::new(&cfg, 9, dtype, &Device::Cpu).unwrap()
    }

    fn tiny(dtype: DType) -> Gpt {
        tiny_with(dtype, Positions::Learned)
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

    fn pairs() -> Vec<(Vec<u32>, Vec<u32>)> {
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
    fn ppo_gradient_matches_finite_differences_and_clips() {
        let model = tiny(DType::F64);
        let reference = model.frozen_copy().unwrap();
        let batch = Batch::new(&model, &pairs(), 0).unwrap();
        // Old log-probs off the current ones so that some ratios leave the clip range.
        let old = (token_logprobs(&model, &batch, None).unwrap().detach()
            + Tensor::new(&[[0.3f64], [-0.25], [0.05]], &Device::Cpu).unwrap().broadcast_as((3, 6)).unwrap())
        .unwrap();
        let adv = [1.0f32, -0.5, 2.0];
        let cfg = PpoConfig { clip: 0.2, epochs: 1, kl_coef: 0.1, ..PpoConfig::default() };
        let (name, var) = model.named_vars().into_iter().find(|(n, _)| n == "h.0.mlp.c_fc.weight").unwrap();
        let reference = token_logprobs(&reference, &batch, None).unwrap();
        let (loss, stats) = ppo_loss(&model, &batch, &old, &adv, Some(&reference), &cfg).unwrap();
        let (clip_fraction, kl) = stats.read().unwrap();
        assert!(clip_fraction > 0.0 && clip_fraction < 1.0, "{clip_fraction}");
        assert!(kl.abs() < 1e-12, "same weights: no divergence yet");
        let analytic: Vec<f64> =
            loss.backward().unwrap().get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let original = var.as_tensor().copy().unwrap();
        let numeric = numeric_grad(&original, &|w| {
            var.set(w)?;
            let l = ppo_loss(&model, &batch, &old, &adv, Some(&reference), &cfg)?.0.to_scalar::<f64>();
            var.set(&original)?;
            l
        })
        .unwrap();
        assert_close(&analytic, &numeric, 1e-5, &name);
    }

    #[test]
    fn negative_weight_scales_only_negative_advantages() {
        let model = tiny(DType::F64);
        let batch = Batch::new(&model, &pairs(), 0).unwrap();
        let old = token_logprobs(&model, &batch, None).unwrap().detach();
        let loss = |adv: &[f32], negative_weight: f64| -> f64 {
            let cfg = PpoConfig { negative_weight, ..PpoConfig::default() };
            ppo_loss(&model, &batch, &old, adv, None, &cfg).unwrap().0.to_scalar().unwrap()
        };
        let adv = [1.0f32, -0.5, 2.0];
        for w in [0.0f32, 0.25, 1.0] {
            let scaled = adv.map(|a| if a < 0.0 { a * w } else { a });
            let (got, want) = (loss(&adv, f64::from(w)), loss(&scaled, 1.0));
            assert!((got - want).abs() < 1e-12, "weight {w}: {got} vs {want}");
        }
        // The negative sample does count at weight 1.
        assert!((loss(&adv, 1.0) - loss(&adv, 0.0)).abs() > 1e-6);
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
    fn policy_gradient_raises_the_rewarded_completion() {
        use crate::optim::{AdamW, OptimConfig};
        let model = tiny(DType::F32);
        let good = (vec![1u32, 4], vec![7u32, 2]);
        let bad = (vec![1u32, 4], vec![8u32, 2]);
        let batch = Batch::new(&model, &[good.clone(), bad.clone()], 0).unwrap();
        let adv = group_advantages(&[1.0, 0.0], 2, true);
        let cfg = OptimConfig { lr: 1e-2, warmup_steps: 1, ..Default::default() };
        let mut opt = AdamW::new(model.named_vars(), cfg).unwrap();
        let gap = || {
            let lp: Vec<Vec<f32>> = token_logprobs(&model, &batch, None).unwrap().to_vec2().unwrap();
            lp[0][1] - lp[1][1]
        };
        let before = gap();
        for _ in 0..20 {
            let old = token_logprobs(&model, &batch, None).unwrap().detach();
            for _ in 0..2 {
                let (loss, _) = ppo_loss(&model, &batch, &old, &adv, None, &PpoConfig::default()).unwrap();
                opt.backward_step(&loss).unwrap();
            }
        }
        assert!(gap() > before + 1.0, "log-prob gap {before} -> {}", gap());
    }

    #[test]
    fn an_update_in_parts_has_the_loss_of_the_whole_batch() {
        use crate::optim::OptimConfig;
        use rand::{Rng, SeedableRng};
        let cfg = ModelConfig {
            vocab: 11,
            d_model: 8,
            layers: 1,
            heads: 2,
            context: 16,
            dropout: 0.0,
            positions: Positions::Learned,
        };
        // More sequences than one part holds, of many lengths.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let n = 2 * UPDATE_PART + 7;
        let pairs: Vec<(Vec<u32>, Vec<u32>)> = (0..n)
            .map(|_| {
                let p = rng.random_range(1..6);
                let c = rng.random_range(1..9);
                (
                    (0..p).map(|_| rng.random_range(1..11)).collect(),
                    (0..c).map(|_| rng.random_range(1..11)).collect(),
                )
            })
            .collect();
        let advantages: Vec<f32> = (0..n).map(|i| (i % 5) as f32 - 2.0).collect();
        for estimator in [Estimator::Grpo, Estimator::DrGrpo] {
            let ppo = PpoConfig { epochs: 1, kl_coef: 0.1, estimator, ..PpoConfig::default() };
            let mut t = crate::Trainable::new(&cfg, OptimConfig::default(), 3, &Device::Cpu).unwrap();
            let reference =
                crate::Trainable::new(&cfg, OptimConfig::default(), 4, &Device::Cpu).unwrap().model;
            // The whole batch at once, before the update.
            let whole = Batch::new(&t.model, &pairs, 0).unwrap();
            let old = token_logprobs(&t.model, &whole, None).unwrap();
            let ref_lp = token_logprobs(&reference, &whole, None).unwrap();
            let (loss, stats) = ppo_loss(&t.model, &whole, &old, &advantages, Some(&ref_lp), &ppo).unwrap();
            let loss: f32 = loss.to_scalar().unwrap();
            let before = t.model.named_vars()[0].1.as_tensor().copy().unwrap();
            let got =
                ppo_update(&mut t, Some(&reference), &pairs, &advantages, 0, &ppo, UPDATE_PART).unwrap();
            assert!((got.loss - f64::from(loss)).abs() < 1e-5, "{estimator:?}: {} vs {loss}", got.loss);
            let (_, kl) = stats.read().unwrap();
            assert!(kl > 0.0 && (got.kl - kl).abs() < 1e-5, "{estimator:?}: {got:?} {kl}");
            let after = t.model.named_vars()[0].1.as_tensor().copy().unwrap();
            let moved: f32 = (after - before).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
            assert!(moved > 0.0, "the update took a step");
        }
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
