//! The run configuration: one TOML file, every key checked.
//!
//! `selfplay config --default` prints the embedded default ([`DEFAULT_TOML`]); a file given with
//! `--config` is read over the defaults, so it only needs the keys it changes. Unknown keys and
//! out-of-range values stop the run before any work, with the key named.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::warmstart::WarmStartConfig;

/// One `--set KEY=VALUE`: a dotted key of the configuration and a TOML value (`0.3`, `true`,
/// `[2, 3]`, `"text"`); a value that is not TOML is taken as a string (`--set name=sweep-1`).
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub key: String,
    pub value: toml::Value,
}

impl FromStr for Override {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| format!("expected KEY=VALUE (like round.proposals=32), got {s:?}"))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(|part| part.trim().is_empty()) {
            return Err(format!("{s:?}: the key must be a dotted name like reward.padding.cost"));
        }
        let value = value.trim();
        let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_string()));
        Ok(Override { key: key.to_string(), value: parsed })
    }
}

impl Override {
    /// The override as a nested table (`a.b = v` → `{a: {b: v}}`), to lay over a configuration.
    fn as_table(&self) -> toml::Value {
        self.key.rsplit('.').fold(self.value.clone(), |inner, part| {
            let mut t = toml::Table::new();
            t.insert(part.trim().to_string(), inner);
            toml::Value::Table(t)
        })
    }
}

/// The embedded default configuration.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// One self-play round's sizes and the reward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundConfig {
    /// Who writes the round's problems (see [`Arm`]).
    #[serde(default)]
    pub arm: Arm,
    /// Problems the proposer writes per round.
    pub proposals: usize,
    /// Solver attempts per problem.
    pub attempts: usize,
    /// Problems replayed from earlier rounds per round.
    pub replay: usize,
    /// Problems of the warm start's kind (its depths and literals, fresh each round) the solver
    /// is retested on per round, and trained on where it no longer always solves them: what it
    /// knew is kept while the proposer's problems narrow.
    #[serde(default)]
    pub rehearsal: usize,
    /// Advantage of each attempt at a rehearsal problem solved every time (0: none). The group
    /// advantage of such a problem is 0, so without it nothing holds what the solver knows while
    /// updates on other problems move the arithmetic they share.
    #[serde(default)]
    pub anchor: f64,
    /// Filtered self-training of the proposer (0: none): beside its policy gradient, a second
    /// update raises the likelihood of its own fresh, on-target proposals whose solve rate fell in
    /// the frontier band this round, each sample with this advantage. Self-play only.
    #[serde(default)]
    pub self_training: f64,
    /// Composition beyond the warm start (0: none): chains, one operation a step, built from the
    /// solver's own verified steps for problems no attempt solved, each trained on with this
    /// advantage (`lab::round::compose`).
    #[serde(default)]
    pub compose: f64,
    /// Problems a round seeks chains for, at most.
    #[serde(default = "compose_problems")]
    pub compose_problems: usize,
    /// Step credit (0: none, at most 1): a wrong attempt is paid this times the share of the
    /// problem's operations its steps took away before the first false one (`judge::progress`),
    /// and a problem no attempt solved is learnt from when its attempts got unequally far
    /// (`solver::plan`).
    #[serde(default)]
    pub step_credit: f64,
    /// What the proposer's rewards are compared with to make its advantages.
    pub proposer_baseline: proposer::objective::Baseline,
    /// Reference problems shown to the proposer (0 to this many; this many from the frontier).
    pub references: usize,
    /// Where the references come from (see [`ReferenceSource`]).
    #[serde(default)]
    pub references_from: ReferenceSource,
    /// Attempts a frontier reference must have been given over the rounds it was scored in,
    /// its solve rate over all of them in the band (0: its last solve rate alone decides).
    #[serde(default)]
    pub reference_evidence: u64,
    /// Token budget of a problem.
    pub max_problem_tokens: usize,
    /// Sampling temperature of both players.
    pub temperature: f64,
    /// Attempts per sampling shard: the unit sent to a worker, each with a random stream of its
    /// own, so the round samples the same tokens wherever its shards run.
    #[serde(default = "sampling_shard")]
    pub sampling_shard: usize,
    /// The generator arm's mutations of frontier references: up to this many tried, the first
    /// that copies neither the archive nor the round kept (1: the first, copy or not).
    #[serde(default = "mutation_tries")]
    pub mutation_tries: usize,
    /// Generator problems at the round's targets attempted on evaluation rounds, the frontier
    /// hit rate of a fixed generator beside the proposer's (0: none).
    #[serde(default)]
    pub generator_probe: usize,
}

