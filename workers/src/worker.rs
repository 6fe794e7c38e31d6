//! `selfplay worker`: takes tasks from the shared queue, samples them, and answers.
//!
//! A worker never opens an archive or a run directory: a task carries what it needs (the model's
//! shape, the weights' version, the shard) and the weights come from the bucket, kept while
//! tasks name the same version. While a shard samples, the task is marked in progress so that
//! the server does not hand it to another worker; a worker killed mid-task stops marking it, and
//! after the acknowledgement wait another worker gets it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, AckKind};
use candle_core::{DType, Device};
use futures_util::StreamExt;
use policy::Gpt;
use tokio::io::AsyncReadExt;

use crate::patience::retry;
use crate::protocol::{self, Answer, Task, PROTOCOL};

/// How long a worker keeps trying to hand in an answer while the server is away.
const ANSWER_PATIENCE: Duration = Duration::from_secs(600);

/// The weights of one version, built into a model.
struct Cached {
    hash: u64,
    model: Arc<Gpt>,
}

/// Serves tasks from the server at `url` until the process ends; samples on `device`.
pub fn serve(url: &str, device: Device) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(serve_async(url, device))
}

async fn serve_async(url: &str, device: Device) -> anyhow::Result<()> {
    let name = format!("{}:{}", protocol::host_name(), std::process::id());
    tracing::info!("worker {name}: connecting to the NATS server at {url}");
    // A worker started before its server waits for it: the client connects in the background,
    // and opening the streams below is tried, and logged, until it answers.
    let client = crate::patience::announced(url)
        .retry_on_initial_connect()
        .connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the NATS server at {url}: {e}"))?;
    let js = jetstream::new(client);
    let ((tasks, _), _) = retry("opening the streams", None, || protocol::streams(&js)).await?;
    let (bucket, _) = retry("opening the weights bucket", None, || protocol::weights_bucket(&js)).await?;
    // The learner sets the acknowledgement wait; until one has, the consumer gets a default.
    let consumer: consumer::Consumer<consumer::pull::Config> =
        match tasks.get_consumer(protocol::WORKERS_CONSUMER).await {
            Ok(c) => c,
            Err(_) => tasks
                .create_consumer(protocol::workers_consumer(Duration::from_secs(30)))
                .await
                .map_err(|e| anyhow::anyhow!("the workers' consumer: {e}"))?,
        };
    tracing::info!("worker {name} serving tasks from {url}");
    let mut cached: Option<Cached> = None;
    loop {
        let batch = consumer.fetch().max_messages(1).expires(Duration::from_secs(5)).messages().await;
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("asking for a task: {e}; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        while let Some(message) = batch.next().await {
            match message {
                Ok(message) => handle(&js, &bucket, &consumer, &message, &mut cached, &device, &name).await,
                Err(e) => tracing::warn!("receiving a task: {e}"),
            }
        }
    }
}

