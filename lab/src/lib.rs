//! The selfplay lab as a library: what runs an experiment, with no command line, terminal or
//! web page in it (those are the `selfplay` binary's).
//!
//! * [`config`]: the run configuration, its embedded defaults and validation;
//! * [`warmstart`]: teaching both players before self-play;
//! * [`evaluate`]: a solver's accuracy on a set of problems;
//! * [`scoring`]: the configured interestingness scorers, wired for a round;
//! * [`rollouts`]: where a round's attempts are sampled: here, or by workers;
//! * [`round`]: one round of self-play;
//! * [`settle`]: the run directory's configuration, overrides and the record of changes;
//! * [`tensorboard`]: the metrics as TensorBoard event files;
//! * [`run`]: the resumable run loop over rounds, with its checkpoints and metrics.

pub mod config;
pub mod evaluate;
pub mod rollouts;
pub mod round;
pub mod run;
pub mod scoring;
pub mod settle;
pub mod tensorboard;
pub mod warmstart;
