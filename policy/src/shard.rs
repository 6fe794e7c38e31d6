//! Sampling cut into shards that can run anywhere.
//!
//! A round's attempts are sampled in shards of a fixed number of requests, each with a random
//! stream of its own, seeded by a number the caller draws from its own stream. A shard's output
//! depends on the model, its requests, its settings and its seed, not on where or in which order
//! shards run: the same shards sampled in one process or spread over workers give the same
//! tokens (bit for bit on one machine and build).

use candle_core::Result;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::decode::{self, Job};
use crate::model::Gpt;
use crate::sample::{jobs, sample, sample_jobs, Path, Request, SampleConfig, Sampled};

/// A share of a round's sampling: its requests, how to choose tokens, and its stream's seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    pub requests: Vec<Request>,
    pub sampling: SampleConfig,
    pub seed: u64,
}

impl Shard {
    /// Samples the shard's requests with the KV cache, in order.
    pub fn sample(&self, model: &Gpt) -> Result<Vec<Sampled>> {
        sample(model, &self.requests, &self.sampling, &mut ChaCha8Rng::seed_from_u64(self.seed), true)
    }

    /// The jobs [`Shard::sample`] runs: [`sample`]'s, from the seed it draws.
    fn jobs(&self) -> Vec<Job<'_>> {
        jobs(&self.requests, &self.sampling, ChaCha8Rng::seed_from_u64(self.seed).next_u64())
    }
}

/// Every shard's continuations, as [`Shard::sample`] gives them shard by shard, but sampled as one
/// stream: on the CPU the decoder's slots pass from one shard's requests to the next's without
/// waiting for a shard's longest answer.
pub fn sample_shards(model: &Gpt, shards: &[Shard]) -> Result<Vec<Vec<Sampled>>> {
    if !decode::serves(model) {
        return shards.iter().map(|s| s.sample(model)).collect();
    }
    let jobs: Vec<Job> = shards.iter().flat_map(Shard::jobs).collect();
    let mut all = sample_jobs(model, &jobs, Path::Decoder)?.into_iter();
    Ok(shards.iter().map(|s| all.by_ref().take(s.requests.len()).collect()).collect())
}

/// `requests` cut into shards of at most `size` (at least 1), in order, each seeded by one draw
/// from `rng`.
pub fn shards(
    requests: Vec<Request>,
    size: usize,
    sampling: SampleConfig,
    rng: &mut ChaCha8Rng,
) -> Vec<Shard> {
    let size = size.max(1);
    let mut out = Vec::with_capacity(requests.len().div_ceil(size));
    let mut rest = requests.into_iter().peekable();
    while rest.peek().is_some() {
        let requests: Vec<Request> = rest.by_ref().take(size).collect();
        out.push(Shard { requests, sampling, seed: rng.next_u64() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;
    use candle_core::{DType, Device};

    fn model() -> Gpt {
        let cfg = ModelConfig {
            vocab: 11,
            d_model: 16,
            layers: 1,
            heads: 2,
            context: 20,
            dropout: 0.0,
            positions: Default::default(),
        };
        Gpt::new(&cfg, 5, DType::F32, &Device::Cpu).unwrap()
    }

    fn requests(n: usize) -> Vec<Request> {
        (0..n)
            .map(|i| Request { prompt: vec![1, 2 + (i % 7) as u32], max_new: 3 + i % 5, stop: Some(10) })
            .collect()
    }

    #[test]
    fn shards_cover_the_requests_in_order_with_distinct_seeds() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let cut = shards(requests(10), 4, SampleConfig::default(), &mut rng);
        assert_eq!(cut.iter().map(|s| s.requests.len()).collect::<Vec<_>>(), [4, 4, 2]);
        let flat: Vec<Request> = cut.iter().flat_map(|s| s.requests.clone()).collect();
        assert_eq!(flat, requests(10));
        assert!(cut[0].seed != cut[1].seed && cut[1].seed != cut[2].seed);
        assert!(shards(Vec::new(), 4, SampleConfig::default(), &mut rng).is_empty());
    }

    /// A shard's tokens depend on the shard alone: sampled after other shards, in another model
    /// rebuilt from the weights' bytes, it gives the same tokens and log-probabilities.
    #[test]
    fn a_shard_samples_the_same_wherever_it_runs() {
        let m = model();
        let cut = shards(requests(9), 3, SampleConfig::default(), &mut ChaCha8Rng::seed_from_u64(8));
        let here: Vec<Vec<Sampled>> = cut.iter().map(|s| s.sample(&m).unwrap()).collect();
        let bytes = m.weights_bytes().unwrap();
        let elsewhere = Gpt::from_weights(m.config(), &bytes, DType::F32, &Device::Cpu).unwrap();
        for (s, expected) in cut.iter().zip(&here).rev() {
            assert_eq!(&s.sample(&elsewhere).unwrap(), expected);
        }
        // Sampling is random: another seed gives other tokens somewhere.
        let reseeded: Vec<Vec<Sampled>> =
            cut.iter().map(|s| Shard { seed: s.seed + 1, ..s.clone() }.sample(&m).unwrap()).collect();
        assert_ne!(reseeded, here);
        // All shards as one stream: what each gives alone.
        assert_eq!(sample_shards(&m, &cut).unwrap(), here);
    }

    #[test]
    fn weights_of_another_shape_are_refused() {
        let m = model();
        let bytes = m.weights_bytes().unwrap();
        let bigger = ModelConfig { d_model: 32, ..m.config().clone() };
        assert!(Gpt::from_weights(&bigger, &bytes, DType::F32, &Device::Cpu).is_err());
        assert!(Gpt::from_weights(m.config(), b"not safetensors", DType::F32, &Device::Cpu).is_err());
    }
}
