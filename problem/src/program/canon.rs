//! The canonical form of a program, and what of its work is essential.
//!
//! A program's *surface* work is what it executes as written; its *essential* work is what the
//! answer depends on once everything that costs nothing is gone:
//!
//! * **Identities** in expressions: `e+0`, `0+e`, `e-0`, `e*1`, `1*e` drop the identity, `e*0` is
//!   `0`, `e-e` is `0` — as the arithmetic domain folds them; `3+4` stays work.
//! * **Self-assignments** (`a=a`, also after identities: `a=a*1`) do nothing.
//! * **Dead statements**: the run's trace is sliced backwards from the output. An assignment
//!   instance is live when a later live instance (or the output) reads the value it wrote; a test
//!   is essential when a branch of its conditional assigns a variable needed after it. Everything
//!   else — unused variables, overwritten stores, conditionals that change nothing — is dead.
//! * **Copies** (`b=a`) and literal stores are no work: a live one costs nothing essential.
//! * **Loops of zero or one pass**, and empty loops, are unrolled or dropped; a conditional whose
//!   condition holds no variable is replaced by the branch it takes.
//! * **Names**: variables other than the input `x` are renamed `a`, `b`, … in order of first
//!   appearance, so a renamed copy has the same canonical text.
//!
//! Operations are counted per executed instance: an assignment costs its operators (a copy or a
//! dead literal store one), a test one plus its operators. Surface work also counts, once each,
//! statements that never ran where they are not the untaken branch of an essential conditional
//! (a loop of zero passes, a dead branch), and one for every loop of zero or one pass.

use super::run::{Event, Run};
use super::syntax::{bit, block_reads, block_writes, Cmp, Cond, Expr, Program, Stmt, StmtKind, INPUT};
use crate::arith::Op;

/// `expr` with its identities removed.
pub fn simplify(expr: &Expr) -> Expr {
    let Expr::Bin(op, l, r) = expr else { return expr.clone() };
    let (l, r) = (simplify(l), simplify(r));
    match (op, &l, &r) {
        (Op::Add, Expr::Lit(0), _) => r,
        (Op::Add | Op::Sub, _, Expr::Lit(0)) => l,
        (Op::Mul, Expr::Lit(0), _) | (Op::Mul, _, Expr::Lit(0)) => Expr::Lit(0),
        (Op::Mul, Expr::Lit(1), _) => r,
        (Op::Mul, _, Expr::Lit(1)) => l,
        (Op::Sub, _, _) if l == r => Expr::Lit(0),
        _ => Expr::bin(*op, l, r),
    }
}

/// Surface cost of an assignment instance as written: its operators, one for a copy, none for a
/// literal store (which `live_literal` excuses only when live).
fn written_cost(expr: &Expr, live_literal: bool) -> u32 {
    match expr {
        Expr::Lit(_) if live_literal => 0,
        _ => expr.ops().max(1),
    }
}

/// What is known of each statement (by id) for the slice.
#[derive(Debug, Clone)]
enum Info {
    Assign { var: u8, written: Expr, canonical: Expr },
    If { writes: u32, reads: u32, literal_only: bool, written_ops: u32, canonical_ops: u32 },
    Repeat,
}

fn infos(program: &Program) -> Vec<Info> {
    fn walk(stmts: &[Stmt], out: &mut Vec<Info>) {
        for s in stmts {
            out[s.id] = match &s.kind {
                StmtKind::Assign { var, expr } => {
                    Info::Assign { var: *var, written: expr.clone(), canonical: simplify(expr) }
                }
                StmtKind::If { cond, then, otherwise } => {
                    walk(then, out);
                    walk(otherwise, out);
                    let canonical = canonical_cond(cond);
                    Info::If {
                        writes: effective_writes(then) | effective_writes(otherwise),
                        reads: canonical.reads(),
                        literal_only: canonical.reads() == 0,
                        written_ops: 1 + cond.ops(),
                        canonical_ops: 1 + canonical.ops(),
                    }
                }
                StmtKind::Repeat { body, .. } => {
                    walk(body, out);
                    Info::Repeat
                }
            };
        }
    }
    let mut out = vec![Info::Repeat; program.statements];
    walk(&program.stmts, &mut out);
    out
}

