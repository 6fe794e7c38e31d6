//! Worked solutions of deductions: the run written out one executed statement a step.
//!
//! Each step is the rest of the program after one statement ran, with the state it needs written
//! as assignments in front: `x=4;a=x*3;?a>9{a=a-5};a` goes `a=12;?a>9{a=a-5};a`, `a=12;a=a-5;a`,
//! then the answer `7`. Every step is itself a deduction with the problem's answer, so a step is
//! checked the way arithmetic checks one: by running it ([`step_holds`]).

use std::collections::VecDeque;

use super::run::{eval, State, MAX_STEPS};
use super::syntax::{bit, block_reads, parse_step, write_block, Expr, Program, Stmt, StmtKind, VARIABLES};
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
            StmtKind::Assign { var, expr } => {
                let v = eval(&expr, &state, None).ok()?;
                state.set(var, v);
                if let Expr::Lit(_) = expr {
                    // Storing a literal (an input binding) is no work: no step of its own.
                    continue;
                }
                v
            }
            StmtKind::If { cond, then, otherwise } => {
                let holds =
                    cond.cmp.holds(eval(&cond.lhs, &state, None).ok()?, eval(&cond.rhs, &state, None).ok()?);
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
    let answer = eval(&program.output, &state, None).ok()?.to_string();
    steps.push(WorkedStep { expression: answer.clone(), value: answer });
    Some(steps)
}

/// The state the rest still reads, then the rest and the output: a program of its own.
fn residual(state: &State, rest: &VecDeque<Stmt>, output: &Expr) -> String {
    let rest: Vec<Stmt> =
        rest.iter().filter(|s| !matches!(s.kind, StmtKind::Repeat { count: 0, .. })).cloned().collect();
    let reads = block_reads(&rest) | output.reads();
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

/// Whether a step of a solver's output is consistent with the answer `expected`: an integer (an
/// intermediate value) or a program that runs to `expected`.
pub fn step_holds(step: &str, expected: &str) -> bool {
    let step = step.trim_matches(' ');
    if super::is_integer(step) {
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
    fn a_step_a_statement() {
        assert_eq!(steps("x=4;a=x*3;?a>9{a=a-5};a"), ["a=12;?a>9{a=a-5};a", "a=12;a=a-5;a", "7"]);
        assert_eq!(
            steps("x=2;a=x+1;#2{a=a*2};a-x"),
            ["a=3;x=2;#2{a=a*2};a-x", "a=6;x=2;#1{a=a*2};a-x", "a=12;x=2;a-x", "10"]
        );
        assert_eq!(steps("x=3;a=x-9;a*2"), ["a=-6;a*2", "-12"]);
        assert_eq!(steps("x=3;x*2"), ["6"], "one operation: the answer");
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
