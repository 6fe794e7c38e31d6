//! selfplay: a lab where a proposer model and a solver model teach each other.
//!
//! This crate is what a person touches: the `selfplay` command line over the lab ([`lab`]: the
//! configuration, warm start, round and run loop), the daemon's query endpoint, the terminal
//! browser and rating, the report. Each command is a function over parsed arguments and output
//! streams, so it can be driven and tested without a process; `main.rs` only parses the command
//! line.

pub mod access;
pub mod browse;
pub mod cli;
pub mod commands;
pub mod endpoint;
pub mod exit;
pub mod filter_args;
pub mod logging;
pub mod provenance;
pub mod rate;
pub mod report;
pub mod show;
