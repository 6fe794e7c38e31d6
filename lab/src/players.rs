//! The two players as saved in checkpoints: a policy plus what its tokens mean.
//!
//! A player checkpoint is a policy checkpoint whose `extra` holds [`PlayerMeta`]: which player,
//! which domain, and the tokenizer layout, so any checkpoint the lab writes can be loaded and used
//! on its own (`selfplay eval --checkpoint DIR`).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};
use candle_core::Device;
use policy::Gpt;
use problem::Domain;
use proposer::ProposerFormat;
use serde::{Deserialize, Serialize};
use solver::SolverFormat;

/// Difficulty-target tokens in the shared tokenizer: depths 0 to 7, deeper asks share the last.
pub const DIFFICULTY_LEVELS: u32 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Player {
    Solver,
    Proposer,
}

/// What a player checkpoint records beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayerMeta {
    pub player: Player,
    pub domain: String,
    pub difficulty_levels: u32,
    /// Longest completion the player writes.
    pub max_new_tokens: usize,
    /// The literal bounds a proposer's literal-bound tokens `<l0>`, `<l1>`, … ask for (largest
    /// literal allowed), narrowest first; empty for a player without them (every checkpoint
    /// written before they existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub literal_bounds: Vec<u32>,
}

impl PlayerMeta {
    /// The metadata of a player of `domain` with the shared tokenizer layout.
    pub fn new(player: Player, domain: &dyn Domain, max_new_tokens: usize) -> Self {
        PlayerMeta {
            player,
            domain: domain.name().into(),
            difficulty_levels: DIFFICULTY_LEVELS,
            max_new_tokens,
            literal_bounds: Vec::new(),
        }
    }

    /// The tokenizer whose ids the player's model reads and writes.
    pub fn tokenizer(&self, domain: &dyn Domain) -> problem::Tokenizer {
        domain.tokenizer(self.difficulty_levels).with_literal_levels(self.literal_bounds.len() as u32)
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("player metadata serializes")
    }
}

/// The checkpoint directory of `player` at `dir`: `dir` itself when it is one, else `dir/<player>`.
pub fn checkpoint_dir(dir: &Path, player: Player) -> anyhow::Result<PathBuf> {
    let name = match player {
        Player::Solver => "solver",
        Player::Proposer => "proposer",
    };
    for candidate in [dir.to_path_buf(), dir.join(name)] {
        if candidate.join("state.json").is_file() {
            return Ok(candidate);
        }
    }
    if !dir.exists() {
        bail!("no checkpoint at {}", dir.display());
    }
    bail!("{} holds no {name} checkpoint (no state.json in it or in {name}/)", dir.display())
}

/// A player's model, its metadata and its domain, from a checkpoint directory.
pub fn load(
    dir: &Path,
    player: Player,
    device: &Device,
) -> anyhow::Result<(Gpt, PlayerMeta, &'static dyn Domain)> {
    let dir = checkpoint_dir(dir, player)?;
    let (model, state) = policy::checkpoint::load_model(&dir, device)?;
    let meta: PlayerMeta = serde_json::from_value(state.extra.clone())
        .map_err(|e| anyhow!("{} is not a selfplay player checkpoint: {e}", dir.display()))?;
    if meta.player != player {
        bail!("{} is a {:?} checkpoint, not a {player:?} one", dir.display(), meta.player);
    }
    let domain = problem::domain_by_name(&meta.domain)
        .ok_or_else(|| anyhow!("{}: unknown domain {:?}", dir.display(), meta.domain))?;
    check_vocabulary(&dir, &meta, domain, &model)?;
    Ok((model, meta, domain))
}

/// That the model at `dir` reads and writes the ids of the tokenizer its metadata names.
pub fn check_vocabulary(
    dir: &Path,
    meta: &PlayerMeta,
    domain: &dyn Domain,
    model: &Gpt,
) -> anyhow::Result<()> {
    let vocab = meta.tokenizer(domain).vocab_size() as usize;
    if vocab != model.config().vocab {
        bail!(
            "{}: the model's vocabulary ({}) is not the domain's ({vocab})",
            dir.display(),
            model.config().vocab
        );
    }
    Ok(())
}

pub fn solver_format(meta: &PlayerMeta, domain: &dyn Domain) -> SolverFormat {
    SolverFormat::new(meta.tokenizer(domain), meta.max_new_tokens)
}

pub fn proposer_format(meta: &PlayerMeta, domain: &dyn Domain) -> ProposerFormat {
    ProposerFormat::new(meta.tokenizer(domain), meta.max_new_tokens, meta.literal_bounds.clone())
}
