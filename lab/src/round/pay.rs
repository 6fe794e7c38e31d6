//! Paying: the interestingness of the valid proposals, each proposal's reward term by term, and
//! its archive record with everything known about it.

use store::{ProblemRecord, Rewards};

use super::judged::Judged;
use super::propose::Proposals;
use super::solve::{Attempts, Tasks};
use super::Lab;

/// What the round paid, one entry per proposal, in order.
pub(super) struct Paid {
    /// The archive records (their ids are set once the archive has taken them).
    pub records: Vec<ProblemRecord>,
    /// Each proposal's reward, term by term.
    pub terms: Vec<judge::RewardTerms>,
    /// Each proposal's total reward: the proposer's policy-gradient signal.
    pub rewards: Vec<f32>,
    /// Each valid proposal's interestingness, as its scorers gave it.
    pub interestingness: Vec<Option<f64>>,
    /// Each valid proposal's shape, for the crowding term.
    pub shapes: Vec<Option<String>>,
}

impl Lab {
    /// The configured scorers' interestingness of each valid proposal, now that its solve rate
    /// is known (`None` for the others, or without scorers); the scorers then take the batch in.
    pub(super) fn score(
        &mut self,
        round: u64,
        judged: &Judged,
        tasks: &Tasks,
        attempts: &Attempts,
    ) -> Vec<Option<scorers::Combined>> {
        let mut interest: Vec<Option<scorers::Combined>> = vec![None; judged.candidates.len()];
        let Some(scoring) = &mut self.scoring else { return interest };
        let mut batch = Vec::new();
        let mut which = Vec::new();
        for (i, c) in judged.candidates.iter().enumerate() {
            if let (Ok(a), Some(t)) = (&c.analysis, tasks.of_proposal[i]) {
                batch.push(scorers::ScoreRequest {
                    id: format!("{round}-{i}"),
                    problem: c.text.clone(),
                    answer: a.answer.clone(),
                    solve_rate: Some(attempts.rate(t)),
                    canonical: a.canonical.clone(),
                    features: self.domain.features(&c.text, a),
                });
                which.push(i);
            }
        }
        for (i, combined) in which.iter().zip(scoring.score(&batch)) {
            interest[*i] = Some(combined);
        }
        let seen: Vec<scorers::Seen> = batch
            .into_iter()
            .map(|r| scorers::Seen { problem: r.problem, features: r.features, solve_rate: r.solve_rate })
            .collect();
        scoring.observe(&seen);
        interest
    }

