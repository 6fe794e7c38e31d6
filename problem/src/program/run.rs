//! The exact interpreter: the only thing that ever runs a program.
//!
//! Every statement executed costs one unit of fuel ([`MAX_STEPS`] in all), every value is checked
//! against [`MAX_ABS_VALUE`], and reading a variable before it is assigned is an error, so a
//! hostile program costs a bounded amount and never has an undefined result. The run records a
//! trace of what it executed, from which the canonical form tells essential work from padding.

use super::syntax::{Expr, Program, Stmt, StmtKind, INPUT};
use crate::arith::MAX_ABS_VALUE;
use crate::{ErrorKind, ProblemError};

/// The most statements (assignments and tests) one run may execute.
pub const MAX_STEPS: u32 = 256;

/// One executed statement, in execution order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An assignment of statement `id` ran.
    Assign(usize),
    /// The condition of conditional `id` was tested.
    Test(usize),
    /// The branch conditional `id` took has finished.
    EndIf(usize),
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub output: i64,
    pub trace: Vec<Event>,
    /// How many times each statement (by id) ran.
    pub executed: Vec<u32>,
}

/// The values of the variables `a..=z` (only six are used).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State([Option<i64>; 26]);

impl State {
    pub fn get(&self, var: u8) -> Option<i64> {
        self.0[usize::from(var - b'a')]
    }

    pub fn set(&mut self, var: u8, value: i64) {
        self.0[usize::from(var - b'a')] = Some(value);
    }
}

/// Evaluates an expression exactly; the error names the variable or the bound.
pub fn eval(expr: &Expr, state: &State, at: Option<usize>) -> Result<i64, ProblemError> {
    match expr {
        Expr::Lit(n) => Ok(*n),
        Expr::Var(v) => state.get(*v).ok_or_else(|| {
            ProblemError::new(
                ErrorKind::Unbound,
                at,
                format!("{} is read before it is assigned", char::from(*v)),
            )
        }),
        Expr::Bin(op, l, r) => {
            let (a, b) = (eval(l, state, at)?, eval(r, state, at)?);
            match op.apply(a, b) {
                Some(v) if v.abs() <= MAX_ABS_VALUE => Ok(v),
                _ => Err(ProblemError::new(
                    ErrorKind::Range,
                    at,
                    format!("{a}{}{b} leaves the range ±{MAX_ABS_VALUE}", op.symbol()),
                )),
            }
        }
    }
}

/// Runs `program`, with `x` bound to `input` where given.
pub fn run(program: &Program, input: Option<i64>) -> Result<Run, ProblemError> {
    let mut m = Machine {
        state: State::default(),
        fuel: MAX_STEPS,
        trace: Vec::new(),
        executed: vec![0; program.statements],
    };
    if let Some(x) = input {
        m.state.set(INPUT, x);
    }
    m.block(&program.stmts)?;
    let output = eval(&program.output, &m.state, None)?;
    Ok(Run { output, trace: m.trace, executed: m.executed })
}

struct Machine {
    state: State,
    fuel: u32,
    trace: Vec<Event>,
    executed: Vec<u32>,
}

impl Machine {
    fn spend(&mut self, s: &Stmt) -> Result<(), ProblemError> {
        if self.fuel == 0 {
            return Err(ProblemError::new(
                ErrorKind::Fuel,
                Some(s.at),
                format!("runs more than {MAX_STEPS} statements"),
            ));
        }
        self.fuel -= 1;
        self.executed[s.id] += 1;
        Ok(())
    }

    fn block(&mut self, stmts: &[Stmt]) -> Result<(), ProblemError> {
        for s in stmts {
            match &s.kind {
                StmtKind::Assign { var, expr } => {
                    self.spend(s)?;
                    let v = eval(expr, &self.state, Some(s.at))?;
                    self.state.set(*var, v);
                    self.trace.push(Event::Assign(s.id));
                }
                StmtKind::If { cond, then, otherwise } => {
                    self.spend(s)?;
                    let a = eval(&cond.lhs, &self.state, Some(s.at))?;
                    let b = eval(&cond.rhs, &self.state, Some(s.at))?;
                    self.trace.push(Event::Test(s.id));
                    self.block(if cond.cmp.holds(a, b) { then } else { otherwise })?;
                    self.trace.push(Event::EndIf(s.id));
                }
                StmtKind::Repeat { count, body } => {
                    // The loop itself costs nothing: its count is a literal, not work.
                    self.executed[s.id] += 1;
                    for _ in 0..*count {
                        self.block(body)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::syntax::parse;
    use crate::Limits;

    fn output(text: &str, input: Option<i64>) -> Result<i64, ErrorKind> {
        let p = parse(text, &Limits::default()).unwrap();
        run(&p, input).map(|r| r.output).map_err(|e| e.kind)
    }

    #[test]
    fn programs_compute_what_they_say() {
        assert_eq!(output("x=4;a=x*3;?a>9{a=a-5}:{a=a+1};a", None), Ok(7));
        assert_eq!(output("x=2;a=x*3;?a>9{a=a-5}:{a=a+1};a", None), Ok(7));
        assert_eq!(output("a=1;#5{a=a*2};a-x", Some(3)), Ok(29));
        assert_eq!(output("a=1;#0{a=a*2};a", None), Ok(1));
        assert_eq!(output("x=3;?x=3{a=1}:{a=2};?x<3{a=a+10};a", None), Ok(1));
        assert_eq!(output("x=1;#3{#3{x=x+x}};x", None), Ok(512));
    }

    #[test]
    fn bounds_hold() {
        assert_eq!(output("a=999;#9{a=a*a};a", None), Err(ErrorKind::Range));
        assert_eq!(output("a=1;#9{#9{#9{a=a+1}}};a", None), Err(ErrorKind::Fuel));
        assert_eq!(output("a=b+1;a", None), Err(ErrorKind::Unbound));
        assert_eq!(output("x+1", None), Err(ErrorKind::Unbound));
        assert_eq!(output("?x<1{a=1};a", Some(5)), Err(ErrorKind::Unbound), "a never assigned");
    }

    #[test]
    fn the_trace_names_what_ran() {
        let p = parse("x=1;?x<2{a=1}:{a=2};#2{a=a+1};a", &Limits::default()).unwrap();
        let r = run(&p, None).unwrap();
        use Event::*;
        assert_eq!(r.trace, vec![Assign(0), Test(1), Assign(2), EndIf(1), Assign(5), Assign(5)]);
        assert_eq!(r.executed, vec![1, 1, 1, 0, 1, 2]);
    }
}
