//! Warm start: the supervised training both players get before self-play.
//!
//! Atomic skills come from pretraining, composition from RL. The solver learns the atomic step —
//! evaluating one operation — written as worked solutions of short problems (`answers = "steps"`:
//! `(3+4)*2` → `7*2=14`, depths `min_depth..=max_depth`, 1–3 by default), or, with
//! `answers = "direct"`, exact answers alone; the proposer learns to write well-formed problems of the depth
//! its difficulty token asks for, with and without reference problems in its prompt (unrelated
//! ones, or the problems it is taught to write mutated: [`proposer_examples`]), a
//! `proposer_padding` share of them padded with identities on top of that depth, a
//! `proposer_wide_literals` share with literals beyond the solver's; a `solver_padding` share of
//! the solver's problems may be padded the same way and worked through. Each stops at
//! its step budget or when its validation score (the solver's accuracy at its hardest depth, the
//! proposer's held-out loss) has not improved for `patience` evaluations once it left its first
//! value.
//! Afterwards the solver's accuracy is measured by depth: near perfect on the trained depths is
//! the goal; longer chains, made long and right, are what self-play must teach.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context};
use candle_core::Device;
use policy::{
    cross_entropy, cross_entropy_grads, Batch, Dropout, ModelConfig, OptimConfig, SampleConfig, Trainable,
};
use problem::{Domain, GenSpec, Generated, Limits, Special};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::evaluate::{evaluate, Item};
pub use proposer_examples::ReferenceUse;

mod proposer_examples;
use problem::player::{Player, PlayerMeta, DIFFICULTY_LEVELS};

/// How one player is shaped and trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlayerTraining {
    pub d_model: usize,
    pub layers: usize,
    pub heads: usize,
    pub context: usize,
    pub dropout: f64,
    /// `learned` (an embedding per absolute position) or `rotary` (relative positions).
    pub positions: policy::Positions,
    pub optim: OptimConfig,
    /// Step budget.
    pub steps: u64,
    pub batch: usize,
    /// Validate every this many steps.
    pub eval_every: u64,
    /// Stop after this many validations without improvement (0: never stop early).
    pub patience: u32,
    /// Depths of the training problems (inclusive).
    pub min_depth: u32,
    pub max_depth: u32,
    pub max_literal: u32,
    /// Longest completion the player writes.
    pub max_new_tokens: usize,
}

impl Default for PlayerTraining {
    fn default() -> Self {
        PlayerTraining {
            d_model: 128,
            layers: 2,
            heads: 4,
            context: 64,
            dropout: 0.0,
            positions: policy::Positions::Learned,
            optim: OptimConfig {
                lr: 2e-3,
                min_lr: 2e-4,
                warmup_steps: 50,
                decay_steps: 1500,
                ..OptimConfig::default()
            },
            steps: 1500,
            batch: 64,
            eval_every: 250,
            patience: 3,
            min_depth: 1,
            max_depth: 1,
            max_literal: 20,
            max_new_tokens: 12,
        }
    }
}

impl PlayerTraining {
    fn model(&self, vocab: usize) -> ModelConfig {
        ModelConfig {
            vocab,
            d_model: self.d_model,
            layers: self.layers,
            heads: self.heads,
            context: self.context,
            dropout: self.dropout,
            positions: self.positions,
        }
    }

    /// One problem of the kind this player trains on: a depth drawn from `min_depth..=max_depth`,
    /// literals up to `max_literal`.
    pub fn draw(&self, domain: &dyn Domain, rng: &mut ChaCha8Rng) -> Result<Generated, problem::GenError> {
        self.draw_up_to(self.max_literal, domain, rng)
    }

    /// [`Self::draw`] with literals up to `max_literal`.
    pub(crate) fn draw_up_to(
        &self,
        max_literal: u32,
        domain: &dyn Domain,
        rng: &mut ChaCha8Rng,
    ) -> Result<Generated, problem::GenError> {
        let depth = rng.random_range(self.min_depth..=self.max_depth);
        domain.generate(&GenSpec { depth, max_literal }, rng)
    }