/// The variables a block may change: its assignments but the self-assignments (`a=a`, `a=a*1`),
/// which the canonical form drops, so a conditional that only writes those is not essential.
fn effective_writes(stmts: &[Stmt]) -> u32 {
    stmts
        .iter()
        .map(|s| match &s.kind {
            StmtKind::Assign { var, expr } if simplify(expr) != Expr::Var(*var) => bit(*var),
            StmtKind::Assign { .. } => 0,
            StmtKind::If { then, otherwise, .. } => effective_writes(then) | effective_writes(otherwise),
            StmtKind::Repeat { body, .. } => effective_writes(body),
        })
        .fold(0, |a, b| a | b)
}

fn canonical_cond(cond: &Cond) -> Cond {
    // `a>b` is `b<a`: one comparison fewer to tell apart.
    let (lhs, rhs) = (simplify(&cond.lhs), simplify(&cond.rhs));
    match cond.cmp {
        Cmp::Gt => Cond { lhs: rhs, cmp: Cmp::Lt, rhs: lhs },
        cmp => Cond { lhs, cmp, rhs },
    }
}

/// The measured work of one run of a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measure {
    pub surface_ops: u32,
    pub essential_ops: u32,
    /// Statements (by id) with at least one live instance.
    live: Vec<bool>,
    /// Conditionals (by id) with at least one essential test.
    essential_if: Vec<bool>,
}

/// Slices `run` of `program` backwards from its output.
pub fn measure(program: &Program, run: &Run) -> Measure {
    let info = infos(program);
    let mut live = vec![false; program.statements];
    let mut essential_if = vec![false; program.statements];
    let output = simplify(&program.output);
    let (mut surface, mut essential) = (program.output.ops(), output.ops());
    let mut needed = output.reads();
    let mut after_if = Vec::new();
    for event in run.trace.iter().rev() {
        match *event {
            Event::Assign(id) => {
                let Info::Assign { var, written, canonical } = &info[id] else {
                    unreachable!("an assignment")
                };
                let is_live = needed & bit(*var) != 0 && *canonical != Expr::Var(*var);
                surface += written_cost(written, is_live);
                if is_live {
                    live[id] = true;
                    essential += canonical.ops();
                    needed = (needed & !bit(*var)) | canonical.reads();
                }
            }
            Event::EndIf(_) => after_if.push(needed),
            Event::Test(id) => {
                let Info::If { writes, reads, literal_only, written_ops, canonical_ops } = info[id] else {
                    unreachable!("a conditional")
                };
                let needed_after = after_if.pop().expect("every test ends");
                surface += written_ops;
                if !literal_only && writes & needed_after != 0 {
                    essential_if[id] = true;
                    essential += canonical_ops;
                    needed |= reads;
                }
            }
        }
    }
    surface += never_run(&program.stmts, run, &info, &essential_if, false);
    Measure { surface_ops: surface, essential_ops: essential, live, essential_if }
}

