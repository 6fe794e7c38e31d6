//! Worked solutions of deductions: the run written out one executed statement a step.
//!
//! Each step is the rest of the program, with the state it reads written as assignments in front.
//! A statement takes a step to read its variables' values, one per operation while more than one
//! is left (as arithmetic's worked solutions go), and one to run:
//! `x=4;a=x*3;?a>9{a=a-5};a` goes `a=4*3;?a>9{a=a-5};a`, `a=12;?a>9{a=a-5};a`,
//! `a=12;?12>9{a=a-5};a`, `a=12;a=a-5;a`, `a=12-5;a`, then the answer `7`. Every step is itself a
//! deduction with the problem's answer, so a step is checked the way arithmetic checks one: by
//! running it ([`step_holds`]).

use std::collections::VecDeque;

use super::run::{eval, State, MAX_STEPS};
use super::syntax::{
    bit, block_reads, parse_step, write_block, Cond, Expr, Program, Stmt, StmtKind, VARIABLES,
};
use crate::WorkedStep;

/// The worked solution of a deduction; `None` for an abduction or a program that does not run.
pub fn worked_solution(program: &Program) -> Option<Vec<WorkedStep>> {
    if program.target.is_some() {
        return None;
    }
    let mut state = State::default();
    let mut rest: VecDeque<Stmt> = program.stmts.iter().cloned().collect();
    let mut steps = Vec::new();
    let mut fuel = MAX_STEPS;
    while let Some(s) = rest.pop_front() {
        let value = match s.kind {
            StmtKind::Assign { var, expr: Expr::Lit(v) } => {
                // Storing a literal (an input binding) is no work: no step of its own.
                state.set(var, v);
                continue;
            }
            StmtKind::Assign { var, expr } => {
                // The values read, then one operation at a time, each a step with the statement
                // in front of the rest; then the statement runs.
                let expr = reduce(expr, &state, &mut steps, |e| {
                    let mut front = rest.clone();
                    front.push_front(Stmt { id: 0, at: 0, kind: StmtKind::Assign { var, expr: e.clone() } });
                    residual(&state, &front, &program.output)
                })?;
                let v = eval(&expr, &state, None).ok()?;
                state.set(var, v);
                v
            }
            StmtKind::If { cond, then, otherwise } => {
                let (lhs, rhs) = (values(&cond.lhs, &state)?, values(&cond.rhs, &state)?);
                if cond.reads() != 0 {
                    let mut front = rest.clone();
                    let read = Cond { lhs: lhs.clone(), cmp: cond.cmp, rhs: rhs.clone() };
                    let kind = StmtKind::If { cond: read, then: then.clone(), otherwise: otherwise.clone() };
                    front.push_front(Stmt { kind, ..s });
                    let text = residual(&state, &front, &program.output);
                    steps.push(WorkedStep { value: text.clone(), expression: text });
                }
                let empty = State::default();
                let holds = cond.cmp.holds(eval(&lhs, &empty, None).ok()?, eval(&rhs, &empty, None).ok()?);
                for t in if holds { then } else { otherwise }.into_iter().rev() {
                    rest.push_front(t);
                }
                i64::from(holds)
            }
            StmtKind::Repeat { count, body } => {
                // Unrolling a pass is bookkeeping, not a step.
                if count > 0 {
                    rest.push_front(Stmt {
                        kind: StmtKind::Repeat { count: count - 1, body: body.clone() },
                        ..s
                    });
                    for t in body.into_iter().rev() {
                        rest.push_front(t);
                    }
                }
                continue;
            }
        };
        fuel = fuel.checked_sub(1)?;
        let last = rest.iter().all(|s| matches!(&s.kind, StmtKind::Repeat { count: 0, .. }));
        if !(last && program.output.ops() == 0) {
            steps.push(WorkedStep {
                expression: residual(&state, &rest, &program.output),
                value: value.to_string(),
            });
        }
    }
    // The output, read and reduced the same way: a bare expression is a program too.
    let output = reduce(program.output.clone(), &state, &mut steps, |e| e.to_string())?;
    let answer = eval(&output, &state, None).ok()?.to_string();
    steps.push(WorkedStep { expression: answer.clone(), value: answer });
    Some(steps)
}

/// `expr` with its variables replaced by their values (a step of its own, written by `step`,
/// when it reads any), then reduced one operation a step while more than one is left. The
/// expression left holds one operation, or none.
fn reduce(
    expr: Expr,
    state: &State,
    steps: &mut Vec<WorkedStep>,
    step: impl Fn(&Expr) -> String,
) -> Option<Expr> {
    let mut e = values(&expr, state)?;
    if expr.reads() != 0 && expr.ops() > 0 {
        steps.push(WorkedStep { expression: step(&e), value: e.to_string() });
    }
    while e.ops() > 1 {
        let (next, value) = reduce_first(&e)?;
        e = next;
        steps.push(WorkedStep { expression: step(&e), value: value.to_string() });
    }
    Some(e)
}

