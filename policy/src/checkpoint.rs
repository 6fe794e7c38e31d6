//! Checkpoints: weights, optimizer state, step, RNG state and config, written atomically.
//!
//! A checkpoint is a directory:
//!
//! | file | what |
//! |---|---|
//! | `model.safetensors` | the weights, by parameter name |
//! | `optimizer.safetensors` | AdamW moments (`m.NAME`, `v.NAME`) |
//! | `state.json` | format version, model and optimizer config, step counters, RNG state, and whatever the caller adds (`extra`) |
//!
//! It is written into a temporary sibling directory, each file synced, then renamed into place, so
//! a checkpoint directory that exists is complete. [`Checkpoints`] names them by step and keeps the
//! last K (and any the caller pins).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::model::{Gpt, ModelConfig};
use crate::optim::{AdamW, OptimConfig};

/// Version of the checkpoint layout.
pub const FORMAT: u32 = 1;

/// What goes wrong with a checkpoint; every message names the checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("no checkpoint at {0}")]
    Missing(PathBuf),
    #[error("{path} is not a readable checkpoint: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("checkpoint {path} does not fit: {reason}")]
    Mismatch { path: PathBuf, reason: String },
    #[error("writing checkpoint {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// The `state.json` of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub format: u32,
    pub model: ModelConfig,
    pub optimizer: OptimConfig,
    /// Optimizer updates taken and skipped.
    pub step: u64,
    pub skipped: u64,
    /// The training RNG (data order, dropout), so a resumed run draws what it would have drawn.
    pub rng: ChaCha8Rng,
    /// Anything the caller keeps with the checkpoint (its own config, counters, metrics).
    #[serde(default)]
    pub extra: serde_json::Value,
}

/// A model with its optimizer and RNG: everything training needs to go on exactly.
pub struct Trainable {
    pub model: Gpt,
    pub optim: AdamW,
    pub rng: ChaCha8Rng,
}

impl Trainable {
    /// A fresh model from `seed` with a fresh optimizer and RNG (seeded from `seed` too).
    pub fn new(
        cfg: &ModelConfig,
        optim: OptimConfig,
        seed: u64,
        device: &Device,
    ) -> candle_core::Result<Self> {
        use rand::SeedableRng;
        let model = Gpt::new(cfg, seed, DType::F32, device)?;
        let optim = AdamW::new(model.named_vars(), optim)?;
        Ok(Trainable { model, optim, rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5eed) })
    }

    /// Writes this as a checkpoint at `dir` (which must not exist), atomically.
    pub fn save(&self, dir: &Path, extra: serde_json::Value) -> Result<(), CheckpointError> {
        let werr = |reason: String| CheckpointError::Write { path: dir.to_path_buf(), reason };
        if dir.exists() {
            return Err(werr("it already exists".into()));
        }
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| werr(e.to_string()))?;
        let name = dir.file_name().ok_or_else(|| werr("no directory name".into()))?.to_string_lossy();
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir(&tmp).map_err(|e| werr(e.to_string()))?;
        let result = (|| -> Result<(), String> {
            let weights: std::collections::HashMap<String, Tensor> =
                self.model.named_vars().into_iter().map(|(n, v)| (n, v.as_tensor().clone())).collect();
            write_safetensors(&weights, &tmp.join("model.safetensors"))?;
            let (moments, step, skipped) = self.optim.state();
            write_safetensors(&moments, &tmp.join("optimizer.safetensors"))?;
            let state = State {
                format: FORMAT,
                model: self.model.config().clone(),
                optimizer: *self.optim.config(),
                step,
                skipped,
                rng: self.rng.clone(),
                extra,
            };
            let json = serde_json::to_vec_pretty(&state).map_err(|e| e.to_string())?;
            std::fs::write(tmp.join("state.json"), json).map_err(|e| e.to_string())?;
            // The files, then the directory's entries for them: after a power cut the renamed
            // directory holds all three, whole.
            for f in ["model.safetensors", "optimizer.safetensors", "state.json", "."] {
                std::fs::File::open(tmp.join(f)).and_then(|f| f.sync_all()).map_err(|e| e.to_string())?;
            }
            std::fs::rename(&tmp, dir).map_err(|e| e.to_string())?;
            std::fs::File::open(parent).and_then(|d| d.sync_all()).map_err(|e| e.to_string())
        })();
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result.map_err(werr)
    }

    /// Reads a checkpoint. With `expect`, its model config must equal that one. Nothing on disk
    /// changes, whatever the outcome.
    pub fn load(
        dir: &Path,
        expect: Option<&ModelConfig>,
        device: &Device,
    ) -> Result<(Self, State), CheckpointError> {
        let state = read_state(dir)?;
        let mismatch = |reason: String| CheckpointError::Mismatch { path: dir.to_path_buf(), reason };
        let unreadable = |reason: String| CheckpointError::Unreadable { path: dir.to_path_buf(), reason };
        if let Some(want) = expect {
            if *want != state.model {
                return Err(mismatch(format!("its model is {:?}, expected {:?}", state.model, want)));
            }
        }
        let mut model =
            Gpt::empty(&state.model, DType::F32, device).map_err(|e| unreadable(e.to_string()))?;
        model
            .load_weights(&dir.join("model.safetensors"))
            .map_err(|e| mismatch(format!("model.safetensors does not match its config: {e}")))?;
        let mut optim =
            AdamW::new(model.named_vars(), state.optimizer).map_err(|e| unreadable(e.to_string()))?;
        let moments = candle_core::safetensors::load(dir.join("optimizer.safetensors"), device)
            .map_err(|e| unreadable(format!("optimizer.safetensors: {e}")))?;
        optim.restore(&moments, state.step, state.skipped).map_err(|e| mismatch(e.to_string()))?;
        Ok((Trainable { model, optim, rng: state.rng.clone() }, state))
    }
}