/// Surface cost of what never ran, outside the untaken branches of essential conditionals, and
/// one for each loop of zero or one pass or with nothing in it.
fn never_run(stmts: &[Stmt], run: &Run, info: &[Info], essential_if: &[bool], shielded: bool) -> u32 {
    let mut cost = 0;
    for s in stmts {
        let ran = run.executed[s.id] > 0;
        match (&s.kind, &info[s.id]) {
            (StmtKind::Assign { expr, .. }, _) => {
                if !ran && !shielded {
                    cost += written_cost(expr, false);
                }
            }
            (StmtKind::If { then, otherwise, .. }, Info::If { written_ops, .. }) => {
                if !ran && !shielded {
                    cost += written_ops;
                }
                let shield = shielded || essential_if[s.id];
                cost += never_run(then, run, info, essential_if, shield);
                cost += never_run(otherwise, run, info, essential_if, shield);
            }
            (StmtKind::Repeat { count, body }, _) => {
                if (*count <= 1 || body.is_empty()) && !shielded {
                    cost += 1;
                }
                cost += never_run(body, run, info, essential_if, shielded);
            }
            (StmtKind::If { .. }, _) => unreachable!("infos match statements"),
        }
    }
    cost
}

/// The canonical text of `program` as measured by `m` on `run`.
pub fn canonical_text(program: &Program, run: &Run, m: &Measure) -> String {
    let mut stmts = canonical_block(&program.stmts, run, m, false);
    let mut output = simplify(&program.output);
    propagate_copies(&mut stmts, &mut output);
    let mut canonical = Program { stmts, output, target: program.target, statements: 0 };
    canonical.renumber();
    rename(&canonical.to_string())
}

/// The canonical statements of a block. `shielded`: the block is (inside) the untaken branch of
/// an essential conditional, kept as written but for its expressions' identities.
fn canonical_block(stmts: &[Stmt], run: &Run, m: &Measure, shielded: bool) -> Vec<Stmt> {
    let mut out = Vec::new();
    for s in stmts {
        let ran = run.executed[s.id] > 0;
        match &s.kind {
            StmtKind::Assign { var, expr } => {
                let expr = simplify(expr);
                if m.live[s.id] || (shielded && !ran && expr != Expr::Var(*var)) {
                    out.push(Stmt { id: 0, at: 0, kind: StmtKind::Assign { var: *var, expr } });
                }
            }
            StmtKind::If { cond, then, otherwise } => {
                let cond = canonical_cond(cond);
                if cond.reads() == 0 && !shielded {
                    // A condition of literals alone: only the branch it takes is there.
                    let a = super::run::eval(&cond.lhs, &Default::default(), None);
                    let b = super::run::eval(&cond.rhs, &Default::default(), None);
                    let taken = match (a, b) {
                        (Ok(a), Ok(b)) if cond.cmp.holds(a, b) => then,
                        _ => otherwise,
                    };
                    out.extend(canonical_block(taken, run, m, false));
                } else if m.essential_if[s.id] || (shielded && !ran) {
                    let shield = shielded || m.essential_if[s.id];
                    let kind = StmtKind::If {
                        cond,
                        then: canonical_block(then, run, m, shield),
                        otherwise: canonical_block(otherwise, run, m, shield),
                    };
                    out.push(Stmt { id: 0, at: 0, kind });
                }
            }
            StmtKind::Repeat { count, body } => {
                let body = canonical_block(body, run, m, shielded);
                match count {
                    _ if body.is_empty() => {}
                    0 if !shielded => {}
                    1 if !shielded => out.extend(body),
                    _ => out.push(Stmt { id: 0, at: 0, kind: StmtKind::Repeat { count: *count, body } }),
                }
            }
        }
    }
    out
}