/// `expr` with each variable replaced by its value.
fn values(expr: &Expr, state: &State) -> Option<Expr> {
    Some(match expr {
        Expr::Var(v) => Expr::Lit(state.get(*v)?),
        Expr::Bin(op, l, r) => Expr::bin(*op, values(l, state)?, values(r, state)?),
        Expr::Lit(_) => expr.clone(),
    })
}

/// The first operation of `expr` (leftmost of those whose operands are both literals, as
/// arithmetic's worked solutions take them) replaced by its value, and that value.
fn reduce_first(expr: &Expr) -> Option<(Expr, i64)> {
    let Expr::Bin(op, l, r) = expr else { return None };
    match (&**l, &**r) {
        (Expr::Lit(a), Expr::Lit(b)) => {
            let v = eval(expr, &State::default(), None).ok().filter(|_| op.apply(*a, *b).is_some())?;
            Some((Expr::Lit(v), v))
        }
        (Expr::Bin(..), _) => reduce_first(l).map(|(l, v)| (Expr::bin(*op, l, (**r).clone()), v)),
        _ => reduce_first(r).map(|(r, v)| (Expr::bin(*op, (**l).clone(), r), v)),
    }
}

/// The state the rest still reads, then the rest and the output: a program of its own.
fn residual(state: &State, rest: &VecDeque<Stmt>, output: &Expr) -> String {
    let rest: Vec<Stmt> =
        rest.iter().filter(|s| !matches!(s.kind, StmtKind::Repeat { count: 0, .. })).cloned().collect();
    let reads = live_in(&rest, output);
    let mut text = String::new();
    for var in VARIABLES {
        if let (true, Some(v)) = (reads & bit(var) != 0, state.get(var)) {
            text.push(char::from(var));
            text.push('=');
            text.push_str(&Expr::Lit(v).to_string());
            text.push(';');
        }
    }
    write_block(&rest, &mut text);
    if !rest.is_empty() {
        text.push(';');
    }
    text.push_str(&output.to_string());
    text
}

/// The variables `rest` and then `output` read before a top-level assignment writes them: what
/// the state in front of a step must give.
fn live_in(rest: &[Stmt], output: &Expr) -> u32 {
    let (mut live, mut written) = (0, 0);
    for s in rest {
        live |= block_reads(std::slice::from_ref(s)) & !written;
        if let StmtKind::Assign { var, .. } = s.kind {
            written |= bit(var);
        }
    }
    live | (output.reads() & !written)
}

/// Whether a step of a solver's output is consistent with the answer `expected`: an integer (an
/// intermediate value) or a program that runs to `expected`.
pub fn step_holds(step: &str, expected: &str) -> bool {
    let step = step.trim_matches(' ');
    if crate::arith::is_canonical_integer(step) {
        return true;
    }
    match parse_step(step) {
        Ok(p) if p.target.is_none() => {
            super::run::run(&p, None).is_ok_and(|r| r.output.to_string() == expected)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::syntax::parse;
    use crate::Limits;

    fn steps(text: &str) -> Vec<String> {
        let p = parse(text, &Limits::default()).unwrap();
        worked_solution(&p).unwrap().into_iter().map(|s| s.expression).collect()
    }

    #[test]
    fn a_step_reads_values_then_takes_one_operation() {
        assert_eq!(
            steps("x=4;a=x*3;?a>9{a=a-5};a"),
            [
                "a=4*3;?a>9{a=a-5};a",
                "a=12;?a>9{a=a-5};a",
                "a=12;?12>9{a=a-5};a",
                "a=12;a=a-5;a",
                "a=12-5;a",
                "7"
            ]
        );
        assert_eq!(
            steps("x=2;a=(x+1)*x;#2{a=a-1};a"),
            [
                "a=(2+1)*2;#2{a=a-1};a",
                "a=3*2;#2{a=a-1};a",
                "a=6;#2{a=a-1};a",
                "a=6-1;#1{a=a-1};a",
                "a=5;#1{a=a-1};a",
                "a=5-1;a",
                "4"
            ]
        );
        assert_eq!(steps("x=3;a=x-9;a*2"), ["a=3-9;a*2", "a=-6;a*2", "(-6)*2", "-12"]);
        assert_eq!(steps("x=3;x*2"), ["3*2", "6"], "the output is read like a statement");
        assert_eq!(steps("x=3;x*2+x"), ["3*2+3", "6+3", "9"]);
    }

    #[test]
    fn every_step_runs_to_the_answer() {
        for text in ["x=4;a=x*3;?a>9{a=a-5};a", "x=2;a=x+1;#2{a=a*2};a-x", "x=3;a=x-9;b=a*a;b-a"] {
            let p = parse(text, &Limits::default()).unwrap();
            let answer = super::super::run::run(&p, None).unwrap().output.to_string();
            for s in worked_solution(&p).unwrap() {
                assert!(step_holds(&s.expression, &answer), "{text}: {}", s.expression);
            }
        }
        assert!(!step_holds("a=12;a=a-4;a", "7"));
        assert!(!step_holds("a=12;a=a-", "7"));
        assert!(!step_holds("a+1=7", "6"), "an abduction is no step");
    }
}
