//! The clipped-ratio policy-gradient objective ([`ppo_loss`]), usable for several epochs over
//! one batch, with an optional KL penalty to a frozen reference model, and the update that trains
//! a player on it in length-sorted parts ([`ppo_update`]).

use candle_core::{Result, Tensor, D};

use crate::model::Gpt;
use crate::train::{grads_in_parallel, masked_mean, token_logprobs, token_logprobs_with_entropy, Batch};

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
    /// Mean KL estimate of the current policy from the one that sampled (`old_logprobs`): 0 on
    /// the first epoch over a batch, how far the earlier epochs moved the policy after it.
    pub approx_kl: Tensor,
    /// The current policy's log-probs of the batch's tokens `[B, T-1]`, detached: the sampling
    /// policy's, for the later epochs, where this was the first.
    pub logprobs: Tensor,
    /// Where `old_logprobs` were not given (the first epoch): the mean next-token entropy over
    /// the completion tokens, in nats, of the policy that sampled them.
    pub entropy: Option<Tensor>,
}

impl PpoStats {
    /// `(clip_fraction, kl, approx_kl)` read back, in one transfer.
    pub fn read(&self) -> Result<(f64, f64, f64)> {
        let v = crate::device::read_scalars(&[
            self.clip_fraction.clone(),
            self.kl.clone(),
            self.approx_kl.clone(),
        ])?;
        Ok((v[0], v[1], v[2]))
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
/// `old_logprobs` `[B, T-1]` are the sampling policy's (detached); `None` where the model is that
/// policy (the first epoch over freshly sampled sequences): its own log-probs, read off the
/// pass that trains, which saves a forward pass a step. `advantages` one per sequence, the
/// negative ones scaled by `cfg.negative_weight`; `reference_logprobs` `[B, T-1]` the frozen
/// reference's ([`token_logprobs`] of it: the same for every epoch over a batch, so computed once).
pub fn ppo_loss(
    model: &Gpt,
    batch: &Batch,
    old_logprobs: Option<&Tensor>,
    advantages: &[f32],
    reference_logprobs: Option<&Tensor>,
    cfg: &PpoConfig,
) -> Result<(Tensor, PpoStats)> {
    let (logp, entropy) = match old_logprobs {
        Some(_) => (token_logprobs(model, batch, None)?, None),
        None => {
            let (logp, entropy) = token_logprobs_with_entropy(model, batch)?;
            (logp, Some(masked_mean(&entropy, batch)?))
        }
    };
    let current = logp.detach();
    let old_logprobs = old_logprobs.map_or_else(|| current.clone(), Tensor::detach);
    let (b, _) = logp.dims2()?;
    if advantages.len() != b {
        candle_core::bail!("{} advantages for {b} sequences", advantages.len());
    }
    let weighted: Vec<f32> =
        advantages.iter().map(|&a| if a < 0.0 { a * cfg.negative_weight as f32 } else { a }).collect();
    let adv = Tensor::from_vec(weighted, (b, 1), model.device())?.to_dtype(model.dtype())?;
    let log_ratio = (&logp - &old_logprobs)?;
    let ratio = log_ratio.exp()?;
    let surr1 = ratio.broadcast_mul(&adv)?;
    let surr2 = ratio.clamp(1.0 - cfg.clip, 1.0 + cfg.clip)?.broadcast_mul(&adv)?;
    let mut objective = surr1.minimum(&surr2)?;
    let clipped = surr1.ne(&surr2)?.to_dtype(model.dtype())?;
    // k3 of the sampling policy from the current one: r − 1 − log r, ≥ 0.
    let approx_kl = ((ratio.detach() - 1.0)? - log_ratio.detach())?;
    let mut stats = PpoStats {
        clip_fraction: masked_mean(&clipped, batch)?.detach(),
        kl: Tensor::zeros((), model.dtype(), model.device())?,
        approx_kl: masked_mean(&approx_kl, batch)?,
        logprobs: current,
        entropy,
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

/// What one [`ppo_update`] did: the diagnostics a policy-gradient trainer reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PpoOutcome {
    /// The loss of the last epoch.
    pub loss: f64,
    /// The mean KL estimate to the reference in the last epoch (0 without one).
    pub kl: f64,
    /// The fraction of completion tokens clipped in the last epoch.
    pub clip_fraction: f64,
    /// The mean KL estimate of the last epoch's policy from the sampling one (0 with one epoch).
    pub approx_kl: f64,
    /// The mean entropy (nats) of the policy's next-token distribution over the completion
    /// tokens, before the update.
    pub entropy: f64,
    /// The global gradient norm of the last epoch, before clipping.
    pub grad_norm: f64,
    /// The learning rate of the last epoch's step.
    pub learning_rate: f64,
    /// Epochs whose step was skipped for a non-finite loss or gradient.
    pub skipped_steps: u64,
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
        let reference = match reference {
            Some(r) if cfg.kl_coef > 0.0 => Some(token_logprobs(r, &batch, None)?.detach()),
            _ => None,
        };
        let advantages = chunk.iter().map(|&i| advantages[i]).collect();
        let token_share = batch.lengths.iter().sum::<usize>() as f64 / tokens;
        let share = chunk.len() as f64 / pairs.len() as f64;
        Ok(Part { batch, reference, advantages, share, token_share })
    };
    // Side by side on the CPU; in order on a GPU, where threads would queue on separate streams.
    let parts: Vec<Part> = if model.device().is_cpu() {
        use rayon::prelude::*;
        chunks.par_iter().map(prepare).collect::<Result<_>>()?
    } else {
        chunks.iter().map(prepare).collect::<Result<_>>()?
    };
    let vars: Vec<candle_core::Var> = t.model.named_vars().into_iter().map(|(_, v)| v).collect();
    let mut outcome = PpoOutcome {
        loss: f64::NAN,
        kl: 0.0,
        clip_fraction: 0.0,
        approx_kl: 0.0,
        entropy: f64::NAN,
        grad_norm: f64::NAN,
        learning_rate: 0.0,
        skipped_steps: 0,
    };
    // Each part's sampling-policy log-probs and entropy: the model's own, read in the first
    // epoch (before any step the model is the policy that sampled); empty until then.
    let mut old: Vec<Tensor> = Vec::new();
    let mut entropies: Vec<Tensor> = Vec::new();
    for _ in 0..cfg.epochs {
        let model = &t.model;
        let inputs: Vec<(&Part, Option<&Tensor>)> =
            parts.iter().enumerate().map(|(i, p)| (p, old.get(i))).collect();
        let (total, grads, stats) = grads_in_parallel(&vars, &inputs, |(p, old)| {
            let (loss, stats) = ppo_loss(model, &p.batch, *old, &p.advantages, p.reference.as_ref(), cfg)?;
            Ok(((loss * p.share)?, stats))
        })?;
        if old.is_empty() {
            for s in &stats {
                old.push(s.logprobs.clone());
                entropies.push(s.entropy.clone().expect("the first epoch reads the entropy"));
            }
        }
        let scalars: Vec<Tensor> = stats
            .into_iter()
            .zip(&entropies)
            .flat_map(|(s, e)| [s.kl, s.clip_fraction, s.approx_kl, e.clone()])
            .collect();
        let (report, values) = t.optim.step_with_stats(&grads, &total, &scalars)?;
        // Weighted by each part's share of the tokens, added in the parts' order.
        let (mut kl, mut clipped, mut approx_kl, mut entropy) = (0.0, 0.0, 0.0, 0.0);
        for (p, v) in parts.iter().zip(values.chunks_exact(4)) {
            kl += v[0] * p.token_share;
            clipped += v[1] * p.token_share;
            approx_kl += v[2] * p.token_share;
            entropy += v[3] * p.token_share;
        }
        outcome = PpoOutcome {
            loss: report.loss,
            kl,
            clip_fraction: clipped,
            approx_kl,
            entropy,
            grad_norm: report.grad_norm,
            learning_rate: report.lr,
            skipped_steps: outcome.skipped_steps + u64::from(report.skipped),
        };
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelConfig, Positions};
    use crate::ops::tests::{assert_close, numeric_grad};
    use crate::train::tests::{pairs, tiny};
    use candle_core::{DType, Device};

    #[test]
    fn estimator_parses_as_the_config_spells_it() {
        for e in [Estimator::Grpo, Estimator::DrGrpo] {
            let spelled = serde_json::to_value(e).unwrap();
            assert_eq!(spelled.as_str().unwrap().parse::<Estimator>(), Ok(e));
        }
        assert_eq!("ppo".parse::<Estimator>().unwrap_err(), "an estimator is grpo or dr_grpo, not \"ppo\"");
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
        let (loss, stats) = ppo_loss(&model, &batch, Some(&old), &adv, Some(&reference), &cfg).unwrap();
        let (clip_fraction, kl, approx_kl) = stats.read().unwrap();
        assert!(approx_kl > 0.0, "old log-probs moved off the current ones: {approx_kl}");
        assert!(clip_fraction > 0.0 && clip_fraction < 1.0, "{clip_fraction}");
        assert!(kl.abs() < 1e-12, "same weights: no divergence yet");
        let analytic: Vec<f64> =
            loss.backward().unwrap().get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let original = var.as_tensor().copy().unwrap();
        let numeric = numeric_grad(&original, &|w| {
            var.set(w)?;
            let l = ppo_loss(&model, &batch, Some(&old), &adv, Some(&reference), &cfg)?.0.to_scalar::<f64>();
            var.set(&original)?;
            l
        })
        .unwrap();
        assert_close(&analytic, &numeric, 1e-5, &name);
    }

    #[test]
    fn the_first_epoch_reads_the_sampling_policy_off_its_own_pass() {
        let model = tiny(DType::F64);
        let reference = model.frozen_copy().unwrap();
        let batch = Batch::new(&model, &pairs(), 0).unwrap();
        let ref_lp = token_logprobs(&reference, &batch, None).unwrap();
        // The sampling policy's log-probs from a pass of their own; its entropy as the tested
        // `token_logprobs_with_entropy` gives it.
        let old = token_logprobs(&model, &batch, None).unwrap().detach();
        let (_, entropy) = token_logprobs_with_entropy(&model, &batch).unwrap();
        let adv = [1.0f32, -0.5, 2.0];
        let cfg = PpoConfig { kl_coef: 0.1, ..PpoConfig::default() };
        let (given, given_stats) = ppo_loss(&model, &batch, Some(&old), &adv, Some(&ref_lp), &cfg).unwrap();
        let (own, own_stats) = ppo_loss(&model, &batch, None, &adv, Some(&ref_lp), &cfg).unwrap();
        let value = |t: &Tensor| t.to_scalar::<f64>().unwrap();
        assert_eq!(value(&given), value(&own));
        assert_eq!(own_stats.logprobs.to_vec2::<f64>().unwrap(), old.to_vec2::<f64>().unwrap());
        assert_eq!(value(&own_stats.approx_kl), 0.0);
        assert!(given_stats.entropy.is_none(), "entropy is read in the first epoch only");
        let want = value(&masked_mean(&entropy, &batch).unwrap());
        assert!(want > 0.1, "{want}");
        assert!((value(own_stats.entropy.as_ref().unwrap()) - want).abs() < 1e-12);
        // The same gradient, parameter by parameter.
        let (g1, g2) = (given.backward().unwrap(), own.backward().unwrap());
        for (name, var) in model.named_vars() {
            let a: Vec<f64> = g1.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let b: Vec<f64> = g2.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(a, b, "{name}");
        }
    }

    #[test]
    fn negative_weight_scales_only_negative_advantages() {
        let model = tiny(DType::F64);
        let batch = Batch::new(&model, &pairs(), 0).unwrap();
        let old = token_logprobs(&model, &batch, None).unwrap().detach();
        let loss = |adv: &[f32], negative_weight: f64| -> f64 {
            let cfg = PpoConfig { negative_weight, ..PpoConfig::default() };
            ppo_loss(&model, &batch, Some(&old), adv, None, &cfg).unwrap().0.to_scalar().unwrap()
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
    fn policy_gradient_raises_the_rewarded_completion() {
        use crate::optim::{AdamW, OptimConfig};
        use crate::train::group_advantages;
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
                let (loss, _) =
                    ppo_loss(&model, &batch, Some(&old), &adv, None, &PpoConfig::default()).unwrap();
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
            let (loss, stats) =
                ppo_loss(&t.model, &whole, Some(&old), &advantages, Some(&ref_lp), &ppo).unwrap();
            let loss: f32 = loss.to_scalar().unwrap();
            let before = t.model.named_vars()[0].1.as_tensor().copy().unwrap();
            let got =
                ppo_update(&mut t, Some(&reference), &pairs, &advantages, 0, &ppo, UPDATE_PART).unwrap();
            assert!((got.loss - f64::from(loss)).abs() < 1e-5, "{estimator:?}: {} vs {loss}", got.loss);
            let (_, kl, _) = stats.read().unwrap();
            assert!(kl > 0.0 && (got.kl - kl).abs() < 1e-5, "{estimator:?}: {got:?} {kl}");
            let after = t.model.named_vars()[0].1.as_tensor().copy().unwrap();
            let moved: f32 = (after - before).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
            assert!(moved > 0.0, "the update took a step");
        }
    }
}
