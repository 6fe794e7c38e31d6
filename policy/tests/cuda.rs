//! The policy on a GPU against the same policy on the CPU.
//!
//! Switched on by `SELFPLAY_CUDA_TESTS=1` in a build with `--features cuda` (`gpu/check.sh` runs
//! them on a GPU machine). Without the variable each test says on the terminal that it was
//! skipped and passes; with it, a build without CUDA or a machine without a GPU fails.
//!
//! Every comparison starts from the same weights (a model's weights are drawn on the host, then
//! moved), so the CPU's figures are the reference; the tolerances are those of `f32` arithmetic
//! done in another order. Two seeded runs on the GPU must agree to the bit: parts of a batch
//! racing on separate streams would show there first.

use std::io::Write;

use candle_core::{DType, Device, Tensor};
use policy::{
    cross_entropy_grads, ppo_update, sample, Gpt, ModelConfig, OptimConfig, Positions, PpoConfig, Request,
    SampleConfig, Trainable,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SWITCH: &str = "SELFPLAY_CUDA_TESTS";

/// The GPU to test on, or `None` (said on the terminal, past the test harness's capture) when
/// the tests are not switched on.
fn gpu(test: &str) -> Option<Device> {
    if std::env::var(SWITCH).map_or(true, |v| v.is_empty() || v == "0") {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: GPU test; set {SWITCH}=1 in a build with --features cuda on a machine with a GPU"
        );
        return None;
    }
    if !cfg!(feature = "cuda") {
        panic!("{SWITCH} is set, but this test binary was built without --features cuda");
    }
    match policy::device::parse("cuda") {
        Ok(d) => Some(d),
        Err(e) => panic!("{SWITCH} is set, but no CUDA device opens: {e}"),
    }
}

fn config(positions: Positions) -> ModelConfig {
    ModelConfig { vocab: 13, d_model: 32, layers: 2, heads: 4, context: 24, dropout: 0.0, positions }
}

/// `n` prompt–completion pairs of different lengths, drawn from `seed`.
fn pairs(n: usize, seed: u64) -> Vec<(Vec<u32>, Vec<u32>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let p = rng.random_range(1..6);
            let c = rng.random_range(1..12);
            let mut draw = |k: usize| (0..k).map(|_| rng.random_range(1..13u32)).collect::<Vec<_>>();
            (draw(p), draw(c))
        })
        .collect()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