    /// Each proposal's reward, term by term, and its archive record. A valid proposal is paid on
    /// its solve rate, padding, repetition (a copy's, or its shape's crowding), target miss,
    /// length residual and interestingness, all as known before this round.
    pub(super) fn pay(
        &self,
        round: u64,
        proposals: &Proposals,
        judged: &Judged,
        tasks: &Tasks,
        attempts: &Attempts,
        mut interest: Vec<Option<scorers::Combined>>,
    ) -> Paid {
        let cfg = &self.cfg;
        let n = judged.candidates.len();
        let now = store::now_ms();
        let proposer_version = format!("proposer@{}", self.proposer.optim.step_count());
        let solver_version = format!("solver@{}", self.solver.optim.step_count());
        let window = cfg.reward.repetition.crowding_window;
        let mut paid = Paid {
            records: Vec::with_capacity(n),
            terms: Vec::with_capacity(n),
            rewards: Vec::with_capacity(n),
            interestingness: vec![None; n],
            shapes: vec![None; n],
        };
        for (i, c) in judged.candidates.iter().enumerate() {
            let target = proposals.targets[i];
            let mut r = ProblemRecord {
                run: cfg.name.clone(),
                round,
                domain: self.domain.name().into(),
                text: c.text.clone(),
                difficulty_target: Some(target.depth),
                literal_target: target.max_literal,
                references: proposals.references[i].clone(),
                proposer_version: Some(proposer_version.clone()),
                created_ms: now,
                ..Default::default()
            };
            let terms = match (&c.analysis, tasks.of_proposal[i]) {
                (Ok(a), Some(t)) => {
                    let p_hat = attempts.rate(t);
                    r.valid = true;
                    r.answer = Some(a.answer.clone());
                    r.canonical = Some(a.canonical.clone());
                    r.canonical_hash = Some(a.hash);
                    r.surface_ops = Some(a.surface_ops);
                    r.essential_ops = Some(a.essential_ops);
                    r.depth = Some(a.depth);
                    r.padding = Some(a.padding);
                    r.repetition = Some(repetition_name(c.repetition).into());
                    r.attempts = attempts.per_task[t].iter().map(|(a, _)| a.clone()).collect();
                    r.solve_rate = Some(p_hat);
                    r.solver_version = Some(solver_version.clone());
                    let score = interest[i].as_ref().and_then(|c| c.interestingness);
                    paid.interestingness[i] = score;
                    if let Some(c) = interest[i].take() {
                        r.interestingness = c.interestingness;
                        r.scorer = c.scorer;
                        r.scorer_error = c.error;
                        r.scores = c
                            .verdicts
                            .into_iter()
                            .map(|v| store::ScorerScore {
                                scorer: v.scorer,
                                weight: v.weight,
                                score: v.score,
                                reason: v.reason,
                                error: v.error,
                            })
                            .collect();
                    }
                    let baseline =
                        self.length_curve.expected(problem_length(&c.text), cfg.reward.length.min_evidence);
                    let miss = judge::TargetPenalty::miss(a, Some(target));
                    let shape = self.domain.shape(a);
                    let repetition =
                        cfg.reward.repetition.penalty(c.repetition, self.crowding.share(&shape, window));
                    paid.shapes[i] = Some(shape);
                    cfg.reward.reward(&judge::ProblemFacts {
                        solve_rate: p_hat,
                        padding: a.padding,
                        repetition,
                        target_miss: miss,
                        length_baseline: baseline,
                        interestingness: score,
                        depth: a.depth.min(target.depth),
                    })
                }
                (Err(e), _) => {
                    r.reason = Some(e.kind.as_str().into());
                    r.error = Some(e.to_string());
                    cfg.reward.invalid_reward()
                }
                (Ok(_), None) => unreachable!("every valid candidate was attempted"),
            };
            paid.rewards.push(terms.total as f32);
            r.rewards = Some(stored_rewards(&terms));
            paid.terms.push(terms);
            paid.records.push(r);
        }
        paid
    }

    /// The length curve and the shapes' copies take in this round, after paying on what was
    /// known before it.
    pub(super) fn observe_paid(&mut self, judged: &Judged, paid: &Paid) {
        let cfg = &self.cfg.reward;
        for r in paid.records.iter().filter(|r| r.valid) {
            if let Some(p) = r.solve_rate {
                self.length_curve.observe(problem_length(&r.text), p, cfg.length.rate);
            }
        }
        for (c, shape) in judged.candidates.iter().zip(&paid.shapes) {
            if let Some(shape) = shape {
                self.crowding.observe(shape, is_copy(c), cfg.repetition.crowding_window);
            }
        }
    }
}

/// Whether a judged proposal repeats one of its round or the archive.
pub(super) fn is_copy(c: &judge::Candidate) -> bool {
    c.analysis.is_ok() && c.repetition != judge::Repetition::Fresh
}

/// A problem's length for the length curve: its tokens, one a character.
pub(super) fn problem_length(text: &str) -> u32 {
    text.chars().count().try_into().unwrap_or(u32::MAX)
}

/// The reward terms as the archive keeps them.
fn stored_rewards(terms: &judge::RewardTerms) -> Rewards {
    Rewards {
        frontier: terms.frontier,
        padding_factor: terms.padding_factor,
        length_baseline: terms.length_baseline,
        length_factor: Some(terms.length_factor),
        repetition: terms.repetition,
        interestingness: terms.interestingness,
        interestingness_weight: terms.interestingness_weight,
        target_miss: terms.target_miss,
        invalid: terms.invalid,
        total: terms.total,
    }
}

/// A repetition as the archive names it.
fn repetition_name(r: judge::Repetition) -> &'static str {
    match r {
        judge::Repetition::Fresh => "fresh",
        judge::Repetition::Batch { .. } => "batch",
        judge::Repetition::Archive => "archive",
    }
}
