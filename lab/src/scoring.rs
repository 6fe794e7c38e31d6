//! Interestingness in the lab: the configured scorers, built into a [`scorers::Panel`] with
//! its own small async runtime, so that the synchronous round can call it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use problem::{Domain, Limits};
use scorers::{
    Combined, Guarded, Health, HttpScorer, Novelty, NoveltyConfig, Panel, Preference, PreferenceModel,
    ProcessScorer, RetryPolicy, ScoreRequest, Scorer, Seen,
};
use serde::{Deserialize, Serialize};
use store::{Archive, Filter, Order};

/// Which scorer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScorerKind {
    /// Distance to the nearest problems seen, discounted by mastery.
    Novelty,
    /// The model `selfplay rate train` fits to a person's ratings.
    Preference,
    /// A program of the user's, one JSON line per problem each way.
    Process,
    /// An HTTP service of the user's.
    Http,
}

/// One `[[scorers]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScorerConfig {
    pub kind: ScorerKind,
    /// Weight among the scorers.
    #[serde(default = "one")]
    pub weight: f64,
    /// Name stored with its scores (default: the kind). Required to tell two plug-ins apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Version stored with its scores (plug-ins; default "1").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Process: the program and its arguments, run from the run directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Process: when set, the only environment variables the program gets (by name, with this
    /// process's values); by default it inherits the whole environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// HTTP: where to POST (http:// or https://).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// HTTP: the name of an environment variable holding a bearer token, sent as
    /// `Authorization: Bearer TOKEN`. The token itself is never in the configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// Preference: the model file (default RUN_DIR/preference.json).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    #[serde(default)]
    pub retry: RetryPolicy,
    #[serde(default)]
    pub novelty: NoveltyConfig,
}

fn one() -> f64 {
    1.0
}

impl ScorerConfig {
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            match self.kind {
                ScorerKind::Novelty => "novelty",
                ScorerKind::Preference => "preference",
                ScorerKind::Process => "process",
                ScorerKind::Http => "http",
            }
            .into()
        })
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(self.weight.is_finite() && self.weight >= 0.0) {
            return Err(format!("weight must be a number >= 0, got {}", self.weight));
        }
        let name = self.name();
        if name.is_empty() || name.contains(['@', '+', ';']) {
            return Err(format!("name {name:?} must be non-empty, without '@', '+' or ';'"));
        }
        self.retry.validate().map_err(|e| format!("retry.{e}"))?;
        self.novelty.validate().map_err(|e| format!("novelty.{e}"))?;
        if self.token_env.is_some() && self.kind != ScorerKind::Http {
            return Err("token_env is for http scorers".into());
        }
        if self.env.is_some() && self.kind != ScorerKind::Process {
            return Err("env is for process scorers".into());
        }
        match self.kind {
            ScorerKind::Process if self.command.is_empty() => {
                Err("a process scorer needs `command`, e.g. [\"python3\", \"scorer.py\"]".into())
            }
            ScorerKind::Http => {
                if self.token_env.as_deref().is_some_and(|v| v.is_empty() || v.contains(['=', '\0'])) {
                    return Err("token_env must name an environment variable".into());
                }
                HttpScorer::check_url(self.url.as_deref().ok_or("an http scorer needs `url`")?)
            }
            _ => Ok(()),
        }
    }
}

/// The panel and the runtime it runs on.
pub struct Scoring {
    panel: Panel,
    runtime: tokio::runtime::Runtime,
}

impl Scoring {
    /// Builds the configured scorers; `None` when there are none. The novelty scorer starts
    /// remembering the archive's most recent valid problems.
    pub fn build(
        configs: &[ScorerConfig],
        run_dir: &Path,
        archive: &Archive,
        domain: &dyn Domain,
    ) -> anyhow::Result<Option<Scoring>> {
        if configs.is_empty() {
            return Ok(None);
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let mut members = Vec::new();
        for (i, c) in configs.iter().enumerate() {
            let name = c.name();
            let version = c.version.clone().unwrap_or_else(|| "1".into());
            let fail = |e: String| anyhow::anyhow!("scorers[{i}] ({name}): {e}");
            let scorer: Box<dyn Scorer> = match c.kind {
                ScorerKind::Novelty => {
                    let mut n = Novelty::new(c.novelty);
                    n.observe(&recent(archive, domain, c.novelty.memory)?);
                    Box::new(n)
                }
                ScorerKind::Preference => {
                    let path = c.model.clone().unwrap_or_else(|| run_dir.join("preference.json"));
                    let model = read_model(&path).map_err(|e| fail(format!("{e:#}")))?;
                    Box::new(Preference::new(model))
                }
                ScorerKind::Process => Box::new(
                    ProcessScorer::new(
                        &name,
                        &version,
                        c.command.clone(),
                        Some(run_dir.to_path_buf()),
                        c.env.clone(),
                    )
                    .map_err(fail)?,
                ),
                ScorerKind::Http => {
                    let url = c.url.as_deref().unwrap_or_default();
                    let token = match &c.token_env {
                        None => None,
                        Some(var) => Some(std::env::var(var).map_err(|_| {
                            fail(format!(
                                "token_env: the environment variable {var} is not set (or not UTF-8)"
                            ))
                        })?),
                    };
                    Box::new(HttpScorer::new(&name, &version, url, token).map_err(fail)?)
                }
            };
            members.push((Guarded::new(scorer, c.retry), c.weight));
        }
        Ok(Some(Scoring { panel: Panel::new(members), runtime }))
    }

    pub fn score(&mut self, batch: &[ScoreRequest]) -> Vec<Combined> {
        self.runtime.block_on(self.panel.score(batch))
    }

    pub fn observe(&mut self, seen: &[Seen]) {
        self.panel.observe(seen);
    }

    pub fn health(&self) -> std::collections::BTreeMap<String, Health> {
        self.panel.health()
    }
}

/// A preference model file.
pub fn read_model(path: &Path) -> anyhow::Result<PreferenceModel> {
    let bytes = std::fs::read(path).with_context(|| {
        format!("no preference model at {} (train one: selfplay rate train)", path.display())
    })?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not a preference model", path.display()))
}

/// The features of a valid problem, or `None`.
pub fn features_of(domain: &dyn Domain, text: &str) -> Option<std::collections::BTreeMap<String, f64>> {
    let a = domain.analyze(text, &Limits::default()).ok()?;
    Some(domain.features(text, &a))
}

/// The archive's `n` most recent valid problems, oldest first.
fn recent(archive: &Archive, domain: &dyn Domain, n: usize) -> anyhow::Result<Vec<Seen>> {
    let mut out = Vec::new();
    for r in
        archive.scan(&Filter { valid: Some(true), ..Default::default() }, Order::Descending, None).take(n)
    {
        let r = r?;
        if let Some(features) = features_of(domain, &r.text) {
            out.push(Seen { problem: r.text, features, solve_rate: r.solve_rate });
        }
    }
    out.reverse();
    Ok(out)
}
