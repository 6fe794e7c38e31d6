//! Problem domains for selfplay.
//!
//! A domain is everything the lab knows about one kind of problem: its text language, the exact
//! interpreter that is the ground truth for answers, the canonical form that tells real structure
//! from padding, the token alphabet the models write in, and a seeded generator of random problems.
//! The rest of the lab speaks to a domain only through the [`Domain`] trait, so a second domain is
//! one more module here and nothing else changes.
//!
//! The built-in domains are integer arithmetic ([`arith`]): `(12+7)*3-5`, and small programs
//! ([`program`]): `x=4;a=x*3;?a>9{a=a-5};a`.

pub mod arith;
pub mod input;
pub mod player;
pub mod program;
mod skill;
mod tokenizer;

pub use arith::Arith;
pub use program::Programs;
pub use skill::Skill;
pub use tokenizer::{Special, TokenizeError, Tokenizer};

use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

/// Bounds every problem must respect before it is even interpreted.
///
/// Model output is untrusted text: these bounds are checked before any work proportional to the
/// input is done, so that a hostile or degenerate proposal costs at most a bounded amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Token budget: the most tokens (one per character, spaces included) a problem may have.
    pub max_tokens: usize,
    /// The most nested parentheses a problem may open.
    pub max_nesting: usize,
}

impl Limits {
    /// No configuration may raise `max_tokens` above this: it bounds recursion in the interpreter
    /// (an expression tree is at most half as deep as it has tokens), so that the largest problem
    /// fits the stack of any thread, 2 MiB by default, with room to spare — a debug build needs
    /// about 2 KiB a level, a release build a quarter of that (`the_largest_admitted_problems_fit`).
    pub const HARD_MAX_TOKENS: usize = 1024;
    /// No configuration may raise `max_nesting` above this.
    pub const HARD_MAX_NESTING: usize = 256;

    /// These limits, each lowered to its hard bound.
    pub fn clamped(&self) -> Limits {
        Limits {
            max_tokens: self.max_tokens.min(Self::HARD_MAX_TOKENS),
            max_nesting: self.max_nesting.min(Self::HARD_MAX_NESTING),
        }
    }

    /// Checks that these limits are within the hard bounds above.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_tokens == 0 || self.max_tokens > Self::HARD_MAX_TOKENS {
            return Err(format!(
                "max_tokens must be in 1..={}, got {}",
                Self::HARD_MAX_TOKENS,
                self.max_tokens
            ));
        }
        if self.max_nesting > Self::HARD_MAX_NESTING {
            return Err(format!(
                "max_nesting must be at most {}, got {}",
                Self::HARD_MAX_NESTING,
                self.max_nesting
            ));
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_tokens: 256, max_nesting: 32 }
    }
}

/// Why a problem text is not a valid problem. Stored with every invalid problem in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The text is empty or only spaces.
    Empty,
    /// Longer than the token budget.
    TooLong,
    /// Parentheses nested deeper than allowed.
    TooDeep,
    /// A character that is not in the domain's alphabet.
    BadChar,
    /// The text does not follow the grammar.
    Syntax,
    /// A literal outside the allowed range (or written with a leading zero).
    Literal,
    /// Some intermediate value is out of the allowed range.
    Range,
    /// A variable read before it is assigned.
    Unbound,
    /// A program that runs more statements than its step budget.
    Fuel,
    /// An abduction whose output no input in the allowed range produces.
    Unsolvable,
    /// An abduction whose output every input produces: the answer asks for nothing.
    Constant,
}

impl ErrorKind {
    /// The short, stable name used as the `reason` of an invalid problem.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Empty => "empty",
            ErrorKind::TooLong => "too_long",
            ErrorKind::TooDeep => "too_deep",
            ErrorKind::BadChar => "bad_char",
            ErrorKind::Syntax => "syntax",
            ErrorKind::Literal => "literal",
            ErrorKind::Range => "range",
            ErrorKind::Unbound => "unbound",
            ErrorKind::Fuel => "fuel",
            ErrorKind::Unsolvable => "unsolvable",
            ErrorKind::Constant => "constant",
        }
    }
}

/// A problem that is not valid: what is wrong, and at which byte of the text when that is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", .at.map(|b| format!(" at byte {b}")).unwrap_or_default())]
pub struct ProblemError {
    pub kind: ErrorKind,
    /// Byte offset into the problem text.
    pub at: Option<usize>,
    pub message: String,
}

impl ProblemError {
    pub fn new(kind: ErrorKind, at: Option<usize>, message: impl Into<String>) -> Self {
        ProblemError { kind, at, message: message.into() }
    }
}

/// What a proposal is asked for (a difficulty target): a composition depth and, for a proposer
/// taught literal bounds, the largest literal the problem may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Target {
    pub depth: u32,
    pub max_literal: Option<u32>,
}

