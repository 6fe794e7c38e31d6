//! The proposer player: how it is asked for a problem and how its proposal is read back.
//!
//! Sequence format:
//!
//! ```text
//! <bos> <dK> reference₁ <sep> reference₂ <sep> … <sep> problem <eos>
//! ```
//!
//! The prompt holds a difficulty-target token `<dK>` (K = the composition depth asked for,
//! capped at the last level) and zero or more reference problems from the archive, each closed by
//! `<sep>`; a final `<sep>` opens the new problem. The model writes the problem and `<eos>`.
//! Whatever it writes is read back as text, stray special tokens included, and goes to the judge:
//! a malformed proposal is recorded with its reason, never dropped.

use policy::{Request, Sampled};
use problem::{Special, TokenizeError, Tokenizer};

/// Prompts and targets for the proposer.
#[derive(Debug, Clone)]
pub struct ProposerFormat {
    tokenizer: Tokenizer,
    /// Most tokens the proposer may write for one problem (its `<eos>` included).
    pub max_problem_tokens: usize,
}

/// A proposal read back from the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub text: String,
    /// False when the proposer ran out of tokens before `<eos>`.
    pub complete: bool,
}

impl ProposerFormat {
    pub fn new(tokenizer: Tokenizer, max_problem_tokens: usize) -> Self {
        ProposerFormat { tokenizer, max_problem_tokens }
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The difficulty level that asks for composition depth `depth`.
    pub fn level_for_depth(&self, depth: u32) -> u32 {
        depth.min(self.tokenizer.difficulty_levels().saturating_sub(1))
    }

    /// `<bos> <dK> ref <sep> … <sep>`.
    pub fn prompt(&self, depth: u32, references: &[&str]) -> Result<Vec<u32>, TokenizeError> {
        let t = &self.tokenizer;
        let level = t.difficulty(self.level_for_depth(depth)).expect("levels are capped");
        let mut ids = vec![t.special(Special::Bos), level];
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
    pub fn request(&self, depth: u32, references: &[&str]) -> Result<Request, TokenizeError> {
        Ok(Request {
            prompt: self.prompt(depth, references)?,
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
        ProposerFormat::new(Arith.tokenizer(8), 24)
    }

    #[test]
    fn prompts_carry_the_target_and_references() {
        let f = format();
        let t = f.tokenizer().clone();
        assert_eq!(t.render(&f.prompt(3, &[]).unwrap()), "<bos><d3><sep>");
        assert_eq!(t.render(&f.prompt(20, &["1+2", "3*4"]).unwrap()), "<bos><d7>1+2<sep>3*4<sep><sep>");
        assert_eq!(t.render(&f.target("(1+2)*3").unwrap()), "(1+2)*3<eos>");
        assert!(f.prompt(1, &["x"]).is_err());
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
