//! What a round did, as one line of `metrics.jsonl`: drawn from the round's own values (the
//! judge's analyses, the reward terms, the solve rates), not read back from the archive records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::judged::Judged;
use super::pay::{is_copy, Paid};
use super::propose::Proposals;
use super::solve::{Attempts, Source, Tasks};
use super::update::Updates;
use super::{Lab, Timings};

/// What a round did: one line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundMetrics {
    pub round: u64,
    pub proposals: usize,
    pub valid_fraction: f64,
    /// Of valid problems: padded (canonical form shorter than the text).
    pub padded_fraction: f64,
    /// Of valid problems: canonical repeats within the round or of the archive.
    pub duplicate_fraction: f64,
    /// Of as many problems drawn from the domain's generator at the same targets (one a target),
    /// judged as the proposals are against the same archive: the copies a proposer that writes
    /// its warm start's distribution would make. The archive's growth raises it; a proposer
    /// above it repeats itself more than its warm start would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_duplicate_fraction: Option<f64>,
    /// Of the fresh valid problems: the mean repetition penalty their shapes' copies cost them
    /// (the crowding term).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_crowding: Option<f64>,
    pub mean_surface_ops: Option<f64>,
    pub mean_essential_ops: Option<f64>,
    pub median_solve_rate: Option<f64>,
    /// Of valid problems: solve rate inside the frontier band.
    pub band_fraction: f64,
    /// The same by the depth of the target each problem was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band_by_target: Option<BTreeMap<u32, f64>>,
    /// On evaluation rounds (`round.generator_probe` > 0): of the domain's generator problems at
    /// the round's first targets, one a target, attempted by the same solver before its update,
    /// those whose solve rate fell in the band — a fixed generator's frontier hit rate beside
    /// `band_fraction`; overall and by target depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_band_fraction: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_band_by_target: Option<BTreeMap<u32, f64>>,
    pub mean_reward: f64,
    pub mean_frontier: Option<f64>,
    /// Of valid problems: the mean length-residual factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_length_factor: Option<f64>,
    pub proposer_output_tokens: f64,
    /// Mean solve rate of the rehearsal problems (of the warm start's kind): falls when the
    /// solver forgets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearsal_solve_rate: Option<f64>,
    pub solver_problems_trained: usize,
    /// Rehearsal problems solved every time, trained on with `round.anchor`.
    #[serde(default)]
    pub solver_problems_anchored: usize,
    /// Of the problems trained, those trained only for their step credit (`round.step_credit`):
    /// never solved, or fresh outside the band, their attempts unequally far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub solver_problems_credited: usize,
    /// Problems no attempt solved for which a chain was sought (`round.compose`), and the chains
    /// found, trained on.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub solver_compose_tried: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub solver_composed: usize,
    /// Steps of those chains taken by asking the solver a first operation alone.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub solver_compose_first_operations: usize,
    /// Mean operations of the problems a chain was found for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composed_operations: Option<f64>,
    /// The proposer's own in-band proposals it was self-trained on (`round.self_training`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub proposer_self_trained: usize,
    pub solver_loss: Option<f64>,
    pub proposer_loss: Option<f64>,
    /// KL estimate to the frozen warm-start reference (when `kl_coef` > 0).
    pub solver_kl: Option<f64>,
    pub proposer_kl: Option<f64>,
    pub skipped_updates: u64,
    /// The controller's level (of its first literal bound, when it asks for bounds).
    pub difficulty_level: f64,
    /// The controller's level for each literal bound it asks for, by bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difficulty_levels: Option<BTreeMap<u32, f64>>,
    /// The depths the controller skips as exhausted, below its level (of its first literal bound,
    /// as `difficulty_level`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_depths: Vec<u32>,
    /// The median solve rate of the valid proposals asked for each literal bound, by bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_solve_rates: Option<BTreeMap<u32, f64>>,
    /// Of valid problems: those on the target the controller asked for (exactly its depth, and
    /// literals within its bound) — how closely the proposer follows its targets, through which
    /// the controller acts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_target_fraction: Option<f64>,
    pub replay_size: usize,
    /// Held-out greedy accuracy by depth, on evaluation rounds.
    pub held_out: Option<BTreeMap<u32, f64>>,
    /// Of valid problems: those given an interestingness score; and its mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scored_fraction: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_interestingness: Option<f64>,
    /// Each scorer's health so far, by `name@version` (when scorers are configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scorers: Option<BTreeMap<String, scorers::Health>>,
    pub problems_per_s: f64,
    /// New tokens a second while the solver's attempts were sampled (absent from lines written
    /// before it existed).
    #[serde(default)]
    pub attempt_tokens_per_s: f64,
    pub timings: Timings,
    /// How the round's sampling went on the workers (`selfplay run --nats`); absent in process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<crate::rollouts::RolloutReport>,
    /// Each player's update this round, as policy-gradient trainers report it.
    #[serde(default)]
    pub solver: Diagnostics,
    #[serde(default)]
    pub proposer: Diagnostics,
    /// When the line was written: Unix seconds.
    #[serde(default)]
    pub wall_time: f64,
}

