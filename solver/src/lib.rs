//! The solver player: how a problem is put to the solver model and how its answer is read back.
//!
//! Sequence format (token ids from the domain's [`Tokenizer`]):
//!
//! ```text
//! <bos> problem <sep> answer <eos>
//! ```
//!
//! The prompt is `<bos> problem <sep>`; the model writes the rest. It may write a scratchpad of
//! steps before its answer, separated by the domain's step separator (`=` in arithmetic); the
//! judge reads the final answer (the text after the last separator, see
//! `judge::extract_answer`) and checks that every step before it holds (see
//! `judge::verify`). What the warm start teaches it to write is its [`AnswerStyle`].

pub mod plan;

use std::path::Path;

use candle_core::Device;
use policy::{Gpt, Request, Sampled};
use problem::player::{checkpoint_dir, Player, PlayerMeta};
use problem::{Domain, Special, TokenizeError, Tokenizer};
use serde::{Deserialize, Serialize};

/// A solver checkpoint, ready to answer: its model, its format and its domain.
pub struct Loaded {
    pub model: Gpt,
    pub format: SolverFormat,
    pub meta: PlayerMeta,
    pub domain: &'static dyn Domain,
}

/// The solver checkpoint at `dir` (or in `dir/solver`), its card checked against its model.
pub fn load(dir: &Path, device: &Device) -> anyhow::Result<Loaded> {
    let dir = checkpoint_dir(dir, Player::Solver)?;
    let (model, state) = policy::checkpoint::load_model(&dir, device)?;
    let (meta, domain) = PlayerMeta::read(&dir, &state.extra, Player::Solver, model.config().vocab)?;
    Ok(Loaded { model, format: SolverFormat::of(&meta, domain), meta, domain })
}

/// What a solver is taught to write after the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerStyle {
    /// The answer alone: `(3+4)*2<sep>14`.
    Direct,
    /// The domain's worked solution, one rewrite step at a time, ending in the answer:
    /// `(3+4)*2<sep>7*2=14` (see `Domain::worked_solution`). Falls back to the answer alone
    /// where the domain has no steps.
    #[default]
    Steps,
    /// Only the value each step computes, in the same order: `(3+4)*2<sep>7=14`.
    Values,
}

impl AnswerStyle {
    /// The text a solver of this style writes for `problem`, whose answer is `answer`.
    pub fn solution(self, domain: &dyn Domain, problem: &str, answer: &str) -> String {
        match self {
            AnswerStyle::Direct => answer.to_string(),
            AnswerStyle::Steps | AnswerStyle::Values => match domain.worked_solution(problem) {
                Some(steps) if !steps.is_empty() => {
                    let part = |s: &problem::WorkedStep| {
                        if self == AnswerStyle::Steps {
                            s.expression.clone()
                        } else {
                            s.value.clone()
                        }
                    };
                    steps.iter().map(part).collect::<Vec<_>>().join(&domain.step_separator().to_string())
                }
                _ => answer.to_string(),
            },
        }
    }
}

/// Prompts and targets for the solver.
#[derive(Debug, Clone)]
pub struct SolverFormat {
    tokenizer: Tokenizer,
    /// Most tokens the solver may write for one answer (its `<eos>` included).
    pub max_answer_tokens: usize,
}

impl SolverFormat {
    pub fn new(tokenizer: Tokenizer, max_answer_tokens: usize) -> Self {
        SolverFormat { tokenizer, max_answer_tokens }
    }

    /// The format a solver checkpoint's card describes.
    pub fn of(meta: &PlayerMeta, domain: &dyn Domain) -> Self {
        SolverFormat::new(meta.tokenizer(domain), meta.max_new_tokens)
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// `<bos> problem <sep>`.
    pub fn prompt(&self, problem: &str) -> Result<Vec<u32>, TokenizeError> {
        let t = &self.tokenizer;
        let mut ids = vec![t.special(Special::Bos)];
        ids.extend(t.encode(problem)?);
        ids.push(t.special(Special::Sep));
        Ok(ids)
    }

    /// `answer <eos>`: what the solver should write.
    pub fn target(&self, answer: &str) -> Result<Vec<u32>, TokenizeError> {
        let mut ids = self.tokenizer.encode(answer)?;
        ids.push(self.tokenizer.special(Special::Eos));
        Ok(ids)
    }

    /// `k` sampling requests for one problem.
    pub fn requests(&self, problem: &str, k: usize) -> Result<Vec<Request>, TokenizeError> {
        let prompt = self.prompt(problem)?;
        let stop = Some(self.tokenizer.special(Special::Eos));
        Ok((0..k)
            .map(|_| Request { prompt: prompt.clone(), max_new: self.max_answer_tokens, stop })
            .collect())
    }

    /// The solver's output as text: everything before `<eos>`, other special tokens written out
    /// (`<sep>`), so that they make the answer wrong rather than vanish.
    pub fn output_text(&self, sampled: &Sampled) -> String {
        self.tokenizer.render(self.tokenizer.until(&sampled.tokens, Special::Eos).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use problem::{Arith, Domain};

    fn format() -> SolverFormat {
        SolverFormat::new(Arith.tokenizer(8), 8)
    }

    #[test]
    fn styles_write_the_answer_last() {
        for (problem, answer) in [("(3+4)*2", "14"), ("2-5", "-3"), ("7", "7")] {
            assert_eq!(AnswerStyle::Direct.solution(&Arith, problem, answer), answer);
            for style in [AnswerStyle::Steps, AnswerStyle::Values] {
                let steps = style.solution(&Arith, problem, answer);
                assert_eq!(steps.rsplit('=').next().unwrap(), answer, "{steps}");
            }
        }
        assert_eq!(AnswerStyle::Steps.solution(&Arith, "(3+4)*2-5", "9"), "7*2-5=14-5=9");
        assert_eq!(AnswerStyle::Values.solution(&Arith, "(3+4)*2-5", "9"), "7=14=9");
    }

    #[test]
    fn prompt_and_target_frame_the_problem() {
        let f = format();
        let t = f.tokenizer().clone();
        let p = f.prompt("3+4").unwrap();
        assert_eq!(t.render(&p), "<bos>3+4<sep>");
        assert_eq!(t.render(&f.target("-7").unwrap()), "-7<eos>");
        assert!(f.prompt("3/4").is_err());
        let reqs = f.requests("1+1", 3).unwrap();
        assert_eq!(reqs.len(), 3);
        assert_eq!(reqs[0].stop, Some(t.special(Special::Eos)));
    }

    #[test]
    fn output_stops_at_eos_and_shows_stray_specials() {
        let f = format();
        let t = f.tokenizer().clone();
        let eos = t.special(Special::Eos);
        let mut tokens = t.encode("7*2=14").unwrap();
        tokens.push(eos);
        let s = Sampled { tokens, logprobs: vec![], stopped: true };
        assert_eq!(f.output_text(&s), "7*2=14");
        let mut tokens = t.encode("1").unwrap();
        tokens.push(t.special(Special::Sep));
        tokens.extend(t.encode("4").unwrap());
        let s = Sampled { tokens, logprobs: vec![], stopped: false };
        assert_eq!(f.output_text(&s), "1<sep>4");
    }
}
