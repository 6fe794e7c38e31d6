//! The solver's policy gradient alone, without a proposer: does it learn from verifiable rewards?
//!
//! ```sh
//! cargo run --release --example solver_rl -- WARMSTART_DIR [--lr 1e-4] [--iterations 40]
//!     [--fresh] [--kl 0] [--negative-weight 1] [--estimator grpo|dr_grpo] [--keep-moments]
//!     [--depths 1,2]
//! ```
//!
//! Each iteration samples 8 attempts at 64 problems (as many of each of `--depths`, literals
//! ≤ 20), verifies them and takes one clipped policy-gradient update (2
//! epochs) on the problems solved sometimes but not always, exactly as a self-play round updates
//! the solver. It prints the mean solve rate per iteration. With `--fresh` the problems are new
//! each iteration (does it generalize?); without, the same 64 every time (can it learn at all?).
//! `--keep-moments` continues the warm start's optimizer moments instead of a fresh AdamW.

use std::path::PathBuf;

use candle_core::Device;
use clap::Parser;
use policy::{group_advantages, ppo_update, Estimator, PpoConfig, SampleConfig};
use problem::player::PlayerMeta;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[derive(Parser)]
struct Args {
    /// A warm start directory (`RUN_DIR/warmstart`) or checkpoint holding `solver/`.
    dir: PathBuf,
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    #[arg(long, default_value_t = 40)]
    iterations: usize,
    /// New problems every iteration.
    #[arg(long)]
    fresh: bool,
    /// KL penalty to the starting solver.
    #[arg(long, default_value_t = 0.0)]
    kl: f64,
    #[arg(long, default_value_t = 1.0)]
    negative_weight: f64,
    /// grpo or dr_grpo.
    #[arg(long, default_value = "grpo")]
    estimator: Estimator,
    #[arg(long)]
    keep_moments: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Problem depths, 64 problems shared evenly among them.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    depths: Vec<u32>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dev = Device::Cpu;
    let (mut t, state) = policy::Trainable::load(&args.dir.join("solver"), None, &dev)?;
    let meta: PlayerMeta = serde_json::from_value(state.extra.clone())?;
    let domain = problem::domain_by_name(&meta.domain).ok_or_else(|| anyhow::anyhow!("unknown domain"))?;
    let (moments, step, skipped) = t.optim.state();
    let optim = policy::OptimConfig {
        lr: args.lr,
        min_lr: args.lr,
        warmup_steps: 1,
        weight_decay: 0.0,
        ..Default::default()
    };
    t.optim = policy::AdamW::new(t.model.named_vars(), optim)?;
    if args.keep_moments {
        t.optim.restore(&moments, step, skipped)?;
    }
    let reference = t.model.frozen_copy()?;
    let estimator = args.estimator;
    let cfg = PpoConfig {
        epochs: 2,
        kl_coef: args.kl,
        negative_weight: args.negative_weight,
        estimator,
        ..PpoConfig::default()
    };
    let format = solver::SolverFormat::of(&meta, domain);
    let pad = format.tokenizer().special(problem::Special::Pad);
    let sampling = SampleConfig { temperature: 1.0, top_k: None, top_p: None };
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    anyhow::ensure!(
        !args.depths.is_empty() && args.depths.iter().all(|d| (1..=8).contains(d)),
        "--depths: one or more depths from 1 to 8"
    );
    let per_depth = 64 / args.depths.len();
    let problems = |i: u64| -> anyhow::Result<Vec<lab::evaluate::Item>> {
        let mut items = Vec::new();
        for &d in &args.depths {
            // Seeds 1000 + i and 5000 + i for depths 1 and 2, as before this option.
            let seed = 1000 + 4000 * u64::from(d - 1) + i;
            items.extend(lab::warmstart::problems(domain, d, 20, per_depth, seed)?);
        }
        Ok(items)
    };
    let k = 8;
    let mut items = problems(0)?;
    for it in 0..args.iterations {
        if args.fresh && it > 0 {
            items = problems(it as u64)?;
        }
        let requests: Vec<_> =
            items.iter().map(|i| format.requests(&i.problem, k)).collect::<Result<Vec<_>, _>>()?.concat();
        let out = policy::sample(&t.model, &requests, &sampling, &mut rng, true)?;
        let (mut pairs, mut rewards, mut solved) = (Vec::new(), Vec::new(), 0.0);
        for (p, item) in items.iter().enumerate() {
            let group = &out[p * k..(p + 1) * k];
            let r: Vec<f32> = group
                .iter()
                .map(|s| {
                    f32::from(u8::from(
                        judge::verify(domain, &item.problem, &item.answer, &format.output_text(s)).correct,
                    ))
                })
                .collect();
            let rate = r.iter().sum::<f32>() / k as f32;
            solved += rate;
            if rate > 0.0 && rate < 1.0 {
                let prompt = format.prompt(&item.problem)?;
                pairs.extend(group.iter().map(|s| (prompt.clone(), s.tokens.clone())));
                rewards.extend(r);
            }
        }
        let line = format!("iteration {it}: solve rate {:.3}", solved / items.len() as f32);
        if pairs.is_empty() {
            println!("{line}  (nothing to learn from)");
            continue;
        }
        let adv = group_advantages(&rewards, k, estimator.normalizes_std());
        let o = ppo_update(&mut t, Some(&reference), &pairs, &adv, pad, &cfg, policy::UPDATE_PART)?;
        println!("{line}  trained on {}  loss {:.4}  kl {:.4}", pairs.len() / k, o.loss, o.kl);
    }
    Ok(())
}
