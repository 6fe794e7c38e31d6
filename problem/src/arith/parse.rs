//! The arithmetic language: syntax tree, parser, exact evaluator and printer.
//!
//! ```text
//! expr   := term (('+' | '-') term)*        left-associative
//! term   := factor ('*' factor)*            binds tighter than + and -
//! factor := literal | '(' expr ')'
//! literal:= 0 | [1-9][0-9]{0,2}             0..=999, no leading zeros
//! ```
//!
//! Spaces may stand between any two tokens. The parser checks the token budget before it reads
//! anything and the nesting bound as it descends, so neither input length nor nesting can exhaust
//! memory or stack.

use crate::{ErrorKind, Limits, ProblemError};

/// Largest literal the language allows.
pub const MAX_LITERAL: u32 = 999;
/// Largest magnitude any intermediate value may reach.
pub const MAX_ABS_VALUE: i64 = 1_000_000_000;

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Add,
    Sub,
    Mul,
}

impl Op {
    pub fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Mul => '*',
        }
    }

    fn precedence(self) -> u8 {
        match self {
            Op::Add | Op::Sub => 1,
            Op::Mul => 2,
        }
    }

    /// Applies the operator exactly; `None` on i64 overflow.
    pub fn apply(self, a: i64, b: i64) -> Option<i64> {
        match self {
            Op::Add => a.checked_add(b),
            Op::Sub => a.checked_sub(b),
            Op::Mul => a.checked_mul(b),
        }
    }
}

/// A parsed expression. `at` is the byte offset of the operator or literal in the source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Lit { value: u32, at: usize },
    Bin { op: Op, lhs: Box<Expr>, rhs: Box<Expr>, at: usize },
}

impl Expr {
    pub fn lit(value: u32) -> Expr {
        Expr::Lit { value, at: 0 }
    }

    pub fn bin(op: Op, lhs: Expr, rhs: Expr) -> Expr {
        Expr::Bin { op, lhs: Box::new(lhs), rhs: Box::new(rhs), at: 0 }
    }

    /// Number of operators.
    pub fn ops(&self) -> u32 {
        match self {
            Expr::Lit { .. } => 0,
            Expr::Bin { lhs, rhs, .. } => 1 + lhs.ops() + rhs.ops(),
        }
    }

    /// The largest literal as written.
    pub fn max_literal(&self) -> u32 {
        match self {
            Expr::Lit { value, .. } => *value,
            Expr::Bin { lhs, rhs, .. } => lhs.max_literal().max(rhs.max_literal()),
        }
    }

    /// Evaluates exactly. Fails when any node's value exceeds [`MAX_ABS_VALUE`] in magnitude,
    /// naming the operator whose result did.
    pub fn eval(&self) -> Result<i64, ProblemError> {
        match self {
            Expr::Lit { value, .. } => Ok(i64::from(*value)),
            Expr::Bin { op, lhs, rhs, at } => {
                let (a, b) = (lhs.eval()?, rhs.eval()?);
                match op.apply(a, b) {
                    Some(v) if v.abs() <= MAX_ABS_VALUE => Ok(v),
                    result => Err(ProblemError::new(
                        ErrorKind::Range,
                        Some(*at),
                        match result {
                            Some(v) => format!("value {v} of {a} {} {b} exceeds 10^9", op.symbol()),
                            None => format!("{a} {} {b} overflows", op.symbol()),
                        },
                    )),
                }
            }
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            Expr::Lit { .. } => u8::MAX,
            Expr::Bin { op, .. } => op.precedence(),
        }
    }

    /// Writes the expression with no spaces and only the parentheses needed to keep this exact
    /// tree: parsing the output gives the same tree back.
    pub fn write(&self, out: &mut String) {
        match self {
            Expr::Lit { value, .. } => out.push_str(&value.to_string()),
            Expr::Bin { op, lhs, rhs, .. } => {
                // Left-associative: a left operand of equal precedence needs no parentheses, a
                // right one does (`a-(b-c)`, and `a+(b+c)` to keep the tree as written).
                let paren_l = lhs.precedence() < op.precedence();
                let paren_r = rhs.precedence() <= op.precedence();
                write_operand(lhs, paren_l, out);
                out.push(op.symbol());
                write_operand(rhs, paren_r, out);
            }
        }
    }
}

fn write_operand(e: &Expr, paren: bool, out: &mut String) {
    if paren {
        out.push('(');
    }
    e.write(out);
    if paren {
        out.push(')');
    }
}

impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

/// Parses a problem text under `limits`.
pub fn parse(text: &str, limits: &Limits) -> Result<Expr, ProblemError> {
    let tokens = text.chars().count();
    if tokens > limits.max_tokens {
        return Err(ProblemError::new(
            ErrorKind::TooLong,
            None,
            format!("{tokens} tokens exceed the budget of {}", limits.max_tokens),
        ));
    }
    let mut p = Parser { src: text.as_bytes(), pos: 0, nesting: 0, limits };
    p.skip_spaces();
    if p.pos == p.src.len() {
        return Err(ProblemError::new(ErrorKind::Empty, None, "empty problem"));
    }
    let e = p.expr()?;
    p.skip_spaces();
    if p.pos < p.src.len() {
        return Err(p.unexpected("an operator or the end"));
    }
    Ok(e)
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    nesting: usize,
    limits: &'a Limits,
}

impl Parser<'_> {
    fn skip_spaces(&mut self) {
        while self.src.get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_spaces();
        self.src.get(self.pos).copied()
    }

    /// An error at the current position: what was expected, and what stands there instead.
    fn unexpected(&self, expected: &str) -> ProblemError {
        let at = self.pos;
        match self.src.get(at) {
            None => {
                ProblemError::new(ErrorKind::Syntax, Some(at), format!("expected {expected}, found the end"))
            }
            Some(_) => {
                // The text is a &str, so `at` is on a char boundary whenever we stop on one; the
                // parser only ever advances over ASCII, so it always is.
                let ch = std::str::from_utf8(&self.src[at..])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                let kind =
                    if "0123456789+-*() ".contains(ch) { ErrorKind::Syntax } else { ErrorKind::BadChar };
                ProblemError::new(kind, Some(at), format!("expected {expected}, found {ch:?}"))
            }
        }
    }

    fn expr(&mut self) -> Result<Expr, ProblemError> {
        let mut lhs = self.term()?;
        while let Some(c @ (b'+' | b'-')) = self.peek() {
            let at = self.pos;
            self.pos += 1;
            let op = if c == b'+' { Op::Add } else { Op::Sub };
            let rhs = self.term()?;
            lhs = Expr::Bin { op, lhs: Box::new(lhs), rhs: Box::new(rhs), at };
        }
        Ok(lhs)
    }

    fn term(&mut self) -> Result<Expr, ProblemError> {
        let mut lhs = self.factor()?;
        while self.peek() == Some(b'*') {
            let at = self.pos;
            self.pos += 1;
            let rhs = self.factor()?;
            lhs = Expr::Bin { op: Op::Mul, lhs: Box::new(lhs), rhs: Box::new(rhs), at };
        }
        Ok(lhs)
    }

    fn factor(&mut self) -> Result<Expr, ProblemError> {
        match self.peek() {
            Some(b'(') => {
                let open = self.pos;
                if self.nesting == self.limits.max_nesting {
                    return Err(ProblemError::new(
                        ErrorKind::TooDeep,
                        Some(open),
                        format!("parentheses nested deeper than {}", self.limits.max_nesting),
                    ));
                }
                self.pos += 1;
                self.nesting += 1;
                let e = self.expr()?;
                self.nesting -= 1;
                if self.peek() != Some(b')') {
                    return Err(self.unexpected(&format!("')' to close the '(' at byte {open}")));
                }
                self.pos += 1;
                Ok(e)
            }
            Some(b'0'..=b'9') => self.literal(),
            _ => Err(self.unexpected("a number or '('")),
        }
    }

    fn literal(&mut self) -> Result<Expr, ProblemError> {
        let start = self.pos;
        while self.src.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        let digits = &self.src[start..self.pos];
        let text = std::str::from_utf8(digits).expect("ASCII digits are UTF-8");
        if digits.len() > 1 && digits[0] == b'0' {
            return Err(ProblemError::new(
                ErrorKind::Literal,
                Some(start),
                format!("literal {text} has a leading zero"),
            ));
        }
        match text.parse::<u32>() {
            Ok(value) if value <= MAX_LITERAL => Ok(Expr::Lit { value, at: start }),
            _ => Err(ProblemError::new(
                ErrorKind::Literal,
                Some(start),
                format!("literal {text} exceeds {MAX_LITERAL}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Expr, ProblemError> {
        parse(s, &Limits::default())
    }

    fn value(s: &str) -> i64 {
        p(s).unwrap().eval().unwrap()
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(value("(12+7)*3-5"), 52);
        assert_eq!(value("2+3*4"), 14);
        assert_eq!(value("10-3-2"), 5);
        assert_eq!(value("10-(3-2)"), 9);
        assert_eq!(value("2*3*4"), 24);
        assert_eq!(value(" 7 - 9 "), -2);
        assert_eq!(value("((((5))))"), 5);
        assert_eq!(value("0"), 0);
    }

    #[test]
    fn printing_keeps_the_tree() {
        for (src, printed) in [
            ("(12+7)*3-5", "(12+7)*3-5"),
            ("1+(2+3)", "1+(2+3)"),
            ("(1+2)+3", "1+2+3"),
            ("1-(2-3)", "1-(2-3)"),
            ("2*(3*4)", "2*(3*4)"),
            (" ( 4 ) ", "4"),
            ("2*(3+4)*5", "2*(3+4)*5"),
        ] {
            let e = p(src).unwrap();
            assert_eq!(e.to_string(), printed, "{src}");
            assert_eq!(p(printed).unwrap().to_string(), printed);
        }
    }

    #[test]
    fn errors_say_what_was_expected_and_where() {
        let cases = [
            ("", ErrorKind::Empty, None, "empty problem"),
            ("   ", ErrorKind::Empty, None, "empty problem"),
            ("1+", ErrorKind::Syntax, Some(2), "expected a number or '(', found the end at byte 2"),
            ("1 2", ErrorKind::Syntax, Some(2), "expected an operator or the end, found '2' at byte 2"),
            (
                "(1+2",
                ErrorKind::Syntax,
                Some(4),
                "expected ')' to close the '(' at byte 0, found the end at byte 4",
            ),
            ("1+2)", ErrorKind::Syntax, Some(3), "expected an operator or the end, found ')' at byte 3"),
            ("-3", ErrorKind::Syntax, Some(0), "expected a number or '(', found '-' at byte 0"),
            ("1/2", ErrorKind::BadChar, Some(1), "expected an operator or the end, found '/' at byte 1"),
            ("1+x", ErrorKind::BadChar, Some(2), "expected a number or '(', found 'x' at byte 2"),
            ("1000+1", ErrorKind::Literal, Some(0), "literal 1000 exceeds 999 at byte 0"),
            ("3*07", ErrorKind::Literal, Some(2), "literal 07 has a leading zero at byte 2"),
            ("1+€", ErrorKind::BadChar, Some(2), "expected a number or '(', found '€' at byte 2"),
        ];
        for (src, kind, at, msg) in cases {
            let err = p(src).unwrap_err();
            assert_eq!((err.kind, err.at, err.to_string().as_str()), (kind, at, msg), "{src:?}");
        }
    }

    #[test]
    fn limits_are_checked_before_work() {
        let limits = Limits { max_tokens: 5, max_nesting: 2 };
        assert!(parse("1+2+3", &limits).is_ok());
        let err = parse("1+2+3", &Limits { max_tokens: 4, ..limits }).unwrap_err();
        assert_eq!(err.to_string(), "5 tokens exceed the budget of 4");
        assert!(parse("((1))", &limits).is_ok());
        let err = parse("(((1)))", &Limits { max_tokens: 10, ..limits }).unwrap_err();
        assert_eq!((err.kind, err.at), (ErrorKind::TooDeep, Some(2)));
        // Deep nesting well past any stack: rejected, not a crash.
        let deep = "(".repeat(4000) + "1" + &")".repeat(4000);
        let err = parse(&deep, &Limits { max_tokens: 8001, max_nesting: 256 }).unwrap_err();
        assert_eq!(err.kind, ErrorKind::TooDeep);
    }

    #[test]
    fn values_are_bounded_at_every_node() {
        assert_eq!(value("999*999*999"), 997_002_999);
        let err = p("999*999*999*2").unwrap().eval().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Range);
        assert_eq!(err.at, Some(11));
        assert_eq!(err.to_string(), "value 1994005998 of 997002999 * 2 exceeds 10^9 at byte 11");
        // An out-of-range intermediate is invalid even when the final value is small.
        let err = p("999*999*999*2-999*999*999*2").unwrap().eval().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Range);
        assert_eq!(value("0-999*999*999"), -997_002_999);
    }
}
