//! Learning: the solver's policy-gradient update on the problems it sometimes solves, and the
//! proposer's on its rewards.

use policy::{ppo_update, Gpt, PpoConfig, PpoOutcome, Trainable};
use problem::Special;

use super::compose::Composed;
use super::judged::Judged;
use super::pay::Paid;
use super::propose::Proposals;
use super::solve::{Attempts, Tasks};
use super::Lab;
use proposer::objective;

use crate::config::Arm;

/// What the round's updates did.
pub(super) struct Updates {
    pub solver: Option<PpoOutcome>,
    pub proposer: Option<PpoOutcome>,
    /// Problems the solver was trained on for their group-relative advantages.
    pub trained: usize,
    /// Of those, the problems trained on only for their step credit (`round.step_credit`).
    pub credited: usize,
    /// The proposer's own in-band proposals it was self-trained on (`round.self_training`).
    pub self_trained: usize,
    /// Rehearsal problems solved every time, trained on with the anchor advantage.
    pub anchored: usize,
    /// Updates skipped this round for a non-finite loss or gradient, both players.
    pub skipped: u64,
}

impl Lab {
    /// The solver trained on the plan's problems (`solver::plan::plan`), every attempt with its
    /// advantage; in self-play, the proposer on its rewards against their baseline
    /// (`round.proposer_baseline`, see `proposer::objective`) unless every advantage is 0, and
    /// on its own in-band proposals (`round.self_training`).
    pub(super) fn update(
        &mut self,
        judged: &Judged,
        tasks: &Tasks,
        attempts: &Attempts,
        composed: &Composed,
        proposals: &Proposals,
        paid: &Paid,
    ) -> anyhow::Result<Updates> {
        let cfg = self.cfg.clone();
        let skipped_before = self.solver.optim.skipped() + self.proposer.optim.skipped();
        let sources: Vec<_> = tasks.tasks.iter().map(|t| t.source).collect();
        let graded = attempts.graded(tasks, self.domain, cfg.round.step_credit > 0.0);
        let rules = solver::plan::Rules {
            band: cfg.frontier.low..=cfg.frontier.high,
            anchor: cfg.round.anchor,
            normalize_std: cfg.solver_ppo.estimator.normalizes_std(),
            step_credit: cfg.round.step_credit,
        };
        let plan = solver::plan::plan(&graded, &sources, &rules);
        let mut solver_pairs = Vec::new();
        let mut solver_adv = Vec::new();
        for (t, advantages) in &plan.problems {
            let prompt = self.solver_format.prompt(&tasks.tasks[*t].text)?;
            for ((_, tokens), a) in attempts.per_task[*t].iter().zip(advantages) {
                solver_pairs.push((prompt.clone(), tokens.clone()));
                solver_adv.push(*a);
            }
        }
        // Chains composed from the solver's own verified steps, each with the compose advantage.
        for pair in &composed.pairs {
            solver_pairs.push(pair.clone());
            solver_adv.push(cfg.round.compose as f32);
        }
        let pad = self.solver_format.tokenizer().special(Special::Pad);
        let proposer_pairs: Vec<(Vec<u32>, Vec<u32>)> = proposals
            .requests
            .iter()
            .zip(&proposals.sampled)
            .map(|(req, s)| (req.prompt.clone(), s.tokens.clone()))
            .collect();
        let normalize = cfg.proposer_ppo.estimator.normalizes_std();
        let mut proposer_adv =
            objective::advantages(&paid.rewards, &proposals.targets, cfg.round.proposer_baseline, normalize);
        // Interestingness as its own signal: ranked among the proposals the frontier pays.
        if cfg.reward.interestingness_mode == judge::InterestMode::Advantage {
            let ranked: Vec<Option<f64>> = paid
                .interestingness
                .iter()
                .zip(&paid.terms)
                .map(|(score, terms)| score.filter(|_| terms.frontier_paid() > 0.0))
                .collect();
            let weight = cfg.reward.interestingness_weight;
            proposer_adv = objective::with_interest(&proposer_adv, &ranked, weight, normalize);
        }
        // Only self-play trains the proposer: the controls keep it as the warm start left it.
        let learns = cfg.round.arm == Arm::SelfPlay;
        let rewarded = learns && !proposer_pairs.is_empty() && proposer_adv.iter().any(|a| *a != 0.0);
        // Filtered self-training: the proposer's fresh, on-target proposals in the band, made
        // likelier whatever their reward's baseline said.
        let self_training: Vec<(Vec<u32>, Vec<u32>)> = if learns && cfg.round.self_training > 0.0 {
            let rates: Vec<Option<f64>> =
                tasks.of_proposal.iter().map(|t| t.map(|t| attempts.rate(t))).collect();
            let misses: Vec<Option<f64>> = paid.terms.iter().map(|t| t.target_miss).collect();
            self_training_picks(&judged.candidates, &misses, &rates, &cfg.frontier)
                .into_iter()
                .map(|i| proposer_pairs[i].clone())
                .collect()
        } else {
            Vec::new()
        };
        // The two players' updates share nothing: side by side on the CPU, each fills the gaps
        // the other's serial bookkeeping leaves on the cores. Each sums its parts in a fixed
        // order, so the weights are the same bits as one after the other.
        let (solver_reference, proposer_reference) =
            (self.solver_reference.as_ref(), self.proposer_reference.as_ref());
        let on_cpu = self.solver.model.device().is_cpu();
        let (solver_player, proposer_player) = (&mut self.solver, &mut self.proposer);
        let (solver, proposer) = side_by_side(
            on_cpu,
            || -> anyhow::Result<Option<PpoOutcome>> {
                if solver_pairs.is_empty() {
                    return Ok(None);
                }
                let update = (solver_player, solver_reference, &cfg.solver_ppo);
                Ok(Some(train(update, &solver_pairs, &solver_adv, pad)?))
            },
            || -> anyhow::Result<Option<PpoOutcome>> {
                let ppo = &cfg.proposer_ppo;
                let outcome = if rewarded {
                    let update = (&mut *proposer_player, proposer_reference, ppo);
                    Some(train(update, &proposer_pairs, &proposer_adv, pad)?)
                } else {
                    None
                };
                if !self_training.is_empty() {
                    let advantages = vec![cfg.round.self_training as f32; self_training.len()];
                    train((proposer_player, proposer_reference, ppo), &self_training, &advantages, pad)?;
                }
                Ok(outcome)
            },
        );
        Ok(Updates {
            solver: solver?,
            proposer: proposer?,
            trained: plan.trained,
            credited: plan.credited,
            self_trained: self_training.len(),
            anchored: plan.anchored,
            skipped: self.solver.optim.skipped() + self.proposer.optim.skipped() - skipped_before,
        })
    }
}

