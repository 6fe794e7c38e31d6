//! Worked solutions as rewrite chains: `(3+4)*2=7*2=14`.
//!
//! One step evaluates one operation: the leftmost operation whose operands are both numbers. A
//! problem with `n` written operators has a chain of `n` steps, the last of which is the answer.
//! Intermediate values may be negative, which the problem grammar cannot write: inside a step a
//! negative number is parenthesised (`10-(-2)`, `(-3)*4`); the final answer is written bare
//! (`-7`), so the text after the last `=` is exactly what the judge checks.

use super::parse::{Expr, Op};
use crate::{ErrorKind, ProblemError, WorkedStep};

/// An expression part way through a solution: literals may have become any integer.
enum Step {
    Num(i64),
    Bin(Op, Box<Step>, Box<Step>),
}

impl Step {
    fn of(e: &Expr) -> Step {
        match e {
            Expr::Lit { value, .. } => Step::Num(i64::from(*value)),
            Expr::Bin { op, lhs, rhs, .. } => {
                Step::Bin(*op, Box::new(Step::of(lhs)), Box::new(Step::of(rhs)))
            }
        }
    }

    /// Evaluates the leftmost operation over two numbers and returns its value; `None` when there
    /// is none (the expression is a number).
    fn reduce(&mut self) -> Result<Option<i64>, ProblemError> {
        let Step::Bin(op, lhs, rhs) = self else { return Ok(None) };
        if let (Step::Num(a), Step::Num(b)) = (&**lhs, &**rhs) {
            let v = op.apply(*a, *b).filter(|v| v.abs() <= super::MAX_ABS_VALUE).ok_or_else(|| {
                ProblemError::new(ErrorKind::Range, None, format!("{a} {} {b} exceeds 10^9", op.symbol()))
            })?;
            *self = Step::Num(v);
            return Ok(Some(v));
        }
        match lhs.reduce()? {
            Some(v) => Ok(Some(v)),
            None => rhs.reduce(),
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            Step::Num(_) => u8::MAX,
            Step::Bin(op, ..) => match op {
                Op::Add | Op::Sub => 1,
                Op::Mul => 2,
            },
        }
    }

    /// Same parenthesisation as [`Expr::write`]; negative numbers below the top in parentheses.
    fn write(&self, top: bool, out: &mut String) {
        match self {
            Step::Num(v) if *v < 0 && !top => {
                out.push_str(&format!("({v})"));
            }
            Step::Num(v) => out.push_str(&v.to_string()),
            Step::Bin(op, lhs, rhs) => {
                let own = self.precedence();
                write_operand(lhs, lhs.precedence() < own, out);
                out.push(op.symbol());
                write_operand(rhs, rhs.precedence() <= own, out);
            }
        }
    }
}

fn write_operand(s: &Step, paren: bool, out: &mut String) {
    if paren {
        out.push('(');
    }
    s.write(false, out);
    if paren {
        out.push(')');
    }
}

/// The steps of `expr`'s worked solution, each after one more operation is evaluated; the last
/// expression is the answer. Empty for a bare literal. Fails like [`Expr::eval`] when a value
/// leaves the range.
pub fn rewrite_chain(expr: &Expr) -> Result<Vec<WorkedStep>, ProblemError> {
    let mut step = Step::of(expr);
    let mut chain = Vec::with_capacity(expr.ops() as usize);
    while let Some(value) = step.reduce()? {
        let mut expression = String::new();
        step.write(true, &mut expression);
        chain.push(WorkedStep { expression, value: value.to_string() });
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;
    use proptest::prelude::*;

    fn chain(text: &str) -> Vec<String> {
        let steps = rewrite_chain(&super::super::parse(text, &Limits::default()).unwrap()).unwrap();
        steps.into_iter().map(|s| s.expression).collect()
    }

    #[test]
    fn each_step_names_the_value_it_computed() {
        let steps =
            rewrite_chain(&super::super::parse("(1+2)*(3+4)-5", &Limits::default()).unwrap()).unwrap();
        let values: Vec<_> = steps.iter().map(|s| s.value.as_str()).collect();
        assert_eq!(values, ["3", "7", "21", "16"]);
    }

    #[test]
    fn one_operation_a_step_leftmost_first() {
        assert_eq!(chain("(3+4)*2"), ["7*2", "14"]);
        assert_eq!(chain("3+4*2"), ["3+8", "11"]);
        assert_eq!(chain("2*3-4*5"), ["6-4*5", "6-20", "-14"]);
        assert_eq!(chain("(1+2)*(3+4)"), ["3*(3+4)", "3*7", "21"]);
        assert_eq!(chain("12-(3-(4+5))"), ["12-(3-9)", "12-(-6)", "18"]);
        assert_eq!(chain("(2-5)*4"), ["(-3)*4", "-12"]);
        assert_eq!(chain("1-2-3"), ["(-1)-3", "-4"]);
        assert_eq!(chain("7"), Vec::<String>::new());
    }

    proptest! {
        /// Every chain has one step per operator and ends in the value; every step written
        /// without negative numbers or literals past 999 parses and keeps
        /// the value.
        #[test]
        fn chains_keep_the_value(seed in any::<u64>(), depth in 1u32..8) {
            use rand::SeedableRng;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let g = crate::Domain::generate(&super::super::Arith, &crate::GenSpec { depth, max_literal: 30 }, &mut rng).unwrap();
            let expr = super::super::parse(&g.problem, &Limits::default()).unwrap();
            let worked = rewrite_chain(&expr).unwrap();
            let last = worked.last().unwrap();
            prop_assert_eq!(&last.value, &last.expression);
            let steps: Vec<String> = worked.into_iter().map(|s| s.expression).collect();
            prop_assert_eq!(steps.len() as u32, expr.ops());
            prop_assert_eq!(steps.last().unwrap(), &g.answer);
            for s in steps.iter().filter(|s| !s.starts_with('-') && !s.contains("(-")) {
                // Values past 999 are no problem literals; every other step is one.
                match super::super::parse(s, &Limits::default()) {
                    Ok(e) => prop_assert_eq!(e.eval().unwrap().to_string(), g.answer.clone()),
                    Err(e) => prop_assert_eq!(e.kind, crate::ErrorKind::Literal),
                }
            }
        }
    }
}
