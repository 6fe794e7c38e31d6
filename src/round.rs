//! One round of self-play, as `docs/DESIGN.md` ("One round") tells it:
//!
//! 1. the curriculum picks difficulty targets and reference problems;
//! 2. the proposer samples candidate problems;
//! 3. the judge parses, bounds, interprets and canonicalizes each, and finds repetitions;
//! 4. the solver makes `attempts` tries at each valid problem, at replayed ones and at rehearsal
//!    problems of the warm start's kind; each try is verified exactly, giving a solve rate p̂ per
//!    problem;
//! 5. the configured scorers rate each valid problem's interestingness, and the judge computes the
//!    proposer's reward, term by term (a scorer's failure drops its term, never the round);
//! 6. every candidate, valid or not, goes to the archive in one flushed batch;
//! 7. the solver is updated on the frontier problems, the replayed and rehearsed ones (group-relative
//!    advantages over each problem's attempts, clipped policy gradient), the proposer on its
//!    rewards (against the round's mean, or the mean of those asked for the same difficulty
//!    target); the curriculum takes in what it learnt.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use anyhow::Context;
use curriculum::{DifficultyController, Replay, ReplayItem, SkillGraph};
use policy::{group_advantages, keyed_advantages, ppo_update, Gpt, SampleConfig, Trainable};
use problem::{Domain, Limits, Special};
use proposer::ProposerFormat;
use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use solver::SolverFormat;
use store::{Archive, Attempt, ProblemRecord, Rewards};

use crate::config::{ProposerBaseline, RunConfig};
use crate::evaluate::{evaluate, Item};

/// Seconds spent in each phase of a round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub propose: f64,
    pub judge: f64,
    pub solve: f64,
    /// Interestingness scorers.
    #[serde(default)]
    pub score: f64,
    pub store: f64,
    pub update: f64,
    /// Difficulty targets, replay and rehearsal draws, and taking in the round's solve rates.
    #[serde(default)]
    pub curriculum: f64,
    pub eval: f64,
    pub total: f64,
}

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
    pub timings: Timings,
}

/// The state of the curriculum, saved with each checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurriculumState {
    pub controller: DifficultyController,
    pub replay: Replay,
    pub skills: Vec<(curriculum::Skill, curriculum::SkillStats, Vec<curriculum::Skill>)>,
    /// The solver's solve rate by problem length, for the length-residual term (absent from
    /// checkpoints written before it existed: it starts empty).
    #[serde(default)]
    pub length_curve: judge::LengthCurve,
    /// The share of copies by problem shape, for the crowding term (absent from checkpoints
    /// written before it existed: it starts empty).
    #[serde(default)]
    pub crowding: judge::Crowding,
    pub rng: ChaCha8Rng,
    /// Rounds completed.
    pub round: u64,
}

/// Both players, the curriculum, and what a round needs to run.
pub struct Lab {
    pub cfg: RunConfig,
    pub domain: &'static dyn Domain,
    pub solver: Trainable,
    pub proposer: Trainable,
    pub solver_format: SolverFormat,
    pub proposer_format: ProposerFormat,
    pub controller: DifficultyController,
    pub replay: Replay,
    pub skills: SkillGraph,
    pub length_curve: judge::LengthCurve,
    pub crowding: judge::Crowding,
    pub rng: ChaCha8Rng,
    /// Rounds completed.
    pub round: u64,
    /// Held-out problems (fixed seed) and their canonical hashes, never trained on.
    pub held_out: Vec<Item>,
    held_out_hashes: HashSet<u64>,
    /// Canonical hashes in the archive.
    known: HashSet<u64>,
    /// Frozen warm-start players, the references of the KL penalties (when their `kl_coef` > 0).
    pub solver_reference: Option<Gpt>,
    pub proposer_reference: Option<Gpt>,
    /// Interestingness scorers, when configured.
    pub scoring: Option<crate::scoring::Scoring>,
}

/// Whether a valid problem's record says it repeats one of its round or the archive.
fn is_copy(r: &ProblemRecord) -> bool {
    r.repetition.as_deref().is_some_and(|s| s != "fresh")
}

/// A problem's length for the length curve: its tokens, one a character.
fn problem_length(text: &str) -> u32 {
    text.chars().count().try_into().unwrap_or(u32::MAX)
}

/// Seed offset of the generator problems each round measures copies against.
const GENERATOR_SEED: u64 = 0x6765_6e65;

