//! The filter flags of `archive list`, `stats` and `export`, and the store filter they describe.

use anyhow::anyhow;
use clap::Args;
use store::{parse_range, Filter};

/// Filters shared by `list`, `stats` and `export`. Ranges are inclusive: `LO..HI`, `LO..`, `..HI`
/// or a single value.
#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// Only this run.
    #[arg(long)]
    pub run: Option<String>,
    /// Round range, e.g. `10..20`.
    #[arg(long, value_name = "RANGE")]
    pub rounds: Option<String>,
    /// Only valid problems.
    #[arg(long, conflicts_with = "invalid")]
    pub valid: bool,
    /// Only invalid problems.
    #[arg(long)]
    pub invalid: bool,
    /// Only invalid problems with this reason (syntax, range, literal, too_long, ...).
    #[arg(long)]
    pub reason: Option<String>,
    /// Solve-rate range within [0, 1], e.g. `0.2..0.8`.
    #[arg(long, value_name = "RANGE")]
    pub solve_rate: Option<String>,
    /// Padding range within [0, 1], e.g. `0.1..`.
    #[arg(long, value_name = "RANGE")]
    pub padding: Option<String>,
    /// Composition depth or range, e.g. `3` or `2..4`.
    #[arg(long, value_name = "RANGE")]
    pub depth: Option<String>,
    /// Problem text contains this.
    #[arg(long, value_name = "TEXT")]
    pub contains: Option<String>,
    /// Canonical hash (hex, as `judge --json` prints it).
    #[arg(long, value_name = "HEX")]
    pub hash: Option<String>,
    /// Interestingness range within [0, 1]; problems without a score never match.
    #[arg(long, value_name = "RANGE")]
    pub interestingness: Option<String>,
    /// Scored by this scorer: `name` (any version) or `name@version`.
    #[arg(long, value_name = "NAME")]
    pub scorer: Option<String>,
}

impl FilterArgs {
    /// The store filter these flags describe; errors name the flag.
    pub fn to_filter(&self) -> anyhow::Result<Filter> {
        fn range<T>(flag: &str, v: &Option<String>, min: T, max: T) -> anyhow::Result<Option<(T, T)>>
        where
            T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display,
        {
            v.as_deref().map(|s| parse_range(s, min, max).map_err(|e| anyhow!("--{flag}: {e}"))).transpose()
        }
        Ok(Filter {
            run: self.run.clone(),
            rounds: range("rounds", &self.rounds, 0, u64::MAX)?,
            valid: if self.valid {
                Some(true)
            } else if self.invalid {
                Some(false)
            } else {
                None
            },
            reason: self.reason.clone(),
            solve_rate: range("solve-rate", &self.solve_rate, 0.0, 1.0)?,
            padding: range("padding", &self.padding, 0.0, 1.0)?,
            depth: range("depth", &self.depth, 0, u32::MAX)?,
            interestingness: range("interestingness", &self.interestingness, 0.0, 1.0)?,
            scorer: self.scorer.clone(),
            contains: self.contains.clone(),
            hash: self
                .hash
                .as_deref()
                .map(|h| store::hex_u64::parse(h).map_err(|e| anyhow!("--hash: {e}")))
                .transpose()?,
        })
    }
}