/// One player's round, named as TRL names its logs where it has a name for them. The update's
/// values are absent when the player was not updated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    /// The policy-gradient loss of the last epoch.
    pub loss: Option<f64>,
    /// The global gradient norm of the last epoch, before clipping.
    pub grad_norm: Option<f64>,
    /// Of the completion tokens: those whose probability ratio the objective clipped.
    pub clip_ratio: Option<f64>,
    /// Mean next-token entropy over the completion tokens, before the update (nats).
    pub entropy: Option<f64>,
    /// KL of the last epoch's policy from the one that sampled (k3 estimate).
    pub approx_kl: Option<f64>,
    /// KL to the frozen warm-start reference (k3 estimate; 0 without a KL penalty).
    pub kl: Option<f64>,
    pub learning_rate: Option<f64>,
    /// Mean and standard deviation of the rewards of everything the player produced this round
    /// (the solver's: 1 for a right answer, else 0; the proposer's: its paid rewards).
    pub reward: f64,
    pub reward_std: f64,
    /// Mean tokens of what the player sampled this round.
    pub completion_length: f64,
    /// Optimizer steps skipped this round for a non-finite loss or gradient.
    pub skipped_updates: u64,
}

impl Diagnostics {
    fn of(update: Option<policy::PpoOutcome>, rewards: &[f64], lengths: &[usize]) -> Diagnostics {
        let n = rewards.len().max(1) as f64;
        let reward = rewards.iter().sum::<f64>() / n;
        let reward_std = (rewards.iter().map(|r| (r - reward).powi(2)).sum::<f64>() / n).sqrt();
        Diagnostics {
            loss: update.map(|u| u.loss),
            grad_norm: update.map(|u| u.grad_norm),
            clip_ratio: update.map(|u| u.clip_fraction),
            entropy: update.map(|u| u.entropy),
            approx_kl: update.map(|u| u.approx_kl),
            kl: update.map(|u| u.kl),
            learning_rate: update.map(|u| u.learning_rate),
            reward,
            reward_std,
            completion_length: lengths.iter().sum::<usize>() as f64 / lengths.len().max(1) as f64,
            skipped_updates: update.map_or(0, |u| u.skipped_steps),
        }
    }
}

/// Everything a round's metrics are drawn from.
pub(super) struct Outcome<'a> {
    pub round: u64,
    pub proposals: &'a Proposals,
    pub judged: &'a Judged,
    pub tasks: &'a Tasks,
    pub attempts: &'a Attempts,
    pub paid: &'a Paid,
    pub updates: &'a Updates,
    pub composed: &'a super::compose::Composed,
    /// The median solve rate of the proposals asked for each literal bound.
    pub medians: &'a [Option<f64>],
    pub held_out: Option<BTreeMap<u32, f64>>,
    pub probe: Option<super::probe::BandTally>,
    pub rollouts: Option<crate::rollouts::RolloutReport>,
    pub timings: Timings,
}

