//! The proposer player: how it is asked for a problem and how its proposal is read back.
//!
//! Sequence format:
//!
//! ```text
//! <bos> <dK> [<lM>] reference₁ <sep> reference₂ <sep> … <sep> problem <eos>
//! ```
//!
//! The prompt holds a difficulty-target token `<dK>` (K = the composition depth asked for,
//! capped at the last level), for a proposer taught literal bounds a literal-bound token `<lM>`
//! (M = the index of the bound asked for among its bounds: the largest literal the problem may
//! have), and zero or more reference problems from the archive, each closed by `<sep>`; a final
//! `<sep>` opens the new problem. The model writes the problem and `<eos>`.
//! Whatever it writes is read back as text, stray special tokens included, and goes to the judge:
//! a malformed proposal is recorded with its reason, never dropped.

pub mod objective;

use std::path::Path;

use candle_core::Device;
use policy::{Gpt, Request, Sampled};
use problem::player::{checkpoint_dir, Player, PlayerMeta};
pub use problem::Target;
use problem::{Domain, Special, TokenizeError, Tokenizer};

/// A proposer checkpoint, ready to ask: its model, its format and its domain.
pub struct Loaded {
    pub model: Gpt,
    pub format: ProposerFormat,
    pub meta: PlayerMeta,
    pub domain: &'static dyn Domain,
}

/// The proposer checkpoint at `dir` (or in `dir/proposer`), its card checked against its model.
pub fn load(dir: &Path, device: &Device) -> anyhow::Result<Loaded> {
    let dir = checkpoint_dir(dir, Player::Proposer)?;
    let (model, state) = policy::checkpoint::load_model(&dir, device)?;
    let (meta, domain) = PlayerMeta::read(&dir, &state.extra, Player::Proposer, model.config().vocab)?;
    Ok(Loaded { model, format: ProposerFormat::of(&meta, domain), meta, domain })
}

/// Prompts and targets for the proposer.
#[derive(Debug, Clone)]
pub struct ProposerFormat {
    tokenizer: Tokenizer,
    /// Most tokens the proposer may write for one problem (its `<eos>` included).
    pub max_problem_tokens: usize,
    /// What each literal-bound token asks for (`<l0>` the first), narrowest first.
    literal_bounds: Vec<u32>,
}

/// A target the proposer cannot be asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    #[error("literal bound {asked:?} is not one the proposer was taught (its bounds: {known:?})")]
    UnknownBound { asked: Option<u32>, known: Vec<u32> },
}

/// A proposal read back from the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub text: String,
    /// False when the proposer ran out of tokens before `<eos>`.
    pub complete: bool,
}

impl ProposerFormat {
    /// A format for a model over `tokenizer`, whose literal-bound tokens ask for
    /// `literal_bounds` (one per token of the tokenizer; empty for none).
    pub fn new(tokenizer: Tokenizer, max_problem_tokens: usize, literal_bounds: Vec<u32>) -> Self {
        assert_eq!(
            tokenizer.literal_levels() as usize,
            literal_bounds.len(),
            "one literal bound per literal-bound token"
        );
        ProposerFormat { tokenizer, max_problem_tokens, literal_bounds }
    }

    /// The literal bounds the proposer can be asked for, narrowest first (empty: none).
    /// The format a proposer checkpoint's card describes.
    pub fn of(meta: &PlayerMeta, domain: &dyn Domain) -> Self {
        ProposerFormat::new(meta.tokenizer(domain), meta.max_new_tokens, meta.literal_bounds.clone())
    }

