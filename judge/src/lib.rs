//! The judge: what is a correct answer, and what is a good problem.
//!
//! It verifies answers exactly against the domain's interpreter and computes the proposer's reward
//! term by term. Every term is kept separately in [`RewardTerms`] so the archive can show why a
//! problem was paid what it was, and so experiments can change one term and see the effect.
//!
//! The reward of a valid problem with solve rate `p` is
//!
//! ```text
//! total = frontier(p) · padding_factor(padding) · length_factor · (1 − repetition) · (1 + w · interestingness)
//!         − repetition.cost · repetition − padding.cost · padding − target.cost · target_miss
//! ```
//!
//! (or, with [`InterestMode::Additive`], the product plus `w · interestingness`)
//!
//! and an invalid problem gets the fixed `invalid` reward. Each factor is documented where it is
//! computed: [`frontier`], [`PaddingPenalty::factor`], [`RepetitionPenalty::penalty`],
//! [`TargetPenalty::miss`].

pub mod scorer;

use std::collections::{BTreeMap, HashMap, HashSet};

use problem::{Analysis, Domain, Limits, ProblemError};
use serde::{Deserialize, Serialize};

/// The final answer in a solver's output.
///
/// Rule: the solver may write a scratchpad of steps separated by `=` (`(3+4)*2=7*2=14`); its
/// answer is the text after the last `=`, or the whole output when there is none, with
/// surrounding spaces removed.
pub fn extract_answer(output: &str) -> &str {
    output.rsplit('=').next().unwrap_or(output).trim_matches(' ')
}

/// One solver attempt, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The extracted final answer.
    pub answer: String,
    pub correct: bool,
}

/// Checks a solver's whole output against the exact answer of the problem: correct when the
/// final answer matches and every step before it holds ([`Domain::step_holds`]: in arithmetic,
/// each expression of the chain has the answer's value). A right answer reached through a false
/// step (`4*3+3` → `8+9=15`) is not a solution: paying for it would teach the false step.
pub fn verify(domain: &dyn Domain, expected: &str, output: &str) -> Verdict {
    let answer = extract_answer(output);
    // Every `=`-separated part but the last (the answer) is a step.
    let correct = domain.answers_match(expected, answer)
        && output.rsplit('=').skip(1).all(|s| domain.step_holds(s, expected));
    Verdict { answer: answer.to_string(), correct }
}

/// Fraction of correct verdicts; `None` when there are none.
pub fn solve_rate(verdicts: &[Verdict]) -> Option<f64> {
    (!verdicts.is_empty())
        .then(|| verdicts.iter().filter(|v| v.correct).count() as f64 / verdicts.len() as f64)
}

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

/// Whether a problem repeats one already seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Repetition {
    /// A canonical form not seen in this batch or the archive.
    Fresh,
    /// Same canonical form as an earlier problem of the same batch (its index in the batch).
    Batch { first: usize },
    /// Same canonical form as a problem already in the archive.
    Archive,
}

/// What repetition costs: the penalty `r ∈ [0, 1]` of a repeat is the fraction of its frontier
/// reward taken away, and `cost · r` is charged besides.
///
/// Taking the reward away alone leaves a copy earning what a fresh problem outside the band earns
/// (nothing) — and most proposals are outside the band, so copying the archive's easy problems
/// costs a proposer nothing. The charge makes a copy worse than any fresh valid problem.
///
/// A copy's penalty alone does not keep a proposer from copying: it cannot know which of a
/// family's problems are archived, so a family whose fresh problems pay well is worth writing
/// from even when a third of what it writes there are copies. The crowding term prices that in:
/// a fresh problem's penalty is `crowding` times the share of copies among the recent problems of
/// its shape ([`problem::Domain::shape`], [`Crowding`]) — what writing from that shape is
/// expected to repeat — so a family pays less as the archive fills it, before its copies do.
/// (Measured in `bench/experiments/selfplay`: on one seed its own effect on copies was not told
/// apart from the spread between seeds.)
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RepetitionPenalty {
    /// For a canonical duplicate within the batch: the first occurrence is paid, copies are not.
    pub batch: f64,
    /// For a canonical duplicate of an archived problem.
    pub archive: f64,
    /// Charged at the penalty's rate: a copy with penalty 1 earns `−cost` besides any
    /// interestingness (an invalid problem earns `invalid`, −1.5 by default).
    pub cost: f64,
    /// For a fresh problem: the weight in `[0, 1]` of its shape's share of copies (0: off).
    pub crowding: f64,
    /// Problems of a shape seen before its share of copies is used; the share is a moving
    /// average over about this many of its latest problems.
    pub crowding_window: u32,
}

