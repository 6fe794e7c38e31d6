//! The solver's policy-gradient update on a round's worth of attempts: sorted by length and
//! scored in parts of `policy::UPDATE_PART` sequences, against the whole batch padded to its
//! longest sequence (the reference), measured in the same run. Both compute the same loss (a
//! `policy` test checks it); parts only skip padding.
//!
//! `cargo bench -p selfplay-bench --bench update`

use candle_core::Device;
use policy::{ppo_update, ModelConfig, OptimConfig, Positions, PpoConfig, Trainable, UPDATE_PART};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use selfplay_bench::median_time;

fn main() {
    // The default solver, and 20 problems × 8 attempts of the lengths a round sees: prompts of
    // 5–20 tokens, worked solutions of 2–48.
    let cfg = ModelConfig {
        vocab: 29,
        d_model: 128,
        layers: 2,
        heads: 4,
        context: 96,
        dropout: 0.0,
        positions: Positions::Rotary,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut pairs = Vec::new();
    for _ in 0..20 {
        let prompt: Vec<u32> = (0..rng.random_range(5..=20)).map(|_| rng.random_range(4..29)).collect();
        for _ in 0..8 {
            let completion = (0..rng.random_range(2..=48)).map(|_| rng.random_range(4..29)).collect();
            pairs.push((prompt.clone(), completion));
        }
    }
    let advantages: Vec<f32> = (0..pairs.len()).map(|i| if i % 3 == 0 { 1.2 } else { -0.6 }).collect();
    let ppo = PpoConfig { kl_coef: 0.05, ..PpoConfig::default() };
    let mut t = Trainable::new(&cfg, OptimConfig::default(), 1, &Device::Cpu).unwrap();
    let reference = Trainable::new(&cfg, OptimConfig::default(), 2, &Device::Cpu).unwrap().model;
    let mut time = |part: usize| {
        median_time(5, || {
            ppo_update(&mut t, Some(&reference), &pairs, &advantages, 0, &ppo, part).unwrap();
        })
    };
    let whole = time(usize::MAX);
    let parts = time(UPDATE_PART);
    let tokens: usize = pairs.iter().map(|(p, c)| p.len() + c.len()).sum();
    let longest = pairs.iter().map(|(p, c)| p.len() + c.len()).max().unwrap_or(0);
    let report = serde_json::json!({
        "bench": "update",
        "sequences": pairs.len(),
        "tokens": tokens,
        "padded_tokens_whole": longest * pairs.len(),
        "epochs": ppo.epochs,
        "whole_batch_ms": whole.as_secs_f64() * 1e3,
        "in_parts_ms": parts.as_secs_f64() * 1e3,
        "part": UPDATE_PART,
        "parts_over_whole": parts.as_secs_f64() / whole.as_secs_f64(),
    });
    println!("{report}");
}
