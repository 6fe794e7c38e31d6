//! What a run was started with: one line of `RUN_DIR/provenance.jsonl` per start (resumes
//! included, since each may run another build, on another machine).

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The file beside the run's `config.toml`.
pub const PROVENANCE_FILE: &str = "provenance.jsonl";

/// One start of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// When it started: Unix milliseconds.
    pub unix_ms: u64,
    /// The `selfplay` version and the commit it was built from (`unknown` outside a checkout).
    pub version: String,
    pub commit: String,
    /// The command line, as given.
    pub command_line: Vec<String>,
    /// Cores this process may use, and the host's name.
    pub cores: usize,
    pub host: Option<String>,
    /// The device the players run on.
    pub device: String,
}

impl Provenance {
    /// This process's.
    pub fn of_this_process(device: &str) -> Provenance {
        Provenance {
            unix_ms: store::now_ms(),
            version: env!("CARGO_PKG_VERSION").into(),
            commit: env!("SELFPLAY_COMMIT").into(),
            command_line: std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            host: std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()),
            device: device.into(),
        }
    }

    /// Appends this start to `run_dir`'s provenance file.
    pub fn append(&self, run_dir: &Path) -> anyhow::Result<()> {
        lab::settle::append_json_line(&run_dir.join(PROVENANCE_FILE), self)
    }
}
