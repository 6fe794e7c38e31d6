//! The program language: syntax tree, parser and printer.
//!
//! ```text
//! problem := (stmt ';')* expr ['=' integer]    the output expression; with '=', an abduction
//! stmt    := var '=' expr                      assignment
//!          | '?' cond '{' block '}' [':' '{' block '}']   conditional, optional else
//!          | '#' digit '{' block '}'           the block repeated 0..=9 times
//! block   := [stmt (';' stmt)*]                 may be empty
//! cond    := expr ('<' | '>' | '=') expr
//! expr    := term (('+' | '-') term)*          left-associative
//! term    := factor ('*' factor)*
//! factor  := literal | var | '(' expr ')'
//! var     := 'a' | 'b' | 'c' | 'd' | 'e' | 'x'
//! literal := 0 | [1-9][0-9]{0,2}               0..=999, no leading zeros
//! integer := ['-'] literal-like digits          the output an abduction asks for
//! ```
//!
//! Spaces may stand between any two tokens. The token budget is checked before anything is read
//! and the nesting bound (parentheses and braces together) as the parser descends, so neither the
//! length nor the nesting of untrusted text can exhaust memory or stack.

use std::fmt::{self, Write as _};

use crate::arith::{Op, MAX_ABS_VALUE, MAX_LITERAL};
use crate::{ErrorKind, Limits, ProblemError};

/// The variables a program may use; `x` is the input of an abduction.
pub const VARIABLES: [u8; 6] = [b'a', b'b', b'c', b'd', b'e', b'x'];
/// The input variable.
pub const INPUT: u8 = b'x';
/// The most times a loop may repeat its block: one digit.
pub const MAX_REPEAT: u32 = 9;

/// An expression over literals and variables.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expr {
    /// A literal: `0..=999` in a problem; any value, negative ones too, in a solver's step.
    Lit(i64),
    Var(u8),
    Bin(Op, Box<Expr>, Box<Expr>),
}

impl Expr {
    pub fn bin(op: Op, lhs: Expr, rhs: Expr) -> Expr {
        Expr::Bin(op, Box::new(lhs), Box::new(rhs))
    }

    /// Operators as written.
    pub fn ops(&self) -> u32 {
        match self {
            Expr::Lit(_) | Expr::Var(_) => 0,
            Expr::Bin(_, l, r) => 1 + l.ops() + r.ops(),
        }
    }

    /// The variables read, as a bit set over `b'a'..=b'z'`.
    pub fn reads(&self) -> u32 {
        match self {
            Expr::Lit(_) => 0,
            Expr::Var(v) => bit(*v),
            Expr::Bin(_, l, r) => l.reads() | r.reads(),
        }
    }

    /// This expression with every read of `from` reading `to` instead.
    pub fn substitute(&self, from: u8, to: u8) -> Expr {
        match self {
            Expr::Var(v) if *v == from => Expr::Var(to),
            Expr::Bin(op, l, r) => Expr::bin(*op, l.substitute(from, to), r.substitute(from, to)),
            _ => self.clone(),
        }
    }