/// Samples one task and hands in its answer; a task that cannot be done is terminated, so the
/// server does not offer it again.
async fn handle(
    js: &jetstream::Context,
    bucket: &jetstream::object_store::ObjectStore,
    consumer: &consumer::Consumer<consumer::pull::Config>,
    message: &jetstream::Message,
    cached: &mut Option<Cached>,
    device: &Device,
    name: &str,
) {
    let terminate = |why: String| async move {
        tracing::warn!("dropping a task: {why}");
        if let Err(e) = message.ack_with(AckKind::Term).await {
            tracing::warn!("terminating a task: {e}");
        }
    };
    let task: Task = match protocol::decode(&message.payload) {
        Ok(t) => t,
        Err(e) => return terminate(format!("{e:#}")).await,
    };
    if task.protocol != PROTOCOL {
        return terminate(format!("protocol {}, this worker speaks {PROTOCOL}", task.protocol)).await;
    }
    let model = match model_for(bucket, &task, cached, device).await {
        Ok(m) => m,
        Err(e) => return terminate(format!("round {} shard {}: {e:#}", task.round, task.index)).await,
    };
    tracing::info!(
        "round {} shard {}: sampling {} sequences",
        task.round,
        task.index,
        task.shard.requests.len()
    );
    let started = Instant::now();
    let shard = task.shard.clone();
    let mut sampling = tokio::task::spawn_blocking(move || {
        // Fault tests slow a worker down here, to kill it mid-task (docs/RELIABILITY.md).
        fail::fail_point!("worker-sample", |_| Err(candle_core::Error::Msg("worker-sample".into())));
        shard.sample(&model)
    });
    // Marked in progress while it samples, a few times within each acknowledgement wait: the
    // wait the learner set last, which may be shorter than when this worker started.
    let ack_wait = match consumer.get_info().await {
        Ok(info) => info.config.ack_wait,
        Err(_) => consumer.cached_info().config.ack_wait,
    };
    let every = ack_wait.max(Duration::from_millis(400)) / 4;
    let mut ticks = tokio::time::interval(every);
    let sampled = loop {
        tokio::select! {
            done = &mut sampling => break done,
            _ = ticks.tick() => {
                if let Err(e) = message.ack_with(AckKind::Progress).await {
                    tracing::debug!("marking a task in progress: {e}");
                }
            }
        }
    };
    let sampled = match sampled {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return terminate(format!("round {} shard {}: sampling: {e}", task.round, task.index)).await
        }
        Err(e) => return terminate(format!("round {} shard {}: {e}", task.round, task.index)).await,
    };
    let answer = Answer {
        protocol: PROTOCOL,
        run: task.run.clone(),
        round: task.round,
        index: task.index,
        weights_hash: task.weights.hash,
        worker: name.to_string(),
        sampled,
    };
    let bytes = match protocol::encode(&answer) {
        Ok(b) => b,
        Err(e) => return terminate(format!("encoding the answer: {e:#}")).await,
    };
    let subject = protocol::results_subject(&task.run);
    let handed_in = retry("handing in an answer", Some(ANSWER_PATIENCE), || async {
        js.publish(subject.clone(), bytes.clone().into()).await?.await.map_err(anyhow::Error::from)
    })
    .await;
    if let Err(e) = handed_in {
        // Not acknowledged: the server offers the task again.
        tracing::warn!("round {} shard {}: {e:#}", task.round, task.index);
        return;
    }
    // An acknowledgement lost here makes the task come back; its second answer is refused.
    if let Err(e) = message.ack().await {
        tracing::warn!("acknowledging round {} shard {}: {e}", task.round, task.index);
    }
    tracing::info!(
        "round {} shard {}: answered, {} sequences in {:.2} s",
        task.round,
        task.index,
        task.shard.requests.len(),
        started.elapsed().as_secs_f64()
    );
}

/// The task's model: the cached one when its weights are the task's, else fetched, checked and
/// built.
async fn model_for(
    bucket: &jetstream::object_store::ObjectStore,
    task: &Task,
    cached: &mut Option<Cached>,
    device: &Device,
) -> anyhow::Result<Arc<Gpt>> {
    if let Some(c) = cached.as_ref().filter(|c| c.hash == task.weights.hash) {
        return Ok(c.model.clone());
    }
    // Missing when the learner has moved on to newer weights: the task is stale.
    let mut object = bucket
        .get(&task.weights.object)
        .await
        .map_err(|e| anyhow::anyhow!("weights {}: {e}", task.weights.object))?;
    let mut bytes = Vec::new();
    object.read_to_end(&mut bytes).await?;
    let hash = xxhash_rust::xxh3::xxh3_64(&bytes);
    if hash != task.weights.hash {
        anyhow::bail!(
            "weights {} hash to {hash:016x}, the task says {:016x}",
            task.weights.object,
            task.weights.hash
        );
    }
    let dtype: DType = task.dtype.parse().map_err(|e| anyhow::anyhow!("dtype {}: {e}", task.dtype))?;
    let model = Arc::new(Gpt::from_weights(&task.model, &bytes, dtype, device)?);
    *cached = Some(Cached { hash, model: model.clone() });
    Ok(model)
}