impl Default for RepetitionPenalty {
    fn default() -> Self {
        RepetitionPenalty { batch: 1.0, archive: 1.0, cost: 0.25, crowding: 1.0, crowding_window: 32 }
    }
}

impl RepetitionPenalty {
    /// The penalty in `[0, 1]` for a repetition status and, for a fresh problem, its shape's
    /// share of copies ([`Crowding::share`]) when known.
    pub fn penalty(&self, r: Repetition, crowding: Option<f64>) -> f64 {
        match r {
            Repetition::Fresh => {
                crowding.filter(|c| c.is_finite()).map_or(0.0, |c| self.crowding * c.clamp(0.0, 1.0))
            }
            Repetition::Batch { .. } => self.batch,
            Repetition::Archive => self.archive,
        }
    }
}

/// The share of copies among the recent valid problems of each shape: a moving average per shape
/// (the first `window` problems of a shape averaged plainly, later ones at rate `1 / window`),
/// fed every valid proposal each round. Saved with the curriculum. It keeps at most
/// [`Crowding::SHAPES`] shapes: past them, those seen longest ago are forgotten (one that comes
/// back gathers its evidence again), so that a run of days keeps a bounded state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Crowding {
    shapes: HashMap<String, ShapeCopies>,
    /// Problems taken in: the clock `ShapeCopies::last` is read on (absent from older states).
    #[serde(default)]
    clock: u64,
}

/// One shape's copies; written `[share, seen, last]` (older states have no `last`: 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct ShapeCopies(f64, u64, #[serde(default)] u64);

impl Crowding {
    /// Shapes kept: those of the whole of a 700-round run are about 2,300.
    pub const SHAPES: usize = 1 << 14;

    /// Takes in one valid problem of `shape`, a copy or not.
    pub fn observe(&mut self, shape: &str, copy: bool, window: u32) {
        self.observe_keeping(shape, copy, window, Self::SHAPES);
    }

    /// [`Crowding::observe`], keeping at most `keep` shapes (once a quarter more were seen, the
    /// shapes seen longest ago are dropped down to `keep`).
    fn observe_keeping(&mut self, shape: &str, copy: bool, window: u32, keep: usize) {
        self.clock += 1;
        let ShapeCopies(share, n, last) =
            self.shapes.entry(shape.to_owned()).or_insert(ShapeCopies(0.0, 0, 0));
        *n += 1;
        *last = self.clock;
        let step = (1.0 / *n as f64).max(1.0 / f64::from(window.max(1)));
        *share += step * (f64::from(u8::from(copy)) - *share);
        if self.shapes.len() > keep + keep.div_ceil(4) {
            let mut lasts: Vec<u64> = self.shapes.values().map(|s| s.2).collect();
            let cut = lasts.len() - keep;
            let (_, &mut oldest_kept, _) = lasts.select_nth_unstable(cut);
            self.shapes.retain(|_, s| s.2 >= oldest_kept);
        }
    }

    /// The share of copies of `shape`, once `window` of its problems were seen.
    pub fn share(&self, shape: &str, window: u32) -> Option<f64> {
        self.shapes.get(shape).filter(|s| s.1 >= u64::from(window)).map(|s| s.0)
    }

    /// Shapes kept.
    pub fn len(&self) -> usize {
        self.shapes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shapes.is_empty()
    }
}

/// Canonical hashes already known (the archive, or a set of them).
pub trait KnownHashes {
    fn contains(&self, hash: u64) -> bool;
}

impl KnownHashes for HashSet<u64> {
    fn contains(&self, hash: u64) -> bool {
        HashSet::contains(self, &hash)
    }
}

impl<F: Fn(u64) -> bool> KnownHashes for F {
    fn contains(&self, hash: u64) -> bool {
        self(hash)
    }
}

