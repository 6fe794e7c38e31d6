//! What a player checkpoint records beside its weights: which player, which domain, and what its
//! tokens mean.
//!
//! Both players read and write ids of their domain's [`Tokenizer`], laid out with difficulty
//! levels and (for a proposer taught them) literal bounds. The card below is that layout, kept in
//! each checkpoint so that a checkpoint is usable on its own (`selfplay eval --checkpoint DIR`).
//! The player crates load their checkpoints through it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{domain_by_name, Domain, Tokenizer};

/// Difficulty-target tokens in the shared tokenizer: depths 0 to 7, deeper asks share the last.
pub const DIFFICULTY_LEVELS: u32 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Player {
    Solver,
    Proposer,
}

impl Player {
    /// Its checkpoint's directory name inside a run's or a warm start's directory.
    pub fn dir_name(self) -> &'static str {
        match self {
            Player::Solver => "solver",
            Player::Proposer => "proposer",
        }
    }
}

/// A player checkpoint's card: the `extra` of its policy checkpoint.
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

/// A checkpoint that is not what it should be; the message names the directory.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CardError(pub String);

impl PlayerMeta {
    /// The card of a player of `domain` with the shared tokenizer layout.
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
    pub fn tokenizer(&self, domain: &dyn Domain) -> Tokenizer {
        domain.tokenizer(self.difficulty_levels).with_literal_levels(self.literal_bounds.len() as u32)
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("player metadata serializes")
    }

    /// The card in the checkpoint at `dir` (its `extra`), checked: it is a `player` card, its
    /// domain is known, and its tokenizer has the model's `vocab` ids.
    pub fn read(
        dir: &Path,
        extra: &serde_json::Value,
        player: Player,
        vocab: usize,
    ) -> Result<(PlayerMeta, &'static dyn Domain), CardError> {
        let at = dir.display();
        let meta: PlayerMeta = serde_json::from_value(extra.clone())
            .map_err(|e| CardError(format!("{at} is not a selfplay player checkpoint: {e}")))?;
        if meta.player != player {
            return Err(CardError(format!("{at} is a {:?} checkpoint, not a {player:?} one", meta.player)));
        }
        let domain = domain_by_name(&meta.domain)
            .ok_or_else(|| CardError(format!("{at}: unknown domain {:?}", meta.domain)))?;
        let want = meta.tokenizer(domain).vocab_size() as usize;
        if want != vocab {
            return Err(CardError(format!(
                "{at}: the model's vocabulary ({vocab}) is not the domain's ({want})"
            )));
        }
        Ok((meta, domain))
    }
}

/// The checkpoint directory of `player` at `dir`: `dir` itself when it is one, else `dir/<player>`.
pub fn checkpoint_dir(dir: &Path, player: Player) -> Result<PathBuf, CardError> {
    let name = player.dir_name();
    for candidate in [dir.to_path_buf(), dir.join(name)] {
        if candidate.join("state.json").is_file() {
            return Ok(candidate);
        }
    }
    if !dir.exists() {
        return Err(CardError(format!("no checkpoint at {}", dir.display())));
    }
    Err(CardError(format!(
        "{} holds no {name} checkpoint (no state.json in it or in {name}/)",
        dir.display()
    )))
}
