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
    /// Of those, the problems trained on only for their step credit: never solved (or fresh
    /// outside the band), their attempts told apart by how far each got.
    pub credited: usize,
    /// Rehearsal problems solved every time, trained on with the anchor advantage.
    pub anchored: usize,
}

/// How the plan chooses and pays.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The frontier band of solve rates a fresh problem must fall in.
    pub band: RangeInclusive<f64>,
    /// Advantage of each attempt at a rehearsal problem solved every time (0: none).
    pub anchor: f64,
    /// Whether a group's advantages are divided by its standard deviation.
    pub normalize_std: bool,
    /// Weight of a wrong attempt's verified progress in its reward (0: right or wrong alone);
    /// see [`plan`].
    pub step_credit: f64,
}

/// One attempt, as the plan sees it: whether it was right, and how far it got before its first
/// false step (`judge::progress`; `None` where the domain counts no steps).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Graded {
    pub correct: bool,
    pub progress: Option<f64>,
}

/// Which problems the solver learns from, given how each attempt went: fresh problems in the
/// frontier band (never a held-out copy), replayed and rehearsed ones solved sometimes but not
/// always — with group-relative advantages — and, when `rules.anchor > 0`, rehearsal problems
/// solved every time, each attempt with advantage `anchor` (their group advantage would be 0).
///
/// With `rules.step_credit > 0` an attempt's reward is 1 when right and `step_credit × progress`
/// when wrong, and every problem but a held-out copy whose rewards differ within its group is
/// learnt from: a problem never solved still teaches which attempts went further, which is
/// where deeper compositions than the warm start taught can start to pay.
pub fn plan(attempts: &[Vec<Graded>], sources: &[Source], rules: &Rules) -> SolverPlan {
    let mut plan = SolverPlan::default();
    for (p, (attempts, source)) in attempts.iter().zip(sources).enumerate() {
        if attempts.is_empty() {
            continue;
        }
        let p_hat = attempts.iter().filter(|a| a.correct).count() as f64 / attempts.len() as f64;
        let held_out = matches!(source, Source::Fresh { held_out: true });
        let usable = match source {
            Source::Fresh { .. } => rules.band.contains(&p_hat) && !held_out,
            Source::Replayed | Source::Rehearsed => p_hat > 0.0 && p_hat < 1.0,
        };
        let rewards: Vec<f32> = attempts
            .iter()
            .map(|a| match (a.correct, a.progress) {
                (true, _) => 1.0,
                (false, Some(progress)) => (rules.step_credit * progress) as f32,
                (false, None) => 0.0,
            })
            .collect();
        let varies = rewards.iter().any(|&r| r != rewards[0]);
        let credited = !usable && rules.step_credit > 0.0 && varies && !held_out;
        if usable || credited {
            plan.problems.push((p, group_advantages(&rewards, rewards.len(), rules.normalize_std)));
            plan.trained += 1;
            plan.credited += usize::from(credited);
        } else if rules.anchor > 0.0 && *source == Source::Rehearsed && p_hat == 1.0 {
            plan.problems.push((p, vec![rules.anchor as f32; attempts.len()]));
            plan.anchored += 1;
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAND: RangeInclusive<f64> = 0.2..=0.8;

    fn attempts(right: usize, of: usize) -> Vec<Graded> {
        (0..of)
            .map(|i| Graded { correct: i < right, progress: Some(if i < right { 1.0 } else { 0.0 }) })
            .collect()
    }

    fn rules(anchor: f64, step_credit: f64) -> Rules {
        Rules { band: BAND, anchor, normalize_std: true, step_credit }
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
        let chosen = plan(&outcomes, &sources, &rules(0.0, 0.0));
        assert_eq!(chosen.problems.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![0, 3]);
        assert_eq!((chosen.trained, chosen.anchored), (1 + 1, 0));
        // Group-relative: right attempts above the group's mean, wrong ones below, summing to 0.
        let (_, adv) = &chosen.problems[0];
        assert!(adv[0] > 0.0 && adv[1] > 0.0 && adv[2] < 0.0 && adv[3] < 0.0);
        assert!(adv.iter().sum::<f32>().abs() < 1e-5);
        assert_eq!(chosen.problems[1].1, group_advantages(&[1., 0., 0., 0., 0., 0., 0., 0.], 8, true));

        // With an anchor, the rehearsal problem solved every time enters with that advantage;
        // fresh problems solved every time and unsolved ones still do not.
        let chosen = plan(&outcomes, &sources, &rules(0.5, 0.0));
        assert_eq!(chosen.problems.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![0, 3, 5]);
        assert_eq!((chosen.trained, chosen.anchored), (2, 1));
        assert_eq!(chosen.problems[2].1, vec![0.5; 4]);
    }

    #[test]
    fn step_credit_pays_a_wrong_attempt_for_how_far_it_got() {
        let graded = |progress: &[f64]| -> Vec<Graded> {
            progress.iter().map(|&p| Graded { correct: p == 1.0, progress: Some(p) }).collect()
        };
        let outcomes = [
            graded(&[0.0, 0.25, 0.5, 0.0]), // fresh, never solved: below the band
            graded(&[1.0, 0.5, 0.0, 0.0]),  // fresh, p̂ 0.25: in the band
            graded(&[0.0, 0.0, 0.0, 0.0]),  // fresh, never solved, no attempt further than another
            graded(&[0.0, 0.5, 0.0, 0.0]),  // fresh, never solved, but a held-out copy
            graded(&[1.0, 1.0, 1.0, 1.0]),  // rehearsed, always solved
        ];
        let sources = [
            Source::Fresh { held_out: false },
            Source::Fresh { held_out: false },
            Source::Fresh { held_out: false },
            Source::Fresh { held_out: true },
            Source::Rehearsed,
        ];
        // Without credit only the band problem trains, right against wrong.
        let plain = plan(&outcomes, &sources, &rules(0.0, 0.0));
        assert_eq!(plain.problems.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![1]);
        assert_eq!(plain.problems[0].1, group_advantages(&[1., 0., 0., 0.], 4, true));

        let credited = plan(&outcomes, &sources, &rules(0.0, 0.5));
        assert_eq!(credited.problems.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!((credited.trained, credited.credited), (2, 1));
        // The unsolved problem: the attempt that got halfway leads, then the quarter; the two
        // that took nothing away share the bottom.
        assert_eq!(credited.problems[0].1, group_advantages(&[0., 0.125, 0.25, 0.], 4, true));
        let adv = &credited.problems[0].1;
        assert!(adv[2] > adv[1] && adv[1] > adv[0] && adv[0] == adv[3]);
        // In the band: the solution still leads, and the wrong attempt that got halfway is
        // punished less than those that did not.
        assert_eq!(credited.problems[1].1, group_advantages(&[1., 0.25, 0., 0.], 4, true));

        // A domain that counts no steps: right or wrong alone.
        let unscored: Vec<Vec<Graded>> =
            outcomes.iter().map(|v| v.iter().map(|a| Graded { progress: None, ..*a }).collect()).collect();
        assert_eq!(plan(&unscored, &sources, &rules(0.0, 0.5)), plain);
    }
}
