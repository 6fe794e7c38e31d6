//! The proposer's reward: the frontier, padding and target terms, the configuration of every
//! term, and the reward of one problem with each term kept.

use problem::Analysis;
use serde::{Deserialize, Serialize};

use crate::*;

/// Which frontier reward to pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrontierForm {
    /// R-Zero's uncertainty reward `1 − 2|p − 0.5|`: highest at `p = 0.5`.
    #[default]
    RZero,
    /// Absolute Zero's learnability reward `1 − p`: highest for the hardest problem still solved.
    AbsoluteZero,
}

/// The frontier term for solve rate `p ∈ [0, 1]`: 0 for `p ∈ {0, 1}` (a problem nobody or
/// everybody solves teaches nothing), otherwise `1 − 2|p − 0.5|` ([`FrontierForm::RZero`]) or
/// `1 − p` ([`FrontierForm::AbsoluteZero`]).
pub fn frontier(p: f64, form: FrontierForm) -> f64 {
    if !(p > 0.0 && p < 1.0) {
        return 0.0;
    }
    match form {
        FrontierForm::RZero => 1.0 - 2.0 * (p - 0.5).abs(),
        FrontierForm::AbsoluteZero => 1.0 - p,
    }
}

/// What padding costs (`padding = 1 − essential/surface`): the frontier term is discounted, and
/// `cost · padding` is charged besides.
///
/// The discount alone leaves a padded problem earning at least what its unpadded form earns
/// when that form earns nothing — the case of an easy problem the solver always solves, which
/// padding pushes into the band (`7*1+0` is solved less often than `7`): padding an easy problem
/// then costs a proposer nothing. The charge makes it cost something there too.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaddingPenalty {
    /// Exponent of the smooth discount `(1 − padding)^exponent`.
    pub exponent: f64,
    /// Padding at or above this is clear padding: the factor is 0.
    pub hard_floor: f64,
    /// Charged times the padding: a problem half padding earns `−cost / 2` besides its discounted
    /// frontier term.
    pub cost: f64,
}

impl Default for PaddingPenalty {
    fn default() -> Self {
        PaddingPenalty { exponent: 2.0, hard_floor: 0.5, cost: 0.5 }
    }
}

impl PaddingPenalty {
    /// `0` when `padding ≥ hard_floor`, else `(1 − padding)^exponent`: 1 for an unpadded problem,
    /// decreasing in padding.
    pub fn factor(&self, padding: f64) -> f64 {
        let padding = padding.clamp(0.0, 1.0);
        if padding >= self.hard_floor {
            0.0
        } else {
            (1.0 - padding).powf(self.exponent)
        }
    }
}

/// What writing another problem than the one asked costs: `cost · miss` is charged, where the
/// miss is 1 when the problem's essential depth (operations left in its canonical form) is not
/// the difficulty target's depth the proposer was conditioned on, or a literal it wrote is larger
/// than the target's literal bound, and 0 when it is on target ([`TargetPenalty::miss`]).
///
/// The difficulty controller acts only through the targets. Unpaid for following them, a proposer
/// settles on the depth that pays best whatever it is asked (three operations, for the warm-start
/// solver) and the controller ends at its bound with the median solve rate off its target. The
/// miss is measured on the essential form, so padding cannot meet a target: held to the depth it
/// is asked for, a proposer can make an easy target harder only by structure, literals — or
/// padding, which is then what the padding terms must price. A proposer free to choose its
/// literals makes problems hard with large ones that no depth can take back; asked for a literal
/// bound, it is held to it the same way.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetPenalty {
    /// Charged for a problem off its target (0: the term is off).
    pub cost: f64,
}

impl Default for TargetPenalty {
    fn default() -> Self {
        TargetPenalty { cost: 0.5 }
    }
}