impl Target {
    /// A depth alone.
    pub fn depth(depth: u32) -> Self {
        Target { depth, max_literal: None }
    }

    /// Whether a problem of essential depth `depth` whose largest literal is `max_literal` is
    /// what this target asks for.
    pub fn met_by(&self, depth: u32, max_literal: u32) -> bool {
        depth == self.depth && self.max_literal.is_none_or(|b| max_literal <= b)
    }
}

/// Everything the domain can tell about a valid problem without a solver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// The exact answer, in the domain's answer syntax.
    pub answer: String,
    /// The canonical form as text: equal for problems that differ only by padding, order of
    /// commutative operands, or other surface rewrites the domain normalizes.
    pub canonical: String,
    /// A 64-bit hash of `canonical`, stable across builds and platforms (XXH3-64).
    pub hash: u64,
    /// Operations as written.
    pub surface_ops: u32,
    /// Operations left in the canonical form.
    pub essential_ops: u32,
    /// Distinct operations in the canonical DAG: shared subexpressions count once.
    pub distinct_ops: u32,
    /// Composition depth: how many operations the solver must really perform (= `essential_ops`).
    pub depth: u32,
    /// `1 - essential_ops / surface_ops`, in `[0, 1]`; 0 when nothing is written.
    pub padding: f64,
    /// The largest literal as written (what a difficulty target's literal bound limits).
    pub max_literal: u32,
}

impl Analysis {
    /// True when canonicalization removed at least one operation.
    pub fn padded(&self) -> bool {
        self.essential_ops < self.surface_ops
    }
}

/// What to generate: problems of one composition depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenSpec {
    /// Number of operations (the generated problem has no padding, so this is also its depth).
    pub depth: u32,
    /// Largest literal to use; literals are drawn uniformly from `0..=max_literal`.
    pub max_literal: u32,
}

/// How far a mutation's edit moves a problem ([`Domain::mutate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditSize {
    /// Any edit of the domain's kinds, its new parts drawn as the generator draws them.
    #[default]
    Free,
    /// Edits that change the work least: a literal nudged by a fifth of itself or less, no
    /// operator changed, an operation added with a one-digit literal, or one cut to one of its
    /// own operands — so that a problem at the solver's frontier stays near it.
    Small,
}

impl EditSize {
    /// The furthest a mutation goes from its reference's depth: beyond it the result shares too
    /// little with the reference to be its mutation.
    pub const MAX_DEPTH_CHANGE: u32 = 2;
    /// Edits a mutation tries before giving up on a reference.
    pub const MAX_TRIES: usize = 64;

    /// A small edit of literal `old`: moved by at most a fifth of itself (at least 1), up or
    /// down with equal chance where both stay within `0..=max_literal`.
    pub fn nudge(old: u32, max_literal: u32, rng: &mut dyn RngCore) -> u32 {
        let old = old.min(max_literal);
        let step = rng.random_range(1..=(old / 5).max(1));
        let up = old < step || (old + step <= max_literal && rng.random_bool(0.5));
        if up { old + step } else { old - step }.min(max_literal)
    }
}

/// A generated problem with its exact answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generated {
    pub problem: String,
    pub answer: String,
    pub depth: u32,
}

/// Why the generator could not produce a problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GenError(pub String);

/// One step of a worked solution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkedStep {
    /// The whole problem after this step: `7*2` for the first step of `(3+4)*2`.
    pub expression: String,
    /// The value this step computed: `7`.
    pub value: String,
}

/// One kind of problem. Object safe: the lab holds a `&dyn Domain`.
pub trait Domain: Send + Sync {
    /// A short stable name, stored with every problem (`"arith"`).
    fn name(&self) -> &'static str;

    /// The characters problems and answers are written in; each is one token.
    fn alphabet(&self) -> &'static [char];

    /// Parses, bounds-checks, interprets and canonicalizes a problem.
    fn analyze(&self, text: &str, limits: &Limits) -> Result<Analysis, ProblemError>;

    /// Exact answer check: does `given` state the same answer as `expected`?
    ///
    /// `expected` is an answer produced by [`Domain::analyze`]; `given` is untrusted text.
    fn answers_match(&self, expected: &str, given: &str) -> bool;

    /// Whether `given` answers `problem`, whose analysis gave the answer `expected`. By default
    /// `given` must match `expected` ([`Domain::answers_match`]); a domain whose problems have
    /// many right answers (an input that makes a program give an output) checks `given` itself.
    fn accepts(&self, _problem: &str, expected: &str, given: &str) -> bool {
        self.answers_match(expected, given)
    }

    /// What separates the steps of a solver's worked solution, and the last step from its
    /// answer: `=` in arithmetic (`(3+4)*2=7*2=14`), a character the problems do not use.
    fn step_separator(&self) -> char {
        '='
    }

