//! `selfplay bench train|sample`: the policy's speed, in the shape the PyTorch reference in
//! `bench/reference/` measures too.
//!
//! Contract: `bench train --json` prints one object with `ms_per_step_median`; `bench sample
//! --json` one with `tokens_per_s` (KV cache) and `tokens_per_s_no_cache` (prefix recomputed
//! every step), counting new tokens.

use std::io::Write;
use std::time::Instant;

use candle_core::DType;
use clap::{Args, Subcommand};
use policy::{cross_entropy_grads, AdamW, Gpt, ModelConfig, OptimConfig, Request, SampleConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Median milliseconds per training step (AdamW, f32, forward + backward + update).
    Train(BenchTrainArgs),
    /// New tokens per second, with the KV cache and recomputing the prefix.
    Sample(BenchSampleArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BenchModelArgs {
    /// Model width.
    #[arg(long, default_value_t = 128)]
    pub d_model: usize,
    /// Transformer blocks.
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    /// Attention heads per block.
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    /// Vocabulary size.
    #[arg(long, default_value_t = 32)]
    pub vocab: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchTrainArgs {
    #[command(flatten)]
    pub model: BenchModelArgs,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 64)]
    pub ctx: usize,
    /// Sequences per step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Timed steps (after 2 untimed ones).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
}

#[derive(Debug, Args)]
pub struct BenchSampleArgs {
    #[command(flatten)]
    pub model: BenchModelArgs,
    /// Sequences sampled together.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Prompt tokens per sequence.
    #[arg(long, default_value_t = 16)]
    pub prompt: usize,
    /// New tokens per sequence.
    #[arg(long, default_value_t = 48)]
    pub new: usize,
    /// Timed repetitions of each mode.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
}

pub fn run(cmd: &BenchCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    let report = match cmd {
        BenchCommand::Train(a) => train(a)?,
        BenchCommand::Sample(a) => sample(a)?,
    };
    let json = match cmd {
        BenchCommand::Train(a) => a.model.json,
        BenchCommand::Sample(a) => a.model.json,
    };
    if json {
        serde_json::to_writer(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        for (k, v) in report.as_object().expect("reports are objects") {
            writeln!(out, "{k:>24}  {v}")?;
        }
    }
    Ok(())
}

fn model_config(m: &BenchModelArgs, context: usize) -> ModelConfig {
    ModelConfig {
        vocab: m.vocab,
        d_model: m.d_model,
        layers: m.layers,
        heads: m.heads,
        context,
        dropout: 0.0,
        positions: policy::Positions::Learned,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn train(a: &BenchTrainArgs) -> anyhow::Result<serde_json::Value> {
    let device = super::device(&a.model.device)?;
    let cfg = model_config(&a.model, a.ctx);
    let model = Gpt::new(&cfg, 0, DType::F32, &device)?;
    let mut opt = AdamW::new(model.named_vars(), OptimConfig { warmup_steps: 0, ..OptimConfig::default() })?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    // Every position is scored: a one-token prompt and a full-context completion.
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = (0..a.batch)
        .map(|_| {
            let seq: Vec<u32> = (0..a.ctx).map(|_| rng.random_range(0..a.model.vocab as u32)).collect();
            (seq[..1].to_vec(), seq[1..].to_vec())
        })
        .collect();
    let vars: Vec<candle_core::Var> = model.named_vars().into_iter().map(|(_, v)| v).collect();
    // Per step: total, gradients (forward and backward, the batch's parts side by side on the
    // CPU as the lab's supervised steps take them), optimizer; two warm-up steps. A GPU runs
    // queued kernels after the call that queued them returns: the clock stops only once the
    // device has finished (`synchronize`), else it would time the queueing.
    let mut times: [Vec<f64>; 3] = Default::default();
    for i in 0..a.steps + 2 {
        device.synchronize()?;
        let t = Instant::now();
        let (loss, grads) = cross_entropy_grads(&model, &vars, &pairs, 0)?;
        device.synchronize()?;
        let gradients = t.elapsed();
        opt.step_with(&grads, &loss)?;
        drop(grads);
        device.synchronize()?;
        let all = t.elapsed();
        if i >= 2 {
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
            for (v, x) in times.iter_mut().zip([ms(all), ms(gradients), ms(all - gradients)]) {
                v.push(x);
            }
        }
    }
    let [total, gradients, optimizer] = times;
    Ok(serde_json::json!({
        "ms_per_step_median": median(total.clone()),
        "ms_per_step_min": total.iter().copied().fold(f64::INFINITY, f64::min),
        "ms_gradients_median": median(gradients),
        "ms_optimizer_median": median(optimizer),
        "parts": pairs.len().div_ceil(policy::SUPERVISED_PART),
        "steps": a.steps,
        "parameters": cfg.parameters(),
        "tokens_per_step": a.batch * a.ctx,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "device": a.model.device,
    }))
}

fn sample(a: &BenchSampleArgs) -> anyhow::Result<serde_json::Value> {
    let isa = policy::sampling_isa().map_err(anyhow::Error::msg)?;
    let device = super::device(&a.model.device)?;
    let cfg = model_config(&a.model, a.prompt + a.new);
    let model = Gpt::new(&cfg, 0, DType::F32, &device)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let requests: Vec<Request> = (0..a.batch)
        .map(|_| Request {
            prompt: (0..a.prompt).map(|_| rng.random_range(0..a.model.vocab as u32)).collect(),
            max_new: a.new,
            stop: None,
        })
        .collect();
    let mut rate = |cache: bool| -> anyhow::Result<f64> {
        let mut times = Vec::new();
        for _ in 0..a.reps.max(1) {
            device.synchronize()?;
            let t = Instant::now();
            let out = policy::sample(&model, &requests, &SampleConfig::default(), &mut rng, cache)?;
            device.synchronize()?;
            let tokens: usize = out.iter().map(|s| s.tokens.len()).sum();
            times.push(tokens as f64 / t.elapsed().as_secs_f64());
        }
        Ok(median(times))
    };
    let cached = rate(true)?;
    let uncached = rate(false)?;
    Ok(serde_json::json!({
        "tokens_per_s": cached,
        "tokens_per_s_no_cache": uncached,
        "cache_speedup": cached / uncached,
        "batch": a.batch,
        "prompt": a.prompt,
        "new": a.new,
        "parameters": cfg.parameters(),
        "device": a.model.device,
        "isa": isa,
    }))
}