    pub fn validate(&self, name: &str, domain: &dyn Domain) -> anyhow::Result<()> {
        let fail = |what: String| anyhow::anyhow!("{name}.{what}");
        self.model(1).validate().map_err(fail)?;
        self.optim.validate().map_err(fail)?;
        if self.batch == 0 || self.eval_every == 0 {
            bail!("{name}.batch and {name}.eval_every must be positive");
        }
        if self.min_depth > self.max_depth {
            bail!("{name}.min_depth must not exceed {name}.max_depth");
        }
        if self.max_new_tokens + 3 > self.context {
            bail!("{name}.context must leave room for a prompt and {name}.max_new_tokens");
        }
        if let Some(most) = domain.max_literal().filter(|&m| self.max_literal > m) {
            bail!("{name}.max_literal must be at most {most}");
        }
        Ok(())
    }
}

/// Both players' warm start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarmStartConfig {
    pub seed: u64,
    /// Most spaces put before a solver training problem, drawn uniformly from `0..=this`: each
    /// skill is then learnt at many positions, not only where short problems put it (learned
    /// position embeddings are otherwise blind to a step written further along a chain).
    pub solver_shift: usize,
    /// What the solver is taught to write: `steps` (worked solutions), `values` (the value of each
    /// step) or `direct` (answers).
    pub solver_answers: solver::AnswerStyle,
    /// Fraction of the solver's training problems padded with the domain's padding edits (one to
    /// `solver_padding_ops`): `+0` and `*1` in arithmetic, dead statements, unused variables and
    /// the like in programs, each worked through like any other step. A solver never shown
    /// padding may be thrown by it altogether, and then padding buys a proposer too much
    /// difficulty to be worth writing, with or without the judge's padding terms.
    pub solver_padding: f64,
    /// Most padding edits in one padded solver training problem (drawn from 1 to this).
    pub solver_padding_ops: u32,
    /// Fraction of the proposer's training problems written with padding: identities (`+0`, `*1`,
    /// ...) on top of the operations its difficulty token asks for, which stay the problem's
    /// essential depth. A proposer that never writes padding gives the padding terms nothing to
    /// hold back and self-play nothing to amplify; a pretrained language model has this prior.
    pub proposer_padding: f64,
    /// Most identities in one padded training problem (drawn from 1 to this).
    pub proposer_padding_ops: u32,
    /// Fraction of the proposer's training problems whose literals go up to
    /// `proposer_wide_max_literal` instead of `proposer.max_literal`. A proposer that has only
    /// seen literals up to 20 writes one-operation problems from a space of about 800, which the
    /// archive holds within a few hundred rounds: every problem it can write is then a copy, and
    /// the repetition terms have nothing fresh to steer it to. With wide literals it has, and
    /// takes them — and makes problems hard with large literals, which no difficulty target
    /// governs.
    pub proposer_wide_literals: f64,
    /// Largest literal of those problems (never below `proposer.max_literal`).
    pub proposer_wide_max_literal: u32,
    /// With wide literals: tell the proposer which bound each training problem keeps to, with a
    /// literal-bound token in its prompt (`<l0>`: `proposer.max_literal`, `<l1>`: the wide
    /// bound), so that the controller can ask for one (`controller.literals`). Without, the
    /// proposer chooses its literals itself.
    pub proposer_literal_tokens: bool,
    /// What a reference problem in a proposer's training prompt is to the problem after it:
    /// `unrelated` (another draw; the proposer learns to ignore references) or `mutated` (its
    /// source, edited to the asked depth).
    pub proposer_references: ReferenceUse,
    /// With mutated references: how far each edit moves the problem (`free` or `small`).
    #[serde(default)]
    pub proposer_reference_edits: problem::EditSize,
    pub solver: PlayerTraining,
    pub proposer: PlayerTraining,
    /// The report measures the solver on depths 1 to this.
    pub report_max_depth: u32,
    /// Problems per depth in the report.
    pub report_problems: usize,
}

