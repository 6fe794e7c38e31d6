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

    /// The exact value, `None` on overflow.
    fn value(&self) -> Option<i64> {
        match self {
            Step::Num(v) => Some(*v),
            Step::Bin(op, lhs, rhs) => op.apply(lhs.value()?, rhs.value()?),
        }
    }

    fn ops(&self) -> u32 {
        match self {
            Step::Num(_) => 0,
            Step::Bin(_, lhs, rhs) => 1 + lhs.ops() + rhs.ops(),
        }
    }

    /// The operation [`Step::reduce`] would evaluate: the leftmost over two numbers.
    fn first_operation(&self) -> Option<&Step> {
        let Step::Bin(_, lhs, rhs) = self else { return None };
        if matches!((&**lhs, &**rhs), (Step::Num(_), Step::Num(_))) {
            return Some(self);
        }
        lhs.first_operation().or_else(|| rhs.first_operation())
    }

    fn first_operation_mut(&mut self) -> Option<&mut Step> {
        let Step::Bin(_, lhs, rhs) = self else { return None };
        if matches!((&**lhs, &**rhs), (Step::Num(_), Step::Num(_))) {
            return Some(self);
        }
        let Step::Bin(_, lhs, rhs) = self else { unreachable!("matched above") };
        if lhs.first_operation().is_some() {
            lhs.first_operation_mut()
        } else {
            rhs.first_operation_mut()
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

/// Longest step text [`step_value`] reads: a solver's whole output is far shorter.
const MAX_STEP_CHARS: usize = 256;

/// The exact value of one step as a chain writes it, and its operator count: the problem grammar
/// with literals of any size (checked against overflow) and parenthesised negative numbers
/// (`(-3)*4`); a bare number may be negative (`-7`). `None` when `text` is not such an expression.
pub fn step_value(text: &str) -> Option<(i64, u32)> {
    let step = read_step(text)?;
    Some((step.value()?, step.ops()))
}

/// The operation a worked solution of `step` takes first (the leftmost over two numbers), as a
/// problem of its own: `12-(3-9)` gives `3-9`. `None` when `step` is a number or not a step.
pub fn first_operation(step: &str) -> Option<String> {
    let step = read_step(step)?;
    let mut out = String::new();
    step.first_operation()?.write(true, &mut out);
    Some(out)
}

/// `step` with its first operation replaced by the number `value`: `(3+4)*2` and `7` give `7*2`,
/// written as a chain writes its steps. `None` when either is not what it should be.
pub fn replace_first_operation(step: &str, value: &str) -> Option<String> {
    let mut step = read_step(step)?;
    let Step::Num(value) = read_step(value)? else { return None };
    *step.first_operation_mut()? = Step::Num(value);
    let mut out = String::new();
    step.write(true, &mut out);
    Some(out)
}

/// One step as a tree, read as [`step_value`] reads it.
fn read_step(text: &str) -> Option<Step> {
    if text.len() > MAX_STEP_CHARS {
        return None;
    }
    let bare = text.trim_matches(' ');
    if let Some(digits) = bare.strip_prefix('-') {
        return number(digits).map(|v| Step::Num(-v));
    }
    let mut r = StepReader { src: text.as_bytes(), pos: 0 };
    let step = r.expr()?;
    r.spaces();
    (r.pos == r.src.len()).then_some(step)
}

fn number(digits: &str) -> Option<i64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

struct StepReader<'a> {
    src: &'a [u8],
    pos: usize,
}

impl StepReader<'_> {
    fn spaces(&mut self) {
        while self.src.get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.spaces();
        self.src.get(self.pos).copied()
    }

    fn expr(&mut self) -> Option<Step> {
        let mut lhs = self.term()?;
        while let Some(c @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            let op = if c == b'+' { Op::Add } else { Op::Sub };
            lhs = Step::Bin(op, Box::new(lhs), Box::new(self.term()?));
        }
        Some(lhs)
    }

    fn term(&mut self) -> Option<Step> {
        let mut lhs = self.factor()?;
        while self.peek() == Some(b'*') {
            self.pos += 1;
            lhs = Step::Bin(Op::Mul, Box::new(lhs), Box::new(self.factor()?));
        }
        Some(lhs)
    }

    /// Nesting needs no bound of its own: [`MAX_STEP_CHARS`] bounds the depth of recursion.
    fn factor(&mut self) -> Option<Step> {
        match self.peek()? {
            b'(' => {
                self.pos += 1;
                let v = if self.peek() == Some(b'-') {
                    self.pos += 1;
                    self.spaces();
                    Step::Num(-self.digits()?)
                } else {
                    self.expr()?
                };
                (self.peek() == Some(b')')).then(|| self.pos += 1)?;
                Some(v)
            }
            _ => self.digits().map(Step::Num),
        }
    }

    fn digits(&mut self) -> Option<i64> {
        let start = self.pos;
        while self.src.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        number(std::str::from_utf8(&self.src[start..self.pos]).ok()?)
    }
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
    fn the_first_operation_is_the_one_a_chain_takes_first() {
        for (step, first, value, next) in [
            ("(3+4)*2", "3+4", "7", "7*2"),
            ("12-(3-9)", "3-9", "-6", "12-(-6)"),
            ("(-3)*4", "(-3)*4", "-12", "-12"),
            ("(1+2)*(3+4)", "1+2", "3", "3*(3+4)"),
            ("3+4*2", "4*2", "8", "3+8"),
            ("1-2-3", "1-2", "-1", "(-1)-3"),
        ] {
            assert_eq!(first_operation(step).as_deref(), Some(first), "{step}");
            assert_eq!(replace_first_operation(step, value).as_deref(), Some(next), "{step}");
        }
        assert_eq!(first_operation("-7"), None);
        assert_eq!(first_operation("3+"), None);
        assert_eq!(replace_first_operation("3+4", "x"), None);
        assert_eq!(replace_first_operation("3+4", "1+1"), None, "a value, not an expression");
    }

    proptest! {
        /// Replaced by its own value, the first operation gives the chain's next step.
        #[test]
        fn replacing_the_first_operation_by_its_value_is_the_next_step(
            text in "[1-9]([+*-][1-9]|[+*-]\\([1-9][+*-][1-9]\\)){1,4}"
        ) {
            let expr = super::super::parse(&text, &Limits::default()).unwrap();
            let chain = rewrite_chain(&expr).unwrap();
            let mut step = text.clone();
            for next in chain {
                let first = first_operation(&step).unwrap();
                let (value, ops) = step_value(&first).unwrap();
                prop_assert_eq!(ops, 1);
                prop_assert_eq!(replace_first_operation(&step, &value.to_string()), Some(next.expression.clone()));
                step = next.expression;
            }
            prop_assert_eq!(first_operation(&step), None);
        }
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

    #[test]
    fn steps_are_read_with_their_negative_numbers() {
        assert_eq!(step_value("7*2"), Some((14, 1)));
        assert_eq!(step_value("(-3)*4"), Some((-12, 1)));
        assert_eq!(step_value("12-(-6)"), Some((18, 1)));
        assert_eq!(step_value(" 6 - 4*5 "), Some((-14, 2)));
        assert_eq!(step_value("1200+3400"), Some((4600, 1)));
        assert_eq!(step_value("-14"), Some((-14, 0)));
        assert_eq!(step_value("(-14)"), Some((-14, 0)));
        assert_eq!(step_value("14"), Some((14, 0)));
        for bad in ["", "-", "3+", "(3", "3)", "--3", "3*-4", "(- )", "99999999999999999999", "3 4"] {
            assert_eq!(step_value(bad), None, "{bad:?}");
        }
        assert_eq!(step_value("9999999999*9999999999"), None, "overflow is no value");
        assert_eq!(step_value(&"(".repeat(MAX_STEP_CHARS)), None);
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
            for (i, s) in steps.iter().enumerate() {
                // Every step, negative numbers and all, reads back with the answer's value and
                // one operator fewer than the step before it.
                let (value, ops) = step_value(s).unwrap();
                prop_assert_eq!(value.to_string(), g.answer.clone());
                prop_assert_eq!(ops as usize, steps.len() - 1 - i);
            }
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
