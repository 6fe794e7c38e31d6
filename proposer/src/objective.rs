//! The proposer's training objective: its rewards made into policy-gradient advantages.

use policy::{group_advantages, keyed_advantages};
use problem::Target;
use serde::{Deserialize, Serialize};

/// The baseline of the proposer's policy gradient: what a proposal's reward is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// The mean reward of the whole round's proposals (one group).
    Batch,
    /// The mean reward of the proposals asked for the same difficulty target this round. The
    /// proposer does not choose its target, and what a target can earn differs: problems of one
    /// operation are solved nearly always, so they earn little, and their archive fills first. A
    /// fresh one-operation problem is then below the round's mean and is discouraged with the
    /// copies beside it, only less; compared with its own target's proposals it is credited for
    /// beating them.
    Target,
}

/// The proposer's advantages: each proposal's reward against its baseline (see
/// [`Baseline`]); `targets` are the difficulty targets the proposals were asked for.
pub fn advantages(rewards: &[f32], targets: &[Target], baseline: Baseline, normalize_std: bool) -> Vec<f32> {
    match baseline {
        Baseline::Target => keyed_advantages(rewards, targets, normalize_std),
        Baseline::Batch => group_advantages(rewards, rewards.len(), normalize_std),
    }
}

/// The proposer's advantages with interestingness as a signal of its own (the judge's
/// `InterestMode::Advantage`): `advantages` plus `weight` times the scores' group-relative
/// advantages among the proposals that have one in `ranked` (the caller leaves out those the
/// frontier does not pay, so that no score can be earned with a problem nobody solves). The
/// others gain nothing; with fewer than two ranked proposals nothing changes.
pub fn with_interest(
    advantages: &[f32],
    ranked: &[Option<f64>],
    weight: f64,
    normalize_std: bool,
) -> Vec<f32> {
    assert_eq!(advantages.len(), ranked.len(), "one score (or none) per proposal");
    let (which, scores): (Vec<usize>, Vec<f32>) = ranked
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.filter(|s| s.is_finite()).map(|s| (i, s as f32)))
        .unzip();
    let mut out = advantages.to_vec();
    if which.len() < 2 || weight == 0.0 {
        return out;
    }
    let interest = group_advantages(&scores, scores.len(), normalize_std);
    for (&i, a) in which.iter().zip(interest) {
        out[i] += weight as f32 * a;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interestingness_ranks_only_the_proposals_the_frontier_pays() {
        let base = [0.5, -0.5, 1.0, -1.0, 0.0];
        // Proposal 1 is unpaid by the frontier (no score ranked), 4 has a non-finite score.
        let ranked = [Some(0.9), None, Some(0.1), Some(0.5), Some(f64::NAN)];
        for normalize in [false, true] {
            let out = with_interest(&base, &ranked, 0.5, normalize);
            assert_eq!((out[1], out[4]), (base[1], base[4]), "{out:?}");
            let gained: Vec<f32> = [0, 2, 3].iter().map(|&i| out[i] - base[i]).collect();
            // The most interesting gains, the least loses, the ranked gains sum to nothing.
            assert!(gained[0] > 0.0 && gained[1] < 0.0 && gained[0] > gained[2], "{gained:?}");
            assert!(gained.iter().sum::<f32>().abs() < 1e-5, "{gained:?}");
            if normalize {
                // Unit scale: the gains are the weight times standard scores.
                let rms = (gained.iter().map(|g| g * g).sum::<f32>() / 3.0).sqrt();
                assert!((rms - 0.5).abs() < 1e-3, "{rms}");
            } else {
                assert!((gained[0] - 0.5 * (0.9 - 0.5)).abs() < 1e-6, "{gained:?}");
            }
        }
        // Weight 0, or one ranked proposal: the reward's advantages unchanged.
        assert_eq!(with_interest(&base, &ranked, 0.0, true), base.to_vec());
        let one = [None, None, Some(0.7), None, None];
        assert_eq!(with_interest(&base, &one, 1.0, true), base.to_vec());
    }
}
