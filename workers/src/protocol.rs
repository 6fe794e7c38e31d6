//! What crosses NATS between the learner (`selfplay run --nats`) and its workers: the streams,
//! the subjects, the weights bucket and the two messages, in postcard.
//!
//! * `SELFPLAY_TASKS`, a work-queue stream on `selfplay.tasks.<run>`: one message a shard. The
//!   workers share one durable pull consumer, `workers`, whose acknowledgement wait the learner
//!   sets; a task not acknowledged in time (its worker died) goes to another worker.
//! * `SELFPLAY_RESULTS`, a work-queue stream on `selfplay.results.<run>`: one message a sampled
//!   shard, consumed by the run's learner alone (durable consumer `learner-<run>`).
//! * `selfplay-weights`, an object store: the solver's weights, one object a version.
//!
//! Both streams are kept in files, so that a server restarted mid-round loses neither.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use policy::{ModelConfig, Sampled, Shard};
use serde::{Deserialize, Serialize};

pub const TASKS_STREAM: &str = "SELFPLAY_TASKS";
pub const RESULTS_STREAM: &str = "SELFPLAY_RESULTS";
pub const WEIGHTS_BUCKET: &str = "selfplay-weights";
pub const WORKERS_CONSUMER: &str = "workers";
/// Bumped whenever a message changes shape: a worker of another version refuses the task.
pub const PROTOCOL: u32 = 1;

pub fn tasks_subject(run: &str) -> String {
    format!("selfplay.tasks.{run}")
}

pub fn results_subject(run: &str) -> String {
    format!("selfplay.results.{run}")
}

/// The identity of a run on the server: a hash of this host's name and the run directory's
/// absolute path. The same run resumed keeps it (and clears what its last process left); two
/// runs, on one host or two, do not share it.
pub fn run_id(run_dir: &std::path::Path) -> anyhow::Result<String> {
    let path =
        std::fs::canonicalize(run_dir).with_context(|| format!("cannot resolve {}", run_dir.display()))?;
    let key = format!("{}\0{}", host_name(), path.display());
    Ok(format!("{:016x}", xxhash_rust::xxh3::xxh3_64(key.as_bytes())))
}

/// This machine's host name (empty where the kernel does not say): part of a run's id and of a
/// worker's name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string()
}

/// One version of the solver's weights, as stored in the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsRef {
    /// The object's name in [`WEIGHTS_BUCKET`].
    pub object: String,
    /// xxh3 of the safetensors bytes: what a worker checks what it fetched against.
    pub hash: u64,
}

/// A shard to sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub protocol: u32,
    pub run: String,
    pub round: u64,
    /// The shard's place in its round.
    pub index: u32,
    pub model: ModelConfig,
    /// `f32`, `bf16`, … (candle's names).
    pub dtype: String,
    pub weights: WeightsRef,
    pub shard: Shard,
}

/// A sampled shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub protocol: u32,
    pub run: String,
    pub round: u64,
    pub index: u32,
    /// The weights it was sampled with.
    pub weights_hash: u64,
    /// Who sampled it (host and process), for the logs and the count of workers.
    pub worker: String,
    pub sampled: Vec<Sampled>,
}

pub fn encode<T: Serialize>(message: &T) -> anyhow::Result<Vec<u8>> {
    Ok(postcard::to_stdvec(message)?)
}

pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> anyhow::Result<T> {
    postcard::from_bytes(bytes).context("not a message of this protocol")
}

/// The two streams, made when missing.
pub async fn streams(js: &jetstream::Context) -> anyhow::Result<(stream::Stream, stream::Stream)> {
    let make = |name: &str, subjects: &str| stream::Config {
        name: name.to_string(),
        subjects: vec![subjects.to_string()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        // Whatever a run that went away left: gone after a day.
        max_age: Duration::from_secs(24 * 3600),
        ..Default::default()
    };
    let tasks = js
        .get_or_create_stream(make(TASKS_STREAM, "selfplay.tasks.>"))
        .await
        .map_err(|e| anyhow::anyhow!("stream {TASKS_STREAM}: {e}"))?;
    let results = js
        .get_or_create_stream(make(RESULTS_STREAM, "selfplay.results.>"))
        .await
        .map_err(|e| anyhow::anyhow!("stream {RESULTS_STREAM}: {e}"))?;
    Ok((tasks, results))
}

/// The weights bucket, made when missing.
pub async fn weights_bucket(js: &jetstream::Context) -> anyhow::Result<jetstream::object_store::ObjectStore> {
    match js.get_object_store(WEIGHTS_BUCKET).await {
        Ok(store) => Ok(store),
        Err(_) => js
            .create_object_store(jetstream::object_store::Config {
                bucket: WEIGHTS_BUCKET.to_string(),
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("object store {WEIGHTS_BUCKET}: {e}")),
    }
}

/// The workers' shared consumer of the task stream, with acknowledgement wait `ack_wait`.
pub fn workers_consumer(ack_wait: Duration) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(WORKERS_CONSUMER.to_string()),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait,
        // A task that kills every worker it reaches is not tried for ever.
        max_deliver: 10,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let task = Task {
            protocol: PROTOCOL,
            run: "ab".into(),
            round: 3,
            index: 1,
            model: ModelConfig {
                vocab: 9,
                d_model: 8,
                layers: 1,
                heads: 2,
                context: 16,
                dropout: 0.0,
                positions: Default::default(),
            },
            dtype: "f32".into(),
            weights: WeightsRef { object: "ab-3".into(), hash: 7 },
            shard: Shard {
                requests: vec![policy::Request { prompt: vec![1, 2], max_new: 4, stop: Some(3) }],
                sampling: policy::SampleConfig::default(),
                seed: 11,
            },
        };
        assert_eq!(decode::<Task>(&encode(&task).unwrap()).unwrap(), task);
        let answer = Answer {
            protocol: PROTOCOL,
            run: "ab".into(),
            round: 3,
            index: 1,
            weights_hash: 7,
            worker: "w".into(),
            sampled: vec![Sampled { tokens: vec![4, 3], logprobs: vec![-0.5, -1.25], stopped: true }],
        };
        assert_eq!(decode::<Answer>(&encode(&answer).unwrap()).unwrap(), answer);
        assert!(decode::<Answer>(b"\xff\xff\xff\xff\xff garbage").is_err());
    }

    #[test]
    fn a_run_keeps_its_id_and_two_runs_differ() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        assert_eq!(run_id(&a).unwrap(), run_id(&a.join("../a")).unwrap());
        assert_ne!(run_id(&a).unwrap(), run_id(&b).unwrap());
        assert!(run_id(&dir.path().join("missing")).is_err());
    }
}