fn mutation_tries() -> usize {
    1
}

fn sampling_shard() -> usize {
    128
}

fn compose_problems() -> usize {
    4
}

/// Who writes a round's problems. Only `SelfPlay` trains the proposer; the other two are the
/// controls a self-play result is stated against, with everything else of the round unchanged
/// (judge, band filter, replay, rehearsal, the solver's update, the controller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// The proposer writes and learns from its rewards.
    #[default]
    SelfPlay,
    /// The warm-start proposer writes and is never updated.
    FrozenProposer,
    /// The domain's generator writes at the controller's targets (the SFL baseline); the
    /// proposer neither writes nor learns.
    Generator,
}

/// Where the reference problems of the proposer's prompts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceSource {
    /// 0 to `round.references` problems drawn uniformly from replay, for every prompt.
    #[default]
    Replay,
    /// `round.references` replayed problems whose solve rate is in the frontier band (the last
    /// round's, or pooled over `round.reference_evidence` attempts) and whose depth is the
    /// target's or one off (the nearest first); none where replay holds no
    /// such problem. For a proposer taught to mutate its references
    /// (`warm_start.proposer_references = "mutated"`): it then writes near the frontier. The
    /// generator arm mutates them with the domain's own edits, a fixed mutator to compare with.
    Frontier,
}

/// Everything a run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Name of the run in the archive.
    pub name: String,
    /// The problem domain, by name (`problem::domain_by_name`): `arith` or `program`.
    pub domain: String,
    pub seed: u64,
    pub round: RoundConfig,
    pub reward: judge::RewardConfig,
    pub frontier: curriculum::FrontierBand,
    pub controller: curriculum::ControllerConfig,
    pub replay: curriculum::ReplayConfig,
    pub solver_ppo: policy::PpoConfig,
    pub proposer_ppo: policy::PpoConfig,
    pub solver_optim: policy::OptimConfig,
    pub proposer_optim: policy::OptimConfig,
    /// Checkpoint every this many rounds (and at the end).
    pub checkpoint_every: u64,
    /// Checkpoints kept besides the warm start.
    pub keep_checkpoints: usize,
    /// Checkpoints of rounds that are multiples of this are never pruned (0: none).
    #[serde(default)]
    pub milestone_every: u64,
    /// Held-out evaluation every this many rounds.
    pub eval_every: u64,
    /// Held-out problems per depth, depths 1 to `eval_max_depth`.
    pub eval_problems: usize,
    pub eval_max_depth: u32,
    /// Largest literal in held-out problems.
    pub eval_max_literal: u32,
    pub warm_start: WarmStartConfig,
    /// Interestingness scorers (`[[scorers]]`); their weighted score enters the reward with
    /// `reward.interestingness_weight`.
    pub scorers: Vec<crate::scoring::ScorerConfig>,
}