impl TargetPenalty {
    /// The miss of a problem analysed as `a` asked for `target`: 0 on target, 1 off it, 0 when
    /// nothing was asked.
    pub fn miss(a: &Analysis, target: Option<problem::Target>) -> f64 {
        match target {
            Some(t) if !t.met_by(a.depth, a.max_literal) => 1.0,
            _ => 0.0,
        }
    }
}

/// How interestingness enters the reward of a valid problem with base reward
/// `b = frontier · depth_factor · padding_factor · length_factor · (1 − repetition)` and score
/// `s` (either way, `repetition.cost · repetition` is then charged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterestMode {
    /// `b + w · s`: paid whatever the solver makes of the problem, so a proposer can earn it with
    /// problems nobody solves.
    Additive,
    /// `b · (1 + w · s)`: paid only as far as the frontier pays, so interestingness cannot be
    /// bought with problems the solver never (or always) solves, nor with padding.
    #[default]
    Frontier,
    /// `b`, the score left out of the reward: it is the proposer's second signal, ranked on its
    /// own among the proposals the frontier pays and added to the reward's advantage at weight
    /// `w` (`proposer::objective::with_interest`). The score is exact; as a factor on the frontier
    /// term it is drowned by the solve-rate noise of a few attempts.
    Advantage,
}

/// Everything that sets the proposer's reward.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardConfig {
    pub frontier: FrontierForm,
    pub padding: PaddingPenalty,
    pub repetition: RepetitionPenalty,
    pub length: LengthResidual,
    pub target: TargetPenalty,
    /// Weight `w` of the interestingness score.
    pub interestingness_weight: f64,
    /// How the weighted score enters the reward.
    pub interestingness_mode: InterestMode,
    /// Reward of an invalid problem: below the most a valid problem can be charged, so that no
    /// valid problem earns less than nonsense.
    pub invalid: f64,
    /// The frontier term is paid times `depth^depth_exponent` (0: off), the depth being the
    /// operations a problem is paid for ([`ProblemFacts::depth`]). The band alone pays a hard
    /// two-operation problem as much as a four-operation one, and a proposer paid so writes
    /// shallower in-band problems than the domain's generator at the same targets. At 1 its
    /// in-band problems went deeper and its solver learnt no more (bench/experiments/selfplay).
    pub depth_exponent: f64,
}

impl Default for RewardConfig {
    fn default() -> Self {
        RewardConfig {
            frontier: FrontierForm::default(),
            padding: PaddingPenalty::default(),
            repetition: RepetitionPenalty::default(),
            length: LengthResidual::default(),
            target: TargetPenalty::default(),
            interestingness_weight: 0.0,
            interestingness_mode: InterestMode::Frontier,
            invalid: -1.5,
            depth_exponent: 0.0,
        }
    }
}

impl RewardConfig {
    /// Checks that every number is finite and in its range; names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            ("padding.exponent", self.padding.exponent, 0.0, f64::MAX),
            ("padding.hard_floor", self.padding.hard_floor, 0.0, 1.0),
            ("padding.cost", self.padding.cost, 0.0, f64::MAX),
            ("repetition.batch", self.repetition.batch, 0.0, 1.0),
            ("repetition.archive", self.repetition.archive, 0.0, 1.0),
            ("repetition.cost", self.repetition.cost, 0.0, f64::MAX),
            ("repetition.crowding", self.repetition.crowding, 0.0, 1.0),
            ("length.weight", self.length.weight, 0.0, 1.0),
            ("length.rate", self.length.rate, 0.0, 1.0),
            ("target.cost", self.target.cost, 0.0, f64::MAX),
            ("interestingness_weight", self.interestingness_weight, 0.0, f64::MAX),
            ("invalid", self.invalid, -f64::MAX, 0.0),
            ("depth_exponent", self.depth_exponent, 0.0, 4.0),
        ];
        if self.repetition.crowding_window == 0 {
            return Err("repetition.crowding_window must be at least 1, got 0".into());
        }
        for (key, v, lo, hi) in checks {
            if !v.is_finite() || v < lo || v > hi {
                let range = match (lo == -f64::MAX, hi == f64::MAX) {
                    (true, _) => format!("<= {hi}"),
                    (_, true) => format!(">= {lo}"),
                    _ => format!("in [{lo}, {hi}]"),
                };
                return Err(format!("{key} must be a finite number {range}, got {v}"));
            }
        }
        // The most a valid problem can be charged: a copy, padding 1, off its target.
        let charges = self.repetition.cost + self.padding.cost + self.target.cost;
        if self.invalid >= -charges {
            return Err(format!(
                "invalid ({}) must be below -(repetition.cost + padding.cost + target.cost) = {}: \
                 otherwise an invalid problem can earn more than a valid one",
                self.invalid, -charges
            ));
        }
        Ok(())
    }
}