    /// The largest literal as written.
    pub fn max_literal(&self) -> u32 {
        match self {
            Expr::Lit(n) => u32::try_from(*n).unwrap_or(u32::MAX),
            Expr::Var(_) => 0,
            Expr::Bin(_, l, r) => l.max_literal().max(r.max_literal()),
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            // A negative literal (only in steps) is parenthesized as an operand: `a-(-6)`.
            Expr::Lit(n) if *n < 0 => 0,
            Expr::Bin(Op::Add | Op::Sub, ..) => 1,
            Expr::Bin(Op::Mul, ..) => 2,
            _ => 3,
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Expr::Lit(n) => {
                let _ = write!(out, "{n}");
            }
            Expr::Var(v) => out.push(char::from(*v)),
            Expr::Bin(op, l, r) => {
                let p = self.precedence();
                // Left-associative: a right operand of equal precedence keeps its parentheses
                // (`a-(b-c)`, and `a*(b*c)` too, so that the text parses back to this tree).
                let paren = |e: &Expr, need: bool, out: &mut String| {
                    if need {
                        out.push('(');
                        e.write(out);
                        out.push(')');
                    } else {
                        e.write(out);
                    }
                };
                paren(l, l.precedence() < p, out);
                out.push(op.symbol());
                paren(r, r.precedence() <= p, out);
            }
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

/// The variables a block may read, as a bit set.
pub fn block_reads(stmts: &[Stmt]) -> u32 {
    stmts
        .iter()
        .map(|s| match &s.kind {
            StmtKind::Assign { expr, .. } => expr.reads(),
            StmtKind::If { cond, then, otherwise } => {
                cond.reads() | block_reads(then) | block_reads(otherwise)
            }
            StmtKind::Repeat { body, .. } => block_reads(body),
        })
        .fold(0, |a, b| a | b)
}

/// The variables a block may assign, as a bit set.
pub fn block_writes(stmts: &[Stmt]) -> u32 {
    stmts
        .iter()
        .map(|s| match &s.kind {
            StmtKind::Assign { var, .. } => bit(*var),
            StmtKind::If { then, otherwise, .. } => block_writes(then) | block_writes(otherwise),
            StmtKind::Repeat { body, .. } => block_writes(body),
        })
        .fold(0, |a, b| a | b)
}

/// The bit of a variable in a read set.
pub fn bit(var: u8) -> u32 {
    1 << (var - b'a')
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmp {
    Lt,
    Gt,
    Eq,
}

impl Cmp {
    pub fn symbol(self) -> char {
        match self {
            Cmp::Lt => '<',
            Cmp::Gt => '>',
            Cmp::Eq => '=',
        }
    }

    pub fn holds(self, a: i64, b: i64) -> bool {
        match self {
            Cmp::Lt => a < b,
            Cmp::Gt => a > b,
            Cmp::Eq => a == b,
        }
    }
}

/// The condition of a conditional.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cond {
    pub lhs: Expr,
    pub cmp: Cmp,
    pub rhs: Expr,
}

impl Cond {
    pub fn ops(&self) -> u32 {
        self.lhs.ops() + self.rhs.ops()
    }

    pub fn reads(&self) -> u32 {
        self.lhs.reads() | self.rhs.reads()
    }
}

/// A statement. `id` numbers the statements of a program in the order they are written (the
/// interpreter's trace names them by it); `at` is the byte where it starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Stmt {
    pub id: usize,
    pub at: usize,
    pub kind: StmtKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StmtKind {
    Assign { var: u8, expr: Expr },
    If { cond: Cond, then: Vec<Stmt>, otherwise: Vec<Stmt> },
    Repeat { count: u32, body: Vec<Stmt> },
}

/// A whole problem: statements, the output expression, and for an abduction the output asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Program {
    pub stmts: Vec<Stmt>,
    pub output: Expr,
    /// `Some(n)`: an abduction — find an input `x` for which the output is `n`.
    pub target: Option<i64>,
    /// How many statements the program has, nested ones included (ids are `0..statements`).
    pub statements: usize,
}

impl Program {
    /// Renumbers the statements in written order, after an edit added or removed some.
    pub fn renumber(&mut self) {
        fn walk(stmts: &mut [Stmt], next: &mut usize) {
            for s in stmts {
                s.id = *next;
                *next += 1;
                match &mut s.kind {
                    StmtKind::Assign { .. } => {}
                    StmtKind::If { then, otherwise, .. } => {
                        walk(then, next);
                        walk(otherwise, next);
                    }
                    StmtKind::Repeat { body, .. } => walk(body, next),
                }
            }
        }
        let mut next = 0;
        walk(&mut self.stmts, &mut next);
        self.statements = next;
    }

    /// The largest literal as written (loop counts are not literals).
    pub fn max_literal(&self) -> u32 {
        fn walk(stmts: &[Stmt]) -> u32 {
            stmts
                .iter()
                .map(|s| match &s.kind {
                    StmtKind::Assign { expr, .. } => expr.max_literal(),
                    StmtKind::If { cond, then, otherwise } => cond
                        .lhs
                        .max_literal()
                        .max(cond.rhs.max_literal())
                        .max(walk(then))
                        .max(walk(otherwise)),
                    StmtKind::Repeat { body, .. } => walk(body),
                })
                .max()
                .unwrap_or(0)
        }
        walk(&self.stmts).max(self.output.max_literal())
    }
}

/// Writes statements separated by `;`.
pub fn write_block(stmts: &[Stmt], out: &mut String) {
    for (i, s) in stmts.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        write_stmt(s, out);
    }
}

fn write_stmt(s: &Stmt, out: &mut String) {
    match &s.kind {
        StmtKind::Assign { var, expr } => {
            out.push(char::from(*var));
            out.push('=');
            expr.write(out);
        }
        StmtKind::If { cond, then, otherwise } => {
            out.push('?');
            cond.lhs.write(out);
            out.push(cond.cmp.symbol());
            cond.rhs.write(out);
            out.push('{');
            write_block(then, out);
            out.push('}');
            // An empty then-block with an else is written `{}:{…}`; an empty else not at all.
            if !otherwise.is_empty() {
                out.push_str(":{");
                write_block(otherwise, out);
                out.push('}');
            }
        }
        StmtKind::Repeat { count, body } => {
            let _ = write!(out, "#{count}{{");
            write_block(body, out);
            out.push('}');
        }
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        write_block(&self.stmts, &mut s);
        if !self.stmts.is_empty() {
            s.push(';');
        }
        self.output.write(&mut s);
        if let Some(t) = self.target {
            let _ = write!(s, "={t}");
        }
        f.write_str(&s)
    }
}

/// Parses a problem, checking the token budget and the nesting bound.
pub fn parse(text: &str, limits: &Limits) -> Result<Program, ProblemError> {
    if text.chars().count() > limits.max_tokens {
        return Err(ProblemError::new(
            ErrorKind::TooLong,
            None,
            format!("longer than the token budget of {}", limits.max_tokens),
        ));
    }
    if text.trim_matches(' ').is_empty() {
        return Err(ProblemError::new(ErrorKind::Empty, None, "empty problem"));
    }
    if let Some((at, c)) = text.char_indices().find(|&(_, c)| !is_program_char(c)) {
        return Err(ProblemError::new(ErrorKind::BadChar, Some(at), format!("unexpected character {c:?}")));
    }
    Parser::new(text, limits.max_nesting, false).problem()
}

/// Parses one step of a solver's worked solution: a problem in which literals may be negative
/// (`a=-6`) and as large as any value (`a=1234`), as the state of a run writes them.
pub fn parse_step(text: &str) -> Result<Program, ProblemError> {
    let limits = Limits { max_tokens: Limits::HARD_MAX_TOKENS, max_nesting: Limits::default().max_nesting };
    if text.chars().count() > limits.max_tokens || text.chars().any(|c| !is_program_char(c)) {
        return Err(ProblemError::new(ErrorKind::Syntax, None, "not a step"));
    }
    Parser::new(text, limits.max_nesting, true).problem()
}

/// The characters of the language (the step separator `|` is the solver's, not a program's).
pub fn is_program_char(c: char) -> bool {
    c.is_ascii_digit() || VARIABLES.contains(&(c as u8)) && c.is_ascii() || "+-*()=;?:{}#<> ".contains(c)
}

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
    depth: usize,
    max_nesting: usize,
    next_id: usize,
    /// Reading a step: negative and large literals allowed.
    step: bool,
}

