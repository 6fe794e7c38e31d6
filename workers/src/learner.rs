//! The learner's side: a [`Rollouts`] that sends a round's shards to the workers and gathers
//! their answers, while everything else of the round stays in the daemon.
//!
//! Each round: the solver's weights go to the bucket when they changed, one task a shard goes to
//! the task stream, and the answers are taken from the run's result subject until every shard is
//! answered. An answer for another round or weights version, a second answer to a shard, or one
//! that does not decode or fit its shard is refused and counted. When no answer comes for
//! `timeout`, the round fails with a message saying so, before anything of it is written.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, object_store::ObjectStore};
use futures_util::StreamExt;
use lab::rollouts::{RolloutReport, Rollouts};
use policy::{Gpt, Sampled, Shard};

use crate::patience::retry;
use crate::protocol::{self, Answer, Task, WeightsRef, PROTOCOL};

/// How the learner uses the server.
#[derive(Debug, Clone)]
pub struct LearnerOptions {
    /// `nats://host:port`.
    pub url: String,
    /// How long a task may go unacknowledged before another worker gets it (a dead worker's).
    pub ack_wait: Duration,
    /// Longest wait for the next answer, or for the server to come back, before the round fails.
    pub timeout: Duration,
}

/// Sends shards to workers over NATS JetStream ([`crate::protocol`]).
pub struct NatsRollouts {
    runtime: tokio::runtime::Runtime,
    js: jetstream::Context,
    run: String,
    results: consumer::Consumer<consumer::pull::Config>,
    bucket: ObjectStore,
    /// The weights version in the bucket, when one is.
    published: Option<WeightsRef>,
    options: LearnerOptions,
    report: Option<RolloutReport>,
}

impl LearnerOptions {
    /// Refuses a wait for workers that a dead worker's task could outlast.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.timeout <= self.ack_wait {
            anyhow::bail!(
                "--nats-timeout ({:.0} s) must be longer than --nats-ack-wait ({:.0} s), or a dead \
                 worker's task could never reach another",
                self.timeout.as_secs_f64(),
                self.ack_wait.as_secs_f64()
            );
        }
        Ok(())
    }
}

impl NatsRollouts {
    /// Connects to the server for run `run` ([`protocol::run_id`]): makes the streams, the
    /// bucket and the consumers where missing, and clears what an earlier process of the run left
    /// on its subjects.
    pub fn connect(options: LearnerOptions, run: String) -> anyhow::Result<NatsRollouts> {
        options.validate()?;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let (js, results, bucket) = runtime.block_on(async {
            let client = crate::patience::announced(&options.url)
                .connection_timeout(Duration::from_secs(5))
                .connect(&options.url)
                .await
                .map_err(|e| anyhow::anyhow!("cannot reach the NATS server at {}: {e}", options.url))?;
            let js = jetstream::new(client);
            let (tasks, results) = protocol::streams(&js).await.map_err(|e| {
                e.context(format!("the server at {} needs JetStream (`nats-server -js`)", options.url))
            })?;
            for (stream, subject) in
                [(&tasks, protocol::tasks_subject(&run)), (&results, protocol::results_subject(&run))]
            {
                stream.purge().filter(subject).await.map_err(|e| anyhow::anyhow!("purging {run}: {e}"))?;
            }
            let workers = protocol::workers_consumer(options.ack_wait);
            if tasks.create_consumer(workers.clone()).await.is_err() {
                // A server that cannot change a consumer's wait in place: make it anew.
                let _ = tasks.delete_consumer(protocol::WORKERS_CONSUMER).await;
                tasks
                    .create_consumer(workers)
                    .await
                    .map_err(|e| anyhow::anyhow!("the workers' consumer: {e}"))?;
            }
            let results = results
                .create_consumer(consumer::pull::Config {
                    durable_name: Some(format!("learner-{run}")),
                    filter_subject: protocol::results_subject(&run),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ..Default::default()
                })
                .await
                .map_err(|e| anyhow::anyhow!("the learner's consumer: {e}"))?;
            let bucket = protocol::weights_bucket(&js).await?;
            anyhow::Ok((js, results, bucket))
        })?;
        tracing::info!(
            "sampling on workers through {}: tasks on {}",
            options.url,
            protocol::tasks_subject(&run)
        );
        Ok(NatsRollouts { runtime, js, run, results, bucket, published: None, options, report: None })
    }

