//! The judge: what is a correct answer, and what is a good problem.
//!
//! It verifies answers exactly against the domain's interpreter and computes the proposer's reward
//! term by term. Every term is kept separately in [`RewardTerms`] so the archive can show why a
//! problem was paid what it was, and so experiments can change one term and see the effect.
//!
//! The reward of a valid problem with solve rate `p` is
//!
//! ```text
//! total = frontier(p) · padding_factor(padding) · length_factor · (1 − repetition) · (1 + w · interestingness)
//!         − repetition.cost · repetition − padding.cost · padding − target.cost · target_miss
//! ```
//!
//! (or, with [`InterestMode::Additive`], the product plus `w · interestingness`; with
//! [`InterestMode::Advantage`], the product alone, the score becoming the proposer's second
//! advantage)
//!
//! and an invalid problem gets the fixed `invalid` reward. Each factor is documented where it is
//! computed: [`frontier`], [`PaddingPenalty::factor`], [`RepetitionPenalty::penalty`],
//! [`TargetPenalty::miss`].

pub mod batch;
pub mod length;
pub mod repetition;
pub mod reward;
pub mod verify;

pub use batch::{judge_batch, Candidate};
pub use length::{LengthCurve, LengthResidual};
pub use repetition::{repetitions, Crowding, KnownHashes, Repetition, RepetitionPenalty};
pub use reward::{
    frontier, FrontierForm, InterestMode, PaddingPenalty, ProblemFacts, RewardConfig, RewardTerms,
    TargetPenalty,
};
pub use verify::{extract_answer, progress, solve_rate, verify, Verdict};