/// Removes the top-level copies `b=a` whose every reader can read `a` instead: those up to the
/// next statement that assigns `a` or `b`, when that one is an assignment (whose reads come
/// before its write) and either assigns `b` or is the last to read it.
fn propagate_copies(stmts: &mut Vec<Stmt>, output: &mut Expr) {
    let mut i = 0;
    while i < stmts.len() {
        let StmtKind::Assign { var: to, expr: Expr::Var(from) } = stmts[i].kind else {
            i += 1;
            continue;
        };
        let mut end = stmts.len();
        for (j, s) in stmts.iter().enumerate().skip(i + 1) {
            if block_writes(std::slice::from_ref(s)) & (bit(to) | bit(from)) != 0 {
                end = j;
                break;
            }
        }
        // Past `end` the copy's value is still read if `to` was not reassigned there by a plain
        // assignment: then it stays.
        let read_later = || {
            stmts.get(end + 1..).is_some_and(|rest| block_reads(rest) & bit(to) != 0)
                || output.reads() & bit(to) != 0
        };
        let removable = match stmts.get(end) {
            Some(Stmt { kind: StmtKind::Assign { var, .. }, .. }) => *var == to || !read_later(),
            Some(_) => false,
            None => true,
        };
        if !removable {
            i += 1;
            continue;
        }
        let last = if end == stmts.len() { end } else { end + 1 };
        // Up to `end` nothing assigns either variable, compound statements included.
        for s in &mut stmts[i + 1..last] {
            substitute_stmt(s, to, from);
        }
        if end == stmts.len() {
            *output = output.substitute(to, from);
        }
        stmts.remove(i);
        // `b=a;a=b` leaves `a=a`: nothing.
        if let Some(StmtKind::Assign { var, expr }) = stmts.get(end - 1).map(|s| &s.kind) {
            if *expr == Expr::Var(*var) {
                stmts.remove(end - 1);
            }
        }
    }
}

fn substitute_stmt(s: &mut Stmt, from: u8, to: u8) {
    match &mut s.kind {
        StmtKind::Assign { expr, .. } => *expr = expr.substitute(from, to),
        StmtKind::If { cond, then, otherwise } => {
            cond.lhs = cond.lhs.substitute(from, to);
            cond.rhs = cond.rhs.substitute(from, to);
            then.iter_mut().chain(otherwise.iter_mut()).for_each(|s| substitute_stmt(s, from, to));
        }
        StmtKind::Repeat { body, .. } => body.iter_mut().for_each(|s| substitute_stmt(s, from, to)),
    }
}