/// What is known of one valid problem when it is paid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProblemFacts {
    /// The solver's solve rate `p̂`.
    pub solve_rate: f64,
    /// `1 − essential/surface` operations.
    pub padding: f64,
    /// Repetition penalty ([`RepetitionPenalty::penalty`]).
    pub repetition: f64,
    /// Its target miss ([`TargetPenalty::miss`]).
    pub target_miss: f64,
    /// The length curve's solve rate at its length, when known.
    pub length_baseline: Option<f64>,
    /// Its interestingness score, when one is known (a missing score drops its term, it does
    /// not count as 0).
    pub interestingness: Option<f64>,
    /// The operations it is paid for ([`RewardConfig::depth_exponent`]): its essential depth,
    /// but no more than its target asked, so that writing deeper than asked earns nothing.
    pub depth: u32,
}

impl Default for ProblemFacts {
    fn default() -> Self {
        ProblemFacts {
            solve_rate: 0.0,
            padding: 0.0,
            repetition: 0.0,
            target_miss: 0.0,
            length_baseline: None,
            interestingness: None,
            depth: 1,
        }
    }
}

/// The proposer's reward for one problem, every term kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardTerms {
    /// Frontier term from the solve rate; `None` for invalid or unsolved-for problems.
    pub frontier: Option<f64>,
    /// The frontier term's weight for the problem's depth ([`RewardConfig::depth_exponent`]).
    pub depth_factor: f64,
    /// Padding discount in `[0, 1]`.
    pub padding_factor: f64,
    /// The length curve's solve rate at this problem's length, when it had one.
    pub length_baseline: Option<f64>,
    /// Length-residual discount in `[0, 1]` ([`LengthResidual`]).
    pub length_factor: f64,
    /// Repetition penalty in `[0, 1]`.
    pub repetition: f64,
    /// Interestingness score in `[0, 1]`; `None` when no scorer gave one.
    pub interestingness: Option<f64>,
    /// The weight the interestingness term was paid with.
    pub interestingness_weight: f64,
    /// Whether the problem missed its difficulty target: 0 or 1 ([`TargetPenalty::miss`]);
    /// `None` for an invalid problem.
    pub target_miss: Option<f64>,
    /// The invalid reward, when the problem is invalid.
    pub invalid: Option<f64>,
    /// The reward paid: the product of the factors, interestingness by its mode, less
    /// `repetition.cost · repetition`, `padding.cost · padding` and `target.cost · target_miss`.
    pub total: f64,
}

impl RewardTerms {
    /// What the frontier pays before interestingness and charges:
    /// `frontier · depth_factor · padding_factor · length_factor · (1 − repetition)`; 0 for an
    /// invalid problem.
    pub fn frontier_paid(&self) -> f64 {
        self.frontier.unwrap_or(0.0)
            * self.depth_factor
            * self.padding_factor
            * self.length_factor
            * (1.0 - self.repetition)
    }
}