    /// Draws one random valid problem. Reproducible: the same `rng` state gives the same problem.
    fn generate(&self, spec: &GenSpec, rng: &mut dyn RngCore) -> Result<Generated, GenError>;

    /// `problem` with `identities` operations added that change neither its value nor its
    /// canonical form (in arithmetic `x+0`, `0+x`, `x-0`, `x*1`, `1*x` around subexpressions):
    /// padding as a proposer might write it. `None` where the domain has no identities or
    /// `problem` is not valid. Reproducible from the `rng` state.
    fn pad(&self, _problem: &str, _identities: u32, _rng: &mut dyn RngCore) -> Option<String> {
        None
    }

    /// A problem of `spec`'s depth and literal bound, a small edit away from `reference` (a
    /// literal or an operator changed; an operation added or taken away per unit of depth
    /// between them), neither padded nor a copy of `reference`: what a proposer shown a
    /// reference is taught to write. `size` says how far the edit may move it. `None` where the
    /// domain has no such edits, `reference` is not valid, or no edit meets `spec`. Reproducible
    /// from the `rng` state.
    fn mutate(
        &self,
        _reference: &str,
        _spec: &GenSpec,
        _size: EditSize,
        _rng: &mut dyn RngCore,
    ) -> Option<String> {
        None
    }

    /// Numeric features of a valid problem's structure, with stable names, for interestingness
    /// scorers. None by default.
    fn features(&self, _text: &str, _analysis: &Analysis) -> std::collections::BTreeMap<String, f64> {
        std::collections::BTreeMap::new()
    }

    /// Whether `step`, a part of a solver's scratchpad before its answer, is consistent with the
    /// exact answer `expected`: a false equation is never part of a correct solution. Domains
    /// without worked solutions accept every step.
    fn step_holds(&self, _step: &str, _expected: &str) -> bool {
        true
    }

    /// The operations a step of a worked solution still holds (`7*2` holds one, `14` none);
    /// `None` when `step` is not one. A chain whose steps each hold one operation fewer than the
    /// one before is a solution taken one operation at a time. Domains without worked solutions
    /// have none.
    fn step_operations(&self, _step: &str) -> Option<u32> {
        None
    }

    /// The operation a worked solution of `step` takes first, as a problem of its own
    /// (`(3+4)*2` gives `3+4`): its answer, put in its place by
    /// [`Domain::replace_first_operation`], is the next step. `None` where the domain has no
    /// worked solutions, or `step` no operation.
    fn first_operation(&self, _step: &str) -> Option<String> {
        None
    }

    /// `step` with its first operation (see [`Domain::first_operation`]) replaced by `value`
    /// (`(3+4)*2` and `7` give `7*2`). `None` when `value` is not a value or `step` not a step.
    fn replace_first_operation(&self, _step: &str, _value: &str) -> Option<String> {
        None
    }

    /// A worked solution of a valid problem, one operation a step (the last step's expression is
    /// the answer). `None` where the domain has no such steps.
    fn worked_solution(&self, _problem: &str) -> Option<Vec<WorkedStep>> {
        None
    }

    /// A valid problem's shape: what a proposer chooses when it writes it, short of the exact
    /// problem — the family of problems it draws from. The judge's crowding term pays a problem
    /// less the more of its shape's recent problems were copies. By default the canonical form
    /// (every problem its own shape).
    fn shape(&self, analysis: &Analysis) -> String {
        analysis.canonical.clone()
    }

    /// The skills a problem uses, each with the atomic skills it is made of, for the curriculum's
    /// skill graph. None by default (and for an invalid problem).
    fn skills(&self, _problem: &str) -> std::collections::BTreeMap<Skill, Vec<Skill>> {
        std::collections::BTreeMap::new()
    }

    /// The largest literal the domain's language allows, where it has literals: a generator or
    /// warm start asked for larger ones is misconfigured.
    fn max_literal(&self) -> Option<u32> {
        None
    }

    /// A tokenizer over this domain's alphabet with `difficulty_levels` difficulty-target tokens.
    fn tokenizer(&self, difficulty_levels: u32) -> Tokenizer {
        Tokenizer::new(self.alphabet(), difficulty_levels)
    }
}

/// The names of the built-in domains, for messages.
pub const DOMAINS: &[&str] = &["arith", "program"];

/// The domain a command without a configuration works in: the first built-in one.
pub fn default_domain() -> &'static dyn Domain {
    &Arith
}

/// Looks a built-in domain up by name.
pub fn domain_by_name(name: &str) -> Option<&'static dyn Domain> {
    match name {
        "arith" => Some(&Arith),
        "program" => Some(&Programs),
        _ => None,
    }
}