/// The generator's stream for `round`: its own, so that measuring what the generator would copy
/// changes nothing else a run draws.
fn generator_rng(seed: u64, round: u64) -> ChaCha8Rng {
    use rand::SeedableRng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ GENERATOR_SEED);
    rng.set_stream(round);
    rng
}

/// The share of copies (of each other or of `known`) among the valid problems of one draw from
/// the domain's generator per target, of the target's depth and literal bound (`max_literal`
/// without one); `None` when none is valid. A target the generator cannot draw is left out.
fn generator_duplicates(
    domain: &dyn Domain,
    limits: &Limits,
    targets: &[problem::Target],
    max_literal: u32,
    rng: &mut ChaCha8Rng,
    known: &dyn judge::KnownHashes,
) -> Option<f64> {
    let texts: Vec<String> = targets
        .iter()
        .filter_map(|t| {
            let spec = problem::GenSpec { depth: t.depth, max_literal: t.max_literal.unwrap_or(max_literal) };
            domain.generate(&spec, rng).ok().map(|g| g.problem)
        })
        .collect();
    let valid: Vec<judge::Repetition> = judge::judge_batch(domain, limits, &texts, known)
        .into_iter()
        .filter(|c| c.analysis.is_ok())
        .map(|c| c.repetition)
        .collect();
    let copies = valid.iter().filter(|r| **r != judge::Repetition::Fresh).count();
    (!valid.is_empty()).then(|| copies as f64 / valid.len() as f64)
}

/// Mastery threshold and evidence of the skill graph.
const MASTERY: f64 = 0.8;
const MIN_ATTEMPTS: u64 = 16;
/// Seed offset of the held-out problems: apart from any training stream.
const HELD_OUT_SEED: u64 = 0x00c0_ffee;

impl Lab {
    /// A lab over two trained players, the curriculum from `state` (or fresh).
    pub fn new(
        cfg: RunConfig,
        domain: &'static dyn Domain,
        solver: (Trainable, SolverFormat),
        proposer: (Trainable, ProposerFormat),
        state: Option<CurriculumState>,
        archive: &Archive,
    ) -> anyhow::Result<Lab> {
        use rand::SeedableRng;
        crate::config::literal_bounds_fit(
            &cfg.controller,
            proposer.1.literal_bounds(),
            "the proposer's checkpoint",
        )?;
        let state = state.unwrap_or_else(|| CurriculumState {
            controller: DifficultyController::new(cfg.controller.clone()),
            replay: Replay::new(cfg.replay),
            skills: Vec::new(),
            length_curve: judge::LengthCurve::default(),
            crowding: judge::Crowding::default(),
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            round: 0,
        });
        let mut held_out = Vec::new();
        for depth in 1..=cfg.eval_max_depth {
            held_out.extend(crate::warmstart::problems(
                domain,
                depth,
                cfg.eval_max_literal,
                cfg.eval_problems,
                HELD_OUT_SEED + u64::from(depth),
            )?);
        }
        let held_out_hashes = held_out
            .iter()
            .filter_map(|i| domain.analyze(&i.problem, &Limits::default()).ok().map(|a| a.hash))
            .collect();
        let known = archive.canonical_hashes()?;
        Ok(Lab {
            skills: SkillGraph::restore(MASTERY, MIN_ATTEMPTS, &state.skills),
            // The run's configuration bounds the targets, the state keeps the level.
            controller: state.controller.reconfigured(cfg.controller.clone()),
            replay: state.replay,
            length_curve: state.length_curve,
            crowding: state.crowding,
            rng: state.rng,
            round: state.round,
            cfg,
            domain,
            solver: solver.0,
            solver_format: solver.1,
            proposer: proposer.0,
            proposer_format: proposer.1,
            held_out,
            held_out_hashes,
            known,
            solver_reference: None,
            proposer_reference: None,
            scoring: None,
        })
    }

    pub fn curriculum_state(&self) -> CurriculumState {
        CurriculumState {
            controller: self.controller.clone(),
            replay: self.replay.clone(),
            skills: self.skills.snapshot(),
            length_curve: self.length_curve.clone(),
            crowding: self.crowding.clone(),
            rng: self.rng.clone(),
            round: self.round,
        }
    }

    /// Greedy held-out accuracy by depth.
    pub fn held_out_accuracy(&self) -> anyhow::Result<BTreeMap<u32, f64>> {
        use rand::SeedableRng;
        let r = evaluate(
            &self.solver.model,
            &self.solver_format,
            self.domain,
            &self.held_out,
            0,
            &mut ChaCha8Rng::seed_from_u64(0),
        )?;
        Ok(r.by_depth.into_iter().map(|(d, s)| (d, s.accuracy)).collect())
    }

