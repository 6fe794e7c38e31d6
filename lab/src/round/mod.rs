//! One round of self-play, as `docs/DESIGN.md` ("One round") tells it. [`Lab::round`] runs the
//! phases in order, each a method over the values the one before produced, each timed:
//!
//! 1. **ask** — the curriculum picks a difficulty target per proposal;
//! 2. **propose** ([`propose`]) — prompts with reference problems from replay; the proposer writes;
//! 3. **judge** ([`judged`]) — validity, canonical form, padding, copies of the batch and the
//!    archive; what the generator would copy at the same targets;
//! 4. **tasks and attempts** ([`solve`]) — the valid proposals, replayed problems and rehearsal
//!    problems of the warm start's kind, each tried `round.attempts` times and verified exactly;
//! 5. **score and pay** ([`pay`]) — interestingness from the configured scorers, the reward term
//!    by term (a scorer's failure drops its term, never the round), the archive records;
//! 6. **archive** — every proposal, valid or not, in one flushed batch;
//! 7. **update** ([`update`]) — the solver on the problems it sometimes solves (group-relative
//!    advantages, clipped policy gradient), the proposer on its rewards;
//! 8. **observe** — the curriculum takes in the round: controller levels, skills, replay;
//! 9. **metrics** ([`metrics`]) — held-out accuracy on schedule, one `metrics.jsonl` line.

mod compose;
mod judged;
mod metrics;
mod pay;
mod probe;
mod propose;
mod solve;
mod update;

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use anyhow::Context;
use curriculum::{DifficultyController, Replay, ReplayItem, SkillGraph};
use policy::{Gpt, SampleConfig, Trainable};
use problem::{Domain, Limits};
use proposer::ProposerFormat;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use solver::SolverFormat;
use store::Archive;

use crate::config::RunConfig;
use crate::evaluate::{evaluate, Item};
use crate::rollouts::{InProcess, Rollouts};
use metrics::Outcome;
pub use metrics::{Diagnostics, RoundMetrics};

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

/// Times the phases of a round into [`Timings`].
struct Clock {
    started: Instant,
    timings: Timings,
}

impl Clock {
    fn start() -> Clock {
        Clock { started: Instant::now(), timings: Timings::default() }
    }

    /// Runs `f`, adding the seconds it took to the phase `slot` picks.
    fn time<T>(&mut self, slot: fn(&mut Timings) -> &mut f64, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        *slot(&mut self.timings) += t.elapsed().as_secs_f64();
        out
    }