impl RunConfig {
    /// The problem domain the configuration names (checked by [`RunConfig::validate`]).
    pub fn domain(&self) -> &'static dyn problem::Domain {
        problem::domain_by_name(&self.domain).expect("a validated configuration names a known domain")
    }

    /// The embedded default.
    pub fn default_config() -> RunConfig {
        Self::from_toml(DEFAULT_TOML).expect("the embedded default configuration is valid")
    }

    /// Reads a configuration: the keys given replace the defaults'.
    pub fn from_toml(text: &str) -> anyhow::Result<RunConfig> {
        Self::from_toml_with(text, &[])
    }

    /// [`RunConfig::from_toml`] with single keys replaced (`--set KEY=VALUE`), checked alike.
    pub fn from_toml_with(text: &str, overrides: &[Override]) -> anyhow::Result<RunConfig> {
        let mut base: toml::Value = toml::from_str(DEFAULT_TOML).expect("the embedded default is TOML");
        let given: toml::Value = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| line_column(text, s.start)).unwrap_or_default();
            anyhow::anyhow!("{at}{}", e.message().trim())
        })?;
        merge(&mut base, given, "")?;
        for o in overrides {
            merge(&mut base, o.as_table(), "")?;
        }
        // Deserialized with its path, so that a value of the wrong type names its key.
        let cfg: RunConfig = serde_path_to_error::deserialize(base).map_err(|e| {
            let key = e.path().to_string();
            anyhow::anyhow!("{key}: {}", e.into_inner().message().trim())
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every value; the error names the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let check = |key: &str, r: Result<(), String>| r.map_err(|e| anyhow::anyhow!("{key}: {e}"));
        let domain = problem::domain_by_name(&self.domain).ok_or_else(|| {
            anyhow::anyhow!(
                "domain: no domain is named {:?}; the domains are {}",
                self.domain,
                problem::DOMAINS.join(", ")
            )
        })?;
        check("reward", self.reward.validate())?;
        check("frontier", self.frontier.validate())?;
        check("controller", self.controller.validate())?;
        check("replay", self.replay.validate())?;
        check("solver_optim", self.solver_optim.validate())?;
        check("proposer_optim", self.proposer_optim.validate())?;
        self.warm_start.validate(domain)?;
        self.check_targets()?;
        let r = &self.round;
        for (key, v) in [
            ("round.proposals", r.proposals),
            ("round.attempts", r.attempts),
            ("round.max_problem_tokens", r.max_problem_tokens),
            ("round.sampling_shard", r.sampling_shard),
            ("round.mutation_tries", r.mutation_tries),
        ] {
            if v == 0 {
                anyhow::bail!("{key} must be positive");
            }
        }
        if r.max_problem_tokens > problem::Limits::HARD_MAX_TOKENS {
            anyhow::bail!(
                "round.max_problem_tokens must be at most {}, got {}",
                problem::Limits::HARD_MAX_TOKENS,
                r.max_problem_tokens
            );
        }
        if !(r.temperature > 0.0 && r.temperature.is_finite()) {
            anyhow::bail!("round.temperature must be positive, got {}", r.temperature);
        }
        if !(r.anchor >= 0.0 && r.anchor.is_finite()) {
            anyhow::bail!("round.anchor must be a non-negative number, got {}", r.anchor);
        }
        if !(r.self_training >= 0.0 && r.self_training.is_finite()) {
            anyhow::bail!("round.self_training must be a non-negative number, got {}", r.self_training);
        }
        if !(r.compose >= 0.0 && r.compose.is_finite()) {
            anyhow::bail!("round.compose must be a non-negative number, got {}", r.compose);
        }
        if r.compose > 0.0 && self.warm_start.solver_answers != solver::AnswerStyle::Steps {
            anyhow::bail!(
                "round.compose builds worked solutions one operation a step: it needs \
                 warm_start.solver_answers = \"steps\""
            );
        }
        if !(0.0..=1.0).contains(&r.step_credit) {
            anyhow::bail!(
                "round.step_credit must be between 0 and 1 (a wrong attempt is never paid as much as a \
                 solution), got {}",
                r.step_credit
            );
        }
        if r.step_credit > 0.0 && self.warm_start.solver_answers != solver::AnswerStyle::Steps {
            anyhow::bail!(
                "round.step_credit counts the operations each step takes away: it needs \
                 warm_start.solver_answers = \"steps\""
            );
        }
        if r.references_from == ReferenceSource::Frontier && r.references == 0 {
            anyhow::bail!(
                "round.references_from = \"frontier\" shows references: set round.references to 1 or more"
            );
        }
        if r.reference_evidence > 0 && r.references_from != ReferenceSource::Frontier {
            anyhow::bail!(
                "round.reference_evidence picks frontier references: set round.references_from = \"frontier\" or it to 0"
            );
        }
        if r.self_training > 0.0 && r.arm != Arm::SelfPlay {
            anyhow::bail!(
                "round.self_training trains the proposer, which the {:?} arm never updates: set it to 0",
                r.arm
            );
        }
        for (key, ppo) in [("solver_ppo", &self.solver_ppo), ("proposer_ppo", &self.proposer_ppo)] {
            let valid = ppo.epochs > 0
                && ppo.clip > 0.0
                && ppo.clip < 1.0
                && ppo.kl_coef >= 0.0
                && ppo.kl_coef.is_finite()
                && (0.0..=1.0).contains(&ppo.negative_weight);
            if !valid {
                anyhow::bail!(
                    "{key}: epochs must be positive, clip in (0, 1), kl_coef non-negative, negative_weight in [0, 1]"
                );
            }
        }
        if self.name.is_empty() || self.name.contains('\0') {
            anyhow::bail!("name must be a non-empty string without NUL");
        }
        if self.checkpoint_every == 0 || self.eval_every == 0 {
            anyhow::bail!("checkpoint_every and eval_every must be positive");
        }
        let mut labels = std::collections::BTreeSet::new();
        for (i, s) in self.scorers.iter().enumerate() {
            check(&format!("scorers[{i}]"), s.validate())?;
            if !labels.insert(s.name()) {
                anyhow::bail!("scorers[{i}]: a second scorer named {:?}: give each its own `name`", s.name());
            }
        }
        Ok(())
    }
}