impl Default for WarmStartConfig {
    fn default() -> Self {
        WarmStartConfig {
            seed: 0,
            solver_answers: solver::AnswerStyle::Steps,
            solver_shift: 0,
            solver_padding: 0.3,
            solver_padding_ops: 2,
            proposer_padding: 0.3,
            proposer_padding_ops: 2,
            proposer_wide_literals: 0.0,
            proposer_wide_max_literal: 99,
            proposer_literal_tokens: true,
            proposer_references: ReferenceUse::Unrelated,
            proposer_reference_edits: problem::EditSize::Free,
            // Worked solutions are longer than answers and take longer to learn. Chains of three
            // steps are taught: a solver taught two wrote two for every longer problem (two
            // operations folded into one step), never solved one, and self-play had nothing to
            // reinforce.
            solver: PlayerTraining {
                max_depth: 3,
                context: 96,
                max_new_tokens: 48,
                steps: 5000,
                eval_every: 500,
                optim: OptimConfig {
                    lr: 3e-3,
                    min_lr: 3e-4,
                    warmup_steps: 50,
                    decay_steps: 5000,
                    ..OptimConfig::default()
                },
                ..PlayerTraining::default()
            },
            proposer: PlayerTraining {
                steps: 3000,
                max_depth: 6,
                max_new_tokens: 40,
                optim: OptimConfig {
                    lr: 2e-3,
                    min_lr: 2e-4,
                    warmup_steps: 50,
                    decay_steps: 3000,
                    ..OptimConfig::default()
                },
                ..PlayerTraining::default()
            },
            report_max_depth: 4,
            report_problems: 200,
        }
    }
}

impl WarmStartConfig {
    /// The largest literal of the proposer's wide problems.
    pub(crate) fn proposer_wide_bound(&self) -> u32 {
        self.proposer_wide_max_literal.max(self.proposer.max_literal)
    }

    /// The literal bounds the proposer is taught to be asked for, narrowest first: its own and
    /// the wide one, when it has wide literals and is told them apart; none otherwise.
    pub fn proposer_literal_bounds(&self) -> Vec<u32> {
        if self.proposer_literal_tokens && self.proposer_wide_literals > 0.0 {
            vec![self.proposer.max_literal, self.proposer_wide_bound()]
        } else {
            Vec::new()
        }
    }

    /// Checks every value; the error names the key.
    /// Checks every value against `domain`; the error names the key.
    pub fn validate(&self, domain: &dyn Domain) -> anyhow::Result<()> {
        self.solver.validate("warm_start.solver", domain)?;
        self.proposer.validate("warm_start.proposer", domain)?;
        if !(0.0..=1.0).contains(&self.proposer_padding) {
            bail!("warm_start.proposer_padding must be in [0, 1], got {}", self.proposer_padding);
        }
        if !(0.0..=1.0).contains(&self.proposer_wide_literals) {
            bail!("warm_start.proposer_wide_literals must be in [0, 1], got {}", self.proposer_wide_literals);
        }
        if let Some(most) = domain.max_literal().filter(|&m| self.proposer_wide_max_literal > m) {
            bail!(
                "warm_start.proposer_wide_max_literal must be at most {most}, got {}",
                self.proposer_wide_max_literal
            );
        }
        if self.proposer_literal_tokens
            && self.proposer_wide_literals > 0.0
            && self.proposer_wide_max_literal <= self.proposer.max_literal
        {
            bail!(
                "warm_start.proposer_wide_max_literal ({}) must be above warm_start.proposer.max_literal ({}) \
                 for the proposer to be told the two apart (warm_start.proposer_literal_tokens)",
                self.proposer_wide_max_literal,
                self.proposer.max_literal
            );
        }
        if !(0.0..=1.0).contains(&self.solver_padding) {
            bail!("warm_start.solver_padding must be in [0, 1], got {}", self.solver_padding);
        }
        if self.solver_padding > 0.0 && self.solver_padding_ops == 0 {
            bail!(
                "warm_start.solver_padding_ops must be at least 1 where warm_start.solver_padding is above 0"
            );
        }
        if self.proposer_padding > 0.0 && self.proposer_padding_ops == 0 {
            bail!("warm_start.proposer_padding_ops must be at least 1 where warm_start.proposer_padding is above 0");
        }
        if self.solver_shift + self.solver.max_new_tokens + 3 > self.solver.context {
            bail!(
                "warm_start.solver_shift ({}) and warm_start.solver.max_new_tokens ({}) leave no room for a \
                 problem in warm_start.solver.context ({})",
                self.solver_shift,
                self.solver.max_new_tokens,
                self.solver.context
            );
        }
        Ok(())
    }
}

