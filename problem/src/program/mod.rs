//! Small programs: the second built-in domain.
//!
//! A program is a few statements over integer variables — assignments, conditionals, loops with
//! a literal count — and an output expression (grammar in [`syntax`]): `x=4;a=x*3;?a>9{a=a-5};a`.
//! Problems come in two kinds, both verified exactly by this domain's interpreter and nothing
//! else (the host never runs what a proposer writes):
//!
//! * **deduction** — the program binds its input (`x=4;…`); the answer is its output (`7`);
//! * **abduction** — the program leaves `x` free and ends with the output asked for
//!   (`a=x*3;?a>9{a=a-5};a=7`); the answer is any input in [`INPUTS`] that produces it, checked
//!   by running the program on it ([`Domain::accepts`]). The analysis's `answer` is the smallest.
//!
//! Operations are the work a run does: the operators of each executed assignment and one per
//! executed test. The canonical form ([`canon`]) keeps only the essential ones, so dead code, unused
//! variables, self-assignments, identities and loops of one pass are padding, as `+0` and `*1` are
//! in arithmetic, and renamed copies have one hash. A solver's worked solution writes the run one
//! statement a step ([`steps`]), separated by `|` since `=` is the language's own.

pub mod canon;
mod gen;
mod mutate;
pub mod run;
pub mod steps;
pub mod syntax;

pub use gen::{pad_with, PadKind, MAX_GEN_DEPTH};

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use rand::RngCore;

use self::syntax::{block_reads, block_writes, parse, Program, Stmt, StmtKind, INPUT};
use crate::arith::{is_canonical_integer, Op, MAX_LITERAL};
use crate::{
    Analysis, Domain, EditSize, ErrorKind, GenError, GenSpec, Generated, Limits, ProblemError, Skill,
    WorkedStep,
};

/// The inputs an abduction's answer is drawn from.
pub const INPUTS: RangeInclusive<i64> = 0..=99;

/// The program domain.
#[derive(Debug, Clone, Copy, Default)]
pub struct Programs;

/// Digits, operators, variables, punctuation, space, and `|` between a solver's steps.
const ALPHABET: [char; 32] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '+', '-', '*', '(', ')', 'a', 'b', 'c', 'd', 'e', 'x',
    '=', ';', '?', ':', '{', '}', '#', '<', '>', ' ', '|',
];

/// A problem already judged (features, skills, a worked solution), read back under the largest
/// token budget and the default nesting bound.
fn read(text: &str) -> Option<Program> {
    parse(text, &Limits { max_tokens: Limits::HARD_MAX_TOKENS, ..Limits::default() }).ok()
}

impl Programs {
    /// A parsed program's run, answer and measure: the run on the answer's input for an abduction.
    fn solve(&self, p: &Program) -> Result<(run::Run, String), ProblemError> {
        let Some(target) = p.target else {
            let r = run::run(p, None).map_err(|mut e| {
                if e.kind == ErrorKind::Unbound && e.message.starts_with('x') {
                    e.message.push_str(" (a deduction binds its input first: x=4;…)");
                }
                e
            })?;
            let answer = r.output.to_string();
            return Ok((r, answer));
        };
        if let Some(at) = assigns_input(&p.stmts) {
            return Err(ProblemError::new(
                ErrorKind::Syntax,
                Some(at),
                "an abduction's input x is never assigned: it is what the answer gives",
            ));
        }
        let (mut last_error, mut any_ran) = (None, false);
        for x in INPUTS {
            match run::run(p, Some(x)) {
                Ok(r) if r.output == target => {
                    if x == *INPUTS.start() && every_later_input_gives(p, target) {
                        return Err(ProblemError::new(
                            ErrorKind::Constant,
                            None,
                            format!(
                                "every input x in {}..={} gives {target}: an abduction's output must depend on x",
                                INPUTS.start(),
                                INPUTS.end()
                            ),
                        ));
                    }
                    return Ok((r, x.to_string()));
                }
                Ok(_) => any_ran = true,
                Err(e) => last_error = Some(e),
            }
        }
        Err(match last_error {
            // Every input failed: that failure is what is wrong.
            Some(e) if !any_ran => e,
            _ => ProblemError::new(
                ErrorKind::Unsolvable,
                None,
                format!("no input x in {}..={} gives {target}", INPUTS.start(), INPUTS.end()),
            ),
        })
    }
}

