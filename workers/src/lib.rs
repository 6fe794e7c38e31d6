//! A round's sampling spread over worker processes, through NATS JetStream (`docs/SCALE.md`).
//!
//! The daemon stays the learner: the curriculum, the judge, the rewards, the updates and the
//! archive never leave it. What moves is the solver's attempts, cut into seeded shards
//! ([`policy::Shard`]), so that a run with workers writes what the same run writes in one process.
//!
//! * [`protocol`]: the streams, subjects, bucket and messages;
//! * [`learner`]: the daemon's side, a [`lab::rollouts::Rollouts`];
//! * [`worker`]: `selfplay worker`;
//! * [`patience`]: waiting out a server that went away.

pub mod learner;
pub mod patience;
pub mod protocol;
pub mod worker;

pub use learner::{LearnerOptions, NatsRollouts};
