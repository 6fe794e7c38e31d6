//! selfplay: a lab where a proposer model and a solver model teach each other.
//!
//! This crate wires the lab's parts ([`problem`], [`policy`], [`proposer`], [`solver`], [`judge`],
//! [`store`]) into the commands of the
//! `selfplay` binary. Each command is a function over parsed arguments and output streams, so it
//! can be driven and tested without a process; `main.rs` only parses the command line.

pub mod browse;
pub mod cli;
pub mod commands;
pub mod config;
pub mod endpoint;
pub mod evaluate;
pub mod lineage;
pub mod players;
pub mod rate;
pub mod report;
pub mod round;
pub mod run;
pub mod scoring;
pub mod warmstart;