/// Whether every input after the first gives the abduction's output too (the first is known
/// to): then any answer is right and the problem asks for nothing. Usually settled by the second
/// input, since most programs' outputs move with x.
fn every_later_input_gives(p: &Program, target: i64) -> bool {
    INPUTS.skip(1).all(|x| run::run(p, Some(x)).is_ok_and(|r| r.output == target))
}

/// Where a block assigns the input, if it does.
fn assigns_input(stmts: &[Stmt]) -> Option<usize> {
    stmts.iter().find_map(|s| match &s.kind {
        StmtKind::Assign { var: INPUT, .. } => Some(s.at),
        StmtKind::Assign { .. } => None,
        StmtKind::If { then, otherwise, .. } => assigns_input(then).or_else(|| assigns_input(otherwise)),
        StmtKind::Repeat { body, .. } => assigns_input(body),
    })
}

impl Domain for Programs {
    fn name(&self) -> &'static str {
        "program"
    }

    fn alphabet(&self) -> &'static [char] {
        &ALPHABET
    }

    fn analyze(&self, text: &str, limits: &Limits) -> Result<Analysis, ProblemError> {
        let limits = limits.clamped();
        let p = parse(text, &limits)?;
        let (r, answer) = self.solve(&p)?;
        let m = canon::measure(&p, &r);
        let canonical = canon::canonical_text(&p, &r, &m);
        let padding = if m.surface_ops == 0 {
            0.0
        } else {
            (1.0 - f64::from(m.essential_ops) / f64::from(m.surface_ops)).clamp(0.0, 1.0)
        };
        Ok(Analysis {
            answer,
            hash: xxhash_rust::xxh3::xxh3_64(canonical.as_bytes()),
            canonical,
            surface_ops: m.surface_ops,
            essential_ops: m.essential_ops,
            distinct_ops: m.essential_ops,
            depth: m.essential_ops,
            padding,
            max_literal: p.max_literal(),
        })
    }

    /// A deduction's answer matches when it is exactly the output in canonical decimal.
    fn answers_match(&self, expected: &str, given: &str) -> bool {
        let given = given.trim_matches(' ');
        is_canonical_integer(given) && given == expected
    }

    /// An abduction accepts any input in [`INPUTS`], written in canonical decimal, on which the
    /// program gives the output asked for.
    fn accepts(&self, problem: &str, expected: &str, given: &str) -> bool {
        let hard = Limits { max_tokens: Limits::HARD_MAX_TOKENS, max_nesting: Limits::HARD_MAX_NESTING };
        let Ok(p) = parse(problem, &hard) else { return false };
        let Some(target) = p.target else { return self.answers_match(expected, given) };
        let given = given.trim_matches(' ');
        let Some(x) = given.parse::<i64>().ok().filter(|x| is_canonical_integer(given) && INPUTS.contains(x))
        else {
            return false;
        };
        run::run(&p, Some(x)).is_ok_and(|r| r.output == target)
    }

    fn generate(&self, spec: &GenSpec, rng: &mut dyn RngCore) -> Result<Generated, GenError> {
        gen::generate(self, spec, rng)
    }

    fn pad(&self, problem: &str, edits: u32, rng: &mut dyn RngCore) -> Option<String> {
        gen::pad(problem, edits, rng)
    }

    fn mutate(
        &self,
        reference: &str,
        spec: &GenSpec,
        size: EditSize,
        rng: &mut dyn RngCore,
    ) -> Option<String> {
        mutate::mutate(self, reference, spec, size, rng)
    }

    /// The canonical form with each literal replaced by `#` per digit.
    fn shape(&self, analysis: &Analysis) -> String {
        analysis.canonical.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect()
    }

    fn features(&self, text: &str, analysis: &Analysis) -> BTreeMap<String, f64> {
        let mut f = BTreeMap::new();
        let Some(p) = read(text) else { return f };
        let mut counts = [0u32; 5];
        count_kinds(&p.stmts, &mut counts);
        for (name, n) in ["assignments", "conditionals", "loops", "mul", "sub"].iter().zip(counts) {
            f.insert((*name).to_string(), f64::from(n));
        }
        f.insert("abduction".into(), f64::from(u8::from(p.target.is_some())));
        f.insert("ops".into(), f64::from(analysis.essential_ops));
        f.insert("ops_written".into(), f64::from(analysis.surface_ops));
        f.insert("padding".into(), analysis.padding);
        f.insert("statements".into(), p.statements as f64);
        f.insert("max_digits".into(), analysis.max_literal.max(1).ilog10() as f64 + 1.0);
        f
    }

    fn step_separator(&self) -> char {
        '|'
    }

    fn step_holds(&self, step: &str, expected: &str) -> bool {
        steps::step_holds(step, expected)
    }

    fn worked_solution(&self, problem: &str) -> Option<Vec<WorkedStep>> {
        steps::worked_solution(&read(problem)?)
    }

    /// Atomic skills: each kind of statement (`+ - *` by the top operator of an assignment, `?`
    /// a conditional, `#` a loop) on literals of the program's largest size; compositions: a
    /// statement that reads what the one before it wrote.
    fn skills(&self, problem: &str) -> BTreeMap<Skill, Vec<Skill>> {
        let mut out = BTreeMap::new();
        let Some(p) = read(problem) else { return out };
        let digits = p.max_literal().max(1).ilog10() as u8 + 1;
        let kind = |s: &Stmt| match &s.kind {
            StmtKind::Assign { expr: syntax::Expr::Bin(op, ..), .. } => Some(op.symbol()),
            StmtKind::Assign { .. } => None,
            StmtKind::If { .. } => Some('?'),
            StmtKind::Repeat { .. } => Some('#'),
        };
        for s in &p.stmts {
            if let Some(op) = kind(s) {
                out.insert(Skill::Atomic { op, digits }, Vec::new());
            }
        }
        for pair in p.stmts.windows(2) {
            let (Some(inner), Some(outer)) = (kind(&pair[0]), kind(&pair[1])) else { continue };
            if block_writes(&pair[..1]) & block_reads(&pair[1..]) != 0 {
                let parts = vec![Skill::Atomic { op: inner, digits }, Skill::Atomic { op: outer, digits }];
                out.insert(Skill::Composition { outer, inner, left: true }, parts);
            }
        }
        out
    }

    fn max_literal(&self) -> Option<u32> {
        Some(MAX_LITERAL)
    }
}

fn count_kinds(stmts: &[Stmt], counts: &mut [u32; 5]) {
    for s in stmts {
        match &s.kind {
            StmtKind::Assign { expr, .. } => {
                counts[0] += 1;
                counts[3] += count_op(expr, Op::Mul);
                counts[4] += count_op(expr, Op::Sub);
            }
            StmtKind::If { then, otherwise, .. } => {
                counts[1] += 1;
                count_kinds(then, counts);
                count_kinds(otherwise, counts);
            }
            StmtKind::Repeat { body, .. } => {
                counts[2] += 1;
                count_kinds(body, counts);
            }
        }
    }
}

fn count_op(e: &syntax::Expr, op: Op) -> u32 {
    match e {
        syntax::Expr::Bin(o, l, r) => u32::from(*o == op) + count_op(l, op) + count_op(r, op),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
