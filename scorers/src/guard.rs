//! The armour around every scorer: timeout, retries, restart, circuit breaker, answer checks.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{ItemResult, ScoreRequest, Scorer, Seen};

/// How hard to try a scorer, and when to stop trying for a while.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Seconds one call may take.
    pub timeout_s: f64,
    /// Further tries after a failed call.
    pub retries: u32,
    /// Seconds before the first retry; doubled for each further one.
    pub backoff_s: f64,
    /// Failed batches in a row that open the circuit.
    pub breaker_failures: u32,
    /// Seconds the open circuit refuses calls before one trial call.
    pub breaker_cooldown_s: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            timeout_s: 10.0,
            retries: 2,
            backoff_s: 0.2,
            breaker_failures: 3,
            breaker_cooldown_s: 60.0,
        }
    }
}

impl RetryPolicy {
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("timeout_s", self.timeout_s),
            ("backoff_s", self.backoff_s),
            ("breaker_cooldown_s", self.breaker_cooldown_s),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be a number of seconds >= 0, got {v}"));
            }
        }
        if self.timeout_s <= 0.0 {
            return Err("timeout_s must be positive".into());
        }
        if self.breaker_failures == 0 {
            return Err("breaker_failures must be at least 1".into());
        }
        Ok(())
    }
}

/// What a scorer has been through, for metrics and progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Batches asked for.
    pub batches: u64,
    /// Calls made (first tries and retries).
    pub calls: u64,
    /// Calls that failed: errors, timeouts, wrong number of answers.
    pub failed_calls: u64,
    pub timeouts: u64,
    /// Problems given a valid score.
    pub scored: u64,
    /// Problems whose answer was refused: out of range, not a number, out of order.
    pub bad_answers: u64,
    /// Batches refused by the open circuit.
    pub refused: u64,
    /// Times the circuit opened.
    pub breaker_opened: u64,
    /// `closed`, `open` or `half-open`.
    pub state: String,
    /// The last error seen, however long ago.
    pub last_error: Option<String>,
    /// Whether the last batch was scored whole: no failed call, no refused answer.
    #[serde(default)]
    pub last_batch_ok: bool,
}

/// A scorer behind a [`RetryPolicy`]; see the module documentation.
pub struct Guarded {
    inner: Box<dyn Scorer>,
    policy: RetryPolicy,
    health: Health,
    failures_in_a_row: u32,
    open_until: Option<Instant>,
}

impl Guarded {
    pub fn new(inner: Box<dyn Scorer>, policy: RetryPolicy) -> Guarded {
        Guarded {
            inner,
            policy,
            health: Health { state: "closed".into(), ..Health::default() },
            failures_in_a_row: 0,
            open_until: None,
        }
    }

    /// `name@version`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.inner.name(), self.inner.version())
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    pub fn observe(&mut self, seen: &[Seen]) {
        self.inner.observe(seen);
    }

    /// One result per request, whatever the scorer does.
    pub async fn score(&mut self, batch: &[ScoreRequest]) -> Vec<ItemResult> {
        if batch.is_empty() {
            return Vec::new();
        }
        self.health.batches += 1;
        self.health.last_batch_ok = false;
        if let Some(until) = self.open_until {
            if Instant::now() < until {
                self.health.refused += 1;
                let e = format!(
                    "circuit open after {} failed batches in a row; next try in {:.0} s",
                    self.failures_in_a_row,
                    (until - Instant::now()).as_secs_f64()
                );
                return vec![Err(e); batch.len()];
            }
            self.health.state = "half-open".into();
        }
        let timeout = Duration::from_secs_f64(self.policy.timeout_s);
        let mut last_error = String::new();
        for attempt in 0..=self.policy.retries {
            if attempt > 0 {
                let wait = self.policy.backoff_s * f64::from(1u32 << (attempt - 1).min(16));
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            }
            self.health.calls += 1;
            let outcome = match tokio::time::timeout(timeout, self.inner.score(batch)).await {
                Ok(Ok(results)) if results.len() == batch.len() => Ok(results),
                Ok(Ok(results)) => {
                    Err(format!("returned {} results for {} problems", results.len(), batch.len()))
                }
                Ok(Err(e)) => Err(e),
                Err(_) => {
                    self.health.timeouts += 1;
                    Err(format!("no answer within {} s", self.policy.timeout_s))
                }
            };
            match outcome {
                Ok(results) => {
                    self.failures_in_a_row = 0;
                    self.open_until = None;
                    self.health.state = "closed".into();
                    let checked: Vec<ItemResult> = results.into_iter().map(check_score).collect();
                    let bad = checked.iter().filter(|r| r.is_err()).count() as u64;
                    self.health.bad_answers += bad;
                    self.health.scored += checked.len() as u64 - bad;
                    self.health.last_batch_ok = bad == 0;
                    if bad > 0 {
                        self.health.last_error = checked.iter().find_map(|r| r.as_ref().err().cloned());
                        // An answer out of order may mean the stream is out of step: start afresh.
                        if checked.iter().any(|r| r.as_ref().is_err_and(|e| e.contains("out of order"))) {
                            self.inner.reset().await;
                        }
                    }
                    return checked;
                }
                Err(e) => {
                    self.health.failed_calls += 1;
                    self.health.last_error = Some(e.clone());
                    tracing::warn!(scorer = %self.label(), attempt, "scorer call failed: {e}");
                    // A process that died or a stream left mid-answer is restarted on the next call.
                    self.inner.reset().await;
                    last_error = e;
                }
            }
        }
        self.failures_in_a_row += 1;
        if self.failures_in_a_row >= self.policy.breaker_failures {
            self.open_until = Some(Instant::now() + Duration::from_secs_f64(self.policy.breaker_cooldown_s));
            self.health.breaker_opened += 1;
            self.health.state = "open".into();
            tracing::warn!(
                scorer = %self.label(),
                "circuit open after {} failed batches: no calls for {} s",
                self.failures_in_a_row,
                self.policy.breaker_cooldown_s
            );
        }
        let tries = self.policy.retries + 1;
        vec![Err(format!("{last_error} (after {tries} tries)")); batch.len()]
    }
}

/// A score must be a finite number in [0, 1].
pub fn check_score(r: ItemResult) -> ItemResult {
    match r {
        Ok(s) if s.value.is_finite() && (0.0..=1.0).contains(&s.value) => Ok(s),
        Ok(s) => Err(format!("score {} is outside [0, 1]", s.value)),
        Err(e) => Err(e),
    }
}
