//! Where a round's attempts are sampled.
//!
//! The round cuts its solver attempts into [`Shard`]s, each seeded from the lab's own stream, and
//! hands them to a [`Rollouts`]: [`InProcess`] samples them here, one after another; a remote one
//! (the `workers` crate) sends them to worker processes. Either way the round gets the same
//! tokens, so a run writes the same metrics and archive wherever its sampling ran.

use policy::{Gpt, Sampled, Shard};
use serde::{Deserialize, Serialize};

/// Samples a round's shards.
pub trait Rollouts: Send {
    /// Every shard's continuations, in the order of `shards`, sampled with `model`: the solver
    /// that round `round` starts with.
    fn sample(&mut self, model: &Gpt, round: u64, shards: &[Shard]) -> anyhow::Result<Vec<Vec<Sampled>>>;

    /// What the last [`Rollouts::sample`] met on its way, for the round's metrics line; `None`
    /// where there is nothing to say (in process).
    fn report(&mut self) -> Option<RolloutReport> {
        None
    }
}

/// Samples every shard in this process, as one continuously batched stream
/// ([`policy::sample_shards`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct InProcess;

impl Rollouts for InProcess {
    fn sample(&mut self, model: &Gpt, _round: u64, shards: &[Shard]) -> anyhow::Result<Vec<Vec<Sampled>>> {
        Ok(policy::sample_shards(model, shards)?)
    }
}

/// A remote round's sampling, as its metrics line records it (`workers`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RolloutReport {
    /// Shards sent, and results taken.
    pub tasks: usize,
    /// Results refused: for another round or weights version (stale), a shard already answered
    /// (duplicate, as when a task was redelivered after its first worker was slow), or that
    /// could not be decoded or did not fit their shard (malformed).
    pub stale: usize,
    pub duplicate: usize,
    pub malformed: usize,
    /// Distinct workers that answered.
    pub workers: usize,
    /// Whether the weights were sent this round (not when unchanged since the last).
    pub weights_sent: bool,
    /// Seconds spent waiting for the server to come back.
    pub server_waits_s: f64,
}

/// Checks that `out` answers `shards` one continuation per request.
pub fn check_answers(shards: &[Shard], out: &[Vec<Sampled>]) -> anyhow::Result<()> {
    if out.len() != shards.len() {
        anyhow::bail!("{} shard results for {} shards", out.len(), shards.len());
    }
    for (i, (s, o)) in shards.iter().zip(out).enumerate() {
        if s.requests.len() != o.len() {
            anyhow::bail!("shard {i}: {} continuations for {} requests", o.len(), s.requests.len());
        }
    }
    Ok(())
}