    /// The timings, with the round's total.
    fn finish(mut self) -> Timings {
        self.timings.total = self.started.elapsed().as_secs_f64();
        self.timings
    }
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

/// Both players, the curriculum, and what a round needs to run. Built whole by [`Lab::new`];
/// what is outside reads it through its methods.
pub struct Lab {
    cfg: RunConfig,
    domain: &'static dyn Domain,
    solver: Trainable,
    proposer: Trainable,
    solver_format: SolverFormat,
    proposer_format: ProposerFormat,
    controller: DifficultyController,
    replay: Replay,
    skills: SkillGraph,
    length_curve: judge::LengthCurve,
    crowding: judge::Crowding,
    rng: ChaCha8Rng,
    /// Rounds completed.
    round: u64,
    /// Held-out problems (fixed seed) and their canonical hashes, never trained on.
    held_out: Vec<Item>,
    held_out_hashes: HashSet<u64>,
    /// Canonical hashes in the archive.
    known: HashSet<u64>,
    /// Frozen warm-start players, the references of the KL penalties (when their `kl_coef` > 0).
    solver_reference: Option<Gpt>,
    proposer_reference: Option<Gpt>,
    /// Interestingness scorers, when configured.
    scoring: Option<crate::scoring::Scoring>,
    /// Where the solver's attempts are sampled ([`crate::rollouts::InProcess`] unless set).
    rollouts: Box<dyn Rollouts>,
}

/// What a [`Lab`] is built from.
pub struct LabParts {
    /// The configuration, which names the domain too.
    pub cfg: RunConfig,
    pub solver: (Trainable, SolverFormat),
    pub proposer: (Trainable, ProposerFormat),
    /// Frozen warm-start players, the references of the KL penalties (when their `kl_coef` > 0).
    pub solver_reference: Option<Gpt>,
    pub proposer_reference: Option<Gpt>,
    /// The curriculum of a checkpoint, or `None` for a fresh one.
    pub state: Option<CurriculumState>,
    /// Rounds completed, when more than the state says: rounds the archive holds past the last
    /// checkpoint, whose numbers are never reused.
    pub completed_rounds: Option<u64>,
    /// Interestingness scorers, when configured.
    pub scoring: Option<crate::scoring::Scoring>,
}

/// Mastery threshold and evidence of the skill graph.
const MASTERY: f64 = 0.8;
const MIN_ATTEMPTS: u64 = 16;
/// Seed offset of the held-out problems: apart from any training stream.
const HELD_OUT_SEED: u64 = 0x00c0_ffee;

impl Lab {
    /// A lab over two trained players, the curriculum from `parts.state` (or fresh), the
    /// archive's canonical hashes known.
    pub fn new(parts: LabParts, archive: &Archive) -> anyhow::Result<Lab> {
        let LabParts {
            cfg,
            solver,
            proposer,
            solver_reference,
            proposer_reference,
            state,
            completed_rounds,
            scoring,
        } = parts;
        let domain = cfg.domain();
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
            round: state.round.max(completed_rounds.unwrap_or(0)),
            cfg,
            domain,
            solver: solver.0,
            solver_format: solver.1,
            proposer: proposer.0,
            proposer_format: proposer.1,
            held_out,
            held_out_hashes,
            known,
            solver_reference,
            proposer_reference,
            scoring,
            rollouts: Box::new(InProcess),
        })
    }

    /// Samples the solver's attempts with `rollouts` from the next round on.
    pub fn set_rollouts(&mut self, rollouts: Box<dyn Rollouts>) {
        self.rollouts = rollouts;
    }

    /// Rounds completed.
    pub fn completed_rounds(&self) -> u64 {
        self.round
    }

    /// Writes both players and the curriculum into `dir` (a new directory), each file synced:
    /// the contents of a round checkpoint.
    pub fn write_checkpoint(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        use problem::player::{Player, PlayerMeta};
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let meta = |player, max_new| PlayerMeta::new(player, self.domain, max_new);
        self.solver.save(
            &dir.join("solver"),
            meta(Player::Solver, self.solver_format.max_answer_tokens).to_value(),
        )?;
        let proposer = PlayerMeta {
            literal_bounds: self.proposer_format.literal_bounds().to_vec(),
            ..meta(Player::Proposer, self.proposer_format.max_problem_tokens)
        };
        self.proposer.save(&dir.join("proposer"), proposer.to_value())?;
        for (name, bytes) in [
            ("curriculum.json", serde_json::to_vec(&self.curriculum_state())?),
            ("skills.dot", self.skills.to_dot().into()),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, bytes)
                .and_then(|()| std::fs::File::open(&path)?.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        // The entries themselves, before the directory is renamed into place.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", dir.display()))
    }

    /// The curriculum as a checkpoint keeps it.
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

    /// Runs round `self.round + 1`, writing its problems to `archive`.
    pub fn round(&mut self, archive: &Archive) -> anyhow::Result<RoundMetrics> {
        let mut clock = Clock::start();
        let round = self.round + 1;
        let n = self.cfg.round.proposals;
        let sampling = SampleConfig { temperature: self.cfg.round.temperature, top_k: None, top_p: None };

        let targets = clock.time(|t| &mut t.curriculum, || self.controller.targets(n, &mut self.rng));
        let proposals = clock.time(|t| &mut t.propose, || self.propose(targets, &sampling))?;
        let judged = clock.time(|t| &mut t.judge, || self.judge(&proposals, round));
        let tasks = clock.time(|t| &mut t.curriculum, || self.draw_tasks(&judged, round))?;
        let (attempts, rollouts) = clock.time(|t| &mut t.solve, || self.attempt(&tasks, &sampling, round))?;
        let composed = clock.time(|t| &mut t.solve, || self.compose(&tasks, &attempts, &sampling))?;
        // Before the update, so that the generator's problems meet the solver the proposals met.
        let evaluating = round.is_multiple_of(self.cfg.eval_every);
        let probe = clock.time(
            |t| &mut t.eval,
            || {
                (evaluating && self.cfg.round.generator_probe > 0)
                    .then(|| self.generator_probe(&proposals.targets, &sampling, round))
                    .transpose()
            },
        )?;
        let interest = clock.time(|t| &mut t.score, || self.score(round, &judged, &tasks, &attempts));
        let mut paid = clock.time(
            |t| &mut t.store,
            || {
                let paid = self.pay(round, &proposals, &judged, &tasks, &attempts, interest);
                self.observe_paid(&judged, &paid);
                paid
            },
        );
        clock
            .time(|t| &mut t.store, || archive.append(&mut paid.records))
            .context("writing the round to the archive")?;
        let updates = clock.time(
            |t| &mut t.update,
            || self.update(&judged, &tasks, &attempts, &composed, &proposals, &paid),
        )?;
        let medians = clock.time(
            |t| &mut t.curriculum,
            || self.observe(round, &proposals, &judged, &tasks, &attempts, &paid),
        );
        let held_out =
            clock.time(|t| &mut t.eval, || evaluating.then(|| self.held_out_accuracy()).transpose())?;
        let timings = clock.finish();
        Ok(self.metrics(Outcome {
            round,
            proposals: &proposals,
            judged: &judged,
            tasks: &tasks,
            attempts: &attempts,
            paid: &paid,
            updates: &updates,
            composed: &composed,
            medians: &medians,
            held_out,
            probe,
            rollouts,
            timings,
        }))
    }

    /// The curriculum takes in the round: each literal bound's level follows the median solve
    /// rate of the proposals asked for it, and the copies among them; the valid proposals join
    /// the known hashes, the skill graph and (but held-out copies) replay; replayed problems
    /// return with their new solve rates. Returns the medians by bound.
    fn observe(
        &mut self,
        round: u64,
        proposals: &propose::Proposals,
        judged: &judged::Judged,
        tasks: &solve::Tasks,
        attempts: &solve::Attempts,
        paid: &pay::Paid,
    ) -> Vec<Option<f64>> {
        let targets = &proposals.targets;
        let mut rates_by_bound = vec![Vec::new(); self.controller.levels.len()];
        for (i, t) in tasks.of_proposal.iter().enumerate() {
            if let (Some(t), Some(class)) = (t, self.controller.class_of(&targets[i])) {
                rates_by_bound[class].push(attempts.rate(*t));
            }
        }
        let medians: Vec<Option<f64>> = rates_by_bound.iter().map(|r| curriculum::median(r)).collect();
        for (c, target) in judged.candidates.iter().zip(targets).filter(|(c, _)| c.analysis.is_ok()) {
            self.controller.observe_copy(target, pay::is_copy(c));
        }
        self.controller.update(&medians);
        for (i, r) in paid.records.iter().enumerate() {
            let (Some(t), Some(h)) = (tasks.of_proposal[i], r.canonical_hash) else { continue };
            self.known.insert(h);
            self.skills.observe(&self.domain.skills(&r.text), attempts.k as u64, attempts.correct(t));
            if !self.held_out_hashes.contains(&h) {
                self.replay.insert(ReplayItem {
                    id: r.id,
                    problem: r.text.clone(),
                    answer: r.answer.clone().unwrap_or_default(),
                    solve_rate: attempts.rate(t),
                    last_round: round,
                    attempts: attempts.k as u64,
                    correct: attempts.correct(t),
                });
            }
        }
        let replayed_tasks: Vec<usize> = tasks.indices(|s| s == solve::Source::Replayed).collect();
        for (item, t) in tasks.replayed.iter().zip(replayed_tasks) {
            self.replay.insert(ReplayItem {
                solve_rate: attempts.rate(t),
                last_round: round,
                attempts: item.attempts + attempts.k as u64,
                correct: item.correct + attempts.correct(t),
                ..item.clone()
            });
        }
        self.round = round;
        medians
    }
}
