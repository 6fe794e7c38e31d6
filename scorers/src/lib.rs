//! Interestingness scorers: what a person would find interesting, as a score in [0, 1].
//!
//! A [`Scorer`] scores a batch of problems asynchronously. Built in: [`Novelty`] (distance to the
//! nearest problems already seen, discounted by how well the solver has mastered them) and
//! [`Preference`] (a Bradley–Terry model fitted to a person's pairwise ratings). Users plug in
//! their own as an external process ([`ProcessScorer`]) or an HTTP service ([`HttpScorer`]),
//! speaking the JSON contract of [`ScoreRequest`] and [`ScoreResponse`].
//!
//! Every scorer runs inside a [`Guarded`]: per-call timeout, retries with backoff, a restart of a
//! dead process, a circuit breaker, and validation of every answer. A scorer that hangs, crashes or
//! answers nonsense never stops the run: the problems it failed on carry the error and no score,
//! and its [`Health`] says what happened. A [`Panel`] combines several scorers with weights.

mod guard;
mod http;
mod novelty;
mod preference;
mod process;

pub use guard::{check_score, Guarded, Health, RetryPolicy};
pub use http::{answer_body, HttpScorer};
pub use novelty::{Novelty, NoveltyConfig};
pub use preference::{Comparison, Outcome as RatingOutcome, Preference, PreferenceModel};
pub use process::{answer_line, ProcessScorer};

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// One problem to score. The JSON form is the plug-in contract:
/// `{"id": "...", "problem": "...", "answer": "...", "solve_rate": 0.5, "canonical": "...",
/// "features": {...}}` (`solve_rate` is `null` when no attempt was made).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRequest {
    pub id: String,
    pub problem: String,
    pub answer: String,
    pub solve_rate: Option<f64>,
    pub canonical: String,
    pub features: BTreeMap<String, f64>,
}

/// One answer, in the plug-in contract: `{"id": "...", "score": 0.7, "reason": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreResponse {
    pub id: String,
    pub score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A score and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub value: f64,
    pub reason: Option<String>,
}

/// What a scorer said about one problem: a score, or why there is none.
pub type ItemResult = Result<Score, String>;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A scorer of interestingness.
pub trait Scorer: Send {
    /// Stable name, stored with every score (`novelty`, or the name given in the configuration).
    fn name(&self) -> &str;

    /// Version, stored with every score: a change of model or code changes it.
    fn version(&self) -> String;

    /// One result per request, in order; `Err` when the whole call failed (the [`Guarded`] wrapper
    /// retries those). Values are checked by the wrapper, not here.
    fn score<'a>(&'a mut self, batch: &'a [ScoreRequest]) -> BoxFuture<'a, Result<Vec<ItemResult>, String>>;

    /// Forget any connection or process after a failed call, so that the next starts afresh.
    fn reset(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// What became known about problems after they were scored and solved (the novelty scorer
    /// remembers them).
    fn observe(&mut self, _seen: &[Seen]) {}
}

/// A problem and how the solver did on it, for [`Scorer::observe`].
#[derive(Debug, Clone)]
pub struct Seen {
    pub problem: String,
    pub features: BTreeMap<String, f64>,
    pub solve_rate: Option<f64>,
}

/// One scorer's verdict on one problem, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// `name@version`.
    pub scorer: String,
    pub weight: f64,
    pub score: Option<f64>,
    pub reason: Option<String>,
    pub error: Option<String>,
}

/// The panel's verdict on one problem.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Combined {
    /// Weighted mean of the scores given; `None` when no scorer gave one.
    pub interestingness: Option<f64>,
    /// The scorers that gave a score, `name@version` joined by `+`.
    pub scorer: Option<String>,
    /// The errors of those that did not, `name: error` joined by `; `.
    pub error: Option<String>,
    pub verdicts: Vec<Verdict>,
}

/// Several guarded scorers with weights.
pub struct Panel {
    pub members: Vec<(Guarded, f64)>,
}

impl Panel {
    pub fn new(members: Vec<(Guarded, f64)>) -> Panel {
        Panel { members }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Scores the batch with every scorer in turn; one [`Combined`] per request.
    pub async fn score(&mut self, batch: &[ScoreRequest]) -> Vec<Combined> {
        let mut out: Vec<Combined> = vec![Combined::default(); batch.len()];
        for (scorer, weight) in &mut self.members {
            let label = scorer.label();
            let results = scorer.score(batch).await;
            for (c, r) in out.iter_mut().zip(results) {
                c.verdicts.push(match r {
                    Ok(s) => Verdict {
                        scorer: label.clone(),
                        weight: *weight,
                        score: Some(s.value),
                        reason: s.reason,
                        error: None,
                    },
                    Err(e) => Verdict {
                        scorer: label.clone(),
                        weight: *weight,
                        score: None,
                        reason: None,
                        error: Some(e),
                    },
                });
            }
        }
        for c in &mut out {
            let given: Vec<&Verdict> = c.verdicts.iter().filter(|v| v.score.is_some()).collect();
            let total_weight: f64 = given.iter().map(|v| v.weight).sum();
            if !given.is_empty() {
                let sum: f64 = given.iter().map(|v| v.weight * v.score.unwrap_or(0.0)).sum();
                c.interestingness = Some(if total_weight > 0.0 { sum / total_weight } else { 0.0 });
                c.scorer = Some(given.iter().map(|v| v.scorer.as_str()).collect::<Vec<_>>().join("+"));
            }
            let errors: Vec<String> = c
                .verdicts
                .iter()
                .filter_map(|v| v.error.as_ref().map(|e| format!("{}: {e}", v.scorer)))
                .collect();
            if !errors.is_empty() {
                c.error = Some(errors.join("; "));
            }
        }
        out
    }

    /// Tells every scorer what became of the problems.
    pub fn observe(&mut self, seen: &[Seen]) {
        for (s, _) in &mut self.members {
            s.observe(seen);
        }
    }

    /// Each scorer's health, by `name@version`.
    pub fn health(&self) -> BTreeMap<String, Health> {
        self.members.iter().map(|(s, _)| (s.label(), s.health().clone())).collect()
    }
}

/// Checks a batch of plug-in answers against the requests: one per request, same id, in order,
/// score a finite number in [0, 1]. Problems are reported one by one.
pub fn check_responses(
    batch: &[ScoreRequest],
    responses: Vec<Result<ScoreResponse, String>>,
) -> Result<Vec<ItemResult>, String> {
    if responses.len() != batch.len() {
        return Err(format!("answered {} scores for {} problems", responses.len(), batch.len()));
    }
    Ok(batch
        .iter()
        .zip(responses)
        .map(|(req, resp)| match resp {
            Err(e) => Err(e),
            Ok(resp) if resp.id != req.id => {
                Err(format!("answered out of order: expected id {:?}, got {:?}", req.id, resp.id))
            }
            Ok(resp) => Ok(Score { value: resp.score, reason: resp.reason }),
        })
        .collect())
}