type Parsed<T> = Result<T, ProblemError>;

impl<'a> Parser<'a> {
    fn new(text: &'a str, max_nesting: usize, step: bool) -> Self {
        Parser { text: text.as_bytes(), pos: 0, depth: 0, max_nesting, next_id: 0, step }
    }

    fn skip_spaces(&mut self) {
        while self.text.get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_spaces();
        self.text.get(self.pos).copied()
    }

    fn error<T>(&self, message: impl Into<String>) -> Parsed<T> {
        Err(ProblemError::new(ErrorKind::Syntax, Some(self.pos), message))
    }

    fn expect(&mut self, c: u8) -> Parsed<()> {
        match self.peek() {
            Some(got) if got == c => {
                self.pos += 1;
                Ok(())
            }
            Some(got) => self.error(format!("expected {:?}, found {:?}", char::from(c), char::from(got))),
            None => self.error(format!("expected {:?}, found the end", char::from(c))),
        }
    }

    fn open(&mut self) -> Parsed<()> {
        self.depth += 1;
        if self.depth > self.max_nesting {
            return Err(ProblemError::new(
                ErrorKind::TooDeep,
                Some(self.pos),
                format!("nested deeper than {}", self.max_nesting),
            ));
        }
        Ok(())
    }

    fn problem(&mut self) -> Parsed<Program> {
        let mut stmts = Vec::new();
        loop {
            let start = self.peek_pos();
            match self.peek() {
                Some(b'?' | b'#') => {
                    stmts.push(self.stmt()?);
                    self.expect(b';').map_err(|mut e| {
                        e.message = format!("{}: a program ends with its output expression", e.message);
                        e
                    })?;
                }
                None => return self.error("expected a statement or the output expression, found the end"),
                _ => {
                    let expr = self.expr()?;
                    match self.peek() {
                        None => {
                            return Ok(self.finish(stmts, expr, None));
                        }
                        Some(b';') => {
                            return self.error("an expression is not a statement: assign it to a variable");
                        }
                        Some(b'=') => {
                            self.pos += 1;
                            if let Some(target) = self.try_target()? {
                                return Ok(self.finish(stmts, expr, Some(target)));
                            }
                            let Expr::Var(var) = expr else {
                                return Err(ProblemError::new(
                                    ErrorKind::Syntax,
                                    Some(start),
                                    "only a variable can be assigned",
                                ));
                            };
                            let value = self.expr()?;
                            let id = self.take_id();
                            stmts.push(Stmt { id, at: start, kind: StmtKind::Assign { var, expr: value } });
                            self.expect(b';').map_err(|mut e| {
                                e.message =
                                    format!("{}: a program ends with its output expression", e.message);
                                e
                            })?;
                        }
                        Some(c) => return self.error(format!("unexpected {:?}", char::from(c))),
                    }
                }
            }
        }
    }

