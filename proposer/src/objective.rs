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