    /// `n` fresh problems of the warm start's kind (its depths and literal bound), none of them a
    /// held-out problem, as `(text, answer)`.
    fn rehearsal_problems(&mut self, n: usize) -> anyhow::Result<Vec<(String, String)>> {
        let mut out = Vec::with_capacity(n);
        // Held-out problems are few among the generator's: a bounded number of redraws.
        for _ in 0..n * 4 {
            if out.len() == n {
                break;
            }
            let g = self.cfg.warm_start.solver.draw(self.domain, &mut self.rng)?;
            let held_out = self
                .domain
                .analyze(&g.problem, &Limits::default())
                .is_ok_and(|a| self.held_out_hashes.contains(&a.hash));
            if !held_out {
                out.push((g.problem, g.answer));
            }
        }
        Ok(out)
    }

    /// Runs round `self.round + 1`, writing its problems to `archive`.
    pub fn round(&mut self, archive: &Archive) -> anyhow::Result<RoundMetrics> {
        let started = Instant::now();
        let mut timings = Timings::default();
        let round = self.round + 1;
        let cfg = self.cfg.clone();
        let n = cfg.round.proposals;
        let k = cfg.round.attempts;
        let sampling = SampleConfig { temperature: cfg.round.temperature, top_k: None, top_p: None };

        // 1–2. Targets, references, proposals.
        let t = Instant::now();
        let targets = self.controller.targets(n, &mut self.rng);
        timings.curriculum = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut proposer_pairs = Vec::with_capacity(n);
        let mut references: Vec<Vec<u64>> = Vec::with_capacity(n);
        let mut requests = Vec::with_capacity(n);
        let ctx = self.proposer.model.config().context;
        for &target in &targets {
            let want = self.rng.random_range(0..=cfg.round.references);
            let refs: Vec<&ReplayItem> = self.replay.items().choose_multiple(&mut self.rng, want).collect();
            let texts: Vec<&str> = refs.iter().map(|r| r.problem.as_str()).collect();
            let mut req = self.proposer_format.request(target, &texts)?;
            let mut ids: Vec<u64> = refs.iter().map(|r| r.id).collect();
            if req.prompt.len() + req.max_new > ctx {
                req = self.proposer_format.request(target, &[])?;
                ids.clear();
            }
            references.push(ids);
            requests.push(req);
        }
        let proposals = policy::sample(&self.proposer.model, &requests, &sampling, &mut self.rng, true)?;
        let texts: Vec<String> = proposals.iter().map(|s| self.proposer_format.parse(s).text).collect();
        timings.propose = t.elapsed().as_secs_f64();

        // 3. Judge.
        let t = Instant::now();
        let solver_ctx = self.solver.model.config().context;
        let limits = Limits {
            max_tokens: cfg
                .round
                .max_problem_tokens
                .min(solver_ctx.saturating_sub(2 + self.solver_format.max_answer_tokens).max(1)),
            max_nesting: Limits::default().max_nesting,
        };
        let candidates = judge::judge_batch(self.domain, &limits, &texts, &self.known);
        let generator_duplicate_fraction = generator_duplicates(
            self.domain,
            &limits,
            &targets,
            cfg.warm_start.proposer.max_literal,
            &mut generator_rng(cfg.seed, round),
            &self.known,
        );
        timings.judge = t.elapsed().as_secs_f64();

        // 4. Solve: fresh valid problems and replayed ones, `k` attempts each.
        let t = Instant::now();
        let replayed = self.replay.sample(cfg.round.replay, round, &mut self.rng);
        let rehearsed = self.rehearsal_problems(cfg.round.rehearsal)?;
        timings.curriculum += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut problems: Vec<(String, String)> = Vec::new(); // (text, answer)
        let mut held_out_copy: Vec<bool> = Vec::new();
        let mut fresh_index: Vec<Option<usize>> = vec![None; n];
        for (i, c) in candidates.iter().enumerate() {
            if let Ok(a) = &c.analysis {
                fresh_index[i] = Some(problems.len());
                problems.push((c.text.clone(), a.answer.clone()));
                held_out_copy.push(self.held_out_hashes.contains(&a.hash));
            }
        }
        let first_replayed = problems.len();
        problems.extend(replayed.iter().map(|r| (r.problem.clone(), r.answer.clone())));
        let first_rehearsed = problems.len();
        problems.extend(rehearsed);
        let mut solve_requests = Vec::with_capacity(problems.len() * k);
        for (text, _) in &problems {
            solve_requests.extend(self.solver_format.requests(text, k)?);
        }
        let attempts = policy::sample(&self.solver.model, &solve_requests, &sampling, &mut self.rng, true)?;
        let mut verdicts: Vec<Vec<(Attempt, Vec<u32>)>> = vec![Vec::with_capacity(k); problems.len()];
        for (j, s) in attempts.iter().enumerate() {
            let p = j / k;
            let output = self.solver_format.output_text(s);
            let v = judge::verify(self.domain, &problems[p].1, &output);
            verdicts[p].push((Attempt { output, answer: v.answer, correct: v.correct }, s.tokens.clone()));
        }
        let rate = |p: usize| verdicts[p].iter().filter(|(a, _)| a.correct).count() as f64 / k as f64;
        timings.solve = t.elapsed().as_secs_f64();

        // 5. Interestingness of the fresh valid problems, now that their solve rates are known.
        let t = Instant::now();
        let mut interest: Vec<Option<scorers::Combined>> = vec![None; n];
        if let Some(scoring) = &mut self.scoring {
            let mut batch = Vec::new();
            let mut which = Vec::new();
            for (i, c) in candidates.iter().enumerate() {
                if let (Ok(a), Some(p)) = (&c.analysis, fresh_index[i]) {
                    batch.push(scorers::ScoreRequest {
                        id: format!("{round}-{i}"),
                        problem: c.text.clone(),
                        answer: a.answer.clone(),
                        solve_rate: Some(rate(p)),
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
        }
        timings.score = t.elapsed().as_secs_f64();

        // 5–6. Rewards and the archive.
        let t = Instant::now();
        let now = store::now_ms();
        let proposer_version = format!("proposer@{}", self.proposer.optim.step_count());
        let solver_version = format!("solver@{}", self.solver.optim.step_count());
        let mut records = Vec::with_capacity(n);
        let mut rewards = Vec::with_capacity(n);
        // Each valid proposal's shape, for the crowding term and to take in after paying.
        let mut shapes: Vec<Option<String>> = vec![None; n];
        let window = cfg.reward.repetition.crowding_window;
        for (i, c) in candidates.iter().enumerate() {
            let mut r = ProblemRecord {
                run: cfg.name.clone(),
                round,
                domain: self.domain.name().into(),
                text: c.text.clone(),
                difficulty_target: Some(targets[i].depth),
                literal_target: targets[i].max_literal,
                references: references[i].clone(),
                proposer_version: Some(proposer_version.clone()),
                created_ms: now,
                ..Default::default()
            };
            let terms = match (&c.analysis, fresh_index[i]) {
                (Ok(a), Some(p)) => {
                    let p_hat = rate(p);
                    r.valid = true;
                    r.answer = Some(a.answer.clone());
                    r.canonical = Some(a.canonical.clone());
                    r.canonical_hash = Some(a.hash);
                    r.surface_ops = Some(a.surface_ops);
                    r.essential_ops = Some(a.essential_ops);
                    r.depth = Some(a.depth);
                    r.padding = Some(a.padding);
                    r.repetition = Some(repetition_name(c.repetition).into());
                    r.attempts = verdicts[p].iter().map(|(a, _)| a.clone()).collect();
                    r.solve_rate = Some(p_hat);
                    r.solver_version = Some(solver_version.clone());
                    let score = interest[i].as_ref().and_then(|c| c.interestingness);
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
                    let miss = judge::TargetPenalty::miss(a, Some(targets[i]));
                    let shape = self.domain.shape(a);
                    let repetition =
                        cfg.reward.repetition.penalty(c.repetition, self.crowding.share(&shape, window));
                    shapes[i] = Some(shape);
                    cfg.reward.reward(p_hat, a.padding, repetition, miss, baseline, score)
                }
                (Err(e), _) => {
                    r.reason = Some(e.kind.as_str().into());
                    r.error = Some(e.to_string());
                    cfg.reward.invalid_reward()
                }
                (Ok(_), None) => unreachable!("every valid candidate was attempted"),
            };
            rewards.push(terms.total as f32);
            r.rewards = Some(Rewards {
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
            });
            records.push(r);
        }
        // The length curve and the shapes' copies take in this round after paying on what was
        // known before it.
        for r in records.iter().filter(|r| r.valid) {
            if let Some(p) = r.solve_rate {
                self.length_curve.observe(problem_length(&r.text), p, cfg.reward.length.rate);
            }
        }
        for (r, shape) in records.iter().zip(&shapes) {
            if let Some(shape) = shape {
                self.crowding.observe(shape, is_copy(r), window);
            }
        }
        archive.append(&mut records).context("writing the round to the archive")?;
        timings.store = t.elapsed().as_secs_f64();

        // 7. Updates.
        let t = Instant::now();
        let skipped_before = self.solver.optim.skipped() + self.proposer.optim.skipped();
        let sources: Vec<Source> = (0..problems.len())
            .map(|p| {
                if p < first_replayed {
                    Source::Fresh { held_out: held_out_copy[p] }
                } else if p < first_rehearsed {
                    Source::Replayed
                } else {
                    Source::Rehearsed
                }
            })
            .collect();
        let outcomes: Vec<Vec<bool>> =
            verdicts.iter().map(|v| v.iter().map(|(a, _)| a.correct).collect()).collect();
        let plan = solver_plan(
            &outcomes,
            &sources,
            &cfg.frontier,
            cfg.round.anchor,
            cfg.solver_ppo.estimator.normalizes_std(),
        );
        let mut solver_pairs = Vec::new();
        let mut solver_adv = Vec::new();
        for (p, advantages) in &plan.problems {
            let prompt = self.solver_format.prompt(&problems[*p].0)?;
            for ((_, tokens), a) in verdicts[*p].iter().zip(advantages) {
                solver_pairs.push((prompt.clone(), tokens.clone()));
                solver_adv.push(*a);
            }
        }
        let (trained, anchored) = (plan.trained, plan.anchored);
        let pad = self.solver_format.tokenizer().special(Special::Pad);
        let solver_loss = if solver_pairs.is_empty() {
            None
        } else {
            Some(ppo_update(
                &mut self.solver,
                self.solver_reference.as_ref(),
                &solver_pairs,
                &solver_adv,
                pad,
                &cfg.solver_ppo,
                policy::UPDATE_PART,
            )?)
        };
        for (req, s) in requests.iter().zip(&proposals) {
            proposer_pairs.push((req.prompt.clone(), s.tokens.clone()));
        }
        let proposer_adv = proposer_advantages(
            &rewards,
            &targets,
            cfg.round.proposer_baseline,
            cfg.proposer_ppo.estimator.normalizes_std(),
        );
        let proposer_loss = if proposer_adv.iter().all(|a| *a == 0.0) {
            None
        } else {
            Some(ppo_update(
                &mut self.proposer,
                self.proposer_reference.as_ref(),
                &proposer_pairs,
                &proposer_adv,
                pad,
                &cfg.proposer_ppo,
                policy::UPDATE_PART,
            )?)
        };
        timings.update = t.elapsed().as_secs_f64();

        // The curriculum takes in the round.
        let t = Instant::now();
        let fresh_rates: Vec<f64> = (0..first_replayed).map(rate).collect();
        let rehearsal_rates: Vec<f64> = (first_rehearsed..problems.len()).map(rate).collect();
        // Each literal bound's level follows the proposals asked for it.
        let mut rates_by_bound = vec![Vec::new(); self.controller.levels.len()];
        for (i, p) in fresh_index.iter().enumerate() {
            if let (Some(p), Some(class)) = (p, self.controller.class_of(&targets[i])) {
                rates_by_bound[class].push(rate(*p));
            }
        }
        let medians: Vec<Option<f64>> = rates_by_bound.iter().map(|r| curriculum::median(r)).collect();
        for (r, target) in records.iter().zip(&targets).filter(|(r, _)| r.valid) {
            self.controller.observe_copy(target, is_copy(r));
        }
        self.controller.update(&medians);
        for (i, r) in records.iter().enumerate() {
            let (Some(p), Some(h)) = (fresh_index[i], r.canonical_hash) else { continue };
            self.known.insert(h);
            let correct = verdicts[p].iter().filter(|(a, _)| a.correct).count() as u64;
            self.skills.observe(&self.domain.skills(&r.text), k as u64, correct);
            if !self.held_out_hashes.contains(&h) {
                self.replay.insert(ReplayItem {
                    id: r.id,
                    problem: r.text.clone(),
                    answer: r.answer.clone().unwrap_or_default(),
                    solve_rate: rate(p),
                    last_round: round,
                });
            }
        }
        for (j, item) in replayed.into_iter().enumerate() {
            self.replay.insert(ReplayItem {
                solve_rate: rate(first_replayed + j),
                last_round: round,
                ..item
            });
        }
        self.round = round;
        timings.curriculum += t.elapsed().as_secs_f64();

        let t = Instant::now();
        let held_out = if round % cfg.eval_every == 0 { Some(self.held_out_accuracy()?) } else { None };
        timings.eval = t.elapsed().as_secs_f64();
        timings.total = started.elapsed().as_secs_f64();

        let valid: Vec<&ProblemRecord> = records.iter().filter(|r| r.valid).collect();
        let nv = valid.len().max(1) as f64;
        let bounds = self.controller.bounds();
        // Values by literal bound, when the controller asks for bounds.
        let by_bound = |values: &[Option<f64>]| -> Option<BTreeMap<u32, f64>> {
            let m: BTreeMap<u32, f64> =
                bounds.iter().zip(values).filter_map(|(b, v)| Some(((*b)?, (*v)?))).collect();
            (!m.is_empty()).then_some(m)
        };
        let mean = |f: &dyn Fn(&ProblemRecord) -> Option<f64>| -> Option<f64> {
            let v: Vec<f64> = valid.iter().filter_map(|r| f(r)).collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        Ok(RoundMetrics {
            round,
            proposals: n,
            valid_fraction: valid.len() as f64 / n as f64,
            padded_fraction: valid.iter().filter(|r| r.essential_ops < r.surface_ops).count() as f64 / nv,
            duplicate_fraction: valid.iter().filter(|r| is_copy(r)).count() as f64 / nv,
            generator_duplicate_fraction,
            mean_crowding: mean(&|r| (!is_copy(r)).then(|| r.rewards.as_ref().map_or(0.0, |w| w.repetition))),
            mean_surface_ops: mean(&|r| r.surface_ops.map(f64::from)),
            mean_essential_ops: mean(&|r| r.essential_ops.map(f64::from)),
            median_solve_rate: curriculum::median(&fresh_rates),
            band_fraction: fresh_rates.iter().filter(|&&p| cfg.frontier.contains(p)).count() as f64 / nv,
            mean_reward: rewards.iter().map(|&r| f64::from(r)).sum::<f64>() / n as f64,
            mean_frontier: mean(&|r| r.rewards.as_ref().and_then(|w| w.frontier)),
            mean_length_factor: mean(&|r| r.rewards.as_ref().and_then(|w| w.length_factor)),
            proposer_output_tokens: proposals.iter().map(|s| s.tokens.len() as f64).sum::<f64>() / n as f64,
            rehearsal_solve_rate: (!rehearsal_rates.is_empty())
                .then(|| rehearsal_rates.iter().sum::<f64>() / rehearsal_rates.len() as f64),
            solver_problems_trained: trained,
            solver_problems_anchored: anchored,
            solver_loss: solver_loss.map(|l| l.loss),
            proposer_loss: proposer_loss.map(|l| l.loss),
            solver_kl: solver_loss.map(|l| l.kl),
            proposer_kl: proposer_loss.map(|l| l.kl),
            skipped_updates: self.solver.optim.skipped() + self.proposer.optim.skipped() - skipped_before,
            difficulty_level: self.controller.level(),
            difficulty_levels: by_bound(&self.controller.levels.iter().map(|&l| Some(l)).collect::<Vec<_>>()),
            median_solve_rates: by_bound(&medians),
            skipped_depths: self.controller.skipped_depths(0),
            on_target_fraction: mean(&|r| Some(1.0 - r.rewards.as_ref()?.target_miss?)),
            replay_size: self.replay.len(),
            held_out,
            scored_fraction: self
                .scoring
                .is_some()
                .then(|| valid.iter().filter(|r| r.interestingness.is_some()).count() as f64 / nv),
            mean_interestingness: mean(&|r| r.interestingness),
            scorers: self.scoring.as_ref().map(|s| s.health()),
            problems_per_s: n as f64 / timings.total,
            timings,
        })
    }
}

/// Where a problem the solver tried this round came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Written by the proposer this round (`held_out`: a copy of a held-out problem).
    Fresh { held_out: bool },
    /// Replayed from the archive.
    Replayed,
    /// A fresh problem of the warm start's kind.
    Rehearsed,
}

/// The problems of a round the solver is trained on, each with one advantage per attempt.
#[derive(Debug, Default, PartialEq)]
struct SolverPlan {
    problems: Vec<(usize, Vec<f32>)>,
    /// Problems trained on for their group-relative advantages.
    trained: usize,
    /// Rehearsal problems solved every time, trained on with the anchor advantage.
    anchored: usize,
}

/// Which problems the solver learns from, given whether each attempt was right: fresh problems in
/// the frontier band (never a held-out copy), replayed and rehearsed ones solved sometimes but not
/// always — with group-relative advantages — and, when `anchor > 0`, rehearsal problems solved
/// every time, each attempt with advantage `anchor` (their group advantage would be 0).
fn solver_plan(
    outcomes: &[Vec<bool>],
    sources: &[Source],
    band: &curriculum::FrontierBand,
    anchor: f64,
    normalize_std: bool,
) -> SolverPlan {
    let mut plan = SolverPlan::default();
    for (p, (attempts, source)) in outcomes.iter().zip(sources).enumerate() {
        if attempts.is_empty() {
            continue;
        }
        let p_hat = attempts.iter().filter(|&&c| c).count() as f64 / attempts.len() as f64;
        let usable = match source {
            Source::Fresh { held_out } => band.contains(p_hat) && !held_out,
            Source::Replayed | Source::Rehearsed => p_hat > 0.0 && p_hat < 1.0,
        };
        if usable {
            let rewards: Vec<f32> = attempts.iter().map(|&c| if c { 1.0 } else { 0.0 }).collect();
            plan.problems.push((p, group_advantages(&rewards, rewards.len(), normalize_std)));
            plan.trained += 1;
        } else if anchor > 0.0 && *source == Source::Rehearsed && p_hat == 1.0 {
            plan.problems.push((p, vec![anchor as f32; attempts.len()]));
            plan.anchored += 1;
        }
    }
    plan
}

/// The proposer's advantages: each proposal's reward against its baseline (see
/// [`ProposerBaseline`]); `targets` are the difficulty targets the proposals were asked for.
fn proposer_advantages(
    rewards: &[f32],
    targets: &[problem::Target],
    baseline: ProposerBaseline,
    normalize_std: bool,
) -> Vec<f32> {
    match baseline {
        ProposerBaseline::Target => keyed_advantages(rewards, targets, normalize_std),
        ProposerBaseline::Batch => group_advantages(rewards, rewards.len(), normalize_std),
    }
}

fn repetition_name(r: judge::Repetition) -> &'static str {
    match r {
        judge::Repetition::Fresh => "fresh",
        judge::Repetition::Batch { .. } => "batch",
        judge::Repetition::Archive => "archive",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAND: curriculum::FrontierBand = curriculum::FrontierBand { low: 0.2, high: 0.8 };

    fn attempts(right: usize, of: usize) -> Vec<bool> {
        (0..of).map(|i| i < right).collect()
    }

    #[test]
    fn the_solver_learns_from_the_band_and_from_what_it_sometimes_solves() {
        let outcomes = [
            attempts(2, 4), // fresh, p̂ 0.5: in the band
            attempts(4, 4), // fresh, always solved: nothing to learn
            attempts(2, 4), // fresh, but a copy of a held-out problem
            attempts(1, 8), // replayed, p̂ 0.125: below the band, solved sometimes
            attempts(0, 4), // rehearsed, never solved
            attempts(4, 4), // rehearsed, always solved
        ];
        let sources = [
            Source::Fresh { held_out: false },
            Source::Fresh { held_out: false },
            Source::Fresh { held_out: true },
            Source::Replayed,
            Source::Rehearsed,
            Source::Rehearsed,
        ];
        let plan = solver_plan(&outcomes, &sources, &BAND, 0.0, true);
        assert_eq!(plan.problems.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![0, 3]);
        assert_eq!((plan.trained, plan.anchored), (1 + 1, 0));
        // Group-relative: right attempts above the group's mean, wrong ones below, summing to 0.
        let (_, adv) = &plan.problems[0];
        assert!(adv[0] > 0.0 && adv[1] > 0.0 && adv[2] < 0.0 && adv[3] < 0.0);
        assert!(adv.iter().sum::<f32>().abs() < 1e-5);
        assert_eq!(plan.problems[1].1, group_advantages(&[1., 0., 0., 0., 0., 0., 0., 0.], 8, true));

        // With an anchor, the rehearsal problem solved every time enters with that advantage;
        // fresh problems solved every time and unsolved ones still do not.
        let plan = solver_plan(&outcomes, &sources, &BAND, 0.5, true);
        assert_eq!(plan.problems.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![0, 3, 5]);
        assert_eq!((plan.trained, plan.anchored), (2, 1));
        assert_eq!(plan.problems[2].1, vec![0.5; 4]);
    }

    #[test]
    fn a_fresh_problem_beats_the_copies_asked_for_its_target() {
        // Rewards from the default judge: for one operation, a fresh problem solved every time
        // and two archive copies; for three, problems in the band.
        let cfg = RunConfig::default_config().reward;
        let reward =
            |p: f64, r| cfg.reward(p, 0.0, cfg.repetition.penalty(r, None), 0.0, None, None).total as f32;
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
            let batch = proposer_advantages(&rewards, &targets, ProposerBaseline::Batch, std);
            assert!(batch[0] < 0.0 && batch[1] < batch[0], "{batch:?}");
            // Against its target's proposals it is encouraged, and the copies still are not.
            let target = proposer_advantages(&rewards, &targets, ProposerBaseline::Target, std);
            assert!(target[0] > 0.0 && target[1] < 0.0 && target[3] < 0.0, "{target:?}");
            // At three operations, the nearer to one half the better, as before.
            assert!(target[2] > target[4] && target[4] > target[5], "{target:?}");
            let sum = |d: u32| (0..6).filter(|&i| targets[i].depth == d).map(|i| target[i]).sum::<f32>();
            assert!(sum(1).abs() < 1e-5 && sum(3).abs() < 1e-5, "{target:?}");
        }
    }

    #[test]
    fn the_generator_copies_what_the_archive_holds_at_the_targets_asked() {
        use rand::RngCore;
        let domain: &dyn Domain = &problem::Arith;
        let limits = Limits::default();
        let hash = |text: &str| domain.analyze(text, &limits).expect("generated problems are valid").hash;
        // Every one-operation problem with literals up to 1, from a stream of its own.
        let mut rng = generator_rng(7, 0);
        let small = problem::GenSpec { depth: 1, max_literal: 1 };
        let tiny: HashSet<u64> =
            (0..2000).map(|_| hash(&domain.generate(&small, &mut rng).unwrap().problem)).collect();
        let copies = |targets: &[problem::Target], known: &HashSet<u64>, round: u64| {
            generator_duplicates(domain, &limits, targets, 20, &mut generator_rng(1, round), known)
        };
        // Asked for literals up to 1, the generator writes nothing the archive does not hold;
        // without a bound it keeps to `max_literal` (20), and most of its problems are new.
        let bounded = vec![problem::Target { depth: 1, max_literal: Some(1) }; 64];
        assert_eq!(copies(&bounded, &tiny, 1), Some(1.0));
        let unbounded = vec![problem::Target::depth(1); 64];
        let share = copies(&unbounded, &tiny, 1).unwrap();
        assert!(share < 0.2, "{share}");
        // With nothing archived, a copy is one of the round's own: many among 64 problems from a
        // handful, none among 32 four-operation problems.
        let none = HashSet::new();
        let share = copies(&bounded, &none, 1).unwrap();
        assert!(share > 1.0 - tiny.len() as f64 / 64.0 - 1e-9 && share < 1.0, "{share} of {}", tiny.len());
        assert_eq!(copies(&vec![problem::Target::depth(4); 32], &none, 1), Some(0.0));
        // Depth 2 against half of a depth-2 archive: between nothing and everything.
        let two = problem::GenSpec { depth: 2, max_literal: 20 };
        let half: HashSet<u64> =
            (0..3000).map(|_| hash(&domain.generate(&two, &mut rng).unwrap().problem)).collect();
        let share = copies(&vec![problem::Target::depth(2); 256], &half, 3).unwrap();
        assert!(share > 0.02 && share < 0.5, "{share}");
        // Problems the judge refuses are not counted, and none valid gives no share.
        let short = Limits { max_tokens: 2, ..Limits::default() };
        let mut r = generator_rng(1, 1);
        assert_eq!(generator_duplicates(domain, &short, &unbounded, 20, &mut r, &none), None);
        assert_eq!(generator_duplicates(domain, &limits, &[], 20, &mut r, &none), None);
        // Each round has its own stream, the same on every run with the seed.
        assert_eq!(generator_rng(1, 5).next_u64(), generator_rng(1, 5).next_u64());
        assert_ne!(generator_rng(1, 5).next_u64(), generator_rng(1, 6).next_u64());
        assert_ne!(generator_rng(1, 5).next_u64(), generator_rng(2, 5).next_u64());
    }
}