    pub fn literal_bounds(&self) -> &[u32] {
        &self.literal_bounds
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The difficulty level that asks for composition depth `depth`.
    pub fn level_for_depth(&self, depth: u32) -> u32 {
        depth.min(self.tokenizer.difficulty_levels().saturating_sub(1))
    }

    /// `<bos> <dK> [<lM>] ref <sep> … <sep>`. A proposer taught literal bounds must be asked
    /// for one of them, one without them for none.
    pub fn prompt(&self, target: Target, references: &[&str]) -> Result<Vec<u32>, PromptError> {
        let t = &self.tokenizer;
        let level = t.difficulty(self.level_for_depth(target.depth)).expect("levels are capped");
        let mut ids = vec![t.special(Special::Bos), level];
        let unknown =
            || PromptError::UnknownBound { asked: target.max_literal, known: self.literal_bounds.clone() };
        match (target.max_literal, self.literal_bounds.is_empty()) {
            (None, true) => {}
            (Some(bound), false) => {
                let i = self.literal_bounds.iter().position(|&b| b == bound).ok_or_else(unknown)?;
                ids.push(t.literal(i as u32).expect("one token per bound"));
            }
            _ => return Err(unknown()),
        }
        for r in references {
            ids.extend(t.encode(r)?);
            ids.push(t.special(Special::Sep));
        }
        ids.push(t.special(Special::Sep));
        Ok(ids)
    }

    /// `problem <eos>`: what the proposer should write.
    pub fn target(&self, problem: &str) -> Result<Vec<u32>, TokenizeError> {
        let mut ids = self.tokenizer.encode(problem)?;
        ids.push(self.tokenizer.special(Special::Eos));
        Ok(ids)
    }

    /// A sampling request for one proposal.
    pub fn request(&self, target: Target, references: &[&str]) -> Result<Request, PromptError> {
        Ok(Request {
            prompt: self.prompt(target, references)?,
            max_new: self.max_problem_tokens,
            stop: Some(self.tokenizer.special(Special::Eos)),
        })
    }

    /// The proposal as text: everything before `<eos>`, stray special tokens written out.
    pub fn parse(&self, sampled: &Sampled) -> Proposal {
        let (body, complete) = self.tokenizer.until(&sampled.tokens, Special::Eos);
        Proposal { text: self.tokenizer.render(body), complete }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use problem::{Arith, Domain};

    fn format() -> ProposerFormat {
        ProposerFormat::new(Arith.tokenizer(8), 24, vec![])
    }

    #[test]
    fn prompts_carry_the_target_and_references() {
        let f = format();
        let t = f.tokenizer().clone();
        assert_eq!(t.render(&f.prompt(Target::depth(3), &[]).unwrap()), "<bos><d3><sep>");
        let p = f.prompt(Target::depth(20), &["1+2", "3*4"]).unwrap();
        assert_eq!(t.render(&p), "<bos><d7>1+2<sep>3*4<sep><sep>");
        assert_eq!(t.render(&f.target("(1+2)*3").unwrap()), "(1+2)*3<eos>");
        assert!(matches!(f.prompt(Target::depth(1), &["x"]), Err(PromptError::Tokenize(_))));
        let bounded = Target { depth: 1, max_literal: Some(20) };
        assert!(matches!(f.prompt(bounded, &[]), Err(PromptError::UnknownBound { .. })));
    }

    #[test]
    fn a_proposer_taught_literal_bounds_is_asked_for_one() {
        let f = ProposerFormat::new(Arith.tokenizer(8).with_literal_levels(2), 24, vec![20, 99]);
        let t = f.tokenizer().clone();
        let ask = |depth, max_literal| f.prompt(Target { depth, max_literal }, &["1+2"]);
        assert_eq!(t.render(&ask(2, Some(20)).unwrap()), "<bos><d2><l0>1+2<sep><sep>");
        assert_eq!(t.render(&ask(1, Some(99)).unwrap()), "<bos><d1><l1>1+2<sep><sep>");
        let err = ask(1, Some(50)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "literal bound Some(50) is not one the proposer was taught (its bounds: [20, 99])"
        );
        assert!(matches!(ask(1, None), Err(PromptError::UnknownBound { asked: None, .. })));
    }

    #[test]
    fn proposals_are_read_back_whatever_they_hold() {
        let f = format();
        let t = f.tokenizer().clone();
        let eos = t.special(Special::Eos);
        let mut tokens = t.encode("4*5").unwrap();
        tokens.push(eos);
        tokens.extend(t.encode("99").unwrap());
        let p = f.parse(&Sampled { tokens, logprobs: vec![], stopped: true });
        assert_eq!(p, Proposal { text: "4*5".into(), complete: true });
        let tokens = vec![t.special(Special::Bos), t.encode("1").unwrap()[0]];
        let p = f.parse(&Sampled { tokens, logprobs: vec![], stopped: false });
        assert_eq!(p, Proposal { text: "<bos>1".into(), complete: false });
    }
}
