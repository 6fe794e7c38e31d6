//! Judging the proposals: validity, canonical form, padding and copies, against the batch and
//! the archive; and, for comparison, what the domain's generator would copy at the same targets.

use problem::{Domain, Limits, Target};
use rand_chacha::ChaCha8Rng;

use super::propose::{generator_problem, Proposals};
use super::Lab;

/// The judge's view of a round's proposals.
pub(super) struct Judged {
    /// One per proposal, in order: its analysis (or why it is invalid) and its repetition.
    pub candidates: Vec<judge::Candidate>,
    /// Of one generator problem per target, judged alike: the share of copies.
    pub generator_duplicate_fraction: Option<f64>,
}

impl Lab {
    /// The limits a problem must respect to be solvable: the configured token budget, within
    /// what the solver's context leaves beside its answer.
    pub(super) fn problem_limits(&self) -> Limits {
        let solver_ctx = self.solver.model.config().context;
        Limits {
            max_tokens: self
                .cfg
                .round
                .max_problem_tokens
                .min(solver_ctx.saturating_sub(2 + self.solver_format.max_answer_tokens).max(1)),
            max_nesting: Limits::default().max_nesting,
        }
    }

    /// Judges round `round`'s proposals against each other and the archive.
    pub(super) fn judge(&self, proposals: &Proposals, round: u64) -> Judged {
        let limits = self.problem_limits();
        let candidates = judge::judge_batch(self.domain, &limits, &proposals.texts, &self.known);
        let generator_duplicate_fraction = generator_duplicates(
            self.domain,
            &limits,
            &proposals.targets,
            self.cfg.warm_start.proposer.max_literal,
            &mut generator_rng(self.cfg.seed, round),
            &self.known,
        );
        Judged { candidates, generator_duplicate_fraction }
    }
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
pub(super) fn generator_duplicates(
    domain: &dyn Domain,
    limits: &Limits,
    targets: &[Target],
    max_literal: u32,
    rng: &mut ChaCha8Rng,
    known: &dyn judge::KnownHashes,
) -> Option<f64> {
    let texts: Vec<String> =
        targets.iter().filter_map(|t| generator_problem(domain, t, max_literal, rng)).collect();
    let valid: Vec<judge::Repetition> = judge::judge_batch(domain, limits, &texts, known)
        .into_iter()
        .filter(|c| c.analysis.is_ok())
        .map(|c| c.repetition)
        .collect();
    let copies = valid.iter().filter(|r| **r != judge::Repetition::Fresh).count();
    (!valid.is_empty()).then(|| copies as f64 / valid.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

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