    /// Puts the weights in the bucket unless that version is there; drops the version before.
    async fn publish_weights(&mut self, model: &Gpt, round: u64) -> anyhow::Result<(WeightsRef, bool, f64)> {
        let bytes = model.weights_bytes()?;
        let hash = xxhash_rust::xxh3::xxh3_64(&bytes);
        if let Some(w) = self.published.as_ref().filter(|w| w.hash == hash) {
            return Ok((w.clone(), false, 0.0));
        }
        let object = format!("{}.{round}.{hash:016x}", self.run);
        let bucket = &self.bucket;
        let (_, waited) = retry("storing the weights", Some(self.options.timeout), || {
            let object = object.clone();
            let bytes = bytes.clone();
            async move { bucket.put(object.as_str(), &mut bytes.as_slice()).await }
        })
        .await?;
        let weights = WeightsRef { object, hash };
        if let Some(old) = self.published.replace(weights.clone()) {
            if let Err(e) = self.bucket.delete(&old.object).await {
                tracing::warn!("could not remove the weights {}: {e}", old.object);
            }
        }
        Ok((weights, true, waited))
    }

    async fn round_trip(
        &mut self,
        model: &Gpt,
        round: u64,
        shards: &[Shard],
    ) -> anyhow::Result<Vec<Vec<Sampled>>> {
        let (weights, weights_sent, mut waited) = self.publish_weights(model, round).await?;
        let tasks: Vec<Vec<u8>> = shards
            .iter()
            .enumerate()
            .map(|(i, shard)| {
                protocol::encode(&Task {
                    protocol: PROTOCOL,
                    run: self.run.clone(),
                    round,
                    index: i as u32,
                    model: model.config().clone(),
                    dtype: model.dtype().as_str().to_string(),
                    weights: weights.clone(),
                    shard: shard.clone(),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let subject = protocol::tasks_subject(&self.run);
        let mut answers: Vec<Option<Vec<Sampled>>> = vec![None; shards.len()];
        waited += self.send(&subject, &tasks, &answers).await?;
        let mut report = RolloutReport { tasks: shards.len(), weights_sent, ..Default::default() };
        let mut workers = HashSet::new();
        let mut last_answer = Instant::now();
        while answers.iter().any(Option::is_none) {
            if last_answer.elapsed() >= self.options.timeout {
                let missing: Vec<usize> = (0..answers.len()).filter(|&i| answers[i].is_none()).collect();
                anyhow::bail!(
                    "no worker answered for {:.0} s: shards {missing:?} of round {round} are unanswered. \
                     Start one with `selfplay worker --nats {}`",
                    self.options.timeout.as_secs_f64(),
                    self.options.url
                );
            }
            let results = &self.results;
            let fetched = retry("waiting for answers", Some(self.options.timeout), || async move {
                let batch = results
                    .fetch()
                    .max_messages(answers_wanted(shards.len()))
                    .expires(Duration::from_millis(500))
                    .messages()
                    .await?;
                let messages: Vec<_> = batch.collect().await;
                messages.into_iter().collect::<Result<Vec<_>, _>>()
            })
            .await?;
            let (messages, server_wait) = fetched;
            if server_wait > 0.0 {
                // What was sent before the server went away may be lost with it: send the
                // unanswered shards again (a second answer to one is refused as a duplicate).
                waited += server_wait + self.send(&subject, &tasks, &answers).await?;
            }
            for message in messages {
                match judge_answer(&message.payload, &self.run, round, weights.hash, shards) {
                    Verdict::Accept(answer) if answers[answer.index as usize].is_none() => {
                        workers.insert(answer.worker);
                        answers[answer.index as usize] = Some(answer.sampled);
                        last_answer = Instant::now();
                    }
                    Verdict::Accept(answer) => {
                        report.duplicate += 1;
                        tracing::debug!(
                            "refused a second answer to shard {} from {}",
                            answer.index,
                            answer.worker
                        );
                    }
                    Verdict::Stale(why) => {
                        report.stale += 1;
                        tracing::warn!("refused a stale answer: {why}");
                    }
                    Verdict::Malformed(why) => {
                        report.malformed += 1;
                        tracing::warn!("refused a malformed answer: {why}");
                    }
                }
                // Taken, whatever it was: refused answers must not come back.
                if let Err(e) = message.ack().await {
                    tracing::debug!("acknowledging an answer: {e}");
                }
            }
        }
        report.workers = workers.len();
        report.server_waits_s = waited;
        self.report = Some(report);
        Ok(answers.into_iter().map(|a| a.expect("every shard is answered")).collect())
    }

    /// Publishes the tasks of the shards not yet answered; returns the seconds spent waiting for
    /// the server.
    async fn send(
        &self,
        subject: &str,
        tasks: &[Vec<u8>],
        answers: &[Option<Vec<Sampled>>],
    ) -> anyhow::Result<f64> {
        let mut waited = 0.0;
        for (task, _) in tasks.iter().zip(answers).filter(|(_, a)| a.is_none()) {
            let js = &self.js;
            let (_, w) = retry("sending a task", Some(self.options.timeout), || async move {
                js.publish(subject.to_string(), task.clone().into()).await?.await.map_err(anyhow::Error::from)
            })
            .await?;
            waited += w;
        }
        Ok(waited)
    }
}

/// Answers to fetch at once: a round's worth, within reason.
fn answers_wanted(shards: usize) -> usize {
    shards.clamp(1, 256)
}

enum Verdict {
    Accept(Answer),
    Stale(String),
    Malformed(String),
}

/// Whether `payload` answers one of this round's `shards`, sampled with the weights `hash`.
fn judge_answer(payload: &[u8], run: &str, round: u64, hash: u64, shards: &[Shard]) -> Verdict {
    let answer: Answer = match protocol::decode(payload) {
        Ok(a) => a,
        Err(e) => return Verdict::Malformed(format!("{} bytes: {e:#}", payload.len())),
    };
    if answer.protocol != PROTOCOL {
        return Verdict::Malformed(format!("protocol {} (this learner speaks {PROTOCOL})", answer.protocol));
    }
    if answer.run != run || answer.round != round || answer.weights_hash != hash {
        return Verdict::Stale(format!(
            "run {} round {} weights {:016x}, while this is run {run} round {round} weights {hash:016x}",
            answer.run, answer.round, answer.weights_hash
        ));
    }
    let Some(shard) = shards.get(answer.index as usize) else {
        return Verdict::Malformed(format!("shard {} of a round of {}", answer.index, shards.len()));
    };
    if answer.sampled.len() != shard.requests.len() {
        return Verdict::Malformed(format!(
            "shard {}: {} continuations for {} requests",
            answer.index,
            answer.sampled.len(),
            shard.requests.len()
        ));
    }
    if let Some((j, _)) = answer.sampled.iter().enumerate().find(|(_, s)| s.tokens.len() != s.logprobs.len())
    {
        return Verdict::Malformed(format!(
            "shard {} continuation {j}: tokens and log-probs differ in number",
            answer.index
        ));
    }
    Verdict::Accept(answer)
}

impl Rollouts for NatsRollouts {
    fn sample(&mut self, model: &Gpt, round: u64, shards: &[Shard]) -> anyhow::Result<Vec<Vec<Sampled>>> {
        self.report = None;
        let handle = self.runtime.handle().clone();
        handle.block_on(self.round_trip(model, round, shards))
    }

    fn report(&mut self) -> Option<RolloutReport> {
        self.report.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::{Request, SampleConfig};

    fn shard(n: usize) -> Shard {
        Shard {
            requests: vec![Request { prompt: vec![1], max_new: 2, stop: None }; n],
            sampling: SampleConfig::default(),
            seed: 1,
        }
    }

    fn answer(round: u64, index: u32, n: usize) -> Answer {
        Answer {
            protocol: PROTOCOL,
            run: "r".into(),
            round,
            index,
            weights_hash: 9,
            worker: "w".into(),
            sampled: vec![Sampled { tokens: vec![3], logprobs: vec![-1.0], stopped: false }; n],
        }
    }

    #[test]
    fn answers_are_judged_against_their_round_weights_and_shard() {
        let shards = [shard(2), shard(1)];
        let judge = |a: &Answer| judge_answer(&protocol::encode(a).unwrap(), "r", 4, 9, &shards);
        assert!(matches!(judge(&answer(4, 1, 1)), Verdict::Accept(_)));
        assert!(matches!(judge(&answer(3, 1, 1)), Verdict::Stale(_)));
        assert!(matches!(judge(&Answer { weights_hash: 8, ..answer(4, 1, 1) }), Verdict::Stale(_)));
        assert!(matches!(judge(&Answer { run: "q".into(), ..answer(4, 1, 1) }), Verdict::Stale(_)));
        assert!(matches!(judge(&answer(4, 2, 1)), Verdict::Malformed(_)));
        assert!(matches!(judge(&answer(4, 0, 1)), Verdict::Malformed(_)));
        assert!(matches!(judge(&Answer { protocol: 0, ..answer(4, 1, 1) }), Verdict::Malformed(_)));
        let mut uneven = answer(4, 1, 1);
        uneven.sampled[0].logprobs.clear();
        assert!(matches!(judge(&uneven), Verdict::Malformed(_)));
        assert!(matches!(judge_answer(b"\x00\x01", "r", 4, 9, &shards), Verdict::Malformed(_)));
    }
}