/// Renames the variables other than the input `a`, `b`, … in order of first appearance.
fn rename(text: &str) -> String {
    let mut names: Vec<u8> = Vec::new();
    text.bytes()
        .map(|c| {
            if !c.is_ascii_lowercase() || c == INPUT {
                return char::from(c);
            }
            let i = names.iter().position(|&n| n == c).unwrap_or_else(|| {
                names.push(c);
                names.len() - 1
            });
            char::from(b'a' + i as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::run::run;
    use crate::program::syntax::parse;
    use crate::Limits;

    /// (canonical text, surface, essential) of a deduction.
    fn canon(text: &str) -> (String, u32, u32) {
        let p = parse(text, &Limits::default()).unwrap();
        let r = run(&p, None).unwrap();
        let m = measure(&p, &r);
        (canonical_text(&p, &r, &m), m.surface_ops, m.essential_ops)
    }

    #[test]
    fn identities_fold_as_in_arithmetic() {
        let s =
            |t: &str| simplify(&parse(&format!("x=1;{t}"), &Limits::default()).unwrap().output).to_string();
        assert_eq!(s("(x+0)*1"), "x");
        assert_eq!(s("0+x*(3-0)"), "x*3");
        assert_eq!(s("x*0+5"), "5");
        assert_eq!(s("x-x"), "0");
        assert_eq!(s("3+4"), "3+4", "work stays work");
    }

    #[test]
    fn an_unpadded_program_is_its_own_canonical_form() {
        assert_eq!(
            canon("x=4;a=x*3;?a>9{a=a-5}:{a=a+1};a"),
            ("x=4;a=x*3;?9<a{a=a-5}:{a=a+1};a".into(), 3, 3)
        );
        assert_eq!(canon("x=2;a=x+1;#3{a=a*2};a-x"), ("x=2;a=x+1;#3{a=a*2};a-x".into(), 5, 5));
    }

    #[test]
    fn padding_costs_surface_not_essence() {
        let base = canon("x=4;a=x*3;a-1");
        assert_eq!(base, ("x=4;a=x*3;a-1".into(), 2, 2));
        for padded in [
            "x=4;c=x*7;a=x*3;a-1",         // a dead statement
            "x=4;d=9;a=x*3;a-1",           // an unused variable
            "x=4;a=x*3;a=a;a-1",           // a self-assignment
            "x=4;a=x*3*1;a-1+0",           // identities
            "x=4;a=x*3;#0{a=a*5};a-1",     // an empty loop
            "x=4;#1{a=x*3};a-1",           // a single pass
            "x=4;a=x*3;?a<100{c=a+1};a-1", // a conditional that changes nothing
            "x=4;a=x+x;a=x*3;a-1",         // an overwritten store
            "x=4;?1<2{a=x*3}:{a=5};a-1",   // a condition of literals
        ] {
            let (text, surface, essential) = canon(padded);
            assert_eq!((text.as_str(), essential), (base.0.as_str(), 2), "{padded}");
            assert!(surface > essential, "{padded}: surface {surface}");
        }
        // A copy costs a move of surface and nothing essential (its name stays).
        let (text, surface, essential) = canon("x=4;b=x;a=b*3;a-1");
        assert_eq!((text.as_str(), surface, essential), ("x=4;a=x*3;a-1", 3, 2));
        // Propagated up to a reassignment; kept where a loop would read it (more in
        // `copies_propagate_to_every_reader`).
        assert_eq!(canon("x=4;b=x;a=b*3;b=a+1;b-a").0, "x=4;a=x*3;b=a+1;b-a");
        assert_eq!(canon("x=4;b=x;#2{b=b*3};b").0, "x=4;a=x;#2{a=a*3};a");
        assert_eq!(canon("x=4;b=1*x;?b>9{a=b*7}:{a=b+6};a").0, "x=4;?9<x{a=x*7}:{a=x+6};a");
        // Renamed: the same canonical text, no padding.
        assert_eq!(canon("x=4;e=x*3;e-1"), base);
    }

    #[test]
    fn copies_propagate_to_every_reader() {
        // Found by the fuzz test and the property tests: each was a canonical form that was not
        // its own canonical form.
        assert_eq!(canon("x=4;a=x;b=a;b=6;a+b").0, "x=4;a=6;x+a");
        assert_eq!(canon("x=4;a=x+8;b=a;a=b;#2{a=a+1};a").0, "x=4;a=x+8;#2{a=a+1};a");
        assert_eq!(canon("x=3;a=x-6;c=a;a=c+8;a").0, "x=3;a=x-6;a=a+8;a");
        assert_eq!(canon("x=34;a=1*x;?a>99{b=a*73}:{b=a+65};b").0, "x=34;?99<x{a=x*73}:{a=x+65};a");
    }

    #[test]
    fn the_untaken_branch_of_a_test_that_matters_stays() {
        // x=1 takes the else branch; the then branch would change a: the test is work.
        assert_eq!(canon("x=1;a=5;?x>3{a=a*2};a+x"), ("x=1;a=5;?3<x{a=a*2};a+x".into(), 2, 2));
        // Neither branch writes what is read after: the whole conditional is dead.
        let (text, surface, essential) = canon("x=1;a=5;?x>3{b=a*2}:{b=1};a+x");
        assert_eq!((text.as_str(), surface, essential), ("x=1;a=5;a+x", 4, 1));
    }

    #[test]
    fn the_canonical_form_is_a_fixed_point() {
        for t in [
            "x=1;a=2;?x<3{b=1}:{a=a*1};a",
            "x=4;c=x*7;a=x*3;?a<100{c=a+1};#1{a=a+0};a-1",
            "x=1;?x>3{b=7}:{b=2};#2{b=b*b};b",
        ] {
            let (once, _, e1) = canon(t);
            let (twice, _, e2) = canon(&once);
            assert_eq!((&once, e1), (&twice, e2), "{t}");
        }
    }
}