impl RunConfig {
    /// The controller asks only for depths the proposer's warm start taught it, and the warm
    /// start teaches only depths that have a target token of their own.
    fn check_targets(&self) -> anyhow::Result<()> {
        let taught = &self.warm_start.proposer;
        let last = problem::player::DIFFICULTY_LEVELS - 1;
        if taught.max_depth > last {
            anyhow::bail!(
                "warm_start.proposer.max_depth must be at most {last} (the deepest target the proposer's \
                 prompt can name), got {}",
                taught.max_depth
            );
        }
        let c = &self.controller;
        if c.min_depth < taught.min_depth || c.max_depth > taught.max_depth {
            anyhow::bail!(
                "controller: min_depth..=max_depth ({}..={}) must lie within the depths the proposer's warm \
                 start teaches (warm_start.proposer.min_depth..=max_depth, {}..={}): it has never been \
                 shown what another target asks",
                c.min_depth,
                c.max_depth,
                taught.min_depth,
                taught.max_depth
            );
        }
        if let Some(l) = c.literals.iter().find(|l| l.min_depth.is_some_and(|d| d < taught.min_depth)) {
            anyhow::bail!(
                "controller.literals: the min_depth of max_literal {} is below warm_start.proposer.min_depth ({})",
                l.max_literal,
                taught.min_depth
            );
        }
        // The controller asks for literal bounds the warm start teaches the proposer.
        literal_bounds_fit(c, &self.warm_start.proposer_literal_bounds(), "the proposer's warm start")?;
        Ok(())
    }
}

/// Whether a proposer taught literal bounds `known` (by `whom`) can be asked for the bounds of
/// `controller.literals`: one taught bounds must be asked for some of them, one taught none for
/// none.
pub fn literal_bounds_fit(
    controller: &curriculum::ControllerConfig,
    known: &[u32],
    whom: &str,
) -> anyhow::Result<()> {
    let asked: Vec<u32> = controller.literals.iter().map(|l| l.max_literal).collect();
    if known.is_empty() && !asked.is_empty() {
        anyhow::bail!(
            "controller.literals asks for literal bounds {asked:?}, but {whom} teaches the proposer none \
             (warm_start.proposer_wide_literals = 0 or proposer_literal_tokens = false): set \
             `controller.literals = []`"
        );
    }
    if !known.is_empty() && asked.is_empty() {
        anyhow::bail!(
            "{whom} teaches the proposer literal bounds {known:?}: controller.literals must ask for them \
             (one [[controller.literals]] table per bound)"
        );
    }
    if let Some(b) = asked.iter().find(|b| !known.contains(b)) {
        anyhow::bail!(
            "controller.literals: max_literal {b} is not a bound {whom} teaches the proposer ({known:?})"
        );
    }
    Ok(())
}