/// What the warm start measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WarmStartReport {
    pub solver_steps: u64,
    pub proposer_steps: u64,
    pub solver_final_loss: f64,
    pub proposer_final_loss: f64,
    /// Greedy solver accuracy on fresh problems, by depth.
    pub solver_accuracy_by_depth: BTreeMap<u32, f64>,
    /// The same problems, each padded with one to `solver_padding_ops` (at least two) of the
    /// domain's padding edits, where it has a place for them: what padding costs the solver
    /// (absent from warm starts made before it was measured, and for domains without padding).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub solver_padded_accuracy_by_depth: BTreeMap<u32, f64>,
    /// For each target depth: fraction of sampled proposals that are valid, and that are valid
    /// with exactly the target depth.
    pub proposer_valid_by_target: BTreeMap<u32, f64>,
    pub proposer_on_target_by_target: BTreeMap<u32, f64>,
    /// Fraction of sampled proposals that are valid and padded (absent from warm starts made
    /// before it was measured).
    #[serde(default)]
    pub proposer_padded_by_target: BTreeMap<u32, f64>,
    /// Fraction that are valid, padded and on target: padding written on top of the asked
    /// operations, not in the place of one (absent from warm starts made before it was measured).
    #[serde(default)]
    pub proposer_padded_on_target_by_target: BTreeMap<u32, f64>,
    /// For a proposer taught literal bounds, by bound and target depth: the fraction of sampled
    /// proposals on target (that depth, literals within the bound). The maps above are then of
    /// the first bound.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub proposer_on_target_by_bound: BTreeMap<u32, BTreeMap<u32, f64>>,
    pub seconds: f64,
}

/// Problems for validation and reports: seeded apart from training data.
pub fn problems(
    domain: &dyn Domain,
    depth: u32,
    max_literal: u32,
    n: usize,
    seed: u64,
) -> anyhow::Result<Vec<Item>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let g = domain.generate(&GenSpec { depth, max_literal }, &mut rng)?;
            Ok(Item { problem: g.problem, answer: g.answer, depth: Some(depth) })
        })
        .collect()
}

/// Whether `out` holds a whole warm start (its report is written last).
pub fn finished(out: &Path) -> bool {
    ["solver/state.json", "proposer/state.json", "report.json"].iter().all(|f| out.join(f).is_file())
}

/// The warm start was stopped on request (see [`run`]'s `stop`); what it wrote is unfinished.
#[derive(Debug, thiserror::Error)]
#[error("stopped on request during the warm start")]
pub struct Stopped;

/// One training step of the warm start, as it is taken: a progress bar's position.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    pub player: &'a str,
    pub step: u64,
    /// The player's step budget (training may stop earlier, when validation stops improving).
    pub steps: u64,
}