/// The largest difference between two tensors' elements, relative to the reference's largest.
fn relative_difference(reference: &Tensor, other: &Tensor) -> f32 {
    let (a, b) = (values(reference), values(other));
    assert_eq!(a.len(), b.len(), "shapes differ: {:?} against {:?}", reference.dims(), other.dims());
    let scale = a.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// A model's weights by name, on the host.
type Weights = Vec<(String, Vec<f32>)>;

fn weights(model: &Gpt) -> Weights {
    model.named_vars().into_iter().map(|(n, v)| (n, values(v.as_tensor()))).collect()
}

#[test]
fn logits_agree_with_the_cpu() {
    let Some(gpu) = gpu("logits_agree_with_the_cpu") else { return };
    for positions in [Positions::Learned, Positions::Rotary] {
        let cfg = config(positions);
        let cpu = Gpt::new(&cfg, 7, DType::F32, &Device::Cpu).unwrap();
        let cuda = Gpt::new(&cfg, 7, DType::F32, &gpu).unwrap();
        let tokens: Vec<u32> = (0..3 * 20).map(|i| (i * 7 % 13) as u32).collect();
        let logits = |m: &Gpt, dev: &Device| {
            m.forward(&Tensor::from_vec(tokens.clone(), (3, 20), dev).unwrap(), None).unwrap()
        };
        let d = relative_difference(&logits(&cpu, &Device::Cpu), &logits(&cuda, &gpu));
        assert!(d < 1e-4, "{positions:?}: logits differ by {d} of their largest");
    }
}

#[test]
fn cross_entropy_gradients_agree_with_the_cpu() {
    let Some(gpu) = gpu("cross_entropy_gradients_agree_with_the_cpu") else { return };
    // 40 pairs: three parts of at most 16, summed in order.
    let data = pairs(40, 1);
    for positions in [Positions::Learned, Positions::Rotary] {
        let cfg = config(positions);
        let run = |dev: &Device| {
            let model = Gpt::new(&cfg, 3, DType::F32, dev).unwrap();
            let vars: Vec<_> = model.named_vars().into_iter().map(|(_, v)| v).collect();
            let (loss, grads) = cross_entropy_grads(&model, &vars, &data, 0).unwrap();
            let grads: Vec<Tensor> = vars.iter().map(|v| grads.get(v.as_tensor()).unwrap().clone()).collect();
            (loss.to_scalar::<f64>().unwrap(), grads)
        };
        let (cpu_loss, cpu_grads) = run(&Device::Cpu);
        let (gpu_loss, gpu_grads) = run(&gpu);
        assert!(
            (cpu_loss - gpu_loss).abs() < 1e-5 * cpu_loss.abs(),
            "{positions:?}: loss {cpu_loss} against {gpu_loss}"
        );
        for (i, (c, g)) in cpu_grads.iter().zip(&gpu_grads).enumerate() {
            let d = relative_difference(c, g);
            assert!(d < 1e-3, "{positions:?}: gradient {i} differs by {d} of its largest");
        }
    }
}

/// `steps` policy-gradient updates of a fresh player on `dev`, in parts of 4 sequences, with the
/// KL penalty to a second model; returns what each update reported and the weights after.
fn policy_gradient_run(dev: &Device, positions: Positions, steps: usize) -> (Vec<[f64; 3]>, Weights) {
    let cfg = config(positions);
    let optim = OptimConfig { warmup_steps: 0, ..OptimConfig::default() };
    let mut t = Trainable::new(&cfg, optim, 5, dev).unwrap();
    let reference = Gpt::new(&cfg, 6, DType::F32, dev).unwrap();
    let ppo = PpoConfig { epochs: 2, kl_coef: 0.05, ..PpoConfig::default() };
    let mut outcomes = Vec::new();
    for step in 0..steps {
        let data = pairs(18, 100 + step as u64);
        let advantages: Vec<f32> = (0..data.len()).map(|i| (i % 5) as f32 - 2.0).collect();
        let o = ppo_update(&mut t, Some(&reference), &data, &advantages, 0, &ppo, 4).unwrap();
        outcomes.push([o.loss, o.kl, o.clip_fraction]);
    }
    (outcomes, weights(&t.model))
}

#[test]
fn a_policy_gradient_update_agrees_with_the_cpu() {
    let Some(gpu) = gpu("a_policy_gradient_update_agrees_with_the_cpu") else { return };
    for positions in [Positions::Learned, Positions::Rotary] {
        let (cpu_outcomes, cpu_weights) = policy_gradient_run(&Device::Cpu, positions, 1);
        let (gpu_outcomes, gpu_weights) = policy_gradient_run(&gpu, positions, 1);
        for (c, g) in cpu_outcomes[0].iter().zip(&gpu_outcomes[0]) {
            assert!(
                (c - g).abs() < 1e-4 * c.abs().max(1e-2),
                "{positions:?}: {cpu_outcomes:?} against {gpu_outcomes:?}"
            );
        }
        for ((name, c), (_, g)) in cpu_weights.iter().zip(&gpu_weights) {
            let d = c.iter().zip(g).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            // One AdamW step moves a weight by at most about the learning rate (1e-3).
            assert!(d < 2e-5, "{positions:?}: {name} differs by {d} after one update");
        }
    }
}

#[test]
fn two_seeded_gpu_runs_agree_to_the_bit() {
    let Some(gpu) = gpu("two_seeded_gpu_runs_agree_to_the_bit") else { return };
    let (first_outcomes, first) = policy_gradient_run(&gpu, Positions::Rotary, 4);
    let (second_outcomes, second) = policy_gradient_run(&gpu, Positions::Rotary, 4);
    assert_eq!(first_outcomes, second_outcomes, "the updates reported different figures");
    for ((name, a), (_, b)) in first.iter().zip(&second) {
        assert!(a == b, "{name} differs between two runs of the same seed");
    }
}

#[test]
fn sampling_agrees_with_the_cpu_with_and_without_the_cache() {
    let Some(gpu) = gpu("sampling_agrees_with_the_cpu_with_and_without_the_cache") else { return };
    for positions in [Positions::Learned, Positions::Rotary] {
        let cfg = config(positions);
        let requests: Vec<Request> = pairs(6, 9)
            .into_iter()
            .map(|(prompt, _)| Request { prompt, max_new: 10, stop: Some(12) })
            .collect();
        let draw = |dev: &Device, cache: bool| {
            let model = Gpt::new(&cfg, 11, DType::F32, dev).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(4);
            sample(&model, &requests, &SampleConfig::greedy(), &mut rng, cache).unwrap()
        };
        let reference = draw(&Device::Cpu, true);
        for cache in [true, false] {
            let got = draw(&gpu, cache);
            for (i, (r, g)) in reference.iter().zip(&got).enumerate() {
                assert_eq!(r.tokens, g.tokens, "{positions:?}, cache {cache}: sequence {i}");
                for (a, b) in r.logprobs.iter().zip(&g.logprobs) {
                    assert!((a - b).abs() < 1e-4, "{positions:?}, cache {cache}: log-prob {a} against {b}");
                }
            }
        }
    }
}

#[test]
fn a_checkpoint_written_on_the_gpu_reads_on_the_cpu() {
    let Some(gpu) = gpu("a_checkpoint_written_on_the_gpu_reads_on_the_cpu") else { return };
    let cfg = config(Positions::Rotary);
    let mut t = Trainable::new(&cfg, OptimConfig::default(), 2, &gpu).unwrap();
    let data = pairs(8, 3);
    let advantages: Vec<f32> = (0..8).map(|i| i as f32 - 3.5).collect();
    ppo_update(&mut t, None, &data, &advantages, 0, &PpoConfig::default(), 4).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("player");
    t.save(&path, serde_json::json!({})).unwrap();
    let (back, state) = Trainable::load(&path, Some(&cfg), &Device::Cpu).unwrap();
    assert!(back.model.device().is_cpu());
    assert_eq!(state.step, t.optim.step_count());
    assert_eq!(weights(&back.model), weights(&t.model), "weights changed on the way");
    let (saved, _, _) = t.optim.state();
    let (read, _, _) = back.optim.state();
    for (name, tensor) in &saved {
        assert_eq!(values(tensor), values(&read[name]), "optimizer state {name} changed on the way");
    }
}
