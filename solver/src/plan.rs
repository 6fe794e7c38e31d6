//! The solver's sampling plan: which of the round's problems it learns from, and with what
//! advantage for each attempt.

use std::ops::RangeInclusive;

use policy::group_advantages;

/// Where a problem the solver tried this round came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Written by the proposer this round (`held_out`: a copy of a held-out problem).
    Fresh { held_out: bool },
    /// Replayed from the archive.
    Replayed,
    /// A fresh problem of the warm start's kind.
    Rehearsed,
}

/// The problems of a round the solver is trained on, each with one advantage per attempt.
#[derive(Debug, Default, PartialEq)]
pub struct SolverPlan {
    pub problems: Vec<(usize, Vec<f32>)>,
    /// Problems trained on for their group-relative advantages.
    pub trained: usize,
    /// Rehearsal problems solved every time, trained on with the anchor advantage.
    pub anchored: usize,
}

/// Which problems the solver learns from, given whether each attempt was right: fresh problems in
/// the frontier band (never a held-out copy), replayed and rehearsed ones solved sometimes but not
/// always — with group-relative advantages — and, when `anchor > 0`, rehearsal problems solved
/// every time, each attempt with advantage `anchor` (their group advantage would be 0).
pub fn plan(
    outcomes: &[Vec<bool>],
    sources: &[Source],
    band: &RangeInclusive<f64>,
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
            Source::Fresh { held_out } => band.contains(&p_hat) && !held_out,
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

#[cfg(test)]
mod tests {
    use super::*;

    const BAND: RangeInclusive<f64> = 0.2..=0.8;

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
        let chosen = plan(&outcomes, &sources, &BAND, 0.0, true);
        assert_eq!(chosen.problems.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![0, 3]);
        assert_eq!((chosen.trained, chosen.anchored), (1 + 1, 0));
        // Group-relative: right attempts above the group's mean, wrong ones below, summing to 0.
        let (_, adv) = &chosen.problems[0];
        assert!(adv[0] > 0.0 && adv[1] > 0.0 && adv[2] < 0.0 && adv[3] < 0.0);
        assert!(adv.iter().sum::<f32>().abs() < 1e-5);
        assert_eq!(chosen.problems[1].1, group_advantages(&[1., 0., 0., 0., 0., 0., 0., 0.], 8, true));

        // With an anchor, the rehearsal problem solved every time enters with that advantage;
        // fresh problems solved every time and unsolved ones still do not.
        let chosen = plan(&outcomes, &sources, &BAND, 0.5, true);
        assert_eq!(chosen.problems.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![0, 3, 5]);
        assert_eq!((chosen.trained, chosen.anchored), (2, 1));
        assert_eq!(chosen.problems[2].1, vec![0.5; 4]);
    }
}
