//! The transformer policy of both players, and everything that trains and samples it.
//!
//! Domain-agnostic: token ids in, tensors and tokens out.
//!
//! * [`model`]: a small GPT (config, layers, forward with an optional KV cache);
//! * [`ops`]: fused LayerNorm, softmax and GELU with hand-written backward passes;
//! * [`sample`]: batched KV-cache sampling with temperature, top-k, top-p, stop tokens;
//! * `choice`: how a token is chosen from logits (temperature, top-k, top-p), requests, results;
//! * `decode`: the CPU's sampling path, continuously batched over plain rows;
//! * [`shard`]: sampling cut into independently seeded shards that can run in other processes;
//! * [`train`]: completion log-probs, cross-entropy, gradients of a batch in parts, advantages;
//! * [`ppo`]: the clipped policy-gradient loss and update;
//! * [`optim`]: AdamW with warmup and cosine decay, clipping, non-finite guard;
//! * [`checkpoint`]: atomic checkpoints that resume bit-exactly;
//! * [`device`]: `cpu` or `cuda[:N]`, and the allocator setting training wants.

pub mod checkpoint;
mod choice;
mod decode;
pub mod device;
pub mod model;
pub mod ops;
pub mod optim;
pub mod ppo;
pub mod sample;
pub mod shard;
pub mod train;

pub use checkpoint::{CheckpointError, Checkpoints, Trainable};
pub use decode::sampling_isa;
pub use model::{Dropout, Gpt, KvCache, ModelConfig, Positions};
pub use optim::{AdamW, OptimConfig, StepReport};
pub use ppo::{ppo_loss, ppo_update, Estimator, PpoConfig, PpoOutcome, PpoStats, UPDATE_PART};
pub use sample::{sample, Request, SampleConfig, Sampled};
pub use shard::{sample_shards, shards, Shard};
pub use train::{
    cross_entropy, cross_entropy_grads, grads_in_parallel, group_advantages, keyed_advantages,
    token_logprobs, Batch, SUPERVISED_PART,
};