impl RewardConfig {
    /// The reward of an invalid problem.
    pub fn invalid_reward(&self) -> RewardTerms {
        RewardTerms {
            frontier: None,
            depth_factor: 0.0,
            padding_factor: 0.0,
            length_baseline: None,
            length_factor: 0.0,
            repetition: 0.0,
            interestingness: None,
            interestingness_weight: self.interestingness_weight,
            target_miss: None,
            invalid: Some(self.invalid),
            total: self.invalid,
        }
    }

    /// The reward of a valid problem, from what is known of it.
    pub fn reward(&self, facts: &ProblemFacts) -> RewardTerms {
        let ProblemFacts {
            solve_rate: p,
            padding,
            repetition,
            target_miss,
            length_baseline,
            interestingness,
            depth,
        } = *facts;
        let frontier = frontier(p, self.frontier);
        let padding_factor = self.padding.factor(padding);
        let length_factor = self.length.factor(p, length_baseline);
        let repetition = if repetition.is_finite() { repetition.clamp(0.0, 1.0) } else { 0.0 };
        let interestingness = interestingness.filter(|s| s.is_finite()).map(|s| s.clamp(0.0, 1.0));
        let depth_factor = f64::from(depth.max(1)).powf(self.depth_exponent);
        let base = frontier * depth_factor * padding_factor * length_factor * (1.0 - repetition);
        let interest = self.interestingness_weight * interestingness.unwrap_or(0.0);
        let paid = match self.interestingness_mode {
            InterestMode::Additive => base + interest,
            InterestMode::Frontier => base * (1.0 + interest),
            InterestMode::Advantage => base,
        };
        let target_miss = target_miss.clamp(0.0, 1.0);
        let total = paid
            - self.repetition.cost * repetition
            - self.padding.cost * padding.clamp(0.0, 1.0)
            - self.target.cost * target_miss;
        RewardTerms {
            frontier: Some(frontier),
            depth_factor,
            padding_factor,
            length_baseline,
            length_factor,
            repetition,
            interestingness,
            interestingness_weight: self.interestingness_weight,
            target_miss: Some(target_miss),
            invalid: None,
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use problem::{Domain, Limits};
    use proptest::prelude::*;

    /// A quarter-padded copy of an archived problem, solved half the time, scored 0.8.
    fn padded_copy_at_one_half(cfg: &RewardConfig) -> ProblemFacts {
        ProblemFacts {
            solve_rate: 0.5,
            padding: 0.25,
            repetition: cfg.repetition.penalty(Repetition::Archive, None),
            interestingness: Some(0.8),
            ..ProblemFacts::default()
        }
    }

    #[test]
    fn frontier_forms() {
        for form in [FrontierForm::RZero, FrontierForm::AbsoluteZero] {
            assert_eq!(frontier(0.0, form), 0.0);
            assert_eq!(frontier(1.0, form), 0.0);
            assert_eq!(frontier(f64::NAN, form), 0.0);
        }
        assert_eq!(frontier(0.5, FrontierForm::RZero), 1.0);
        assert_eq!(frontier(0.25, FrontierForm::RZero), 0.5);
        assert_eq!(frontier(0.875, FrontierForm::RZero), 0.25);
        assert_eq!(frontier(0.125, FrontierForm::AbsoluteZero), 0.875);
        assert_eq!(frontier(0.75, FrontierForm::AbsoluteZero), 0.25);
    }

    #[test]
    fn padding_factor_decreases_to_a_hard_floor() {
        let p = PaddingPenalty::default();
        assert_eq!(p.factor(0.0), 1.0);
        assert_eq!(p.factor(0.25), 0.5625);
        assert_eq!(p.factor(0.5), 0.0);
        assert_eq!(p.factor(0.9), 0.0);
        let mut last = f64::INFINITY;
        for i in 0..=100 {
            let f = p.factor(f64::from(i) / 100.0);
            assert!(f <= last && (0.0..=1.0).contains(&f));
            last = f;
        }
    }

    #[test]
    fn reward_keeps_every_term() {
        // A partial archive penalty, so that every factor shows in the product.
        let repetition =
            RepetitionPenalty { batch: 1.0, archive: 0.5, cost: 0.25, ..RepetitionPenalty::default() };
        let cfg = RewardConfig {
            interestingness_weight: 0.5,
            interestingness_mode: InterestMode::Additive,
            repetition,
            ..RewardConfig::default()
        };
        let r = cfg.reward(&padded_copy_at_one_half(&cfg));
        assert_eq!(r.frontier, Some(1.0));
        assert_eq!(r.padding_factor, 0.5625);
        assert_eq!(r.repetition, 0.5);
        assert_eq!(r.interestingness, Some(0.8));
        // Less the repetition charge (cost 0.25 at penalty 0.5) and the padding charge (cost 0.5
        // at padding 0.25).
        assert!((r.total - (1.0 * 0.5625 * 0.5 + 0.5 * 0.8 - 0.25 * 0.5 - 0.5 * 0.25)).abs() < 1e-12);
        // A missing score drops its term.
        let r = cfg.reward(&ProblemFacts { solve_rate: 0.5, ..ProblemFacts::default() });
        assert_eq!((r.interestingness, r.total), (None, 1.0));
        let r = cfg.invalid_reward();
        assert_eq!((r.invalid, r.total, r.frontier), (Some(-1.5), -1.5, None));
    }

    #[test]
    fn padding_an_easy_problem_into_the_band_earns_less_than_nothing_past_the_floor() {
        let cfg = RewardConfig::default();
        // `7` (always solved, earns 0) padded to `7*1+0`: solved half the time, padding 2/3.
        assert_eq!(cfg.reward(&ProblemFacts { solve_rate: 1.0, ..ProblemFacts::default() }).total, 0.0);
        let padded =
            cfg.reward(&ProblemFacts { solve_rate: 0.5, padding: 2.0 / 3.0, ..ProblemFacts::default() });
        assert_eq!(padded.padding_factor, 0.0);
        assert!((padded.total + cfg.padding.cost * 2.0 / 3.0).abs() < 1e-12);
        // Below the floor the discounted frontier term is paid, less the charge.
        let light = cfg.reward(&ProblemFacts { solve_rate: 0.5, padding: 0.25, ..ProblemFacts::default() });
        assert!((light.total - (0.5625 - cfg.padding.cost * 0.25)).abs() < 1e-12);
        // Without the charge, padding past the floor earns what the unpadded problem earns.
        let free = RewardConfig { padding: PaddingPenalty { cost: 0.0, ..cfg.padding }, ..cfg };
        assert_eq!(
            free.reward(&ProblemFacts { solve_rate: 0.5, padding: 2.0 / 3.0, ..ProblemFacts::default() })
                .total,
            0.0
        );
        let bad = RewardConfig { padding: PaddingPenalty { cost: f64::NAN, ..cfg.padding }, ..cfg };
        assert!(bad.validate().unwrap_err().starts_with("padding.cost must be"));
    }

    #[test]
    fn a_copy_earns_less_than_any_fresh_valid_problem() {
        let cfg = RewardConfig::default();
        let fresh_worst = [0.0, 1.0]
            .map(|p| cfg.reward(&ProblemFacts { solve_rate: p, ..ProblemFacts::default() }).total)
            .into_iter()
            .fold(f64::INFINITY, f64::min);
        assert_eq!(fresh_worst, 0.0);
        for (p, copy) in [
            (0.0, Repetition::Archive),
            (0.5, Repetition::Archive),
            (1.0, Repetition::Batch { first: 0 }),
            (0.5, Repetition::Batch { first: 3 }),
        ] {
            let r = cfg.reward(&ProblemFacts {
                solve_rate: p,
                repetition: cfg.repetition.penalty(copy, None),
                ..ProblemFacts::default()
            });
            assert_eq!((r.repetition, r.total), (1.0, -cfg.repetition.cost), "{p} {copy:?}");
            assert!(r.total < fresh_worst && r.total > cfg.invalid);
        }
        // With the penalty off a copy is paid as a fresh problem, whatever the cost.
        let off = RewardConfig {
            repetition: RepetitionPenalty {
                batch: 0.0,
                archive: 0.0,
                cost: 0.25,
                crowding: 0.0,
                ..cfg.repetition
            },
            ..cfg
        };
        assert_eq!(
            off.reward(&ProblemFacts {
                solve_rate: 0.5,
                repetition: off.repetition.penalty(Repetition::Archive, None),
                ..ProblemFacts::default()
            })
            .total,
            1.0
        );
        let bad = RewardConfig { repetition: RepetitionPenalty { cost: -0.5, ..cfg.repetition }, ..cfg };
        assert!(bad.validate().unwrap_err().starts_with("repetition.cost must be"));
    }

    #[test]
    fn a_problem_off_its_target_is_charged() {
        let miss = |text: &str, depth, max_literal| {
            let a = problem::Arith.analyze(text, &Limits::default()).unwrap();
            TargetPenalty::miss(&a, Some(problem::Target { depth, max_literal }))
        };
        assert_eq!(miss("(1+2)*3", 2, None), 0.0);
        assert_eq!(miss("(1+2)*3+0", 2, None), 0.0);
        assert_eq!(miss("(1+2)*3", 1, None), 1.0);
        assert_eq!(miss("4", 6, None), 1.0);
        // A literal bound is met by literals up to it, padding's included.
        assert_eq!(miss("20*3", 1, Some(20)), 0.0);
        assert_eq!(miss("21*3", 1, Some(20)), 1.0);
        assert_eq!(miss("2*3*1", 1, Some(0)), 1.0);
        assert_eq!(miss("93*17", 1, Some(99)), 0.0);
        let a = problem::Arith.analyze("1+2", &Limits::default()).unwrap();
        assert_eq!(TargetPenalty::miss(&a, None), 0.0);
        let cfg = RewardConfig::default();
        let on = cfg.reward(&ProblemFacts { solve_rate: 0.5, ..ProblemFacts::default() });
        let off = cfg.reward(&ProblemFacts { solve_rate: 0.5, target_miss: 1.0, ..ProblemFacts::default() });
        assert_eq!((on.target_miss, on.total), (Some(0.0), 1.0));
        assert_eq!((off.target_miss, off.total), (Some(1.0), 1.0 - cfg.target.cost));
        // Off its target a problem still earns what the band pays beyond the charge: asked for a
        // depth the solver always solves, a proposer gains by another solved 60% of the time, not
        // by one solved 90% of the time.
        let stay = cfg.reward(&ProblemFacts { solve_rate: 1.0, ..ProblemFacts::default() }).total;
        let drift =
            cfg.reward(&ProblemFacts { solve_rate: 0.6, target_miss: 1.0, ..ProblemFacts::default() }).total;
        assert!((drift - (0.8 - cfg.target.cost)).abs() < 1e-12 && drift > stay);
        assert!(
            cfg.reward(&ProblemFacts { solve_rate: 0.9, target_miss: 1.0, ..ProblemFacts::default() }).total
                < stay
        );
        // Off: no charge.
        let free = RewardConfig { target: TargetPenalty { cost: 0.0 }, ..cfg };
        assert_eq!(
            free.reward(&ProblemFacts { solve_rate: 0.5, target_miss: 1.0, ..ProblemFacts::default() }).total,
            1.0
        );
        assert_eq!(cfg.invalid_reward().target_miss, None);
    }

    #[test]
    fn an_invalid_problem_earns_less_than_any_valid_one() {
        let cfg = RewardConfig::default();
        let worst = cfg
            .reward(&ProblemFacts {
                solve_rate: 0.0,
                padding: 1.0,
                repetition: cfg.repetition.penalty(Repetition::Archive, None),
                target_miss: 1.0,
                ..ProblemFacts::default()
            })
            .total;
        assert!((worst + cfg.repetition.cost + cfg.padding.cost + cfg.target.cost).abs() < 1e-12);
        assert!(cfg.invalid < worst);
        let bad = RewardConfig { invalid: -1.0, ..cfg };
        assert_eq!(
            bad.validate().unwrap_err(),
            "invalid (-1) must be below -(repetition.cost + padding.cost + target.cost) = -1.25: \
             otherwise an invalid problem can earn more than a valid one"
        );
        let bad = RewardConfig { target: TargetPenalty { cost: -1.0 }, ..cfg };
        assert!(bad.validate().unwrap_err().starts_with("target.cost must be"));
    }

    #[test]
    fn frontier_mode_pays_interestingness_only_where_the_frontier_pays() {
        let cfg = RewardConfig {
            interestingness_weight: 1.0,
            interestingness_mode: InterestMode::Frontier,
            repetition: RepetitionPenalty {
                batch: 1.0,
                archive: 0.5,
                cost: 0.0,
                ..RepetitionPenalty::default()
            },
            ..RewardConfig::default()
        };
        let r = cfg.reward(&padded_copy_at_one_half(&cfg));
        assert!((r.total - (1.0 * 0.5625 * 0.5 * 1.8 - cfg.padding.cost * 0.25)).abs() < 1e-12);
        // Never or always solved, or padded past the floor: interestingness earns nothing (the
        // padded problem is charged for its padding).
        for (p, padding) in [(0.0, 0.0), (1.0, 0.0), (0.5, 0.6)] {
            assert_eq!(
                cfg.reward(&ProblemFacts {
                    solve_rate: p,
                    padding,
                    interestingness: Some(1.0),
                    ..ProblemFacts::default()
                })
                .total,
                -cfg.padding.cost * padding,
                "{p} {padding}"
            );
        }
        // At a given frontier, more interesting pays more.
        let pay = |s| {
            cfg.reward(&ProblemFacts {
                solve_rate: 0.25,
                interestingness: Some(s),
                ..ProblemFacts::default()
            })
            .total
        };
        assert!(pay(0.9) > pay(0.1) && pay(0.1) > 0.0);
    }

    #[test]
    fn advantage_mode_leaves_interestingness_out_of_the_reward() {
        let frontier_mode = RewardConfig {
            interestingness_weight: 1.0,
            repetition: RepetitionPenalty { archive: 0.5, ..RepetitionPenalty::default() },
            ..RewardConfig::default()
        };
        let cfg = RewardConfig { interestingness_mode: InterestMode::Advantage, ..frontier_mode };
        let off = RewardConfig { interestingness_weight: 0.0, ..frontier_mode };
        for s in [Some(0.0), Some(0.7), None] {
            let facts = ProblemFacts { interestingness: s, ..padded_copy_at_one_half(&cfg) };
            let r = cfg.reward(&facts);
            // Paid what the weight-0 reward pays, the score kept beside it.
            assert_eq!(r.total, off.reward(&facts).total, "{s:?}");
            assert_eq!((r.interestingness, r.interestingness_weight), (s, 1.0));
            // What the frontier pays is the product of its factors, whatever the mode.
            let f = frontier_mode.reward(&facts);
            assert_eq!(r.frontier_paid(), f.frontier_paid());
            assert!((r.frontier_paid() - 0.5625 * 0.5).abs() < 1e-12, "{}", r.frontier_paid());
        }
        assert_eq!(cfg.invalid_reward().frontier_paid(), 0.0);
        let never = cfg.reward(&ProblemFacts { solve_rate: 0.0, ..ProblemFacts::default() });
        assert_eq!(never.frontier_paid(), 0.0);
    }

    #[test]
    fn the_depth_exponent_pays_deep_problems_more_and_charges_alike() {
        let cfg = RewardConfig { depth_exponent: 1.0, ..RewardConfig::default() };
        let at = |depth, p, target_miss| {
            cfg.reward(&ProblemFacts { solve_rate: p, target_miss, depth, ..ProblemFacts::default() })
        };
        // In the band, four operations earn twice what two do.
        let (two, four) = (at(2, 0.5, 0.0), at(4, 0.5, 0.0));
        assert_eq!((two.depth_factor, two.total), (2.0, 2.0));
        assert_eq!((four.depth_factor, four.total), (4.0, 4.0));
        assert!((at(4, 0.25, 0.0).total - 2.0).abs() < 1e-12);
        // Outside it depth earns nothing, and a charge is the same at every depth.
        assert_eq!(at(4, 1.0, 0.0).total, 0.0);
        assert_eq!(at(4, 0.0, 1.0).total, -cfg.target.cost);
        assert_eq!(at(1, 0.0, 1.0).total, -cfg.target.cost);
        // Off (the default), depth changes nothing.
        let off = RewardConfig::default();
        let r = off.reward(&ProblemFacts { solve_rate: 0.5, depth: 5, ..ProblemFacts::default() });
        assert_eq!((r.depth_factor, r.total), (1.0, 1.0));
        let bad = RewardConfig { depth_exponent: -1.0, ..cfg };
        assert!(bad.validate().unwrap_err().starts_with("depth_exponent must be"));
    }

    #[test]
    fn config_validation_names_the_key() {
        let mut cfg = RewardConfig::default();
        assert!(cfg.validate().is_ok());
        cfg.padding.hard_floor = 1.5;
        assert_eq!(
            cfg.validate().unwrap_err(),
            "padding.hard_floor must be a finite number in [0, 1], got 1.5"
        );
        cfg = RewardConfig { invalid: 1.0, ..RewardConfig::default() };
        assert!(cfg.validate().unwrap_err().starts_with("invalid must be"));
        let parsed: Result<RewardConfig, _> =
            serde_json::from_str(r#"{"frontier":"absolute_zero","padding":{"exponent":1}}"#);
        assert_eq!(parsed.unwrap().frontier, FrontierForm::AbsoluteZero);
        let bad: Result<RewardConfig, _> = serde_json::from_str(r#"{"frontir":"r_zero"}"#);
        assert!(bad.unwrap_err().to_string().contains("unknown field `frontir`"));
    }

    proptest! {
        #[test]
        fn reward_is_bounded(p in 0.0f64..=1.0, pad in 0.0f64..=1.0, s in proptest::option::of(-1.0f64..2.0), w in 0.0f64..2.0, miss in prop::bool::ANY, crowd in proptest::option::of(0.0f64..=1.0)) {
            let cfg = RewardConfig { interestingness_weight: w, ..RewardConfig::default() };
            let miss = f64::from(u8::from(miss));
            for rep in [Repetition::Fresh, Repetition::Archive, Repetition::Batch { first: 0 }] {
                let r = cfg.reward(&ProblemFacts { solve_rate: p, padding: pad, repetition: cfg.repetition.penalty(rep, crowd), target_miss: miss, interestingness: s, ..ProblemFacts::default() });
                // A repeat, padding and a missed target are charged at most their costs, and never
                // fall to an invalid problem's reward.
                let charges = cfg.repetition.cost + cfg.padding.cost * pad + cfg.target.cost * miss;
                prop_assert!(r.total >= -charges - 1e-12);
                prop_assert!(r.total <= 1.0 + w + 1e-12);
                prop_assert!(r.total > cfg.invalid);
                for f in [FrontierForm::RZero, FrontierForm::AbsoluteZero] {
                    let v = frontier(p, f);
                    prop_assert!((0.0..=1.0).contains(&v));
                }
            }
        }
    }
}