/// `(a(), b())`, side by side when `parallel` (the CPU), else one after the other: a GPU's
/// kernels go to one stream and one matrix library handle, which two host threads must not share.
fn side_by_side<A: Send, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if parallel {
        rayon::join(a, b)
    } else {
        (a(), b())
    }
}

/// One clipped policy-gradient update of a player (with its KL reference and settings) on
/// `pairs` (prompt, completion).
fn train(
    (player, reference, ppo): (&mut Trainable, Option<&Gpt>, &PpoConfig),
    pairs: &[(Vec<u32>, Vec<u32>)],
    advantages: &[f32],
    pad: u32,
) -> anyhow::Result<PpoOutcome> {
    Ok(ppo_update(player, reference, pairs, advantages, pad, ppo, policy::UPDATE_PART)?)
}

/// The proposals filtered self-training keeps: valid, fresh (no copy of the batch or the
/// archive), on their target, and solved at a rate inside the frontier band.
fn self_training_picks(
    candidates: &[judge::Candidate],
    target_misses: &[Option<f64>],
    rates: &[Option<f64>],
    band: &curriculum::FrontierBand,
) -> Vec<usize> {
    (0..candidates.len())
        .filter(|&i| {
            let c = &candidates[i];
            let on_target = target_misses[i].unwrap_or(0.0) == 0.0;
            let in_band = rates[i].is_some_and(|p| band.contains(p));
            c.analysis.is_ok() && c.repetition == judge::Repetition::Fresh && on_target && in_band
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proposer::objective::Baseline;

    use super::*;
    use crate::config::RunConfig;

    #[test]
    fn a_fresh_problem_beats_the_copies_asked_for_its_target() {
        // Rewards from the default judge: for one operation, a fresh problem solved every time
        // and two archive copies; for three, problems in the band.
        let cfg = RunConfig::default_config().reward;
        let reward = |p: f64, r| {
            cfg.reward(&judge::ProblemFacts {
                solve_rate: p,
                repetition: cfg.repetition.penalty(r, None),
                ..judge::ProblemFacts::default()
            })
            .total as f32
        };
        let rewards = [
            reward(1.0, judge::Repetition::Fresh),
            reward(1.0, judge::Repetition::Archive),
            reward(0.5, judge::Repetition::Fresh),
            reward(1.0, judge::Repetition::Archive),
            reward(0.375, judge::Repetition::Fresh),
            reward(0.875, judge::Repetition::Fresh),
        ];
        let targets = [1, 1, 3, 1, 3, 3].map(problem::Target::depth);
        for std in [false, true] {
            // Against the whole round the fresh one-operation problem is discouraged too.
            let batch = objective::advantages(&rewards, &targets, Baseline::Batch, std);
            assert!(batch[0] < 0.0 && batch[1] < batch[0], "{batch:?}");
            // Against its target's proposals it is encouraged, and the copies still are not.
            let target = objective::advantages(&rewards, &targets, Baseline::Target, std);
            assert!(target[0] > 0.0 && target[1] < 0.0 && target[3] < 0.0, "{target:?}");
            // At three operations, the nearer to one half the better, as before.
            assert!(target[2] > target[4] && target[4] > target[5], "{target:?}");
            let sum = |d: u32| (0..6).filter(|&i| targets[i].depth == d).map(|i| target[i]).sum::<f32>();
            assert!(sum(1).abs() < 1e-5 && sum(3).abs() < 1e-5, "{target:?}");
        }
    }

    #[test]
    fn self_training_keeps_fresh_on_target_problems_in_the_band() {
        let domain = problem::default_domain();
        let texts: Vec<String> =
            ["2+3", "2+3", "4*5", "7-1", "9*9", "1+"].iter().map(|s| s.to_string()).collect();
        let known =
            std::collections::HashSet::from([domain.analyze("9*9", &Default::default()).unwrap().hash]);
        let candidates = judge::judge_batch(domain, &Default::default(), &texts, &known);
        let band = curriculum::FrontierBand { low: 0.2, high: 0.8 };
        // 0: fresh, on target, p̂ 0.5 → kept; 1: a copy of 0; 2: off its target; 3: p̂ 1.0;
        // 4: a copy of the archive; 5: invalid.
        let misses = [Some(0.0), Some(0.0), Some(1.0), Some(0.0), Some(0.0), None];
        let rates = [Some(0.5), Some(0.5), Some(0.5), Some(1.0), Some(0.5), None];
        assert_eq!(self_training_picks(&candidates, &misses, &rates, &band), vec![0]);
    }
}
