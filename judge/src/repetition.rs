//! Repetition: copies within a round or of the archive, and crowding, the share of copies
//! among the recent problems of a shape.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

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
        let fresh = cfg.reward(&ProblemFacts {
            solve_rate: 0.5,
            repetition: cfg.repetition.penalty(Repetition::Fresh, Some(share)),
            ..ProblemFacts::default()
        });
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
}