    fn finish(&mut self, stmts: Vec<Stmt>, output: Expr, target: Option<i64>) -> Program {
        Program { stmts, output, target, statements: self.next_id }
    }

    fn peek_pos(&mut self) -> usize {
        self.skip_spaces();
        self.pos
    }

    fn take_id(&mut self) -> usize {
        self.next_id += 1;
        self.next_id - 1
    }

    /// After the `=` that follows an expression: an integer that ends the text is the output an
    /// abduction asks for; anything else is the value of an assignment (`None`, nothing read).
    fn try_target(&mut self) -> Parsed<Option<i64>> {
        let save = self.pos;
        self.skip_spaces();
        let start = self.pos;
        if self.text.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let digits = self.pos;
        while self.text.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        let number = &self.text[start..self.pos];
        if self.pos == digits || self.peek().is_some() {
            self.pos = save;
            return Ok(None);
        }
        let text = std::str::from_utf8(number).expect("ASCII");
        let value: i64 = match text.parse() {
            Ok(v) if v != 0 || text == "0" => v,
            _ => {
                return Err(ProblemError::new(
                    ErrorKind::Literal,
                    Some(start),
                    format!("bad output {text:?}"),
                ))
            }
        };
        let magnitude = &text[usize::from(value < 0)..];
        if magnitude.len() > 1 && magnitude.starts_with('0') || value.abs() > MAX_ABS_VALUE {
            return Err(ProblemError::new(
                ErrorKind::Literal,
                Some(start),
                format!("the output {text} is not an integer of at most {MAX_ABS_VALUE} in canonical form"),
            ));
        }
        Ok(Some(value))
    }