/// Writes `tensors` to `path` as safetensors, with one plain write. (candle's `save` writes a
/// temporary file beside and renames it, through a system call libc never sees; the checkpoint's
/// own temporary directory already makes the whole atomic.)
fn write_safetensors(tensors: &std::collections::HashMap<String, Tensor>, path: &Path) -> Result<(), String> {
    let bytes =
        safetensors::serialize(tensors.iter(), None).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The `state.json` of the checkpoint at `dir`.
pub fn read_state(dir: &Path) -> Result<State, CheckpointError> {
    if !dir.is_dir() {
        return Err(CheckpointError::Missing(dir.to_path_buf()));
    }
    let unreadable = |reason: String| CheckpointError::Unreadable { path: dir.to_path_buf(), reason };
    let bytes = std::fs::read(dir.join("state.json")).map_err(|e| unreadable(format!("state.json: {e}")))?;
    let state: State = serde_json::from_slice(&bytes).map_err(|e| unreadable(format!("state.json: {e}")))?;
    if state.format != FORMAT {
        return Err(unreadable(format!("format {} (this build reads {FORMAT})", state.format)));
    }
    state.model.validate().map_err(|e| unreadable(format!("model config: {e}")))?;
    Ok(state)
}

/// Loads only the weights of a checkpoint, for sampling and evaluation.
pub fn load_model(dir: &Path, device: &Device) -> Result<(Gpt, State), CheckpointError> {
    let state = read_state(dir)?;
    let mut model = Gpt::empty(&state.model, DType::F32, device)
        .map_err(|e| CheckpointError::Unreadable { path: dir.to_path_buf(), reason: e.to_string() })?;
    model.load_weights(&dir.join("model.safetensors")).map_err(|e| CheckpointError::Mismatch {
        path: dir.to_path_buf(),
        reason: format!("model.safetensors does not match its config: {e}"),
    })?;
    Ok((model, state))
}

/// A directory of checkpoints named `PREFIX-NNNNNN`, the last `keep` kept.
pub struct Checkpoints {
    pub root: PathBuf,
    pub prefix: String,
    pub keep: usize,
}

impl Checkpoints {
    /// The path of checkpoint number `n`.
    pub fn path(&self, n: u64) -> PathBuf {
        self.root.join(format!("{}-{n:06}", self.prefix))
    }

    /// Numbers of the complete checkpoints, ascending.
    pub fn list(&self) -> Vec<u64> {
        let mut ns: Vec<u64> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix(&format!("{}-", self.prefix))?.parse().ok()
            })
            .collect();
        ns.sort_unstable();
        ns
    }

    pub fn latest(&self) -> Option<u64> {
        self.list().last().copied()
    }

    /// Saves checkpoint `n`, then [`Checkpoints::prune`]s.
    pub fn save(
        &self,
        n: u64,
        t: &Trainable,
        extra: serde_json::Value,
        pinned: &[u64],
    ) -> Result<PathBuf, CheckpointError> {
        let path = self.path(n);
        t.save(&path, extra)?;
        self.prune(pinned);
        Ok(path)
    }

    /// Removes the oldest checkpoints beyond the last `keep`, never those in `pinned`.
    pub fn prune(&self, pinned: &[u64]) {
        let removable: Vec<u64> = self.list().into_iter().filter(|n| !pinned.contains(n)).collect();
        if removable.len() > self.keep {
            for old in &removable[..removable.len() - self.keep] {
                let _ = std::fs::remove_dir_all(self.path(*old));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Positions;
    use crate::train::{cross_entropy, Batch};
    use rand::Rng;

    fn cfg() -> ModelConfig {
        ModelConfig {
            vocab: 12,
            d_model: 16,
            layers: 2,
            heads: 2,
            context: 16,
            dropout: 0.1,
            positions: Positions::Learned,
        }
    }

    /// One training step on a batch drawn from the trainable's own RNG, with dropout from it too.
    fn train_step(t: &mut Trainable) {
        let pairs: Vec<(Vec<u32>, Vec<u32>)> = (0..4)
            .map(|_| {
                let a = t.rng.random_range(4..12u32);
                let b = t.rng.random_range(4..12u32);
                (vec![1, a, b, 3], vec![(a + b) % 8 + 4, 2])
            })
            .collect();
        let batch = Batch::new(&t.model, &pairs, 0).unwrap();
        let p = t.model.config().dropout;
        let loss =
            cross_entropy(&t.model, &batch, Some(crate::model::Dropout { p, rng: &mut t.rng })).unwrap();
        t.optim.backward_step(&loss).unwrap();
    }

    fn weights(t: &Trainable) -> Vec<(String, Vec<f32>)> {
        t.model
            .named_vars()
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().flatten_all().unwrap().to_vec1().unwrap()))
            .collect()
    }

    #[test]
    fn resume_is_bit_exact() {
        let dir = tempfile::tempdir().unwrap();
        let optim = OptimConfig { warmup_steps: 3, decay_steps: 10, ..Default::default() };
        let mut straight = Trainable::new(&cfg(), optim, 1, &Device::Cpu).unwrap();
        for _ in 0..10 {
            train_step(&mut straight);
        }
        let mut first = Trainable::new(&cfg(), optim, 1, &Device::Cpu).unwrap();
        for _ in 0..5 {
            train_step(&mut first);
        }
        let path = dir.path().join("ck");
        first.save(&path, serde_json::json!({"note": "halfway"})).unwrap();
        drop(first);
        let (mut resumed, state) = Trainable::load(&path, Some(&cfg()), &Device::Cpu).unwrap();
        assert_eq!((state.step, state.extra["note"].as_str()), (5, Some("halfway")));
        for _ in 0..5 {
            train_step(&mut resumed);
        }
        assert_eq!(weights(&resumed), weights(&straight), "bit-identical weights");
        assert_eq!(resumed.optim.step_count(), 10);
        assert_eq!(resumed.rng, straight.rng);
    }

    #[test]
    fn bad_checkpoints_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let t = Trainable::new(&cfg(), OptimConfig::default(), 1, &Device::Cpu).unwrap();
        let path = dir.path().join("ck");
        t.save(&path, serde_json::Value::Null).unwrap();
        assert!(matches!(t.save(&path, serde_json::Value::Null), Err(CheckpointError::Write { .. })));

        let err = Trainable::load(&dir.path().join("nope"), None, &Device::Cpu).err().unwrap();
        assert_eq!(err.to_string(), format!("no checkpoint at {}", dir.path().join("nope").display()));

        let other = ModelConfig { vocab: 30, ..cfg() };
        let err = Trainable::load(&path, Some(&other), &Device::Cpu).err().unwrap();
        assert!(err.to_string().contains("does not fit: its model is"), "{err}");

        // Truncated weights.
        let copy = dir.path().join("truncated");
        std::fs::create_dir(&copy).unwrap();
        for f in ["state.json", "optimizer.safetensors"] {
            std::fs::copy(path.join(f), copy.join(f)).unwrap();
        }
        let bytes = std::fs::read(path.join("model.safetensors")).unwrap();
        std::fs::write(copy.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
        let before = std::fs::read(copy.join("model.safetensors")).unwrap();
        let err = Trainable::load(&copy, None, &Device::Cpu).err().unwrap();
        assert!(
            matches!(err, CheckpointError::Mismatch { .. } | CheckpointError::Unreadable { .. }),
            "{err}"
        );
        assert_eq!(std::fs::read(copy.join("model.safetensors")).unwrap(), before);

        // A config that says another vocabulary than the weights have.
        let mut state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path.join("state.json")).unwrap()).unwrap();
        state["model"]["vocab"] = 40.into();
        std::fs::write(copy.join("state.json"), serde_json::to_vec(&state).unwrap()).unwrap();
        std::fs::copy(path.join("model.safetensors"), copy.join("model.safetensors")).unwrap();
        let err = Trainable::load(&copy, None, &Device::Cpu).err().unwrap();
        assert!(err.to_string().contains("model.safetensors does not match its config"), "{err}");

        std::fs::write(copy.join("state.json"), b"{").unwrap();
        let err = Trainable::load(&copy, None, &Device::Cpu).err().unwrap();
        assert!(err.to_string().contains("state.json"), "{err}");
    }

    #[test]
    fn only_the_last_k_are_kept_and_pinned_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let t = Trainable::new(&cfg(), OptimConfig::default(), 1, &Device::Cpu).unwrap();
        let cks = Checkpoints { root: dir.path().to_path_buf(), prefix: "round".into(), keep: 2 };
        for n in 0..5 {
            cks.save(n, &t, serde_json::Value::Null, &[0]).unwrap();
        }
        assert_eq!(cks.list(), vec![0, 3, 4]);
        assert_eq!(cks.latest(), Some(4));
        assert!(cks.path(3).ends_with("round-000003"));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty());
    }
}