impl Lab {
    /// The metrics line of a round, after the curriculum took it in.
    pub(super) fn metrics(&self, o: Outcome) -> RoundMetrics {
        let cfg = &self.cfg;
        let n = o.proposals.texts.len();
        let rates = |keep: fn(Source) -> bool| -> Vec<f64> {
            o.tasks.indices(keep).map(|t| o.attempts.rate(t)).collect()
        };
        let fresh_rates = rates(|s| matches!(s, Source::Fresh { .. }));
        let rehearsal_rates = rates(|s| s == Source::Rehearsed);
        // The valid proposals: their analysis, their copies, their reward terms, their score.
        struct Valid<'a> {
            analysis: &'a problem::Analysis,
            copy: bool,
            terms: &'a judge::RewardTerms,
            interestingness: Option<f64>,
        }
        let valid: Vec<Valid> = o
            .judged
            .candidates
            .iter()
            .zip(&o.paid.terms)
            .zip(&o.paid.interestingness)
            .filter_map(|((c, terms), &interestingness)| {
                let analysis = c.analysis.as_ref().ok()?;
                Some(Valid { analysis, copy: is_copy(c), terms, interestingness })
            })
            .collect();
        let nv = valid.len().max(1) as f64;
        // The valid proposals in band, by the depth they were asked for.
        let mut by_target = super::probe::BandTally::default();
        for (target, task) in o.proposals.targets.iter().zip(&o.tasks.of_proposal) {
            if let Some(t) = task {
                by_target.add(target.depth, cfg.frontier.contains(o.attempts.rate(*t)));
            }
        }
        let bounds = self.controller.bounds();
        // Values by literal bound, when the controller asks for bounds.
        let by_bound = |values: &[Option<f64>]| -> Option<BTreeMap<u32, f64>> {
            let m: BTreeMap<u32, f64> =
                bounds.iter().zip(values).filter_map(|(b, v)| Some(((*b)?, (*v)?))).collect();
            (!m.is_empty()).then_some(m)
        };
        let mean = |f: &dyn Fn(&Valid) -> Option<f64>| -> Option<f64> {
            let v: Vec<f64> = valid.iter().filter_map(f).collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        let (solver, proposer) = (o.updates.solver, o.updates.proposer);
        let attempts = o.attempts.per_task.iter().flatten();
        let solver_rewards: Vec<f64> =
            attempts.clone().map(|(a, _)| f64::from(u8::from(a.correct))).collect();
        let solver_lengths: Vec<usize> = attempts.map(|(_, tokens)| tokens.len()).collect();
        let proposer_rewards: Vec<f64> = o.paid.rewards.iter().map(|&r| f64::from(r)).collect();
        let proposer_lengths: Vec<usize> = o.proposals.sampled.iter().map(|s| s.tokens.len()).collect();
        RoundMetrics {
            round: o.round,
            proposals: n,
            valid_fraction: valid.len() as f64 / n as f64,
            padded_fraction: valid
                .iter()
                .filter(|v| v.analysis.essential_ops < v.analysis.surface_ops)
                .count() as f64
                / nv,
            duplicate_fraction: valid.iter().filter(|v| v.copy).count() as f64 / nv,
            generator_duplicate_fraction: o.judged.generator_duplicate_fraction,
            mean_crowding: mean(&|v| (!v.copy).then_some(v.terms.repetition)),
            mean_surface_ops: mean(&|v| Some(f64::from(v.analysis.surface_ops))),
            mean_essential_ops: mean(&|v| Some(f64::from(v.analysis.essential_ops))),
            median_solve_rate: curriculum::median(&fresh_rates),
            band_fraction: fresh_rates.iter().filter(|&&p| cfg.frontier.contains(p)).count() as f64 / nv,
            band_by_target: by_target.band_by_depth(),
            generator_band_fraction: o.probe.as_ref().and_then(|p| p.band_fraction()),
            generator_band_by_target: o.probe.as_ref().and_then(|p| p.band_by_depth()),
            mean_reward: o.paid.rewards.iter().map(|&r| f64::from(r)).sum::<f64>() / n as f64,
            mean_frontier: mean(&|v| v.terms.frontier),
            mean_length_factor: mean(&|v| Some(v.terms.length_factor)),
            proposer_output_tokens: o.proposals.sampled.iter().map(|s| s.tokens.len() as f64).sum::<f64>()
                / n as f64,
            rehearsal_solve_rate: (!rehearsal_rates.is_empty())
                .then(|| rehearsal_rates.iter().sum::<f64>() / rehearsal_rates.len() as f64),
            solver_problems_trained: o.updates.trained,
            solver_problems_anchored: o.updates.anchored,
            solver_problems_credited: o.updates.credited,
            proposer_self_trained: o.updates.self_trained,
            solver_compose_tried: o.composed.tried,
            solver_composed: o.composed.pairs.len(),
            solver_compose_first_operations: o.composed.first_operations,
            composed_operations: (!o.composed.operations.is_empty()).then(|| {
                o.composed.operations.iter().map(|&n| f64::from(n)).sum::<f64>()
                    / o.composed.operations.len() as f64
            }),
            solver_loss: solver.map(|l| l.loss),
            proposer_loss: proposer.map(|l| l.loss),
            solver_kl: solver.map(|l| l.kl),
            proposer_kl: proposer.map(|l| l.kl),
            skipped_updates: o.updates.skipped,
            difficulty_level: self.controller.level(),
            difficulty_levels: by_bound(&self.controller.levels.iter().map(|&l| Some(l)).collect::<Vec<_>>()),
            median_solve_rates: by_bound(o.medians),
            skipped_depths: self.controller.skipped_depths(0),
            on_target_fraction: mean(&|v| Some(1.0 - v.terms.target_miss?)),
            replay_size: self.replay.len(),
            held_out: o.held_out,
            scored_fraction: self
                .scoring
                .is_some()
                .then(|| valid.iter().filter(|v| v.interestingness.is_some()).count() as f64 / nv),
            mean_interestingness: mean(&|v| v.interestingness),
            scorers: self.scoring.as_ref().map(|s| s.health()),
            problems_per_s: n as f64 / o.timings.total,
            attempt_tokens_per_s: o.attempts.tokens_per_s,
            timings: o.timings,
            workers: o.rollouts,
            solver: Diagnostics::of(solver, &solver_rewards, &solver_lengths),
            proposer: Diagnostics::of(proposer, &proposer_rewards, &proposer_lengths),
            wall_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