/// Runs the warm start into `out` (`out/solver`, `out/proposer`, `out/report.json`); when `out`
/// already holds a finished one, returns its report. `stop`, when set, ends it at the next
/// training step with [`Stopped`].
pub fn run(
    cfg: &WarmStartConfig,
    domain: &'static dyn Domain,
    out: &Path,
    device: &Device,
    stop: &AtomicBool,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<WarmStartReport> {
    run_watched(cfg, domain, out, device, stop, log, &mut |_| {})
}

/// [`run`], telling `on_step` of every training step.
pub fn run_watched(
    cfg: &WarmStartConfig,
    domain: &'static dyn Domain,
    out: &Path,
    device: &Device,
    stop: &AtomicBool,
    log: &mut dyn FnMut(&str),
    on_step: &mut dyn FnMut(Step),
) -> anyhow::Result<WarmStartReport> {
    cfg.validate(domain)?;
    // A finished warm start is not redone; a partial one is not overwritten.
    if finished(out) {
        log(&format!("warm start already done in {}", out.display()));
        let bytes = std::fs::read(out.join("report.json"))?;
        return serde_json::from_slice(&bytes)
            .with_context(|| format!("{}", out.join("report.json").display()));
    }
    for name in ["solver", "proposer"] {
        if out.join(name).exists() {
            bail!(
                "{} already exists but the warm start in {} is unfinished: remove it or choose another --out",
                out.join(name).display(),
                out.display()
            );
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let started = std::time::Instant::now();
    let tok = domain.tokenizer(DIFFICULTY_LEVELS);
    let pad = tok.special(Special::Pad);

    // Solver: worked solutions (or answers) of short problems.
    let s = &cfg.solver;
    let solver_format = solver::SolverFormat::new(tok.clone(), s.max_new_tokens);
    let held_out = problems(domain, s.max_depth, s.max_literal, 256, cfg.seed ^ 0x0e7a1)?;
    let mut t = Trainable::new(&s.model(tok.vocab_size() as usize), s.optim, cfg.seed, device)?;
    let (solver_steps, solver_loss) = train(
        &mut t,
        s,
        pad,
        stop,
        (log, on_step),
        "solver",
        &mut |rng| solver_example(cfg, domain, &solver_format, rng),
        &mut |t| {
            let r =
                evaluate(&t.model, &solver_format, domain, &held_out, 0, &mut ChaCha8Rng::seed_from_u64(0))?;
            Ok((r.accuracy, format!("held-out accuracy {:.3}", r.accuracy)))
        },
    )?;
    let meta = PlayerMeta::new(Player::Solver, domain, s.max_new_tokens);
    t.save(&out.join("solver"), meta.to_value())?;
    let (mut accuracy, mut padded_accuracy) = (BTreeMap::new(), BTreeMap::new());
    for depth in 1..=cfg.report_max_depth {
        let items = problems(
            domain,
            depth,
            s.max_literal,
            cfg.report_problems,
            cfg.seed ^ 0x4e9047 ^ u64::from(depth),
        )?;
        let r = evaluate(&t.model, &solver_format, domain, &items, 0, &mut ChaCha8Rng::seed_from_u64(0))?;
        accuracy.insert(depth, r.accuracy);
        let mut pad_rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x9add ^ u64::from(depth));
        let padded: Vec<Item> = items
            .into_iter()
            .filter_map(|item| {
                let edits = pad_rng.random_range(1..=cfg.solver_padding_ops.max(2));
                let problem = domain.pad(&item.problem, edits, &mut pad_rng)?;
                Some(Item { problem, ..item })
            })
            .collect();
        if !padded.is_empty() {
            let r =
                evaluate(&t.model, &solver_format, domain, &padded, 0, &mut ChaCha8Rng::seed_from_u64(0))?;
            padded_accuracy.insert(depth, r.accuracy);
        }
    }

    // Proposer: well-formed problems of the asked depth, with references or without.
    let p = &cfg.proposer;
    let bounds = cfg.proposer_literal_bounds();
    let proposer_tok = tok.clone().with_literal_levels(bounds.len() as u32);
    let proposer_format =
        proposer::ProposerFormat::new(proposer_tok.clone(), p.max_new_tokens, bounds.clone());
    let mut example = |rng: &mut ChaCha8Rng| proposer_examples::example(cfg, domain, &proposer_format, rng);
    let mut val_rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x9a1);
    let val_pairs: Vec<_> = (0..256).map(|_| example(&mut val_rng)).collect::<anyhow::Result<_>>()?;
    let mut t = Trainable::new(&p.model(proposer_tok.vocab_size() as usize), p.optim, cfg.seed ^ 1, device)?;
    let (proposer_steps, proposer_loss) =
        train(&mut t, p, pad, stop, (log, on_step), "proposer", &mut example, &mut |t| {
            let batch = Batch::new(&t.model, &val_pairs, pad)?;
            let loss = cross_entropy(&t.model, &batch, None)?.to_scalar::<f32>()?;
            Ok((-f64::from(loss), format!("held-out loss {loss:.4}")))
        })?;
    let meta = PlayerMeta {
        literal_bounds: bounds.clone(),
        ..PlayerMeta::new(Player::Proposer, domain, p.max_new_tokens)
    };
    t.save(&out.join("proposer"), meta.to_value())?;
    let (mut valid, mut on_target) = (BTreeMap::new(), BTreeMap::new());
    let (mut padded, mut padded_on_target) = (BTreeMap::new(), BTreeMap::new());
    let mut on_target_by_bound: BTreeMap<u32, BTreeMap<u32, f64>> = BTreeMap::new();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5a);
    let asked: Vec<Option<u32>> =
        if bounds.is_empty() { vec![None] } else { bounds.iter().copied().map(Some).collect() };
    for (i, &max_literal) in asked.iter().enumerate() {
        for depth in p.min_depth..=p.max_depth {
            let target = problem::Target { depth, max_literal };
            let reqs: Vec<_> =
                (0..64).map(|_| proposer_format.request(target, &[])).collect::<Result<_, _>>()?;
            let out = policy::sample(&t.model, &reqs, &SampleConfig::default(), &mut rng, true)?;
            let analyses: Vec<_> = out
                .iter()
                .filter_map(|s| domain.analyze(&proposer_format.parse(s).text, &Limits::default()).ok())
                .collect();
            // Each share is of all samples, invalid ones included.
            let share = |keep: &dyn Fn(&problem::Analysis) -> bool| {
                analyses.iter().filter(|a| keep(a)).count() as f64 / reqs.len() as f64
            };
            if let Some(b) = max_literal {
                on_target_by_bound
                    .entry(b)
                    .or_default()
                    .insert(depth, share(&|a| target.met_by(a.depth, a.max_literal)));
            }
            if i == 0 {
                valid.insert(depth, share(&|_| true));
                on_target.insert(depth, share(&|a| a.depth == depth));
                padded.insert(depth, share(&|a| a.padded()));
                padded_on_target.insert(depth, share(&|a| a.padded() && a.depth == depth));
            }
        }
    }

    let report = WarmStartReport {
        solver_steps,
        proposer_steps,
        solver_final_loss: solver_loss,
        proposer_final_loss: proposer_loss,
        solver_accuracy_by_depth: accuracy,
        solver_padded_accuracy_by_depth: padded_accuracy,
        proposer_valid_by_target: valid,
        proposer_on_target_by_target: on_target,
        proposer_padded_by_target: padded,
        proposer_padded_on_target_by_target: padded_on_target,
        proposer_on_target_by_bound: on_target_by_bound,
        seconds: started.elapsed().as_secs_f64(),
    };
    // Written last and whole (renamed into place): its presence marks a finished warm start.
    let path = out.join("report.json");
    let tmp = out.join("report.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&report)?)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(report)
}

/// One solver training pair: a problem of the trained depths, padded for a `solver_padding`
/// share, shifted right by up to `solver_shift` spaces, and what the solver should write for it. A
/// padded problem whose solution would not fit the solver's context is taught unpadded.
fn solver_example(
    cfg: &WarmStartConfig,
    domain: &dyn Domain,
    format: &solver::SolverFormat,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<(Vec<u32>, Vec<u32>)> {
    let s = &cfg.solver;
    let g = s.draw(domain, rng)?;
    let shift = if cfg.solver_shift > 0 { rng.random_range(0..=cfg.solver_shift) } else { 0 };
    let pair = |problem: &str| -> anyhow::Result<(Vec<u32>, Vec<u32>)> {
        let solution = cfg.solver_answers.solution(domain, problem, &g.answer);
        let shifted = format!("{}{problem}", " ".repeat(shift));
        Ok((format.prompt(&shifted)?, format.target(&solution)?))
    };
    // No draw at all without padding: such a warm start trains as it did before padding existed.
    if cfg.solver_padding > 0.0 && rng.random_bool(cfg.solver_padding) {
        let edits = rng.random_range(1..=cfg.solver_padding_ops);
        if let Some(padded) = domain.pad(&g.problem, edits, rng) {
            let (prompt, target) = pair(&padded)?;
            if target.len() <= s.max_new_tokens && prompt.len() + target.len() <= s.context {
                return Ok((prompt, target));
            }
        }
    }
    pair(&g.problem)
}

type Example<'a> = dyn FnMut(&mut ChaCha8Rng) -> anyhow::Result<(Vec<u32>, Vec<u32>)> + 'a;
type Validate<'a> = dyn FnMut(&Trainable) -> anyhow::Result<(f64, String)> + 'a;

/// Early stopping on a validation score (higher is better): stop after `patience` validations
/// without a new best (0: never). Validations count only once the score has risen above its
/// first value: a solver that solves none of its hardest held-out problems yet has not reached a
/// plateau, it has not left the floor.
#[derive(Debug)]
struct EarlyStop {
    patience: u32,
    first: Option<f64>,
    best: f64,
    stale: u32,
}

impl EarlyStop {
    fn new(patience: u32) -> Self {
        EarlyStop { patience, first: None, best: f64::NEG_INFINITY, stale: 0 }
    }

    /// Records one validation score; whether training should stop.
    fn stops_after(&mut self, score: f64) -> bool {
        let first = *self.first.get_or_insert(score);
        if score > self.best + 1e-9 {
            self.best = score;
            self.stale = 0;
        } else if self.best > first + 1e-9 {
            self.stale += 1;
        }
        self.patience > 0 && self.stale >= self.patience
    }
}

/// Where training reports: its log lines, and each step as it is taken.
type Watch<'a, 'b> = (&'a mut dyn FnMut(&str), &'b mut dyn FnMut(Step));

/// Supervised training to the step budget or until validation (higher is better) stops
/// improving. Returns the steps taken and the last training loss.
#[allow(clippy::too_many_arguments)]
fn train(
    t: &mut Trainable,
    cfg: &PlayerTraining,
    pad: u32,
    stop: &AtomicBool,
    (log, on_step): Watch,
    name: &str,
    example: &mut Example,
    validate: &mut Validate,
) -> anyhow::Result<(u64, f64)> {
    let (mut early, mut last_loss) = (EarlyStop::new(cfg.patience), f64::NAN);
    for step in 1..=cfg.steps {
        if stop.load(Ordering::SeqCst) {
            return Err(Stopped.into());
        }
        let pairs: Vec<_> = (0..cfg.batch).map(|_| example(&mut t.rng)).collect::<anyhow::Result<_>>()?;
        let r = if cfg.dropout > 0.0 {
            // Dropout draws from the player's one RNG, in order: one batch, one thread.
            let batch = Batch::new(&t.model, &pairs, pad)?;
            let loss = cross_entropy(&t.model, &batch, Some(Dropout { p: cfg.dropout, rng: &mut t.rng }))?;
            t.optim.backward_step(&loss)?
        } else {
            let vars: Vec<_> = t.model.named_vars().into_iter().map(|(_, v)| v).collect();
            let (loss, grads) = cross_entropy_grads(&t.model, &vars, &pairs, pad)?;
            t.optim.step_with(&grads, &loss)?
        };
        last_loss = r.loss;
        on_step(Step { player: name, step, steps: cfg.steps });
        if r.skipped {
            tracing::warn!(player = name, step, "non-finite loss or gradient: update skipped");
        }
        if step % cfg.eval_every == 0 || step == cfg.steps {
            let (score, what) = validate(t)?;
            log(&format!("{name} step {step}: loss {:.4}, {what}", r.loss));
            if early.stops_after(score) {
                let stale = early.stale;
                log(&format!("{name}: no improvement in {stale} validations, stopping at step {step}"));
                return Ok((step, last_loss));
            }
        }
    }
    Ok((cfg.steps, last_loss))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The step (1-based validation) at which `scores` stop training, if they do.
    fn stop_at(patience: u32, scores: &[f64]) -> Option<usize> {
        let mut e = EarlyStop::new(patience);
        scores.iter().position(|&s| e.stops_after(s)).map(|i| i + 1)
    }

    #[test]
    fn early_stop_waits_for_the_score_to_leave_its_floor() {
        // Nothing solved yet: no plateau, however long.
        assert_eq!(stop_at(3, &[0.0; 20]), None);
        // Off the floor, then three validations without a new best.
        assert_eq!(stop_at(3, &[0.0, 0.0, 0.0, 0.02, 0.1, 0.1, 0.05, 0.1]), Some(8));
        // A new best resets the count.
        assert_eq!(stop_at(2, &[0.0, 0.1, 0.1, 0.2, 0.2, 0.2]), Some(6));
        // Losses (negated) that improve and then stall.
        assert_eq!(stop_at(2, &[-1.5, -1.4, -1.3, -1.31, -1.3]), Some(5));
        // Patience 0 never stops.
        assert_eq!(stop_at(0, &[0.0, 0.1, 0.1, 0.1, 0.1]), None);
    }

    #[test]
    fn solver_padding_teaches_padded_problems_worked_through() {
        let domain = problem::domain_by_name("program").unwrap();
        let tok = domain.tokenizer(DIFFICULTY_LEVELS);
        let solver =
            PlayerTraining { max_depth: 2, context: 320, max_new_tokens: 256, ..PlayerTraining::default() };
        let format = solver::SolverFormat::new(tok.clone(), solver.max_new_tokens);
        let text_of = |ids: &[u32]| tok.decode(ids).unwrap();
        // What share of `n` examples is padded; each is checked to be taught what it should.
        let padded_share = |solver_padding: f64, n: usize| {
            let cfg =
                WarmStartConfig { solver_padding, solver: solver.clone(), ..WarmStartConfig::default() };
            cfg.validate(domain).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let mut padded = 0;
            for _ in 0..n {
                let (prompt, target) = solver_example(&cfg, domain, &format, &mut rng).unwrap();
                assert!(
                    target.len() <= solver.max_new_tokens && prompt.len() + target.len() <= solver.context
                );
                let problem = text_of(&prompt[1..prompt.len() - 1]);
                let written = text_of(&target[..target.len() - 1]);
                let a = domain.analyze(&problem, &Limits::default()).unwrap();
                padded += usize::from(a.padded());
                match domain.worked_solution(&problem) {
                    // A deduction: the worked solution of the padded program, dead code and all.
                    Some(_) => assert_eq!(written, cfg.solver_answers.solution(domain, &problem, &a.answer)),
                    // An abduction: an input that still gives the output.
                    None => assert!(domain.accepts(&problem, &a.answer, &written), "{problem} <- {written}"),
                }
            }
            padded as f64 / n as f64
        };
        assert_eq!(padded_share(0.0, 200), 0.0);
        let half = padded_share(0.5, 400);
        assert!((0.4..=0.6).contains(&half), "padded share {half} for solver_padding 0.5");
        assert!(padded_share(1.0, 200) > 0.9);
        let bad = |cfg: WarmStartConfig| cfg.validate(domain).unwrap_err().to_string();
        let base = WarmStartConfig { solver: solver.clone(), ..WarmStartConfig::default() };
        assert!(bad(WarmStartConfig { solver_padding: 1.1, ..base.clone() })
            .contains("warm_start.solver_padding"));
        assert!(bad(WarmStartConfig { solver_padding: 0.2, solver_padding_ops: 0, ..base })
            .contains("warm_start.solver_padding_ops"));
    }

    #[test]
    fn proposer_padding_is_validated() {
        let bad = |cfg: WarmStartConfig| cfg.validate(&problem::Arith).unwrap_err().to_string();
        let base = WarmStartConfig::default();
        assert!(bad(WarmStartConfig { proposer_padding: 1.5, ..base.clone() })
            .contains("warm_start.proposer_padding"));
        assert!(bad(WarmStartConfig { proposer_padding: f64::NAN, ..base.clone() })
            .contains("warm_start.proposer_padding"));
        assert!(bad(WarmStartConfig { proposer_padding_ops: 0, ..base.clone() })
            .contains("warm_start.proposer_padding_ops"));
        WarmStartConfig { proposer_padding: 0.0, proposer_padding_ops: 0, ..base.clone() }
            .validate(&problem::Arith)
            .unwrap();
        assert!(bad(WarmStartConfig { proposer_wide_literals: -0.1, ..base.clone() })
            .contains("warm_start.proposer_wide_literals"));
        assert!(bad(WarmStartConfig { proposer_wide_max_literal: 1000, ..base.clone() })
            .contains("warm_start.proposer_wide_max_literal must be at most 999"));
        // Told apart, the wide bound must be above the proposer's own; without wide literals
        // there is nothing to tell apart.
        assert_eq!(base.proposer_literal_bounds(), Vec::<u32>::new());
        let wide = WarmStartConfig { proposer_wide_literals: 0.25, ..base.clone() };
        assert_eq!(wide.proposer_literal_bounds(), vec![20, 99]);
        assert!(bad(WarmStartConfig { proposer_wide_max_literal: 20, ..wide.clone() })
            .contains("must be above warm_start.proposer.max_literal (20)"));
        WarmStartConfig { proposer_wide_max_literal: 20, ..base }.validate(&problem::Arith).unwrap();
        let untold =
            WarmStartConfig { proposer_wide_max_literal: 20, proposer_literal_tokens: false, ..wide };
        untold.validate(&problem::Arith).unwrap();
        assert_eq!(untold.proposer_literal_bounds(), Vec::<u32>::new());
    }
}