/// Repetition status of each problem of a batch, given its canonical hash (`None` for invalid
/// problems, which are never repetitions). A copy within the batch is reported as such even when
/// the archive also has it; the first occurrence is checked against the archive.
pub fn repetitions(hashes: &[Option<u64>], known: &dyn KnownHashes) -> Vec<Repetition> {
    let mut first: HashMap<u64, usize> = HashMap::new();
    hashes
        .iter()
        .enumerate()
        .map(|(i, h)| match h {
            None => Repetition::Fresh,
            Some(h) => match first.get(h) {
                Some(&f) => Repetition::Batch { first: f },
                None => {
                    first.insert(*h, i);
                    if known.contains(*h) {
                        Repetition::Archive
                    } else {
                        Repetition::Fresh
                    }
                }
            },
        })
        .collect()
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

/// The length-residual term (`docs/DESIGN.md`, "The reward"): difficulty that length alone
/// explains earns less.
///
/// The solver's solve rate on the lab's problems by length in tokens (what a proposer inflates
/// with long literals, repeated terms or `+0` alike) is the length curve, `b(L)`
/// ([`LengthCurve`]). Of a problem's difficulty `1 − p`, the part beyond what its length predicts,
/// `s = clamp((b(L) − p) / (1 − p), 0, 1)`, is structural; the frontier term is paid in full on
/// that share and at `1 − weight` on the rest:
/// `length_factor = 1 − weight · (1 − s)`. With `weight = 0` the term is off; with no estimate
/// for a length yet the factor is 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LengthResidual {
    /// Weight in `[0, 1]` of the length-explained share.
    pub weight: f64,
    /// Each new solve rate moves the curve at its length by this fraction.
    pub rate: f64,
    /// Problems of a length seen before the curve is trusted there.
    pub min_evidence: u32,
}

impl Default for LengthResidual {
    fn default() -> Self {
        LengthResidual { weight: 0.5, rate: 0.05, min_evidence: 16 }
    }
}

impl LengthResidual {
    /// The factor in `[1 − weight, 1]` for solve rate `p` and the curve's `baseline` at the
    /// problem's length.
    pub fn factor(&self, p: f64, baseline: Option<f64>) -> f64 {
        let Some(b) = baseline.filter(|b| b.is_finite()) else { return 1.0 };
        let structural = if p < 1.0 { ((b - p) / (1.0 - p)).clamp(0.0, 1.0) } else { 0.0 };
        1.0 - self.weight * (1.0 - structural)
    }
}

/// The solver's solve rate by problem length in tokens: an exponential moving average per length,
/// fed every valid problem's solve rate each round. Saved with the curriculum.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LengthCurve {
    /// `length → (mean solve rate, problems seen)`.
    points: BTreeMap<u32, (f64, u64)>,
}

impl LengthCurve {
    /// Moves the curve at `length` toward `p` (the first problems of a length are averaged
    /// plainly, later ones at `rate`).
    pub fn observe(&mut self, length: u32, p: f64, rate: f64) {
        if !p.is_finite() {
            return;
        }
        let (mean, n) = self.points.entry(length).or_insert((0.0, 0));
        *n += 1;
        let step = (1.0 / *n as f64).max(rate);
        *mean += step * (p - *mean);
    }

    /// The expected solve rate at `length`, once `min_evidence` problems of it were seen.
    pub fn expected(&self, length: u32, min_evidence: u32) -> Option<f64> {
        self.points.get(&length).filter(|(_, n)| *n >= u64::from(min_evidence)).map(|(m, _)| *m)
    }

    /// `(length, expected solve rate, problems seen)` for every length seen.
    pub fn points(&self) -> impl Iterator<Item = (u32, f64, u64)> + '_ {
        self.points.iter().map(|(&l, &(m, n))| (l, m, n))
    }
}

/// How interestingness enters the reward of a valid problem with base reward
/// `b = frontier · padding_factor · length_factor · (1 − repetition)` and score `s` (either way,
/// `repetition.cost · repetition` is then charged).
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

/// The proposer's reward for one problem, every term kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardTerms {
    /// Frontier term from the solve rate; `None` for invalid or unsolved-for problems.
    pub frontier: Option<f64>,
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