    fn block(&mut self) -> Parsed<Vec<Stmt>> {
        self.expect(b'{')?;
        self.open()?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Vec::new());
        }
        let mut stmts = vec![self.stmt()?];
        while self.peek() == Some(b';') {
            self.pos += 1;
            stmts.push(self.stmt()?);
        }
        self.expect(b'}')?;
        self.depth -= 1;
        Ok(stmts)
    }

    fn stmt(&mut self) -> Parsed<Stmt> {
        let at = self.peek_pos();
        match self.peek() {
            Some(b'?') => {
                self.pos += 1;
                let id = self.take_id();
                let lhs = self.expr()?;
                let cmp = match self.peek() {
                    Some(b'<') => Cmp::Lt,
                    Some(b'>') => Cmp::Gt,
                    Some(b'=') => Cmp::Eq,
                    _ => return self.error("expected a comparison: <, > or ="),
                };
                self.pos += 1;
                let rhs = self.expr()?;
                let then = self.block()?;
                let otherwise = if self.peek() == Some(b':') {
                    self.pos += 1;
                    self.block()?
                } else {
                    Vec::new()
                };
                Ok(Stmt { id, at, kind: StmtKind::If { cond: Cond { lhs, cmp, rhs }, then, otherwise } })
            }
            Some(b'#') => {
                self.pos += 1;
                let id = self.take_id();
                let count = match self.text.get(self.pos) {
                    Some(d) if d.is_ascii_digit() => u32::from(d - b'0'),
                    _ => return self.error(format!("expected a repeat count 0..={MAX_REPEAT}")),
                };
                self.pos += 1;
                let body = self.block()?;
                Ok(Stmt { id, at, kind: StmtKind::Repeat { count, body } })
            }
            Some(v) if VARIABLES.contains(&v) => {
                self.pos += 1;
                let id = self.take_id();
                self.expect(b'=')?;
                let expr = self.expr()?;
                Ok(Stmt { id, at, kind: StmtKind::Assign { var: v, expr } })
            }
            Some(c) => self.error(format!("expected a statement, found {:?}", char::from(c))),
            None => self.error("expected a statement, found the end"),
        }
    }

    fn expr(&mut self) -> Parsed<Expr> {
        let mut lhs = self.term()?;
        loop {
            let op = match self.peek() {
                Some(b'+') => Op::Add,
                Some(b'-') => Op::Sub,
                _ => return Ok(lhs),
            };
            self.pos += 1;
            lhs = Expr::bin(op, lhs, self.term()?);
        }
    }

    fn term(&mut self) -> Parsed<Expr> {
        let mut lhs = self.factor()?;
        while self.peek() == Some(b'*') {
            self.pos += 1;
            lhs = Expr::bin(Op::Mul, lhs, self.factor()?);
        }
        Ok(lhs)
    }

    fn factor(&mut self) -> Parsed<Expr> {
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                self.open()?;
                let e = self.expr()?;
                self.expect(b')')?;
                self.depth -= 1;
                Ok(e)
            }
            Some(b'-') if self.step => {
                let start = self.pos;
                self.pos += 1;
                match self.factor()? {
                    Expr::Lit(n) if n > 0 => Ok(Expr::Lit(-n)),
                    _ => Err(ProblemError::new(
                        ErrorKind::Literal,
                        Some(start),
                        "'-' before a positive literal",
                    )),
                }
            }
            Some(d) if d.is_ascii_digit() => {
                let start = self.pos;
                while self.text.get(self.pos).is_some_and(u8::is_ascii_digit) {
                    self.pos += 1;
                }
                let digits = std::str::from_utf8(&self.text[start..self.pos]).expect("ASCII");
                if digits.len() > 1 && digits.starts_with('0') {
                    return Err(ProblemError::new(
                        ErrorKind::Literal,
                        Some(start),
                        "a literal with a leading zero",
                    ));
                }
                let bound = if self.step { MAX_ABS_VALUE } else { i64::from(MAX_LITERAL) };
                match digits.parse::<i64>() {
                    Ok(n) if n <= bound => Ok(Expr::Lit(n)),
                    _ => Err(ProblemError::new(
                        ErrorKind::Literal,
                        Some(start),
                        format!("literal {digits} above {bound}"),
                    )),
                }
            }
            Some(v) if VARIABLES.contains(&v) => {
                self.pos += 1;
                Ok(Expr::Var(v))
            }
            Some(c) => {
                self.error(format!("expected a literal, a variable or '(', found {:?}", char::from(c)))
            }
            None => self.error("expected a literal, a variable or '(', found the end"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(text: &str) -> String {
        parse(text, &Limits::default()).unwrap().to_string()
    }

    #[test]
    fn programs_print_as_they_parse() {
        for text in [
            "x=4;a=x*3;?a>9{a=a-5}:{a=a+1};a",
            "a=x*(3+4)-2;#3{a=a+x};a-(x-1)=20",
            "x=7;x+3",
            "x*x-x=0",
            "x=1;?x=1{a=2;b=a*a};b",
        ] {
            assert_eq!(roundtrip(text), text);
        }
        assert_eq!(roundtrip(" x = 4 ; a = x * 3 ; a "), "x=4;a=x*3;a");
        assert_eq!(roundtrip("x=2;(x*3)*(x+1)"), "x=2;x*3*(x+1)");
    }

    #[test]
    fn errors_say_what_and_where() {
        let err = |t: &str| parse(t, &Limits::default()).unwrap_err();
        let e = err("x=4;a=x*;a");
        assert_eq!((e.kind, e.at), (ErrorKind::Syntax, Some(8)));
        assert_eq!(err("x=4;y=2;x").kind, ErrorKind::BadChar);
        assert_eq!(err("x=4;a=x").kind, ErrorKind::Syntax, "no output expression");
        assert_eq!(err("x=4;a+1;a").kind, ErrorKind::Syntax);
        assert_eq!(err("x=4;a+1=b;a").kind, ErrorKind::Syntax);
        assert_eq!(err("x=1000;x").kind, ErrorKind::Literal);
        assert_eq!(err("x=07;x").kind, ErrorKind::Literal);
        assert_eq!(err("x+1=07").kind, ErrorKind::Literal);
        assert_eq!(err("x+1=-0").kind, ErrorKind::Literal);
        assert_eq!(err("#12{a=1};a").kind, ErrorKind::Syntax, "one digit of repeats");
        assert_eq!(err("   ").kind, ErrorKind::Empty);
        let deep = format!("x={}1{};x", "(".repeat(40), ")".repeat(40));
        assert_eq!(err(&deep).kind, ErrorKind::TooDeep);
        let long = format!("x=1;{}x", "x=x;".repeat(100));
        assert_eq!(err(&long).kind, ErrorKind::TooLong);
    }

    #[test]
    fn statements_are_numbered_in_written_order() {
        let p = parse("x=1;?x<2{a=1;#2{a=a+1}}:{a=3};a", &Limits::default()).unwrap();
        assert_eq!(p.statements, 6);
        let StmtKind::If { then, otherwise, .. } = &p.stmts[1].kind else { panic!() };
        assert_eq!((p.stmts[1].id, then[0].id, then[1].id, otherwise[0].id), (1, 2, 3, 5));
        assert_eq!(p.stmts[1].at, 4);
    }
}