/// `line L, column C: ` of byte `at` in `text` (both from 1).
fn line_column(text: &str, at: usize) -> String {
    let before = &text.as_bytes()[..at.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    format!("line {line}, column {column}: ")
}

/// Lays `given` over `base`, table by table; a key `base` lacks is an error naming it.
fn merge(base: &mut toml::Value, given: toml::Value, path: &str) -> anyhow::Result<()> {
    match (base, given) {
        (toml::Value::Table(b), toml::Value::Table(g)) => {
            for (k, v) in g {
                let key = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v, &key)?,
                    None => anyhow::bail!("unknown key `{key}`"),
                }
            }
            Ok(())
        }
        (slot, given) => {
            *slot = given;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid_and_round_trips() {
        let cfg = RunConfig::default_config();
        assert_eq!(cfg.round.attempts, 8);
        assert_eq!(cfg.frontier.low, 0.2);
        let text = toml::to_string(&cfg).unwrap();
        assert_eq!(RunConfig::from_toml(&text).unwrap(), cfg);
    }

    #[test]
    fn a_file_changes_only_its_keys() {
        let cfg = RunConfig::from_toml("seed = 7\n[round]\nproposals = 4\n").unwrap();
        assert_eq!((cfg.seed, cfg.round.proposals, cfg.round.attempts), (7, 4, 8));
    }

    #[test]
    fn the_controller_may_ask_for_any_depth_the_proposer_was_taught() {
        let cfg = RunConfig::from_toml("[warm_start.proposer]\nmax_depth = 2\n[controller]\nmax_depth = 2\n")
            .unwrap();
        assert_eq!((cfg.controller.max_depth, cfg.warm_start.proposer.max_depth), (2, 2));
        let cfg = RunConfig::from_toml("[controller]\nmin_depth = 3\nmax_depth = 4\n").unwrap();
        assert_eq!((cfg.controller.min_depth, cfg.controller.max_depth), (3, 4));
    }

    #[test]
    fn the_shipped_program_configuration_is_valid_and_fits_its_problems() {
        let cfg = RunConfig::from_toml(include_str!("../../configs/program.toml")).unwrap();
        assert_eq!(cfg.domain().name(), "program");
        // The longest generated problem of the proposer's deepest target fits what it may write.
        let domain = cfg.domain();
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
        let spec = problem::GenSpec {
            depth: cfg.warm_start.proposer.max_depth,
            max_literal: cfg.warm_start.proposer.max_literal,
        };
        let longest =
            (0..200).map(|_| domain.generate(&spec, &mut rng).unwrap().problem.len()).max().unwrap();
        assert!(longest <= cfg.round.max_problem_tokens, "{longest} > {}", cfg.round.max_problem_tokens);
    }

    #[test]
    fn the_controller_asks_for_the_literal_bounds_the_proposer_was_taught() {
        let plain = RunConfig::default_config();
        assert!(
            plain.controller.literals.is_empty() && plain.warm_start.proposer_literal_bounds().is_empty()
        );
        // The configuration of the experiment with literal bounds.
        let text = include_str!("../../bench/experiments/selfplay/results/literal-bounds/config.toml");
        let cfg = RunConfig::from_toml(text).unwrap();
        let bounds: Vec<u32> = cfg.controller.literals.iter().map(|l| l.max_literal).collect();
        assert_eq!((bounds, cfg.warm_start.proposer_literal_bounds()), (vec![20, 99], vec![20, 99]));
        // Some of a proposer's bounds are fine too.
        let wide = "[warm_start]\nproposer_wide_literals = 0.25\n[[controller.literals]]\nmax_literal = 99\nshare = 1.0\n";
        assert_eq!(RunConfig::from_toml(wide).unwrap().controller.literals.len(), 1);
        let asking = |bounds: &[u32]| curriculum::ControllerConfig {
            literals: bounds
                .iter()
                .map(|&max_literal| curriculum::LiteralBound {
                    max_literal,
                    share: 1.0,
                    min_depth: None,
                    start: None,
                })
                .collect(),
            ..Default::default()
        };
        assert!(literal_bounds_fit(&asking(&[99]), &[20, 99], "x").is_ok());
        assert!(literal_bounds_fit(&asking(&[]), &[], "x").is_ok());
        let err =
            literal_bounds_fit(&asking(&[20]), &[], "the proposer's checkpoint").unwrap_err().to_string();
        assert!(err.contains("but the proposer's checkpoint teaches the proposer none"), "{err}");
    }

    #[test]
    fn errors_name_the_key() {
        for (text, want) in [
            ("[round]\nproposal = 3\n", "unknown key `round.proposal`"),
            ("bogus = 1\n", "unknown key `bogus`"),
            ("domain = \"chess\"\n", "domain: no domain is named \"chess\"; the domains are arith"),
            (
                "[warm_start.solver]\nmax_literal = 1000\n",
                "warm_start.solver.max_literal must be at most 999",
            ),
            ("[reward.padding]\nhard_floor = 2.0\n", "reward: padding.hard_floor must be"),
            ("[round]\nattempts = 0\n", "round.attempts must be positive"),
            ("[round]\narm = \"oracle\"\n", "unknown variant `oracle`"),
            ("[round]\nself_training = -1\n", "round.self_training must be a non-negative number"),
            ("[round]\ncompose = -1\n", "round.compose must be a non-negative number"),
            ("[round]\nstep_credit = 1.5\n", "round.step_credit must be between 0 and 1"),
            ("[round]\nstep_credit = nan\n", "round.step_credit must be between 0 and 1"),
            (
                "[round]\nreferences_from = \"frontier\"\nreferences = 0\n",
                "round.references_from = \"frontier\" shows references: set round.references to 1",
            ),
            ("[round]\nreferences_from = \"archive\"\n", "unknown variant `archive`"),
            ("[round]\nreference_evidence = 16\n", "round.reference_evidence picks frontier references"),
            ("[round]\nsampling_shard = 0\n", "round.sampling_shard must be positive"),
            ("[round]\nmutation_tries = 0\n", "round.mutation_tries must be positive"),
            ("[warm_start]\nproposer_references = \"copied\"\n", "unknown variant `copied`"),
            ("[warm_start]\nproposer_reference_edits = \"tiny\"\n", "unknown variant `tiny`"),
            (
                "[round]\ncompose = 1.0\n[warm_start]\nsolver_answers = \"direct\"\n",
                "round.compose builds worked solutions one operation a step",
            ),
            (
                "[round]\narm = \"generator\"\nself_training = 1.0\n",
                "round.self_training trains the proposer, which the Generator arm never updates",
            ),
            ("[round]\nattempts = \"many\"\n", "invalid type"),
            ("[frontier]\nlow = 0.9\nhigh = 0.1\n", "frontier: frontier band"),
            (
                "[warm_start.solver]\nheads = 3\n",
                "warm_start.solver.d_model 128 must be a multiple of heads 3",
            ),
            ("seed = ", "string values must be quoted"),
            ("[[scorers]]\nkind = \"oracle\"\n", "unknown variant `oracle`"),
            ("[[scorers]]\nkind = \"process\"\n", "scorers[0]: a process scorer needs `command`"),
            ("[[scorers]]\nkind = \"http\"\nname = \"h\"\nurl = \"ftp://x\"\n", "scorers[0]: url"),
            ("[[scorers]]\nkind = \"novelty\"\nweight = -1\n", "scorers[0]: weight"),
            ("[[scorers]]\nkind = \"novelty\"\ncolour = 1\n", "unknown field `colour`"),
            ("[[scorers]]\nkind = \"novelty\"\n[[scorers]]\nkind = \"novelty\"\n", "a second scorer named"),
            ("[controller]\nmax_depth = 12\n", "controller: min_depth..=max_depth (1..=12) must lie within"),
            ("[warm_start.proposer]\nmin_depth = 2\n", "(warm_start.proposer.min_depth..=max_depth, 2..=6)"),
            (
                "[warm_start.proposer]\nmax_depth = 9\n[controller]\nmax_depth = 9\n",
                "warm_start.proposer.max_depth must be at most 7",
            ),
            ("[warm_start]\nproposer_wide_literals = 0.25\n", "controller.literals must ask for them"),
            (
                "[[controller.literals]]\nmax_literal = 20\nshare = 1.0\n",
                "but the proposer's warm start teaches the proposer none",
            ),
            (
                "[warm_start]\nproposer_wide_literals = 0.25\nproposer_wide_max_literal = 50\n\
                 [[controller.literals]]\nmax_literal = 99\nshare = 1.0\n",
                "max_literal 99 is not a bound the proposer's warm start",
            ),
            ("[[controller.literals]]\nmax_literal = 20\n", "controller.literals[0]: missing field `share`"),
            (
                "[[controller.literals]]\nmax_literal = 20\nshare = 1.0\nmin_depth = 0\n",
                "literals[0].min_depth must be in",
            ),
        ] {
            let err = RunConfig::from_toml(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