impl RewardConfig {
    /// The reward of an invalid problem.
    pub fn invalid_reward(&self) -> RewardTerms {
        RewardTerms {
            frontier: None,
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

    /// The reward of a valid problem with solve rate `p`, padding, repetition penalty
    /// ([`RepetitionPenalty::penalty`]), its target miss ([`TargetPenalty::miss`]), the length
    /// curve's solve rate at its length when known, and an interestingness score when one is
    /// known (a missing score drops its term, it does not count as 0).
    pub fn reward(
        &self,
        p: f64,
        padding: f64,
        repetition: f64,
        target_miss: f64,
        length_baseline: Option<f64>,
        interestingness: Option<f64>,
    ) -> RewardTerms {
        let frontier = frontier(p, self.frontier);
        let padding_factor = self.padding.factor(padding);
        let length_factor = self.length.factor(p, length_baseline);
        let repetition = if repetition.is_finite() { repetition.clamp(0.0, 1.0) } else { 0.0 };
        let interestingness = interestingness.filter(|s| s.is_finite()).map(|s| s.clamp(0.0, 1.0));
        let base = frontier * padding_factor * length_factor * (1.0 - repetition);
        let interest = self.interestingness_weight * interestingness.unwrap_or(0.0);
        let paid = match self.interestingness_mode {
            InterestMode::Additive => base + interest,
            InterestMode::Frontier => base * (1.0 + interest),
        };
        let target_miss = target_miss.clamp(0.0, 1.0);
        let total = paid
            - self.repetition.cost * repetition
            - self.padding.cost * padding.clamp(0.0, 1.0)
            - self.target.cost * target_miss;
        RewardTerms {
            frontier: Some(frontier),
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

/// A candidate problem as the judge sees it before any solver has tried it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub text: String,
    pub analysis: Result<Analysis, ProblemError>,
    pub repetition: Repetition,
}

/// The judge's first pass over a batch: parse, bound, interpret and canonicalize each text, and
/// find canonical duplicates within the batch and against `known`.
pub fn judge_batch(
    domain: &dyn Domain,
    limits: &Limits,
    texts: &[String],
    known: &dyn KnownHashes,
) -> Vec<Candidate> {
    let analyses: Vec<_> = texts.iter().map(|t| domain.analyze(t, limits)).collect();
    let hashes: Vec<Option<u64>> = analyses.iter().map(|a| a.as_ref().ok().map(|a| a.hash)).collect();
    let reps = repetitions(&hashes, known);
    texts
        .iter()
        .zip(analyses)
        .zip(reps)
        .map(|((text, analysis), repetition)| Candidate { text: text.clone(), analysis, repetition })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use problem::Arith;
    use proptest::prelude::*;

    #[test]
    fn extraction_takes_the_text_after_the_last_equals() {
        assert_eq!(extract_answer("14"), "14");
        assert_eq!(extract_answer(" 14 "), "14");
        assert_eq!(extract_answer("(3+4)*2=7*2=14"), "14");
        assert_eq!(extract_answer("(3+4)*2=7*2="), "");
        assert_eq!(extract_answer(""), "");
    }

    #[test]
    fn verification_is_exact() {
        assert!(verify(&Arith, "14", "(3+4)*2=7*2=14").correct);
        assert!(!verify(&Arith, "14", "(3+4)*2=14=7*2").correct);
        assert!(!verify(&Arith, "14", "014").correct);
        assert_eq!(verify(&Arith, "-3", "1-4= -3"), Verdict { answer: "-3".into(), correct: true });
    }

    #[test]
    fn a_right_answer_through_a_false_step_is_wrong() {
        // Worked solutions in every style, negative intermediate values included.
        assert!(verify(&Arith, "-12", "(-3)*4=-12").correct);
        assert!(verify(&Arith, "18", "12-(3-9)=12-(-6)=18").correct);
        assert!(verify(&Arith, "14", "7=14").correct, "a bare number is an intermediate value");
        // The answer is right, a step is not.
        let v = verify(&Arith, "15", "8+9=15");
        assert_eq!(v, Verdict { answer: "15".into(), correct: false });
        assert!(!verify(&Arith, "30", "18-14=30").correct);
        assert!(!verify(&Arith, "14", "7*2=3+=14").correct, "an unreadable step");
        assert!(!verify(&Arith, "14", "=14").correct, "an empty step");
        let vs = [true, false, true, true].map(|c| Verdict { answer: String::new(), correct: c });
        assert_eq!(solve_rate(&vs), Some(0.75));
        assert_eq!(solve_rate(&[]), None);
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
    fn repetition_within_batch_and_archive() {
        let known: HashSet<u64> = [7].into();
        let reps = repetitions(&[Some(1), Some(7), Some(1), None, Some(7), Some(2), None], &known);
        assert_eq!(
            reps,
            vec![
                Repetition::Fresh,
                Repetition::Archive,
                Repetition::Batch { first: 0 },
                Repetition::Fresh,
                Repetition::Batch { first: 1 },
                Repetition::Fresh,
                Repetition::Fresh,
            ]
        );
    }

    #[test]
    fn batch_judging_finds_canonical_duplicates_and_keeps_errors() {
        let texts: Vec<String> = ["3+4", "4 + 3", "(3+4)*1", "3*4", "3+", "7+0"].map(String::from).into();
        let known = |h: u64| h == Arith.analyze("3*4", &Limits::default()).unwrap().hash;
        let c = judge_batch(&Arith, &Limits::default(), &texts, &known);
        let reps: Vec<_> = c.iter().map(|c| c.repetition).collect();
        assert_eq!(
            reps,
            [
                Repetition::Fresh,
                Repetition::Batch { first: 0 },
                Repetition::Batch { first: 0 },
                Repetition::Archive,
                Repetition::Fresh,
                Repetition::Fresh,
            ]
        );
        let err = c[4].analysis.as_ref().unwrap_err();
        assert_eq!(err.kind, problem::ErrorKind::Syntax);
        assert_eq!(c[5].analysis.as_ref().unwrap().canonical, "7");
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
        let r =
            cfg.reward(0.5, 0.25, cfg.repetition.penalty(Repetition::Archive, None), 0.0, None, Some(0.8));
        assert_eq!(r.frontier, Some(1.0));
        assert_eq!(r.padding_factor, 0.5625);
        assert_eq!(r.repetition, 0.5);
        assert_eq!(r.interestingness, Some(0.8));
        // Less the repetition charge (cost 0.25 at penalty 0.5) and the padding charge (cost 0.5
        // at padding 0.25).
        assert!((r.total - (1.0 * 0.5625 * 0.5 + 0.5 * 0.8 - 0.25 * 0.5 - 0.5 * 0.25)).abs() < 1e-12);
        // A missing score drops its term.
        let r = cfg.reward(0.5, 0.0, 0.0, 0.0, None, None);
        assert_eq!((r.interestingness, r.total), (None, 1.0));
        let r = cfg.invalid_reward();
        assert_eq!((r.invalid, r.total, r.frontier), (Some(-1.5), -1.5, None));
    }

    #[test]
    fn padding_an_easy_problem_into_the_band_earns_less_than_nothing_past_the_floor() {
        let cfg = RewardConfig::default();
        // `7` (always solved, earns 0) padded to `7*1+0`: solved half the time, padding 2/3.
        assert_eq!(cfg.reward(1.0, 0.0, 0.0, 0.0, None, None).total, 0.0);
        let padded = cfg.reward(0.5, 2.0 / 3.0, 0.0, 0.0, None, None);
        assert_eq!(padded.padding_factor, 0.0);
        assert!((padded.total + cfg.padding.cost * 2.0 / 3.0).abs() < 1e-12);
        // Below the floor the discounted frontier term is paid, less the charge.
        let light = cfg.reward(0.5, 0.25, 0.0, 0.0, None, None);
        assert!((light.total - (0.5625 - cfg.padding.cost * 0.25)).abs() < 1e-12);
        // Without the charge, padding past the floor earns what the unpadded problem earns.
        let free = RewardConfig { padding: PaddingPenalty { cost: 0.0, ..cfg.padding }, ..cfg };
        assert_eq!(free.reward(0.5, 2.0 / 3.0, 0.0, 0.0, None, None).total, 0.0);
        let bad = RewardConfig { padding: PaddingPenalty { cost: f64::NAN, ..cfg.padding }, ..cfg };
        assert!(bad.validate().unwrap_err().starts_with("padding.cost must be"));
    }

    #[test]
    fn a_copy_earns_less_than_any_fresh_valid_problem() {
        let cfg = RewardConfig::default();
        let fresh_worst = [0.0, 1.0]
            .map(|p| cfg.reward(p, 0.0, 0.0, 0.0, None, None).total)
            .into_iter()
            .fold(f64::INFINITY, f64::min);
        assert_eq!(fresh_worst, 0.0);
        for (p, copy) in [
            (0.0, Repetition::Archive),
            (0.5, Repetition::Archive),
            (1.0, Repetition::Batch { first: 0 }),
            (0.5, Repetition::Batch { first: 3 }),
        ] {
            let r = cfg.reward(p, 0.0, cfg.repetition.penalty(copy, None), 0.0, None, None);
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
            off.reward(0.5, 0.0, off.repetition.penalty(Repetition::Archive, None), 0.0, None, None).total,
            1.0
        );
        let bad = RewardConfig { repetition: RepetitionPenalty { cost: -0.5, ..cfg.repetition }, ..cfg };
        assert!(bad.validate().unwrap_err().starts_with("repetition.cost must be"));
    }

    #[test]
    fn a_fresh_problem_of_a_crowded_shape_is_paid_as_a_likely_copy() {
        let cfg = RewardConfig::default();
        let window = cfg.repetition.crowding_window;
        let mut c = Crowding::default();
        // Too few problems of a shape: no share yet, nothing taken.
        for _ in 0..window - 1 {
            c.observe("#*#", true, window);
        }
        assert_eq!(c.share("#*#", window), None);
        assert_eq!(cfg.repetition.penalty(Repetition::Fresh, c.share("#*#", window)), 0.0);
        c.observe("#*#", false, window);
        let share = c.share("#*#", window).unwrap();
        assert!((share - f64::from(window - 1) / f64::from(window)).abs() < 1e-12);
        // A fresh problem of that shape loses that share of its frontier reward and is charged
        // for it; a copy's penalty is its own, whatever its shape's share.
        let fresh =
            cfg.reward(0.5, 0.0, cfg.repetition.penalty(Repetition::Fresh, Some(share)), 0.0, None, None);
        assert!((fresh.total - ((1.0 - share) - cfg.repetition.cost * share)).abs() < 1e-12);
        assert_eq!(cfg.repetition.penalty(Repetition::Archive, Some(0.1)), 1.0);
        assert_eq!(cfg.repetition.penalty(Repetition::Fresh, Some(f64::NAN)), 0.0);
        let off = RepetitionPenalty { crowding: 0.0, ..cfg.repetition };
        assert_eq!(off.penalty(Repetition::Fresh, Some(share)), 0.0);
        // Past the window the share moves at 1 / window: fresh problems bring it down.
        for _ in 0..4 * window {
            c.observe("#*#", false, window);
        }
        assert!(c.share("#*#", window).unwrap() < 0.02);
        assert_eq!((c.share("##*#", window), c.len()), (None, 1));
        // A state written before shapes were forgotten reads back, every shape seen at time 0.
        let old: Crowding = serde_json::from_str(r##"{"shapes": {"#*#": [0.5, 40]}}"##).unwrap();
        assert_eq!(old.share("#*#", window), Some(0.5));
        let again: Crowding = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
        let bad = RewardConfig { repetition: RepetitionPenalty { crowding: 1.5, ..cfg.repetition }, ..cfg };
        assert!(bad.validate().unwrap_err().starts_with("repetition.crowding must be"));
        let bad =
            RewardConfig { repetition: RepetitionPenalty { crowding_window: 0, ..cfg.repetition }, ..cfg };
        assert!(bad.validate().unwrap_err().starts_with("repetition.crowding_window must be"));
    }

    #[test]
    fn the_shapes_seen_longest_ago_are_forgotten() {
        let mut c = Crowding::default();
        // One shape seen all along, many seen once: at most a quarter more than kept, and the
        // one seen all along is never among those dropped.
        for i in 0..1000 {
            c.observe_keeping(&format!("#+{i}"), false, 4, 40);
            c.observe_keeping("#*#", true, 4, 40);
            assert!(c.len() <= 50, "{} shapes", c.len());
        }
        assert_eq!(c.share("#*#", 4), Some(1.0));
        // Those kept are the latest: the last one alone of the shapes seen once is still known.
        assert!(c.shapes.contains_key("#+999") && !c.shapes.contains_key("#+900"));
        assert!(c.len() >= 40, "{} shapes", c.len());
        // A forgotten shape starts its evidence again.
        for _ in 0..3 {
            c.observe_keeping("#+0", true, 4, 40);
        }
        assert_eq!(c.share("#+0", 4), None);
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
        let on = cfg.reward(0.5, 0.0, 0.0, 0.0, None, None);
        let off = cfg.reward(0.5, 0.0, 0.0, 1.0, None, None);
        assert_eq!((on.target_miss, on.total), (Some(0.0), 1.0));
        assert_eq!((off.target_miss, off.total), (Some(1.0), 1.0 - cfg.target.cost));
        // Off its target a problem still earns what the band pays beyond the charge: asked for a
        // depth the solver always solves, a proposer gains by another solved 60% of the time, not
        // by one solved 90% of the time.
        let stay = cfg.reward(1.0, 0.0, 0.0, 0.0, None, None).total;
        let drift = cfg.reward(0.6, 0.0, 0.0, 1.0, None, None).total;
        assert!((drift - (0.8 - cfg.target.cost)).abs() < 1e-12 && drift > stay);
        assert!(cfg.reward(0.9, 0.0, 0.0, 1.0, None, None).total < stay);
        // Off: no charge.
        let free = RewardConfig { target: TargetPenalty { cost: 0.0 }, ..cfg };
        assert_eq!(free.reward(0.5, 0.0, 0.0, 1.0, None, None).total, 1.0);
        assert_eq!(cfg.invalid_reward().target_miss, None);
    }

    #[test]
    fn an_invalid_problem_earns_less_than_any_valid_one() {
        let cfg = RewardConfig::default();
        let worst =
            cfg.reward(0.0, 1.0, cfg.repetition.penalty(Repetition::Archive, None), 1.0, None, None).total;
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
    fn length_residual_pays_difficulty_beyond_the_curve() {
        let l = LengthResidual { weight: 0.5, ..LengthResidual::default() };
        // No estimate, or weight 0: no discount.
        assert_eq!(l.factor(0.5, None), 1.0);
        assert_eq!(LengthResidual { weight: 0.0, ..l }.factor(0.5, Some(0.5)), 1.0);
        // As hard as its length predicts: only the unweighted part is paid.
        assert_eq!(l.factor(0.5, Some(0.5)), 0.5);
        assert_eq!(l.factor(0.5, Some(0.2)), 0.5);
        // A problem of a length the solver always solves, solved half the time: all structural.
        assert_eq!(l.factor(0.5, Some(1.0)), 1.0);
        // Half of the difficulty beyond the curve.
        assert!((l.factor(0.5, Some(0.75)) - 0.75).abs() < 1e-12);
        // Monotone: a higher baseline (the length explains less) never pays less.
        let mut last = 0.0;
        for i in 0..=20 {
            let f = l.factor(0.4, Some(f64::from(i) / 20.0));
            assert!(f >= last && (0.5..=1.0).contains(&f));
            last = f;
        }
        let cfg = RewardConfig::default();
        let r = cfg.reward(0.5, 0.0, 0.0, 0.0, Some(0.5), None);
        assert_eq!((r.length_baseline, r.length_factor, r.total), (Some(0.5), 0.5, 0.5));
    }

    #[test]
    fn length_curve_averages_then_tracks() {
        let mut c = LengthCurve::default();
        for p in [1.0, 0.0, 0.5, 0.5] {
            c.observe(3, p, 0.1);
        }
        assert_eq!(c.expected(3, 4), Some(0.5));
        assert_eq!(c.expected(3, 5), None);
        assert_eq!(c.expected(2, 0), None);
        // Past 1/rate problems it moves by `rate`: it follows a drifting solver.
        for _ in 0..200 {
            c.observe(3, 0.9, 0.1);
        }
        assert!((c.expected(3, 1).unwrap() - 0.9).abs() < 1e-6);
        c.observe(3, f64::NAN, 0.1);
        assert_eq!(c.points().count(), 1);
        assert_eq!(c.points().next().unwrap().2, 204);
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
        let r =
            cfg.reward(0.5, 0.25, cfg.repetition.penalty(Repetition::Archive, None), 0.0, None, Some(0.8));
        assert!((r.total - (1.0 * 0.5625 * 0.5 * 1.8 - cfg.padding.cost * 0.25)).abs() < 1e-12);
        // Never or always solved, or padded past the floor: interestingness earns nothing (the
        // padded problem is charged for its padding).
        for (p, padding) in [(0.0, 0.0), (1.0, 0.0), (0.5, 0.6)] {
            assert_eq!(
                cfg.reward(p, padding, 0.0, 0.0, None, Some(1.0)).total,
                -cfg.padding.cost * padding,
                "{p} {padding}"
            );
        }
        // At a given frontier, more interesting pays more.
        let pay = |s| cfg.reward(0.25, 0.0, 0.0, 0.0, None, Some(s)).total;
        assert!(pay(0.9) > pay(0.1) && pay(0.1) > 0.0);
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
                let r = cfg.reward(p, pad, cfg.repetition.penalty(rep, crowd), miss, None, s);
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
