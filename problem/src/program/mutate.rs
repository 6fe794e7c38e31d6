//! Mutation: a program one small edit away from a given one, of a given amount of work — what a
//! proposer shown a reference program is taught to write, as [`crate::arith`]'s mutation is for
//! expressions.
//!
//! An edit changes one expression of the program in one place — an assignment's, a condition's
//! side or the output: a literal redrawn, an operator changed, a literal or variable read grown
//! into an operation with a new literal (one operation more where it runs once), or an operation
//! with a literal or variable operand cut back to one operand (one fewer). A depth further from
//! the reference's takes as many grow or cut edits as the difference. Since an operation inside
//! a loop or a branch not taken changes the work by its passes, not by one, every result is kept
//! only when the judge's analysis gives exactly the asked depth, no padding, literals within the
//! bound, and another canonical form than the reference's. What an edit leaves as padding — a
//! cut that leaves a copy `a=x`, or a statement nothing reads any more — is taken out by writing
//! the result in its canonical form.
//!
//! An abduction keeps an input that answers it: its output asked for is recomputed by running the
//! edited program on the reference's answer. [`EditSize::Small`] edits nudge a literal by at most
//! a fifth of itself, change no operator, and grow by `+` or `-` of a one-digit literal.

use rand::{Rng, RngCore};

use super::syntax::{parse, Expr, Program, Stmt, StmtKind, INPUT};
use super::{run, Programs};
use crate::arith::Op;
use crate::{Domain, EditSize, GenSpec, Limits};

pub(super) fn mutate(
    domain: &Programs,
    reference: &str,
    spec: &GenSpec,
    size: EditSize,
    rng: &mut dyn RngCore,
) -> Option<String> {
    let hard = Limits { max_tokens: Limits::HARD_MAX_TOKENS, max_nesting: Limits::HARD_MAX_NESTING };
    let source = parse(reference, &hard).ok()?;
    let before = domain.analyze(reference, &hard).ok()?;
    let from = before.depth;
    if from.abs_diff(spec.depth) > EditSize::MAX_DEPTH_CHANGE {
        return None;
    }
    // The input that answers an abduction, kept answering it after the edit.
    let input = source.target.and_then(|_| before.answer.parse::<i64>().ok());
    for _ in 0..EditSize::MAX_TRIES {
        let mut program = source.clone();
        let mut edited = true;
        if from == spec.depth {
            edited &= match size {
                EditSize::Free if rng.random_bool(0.5) => change_operator(&mut program, rng),
                EditSize::Free => redraw_literal(&mut program, spec.max_literal, rng),
                EditSize::Small => nudge_literal(&mut program, spec.max_literal, rng),
            };
        }
        for _ in spec.depth..from {
            edited &= cut(&mut program, rng);
        }
        for _ in from..spec.depth {
            edited &= grow(&mut program, spec.max_literal, size, rng);
        }
        if !edited {
            continue;
        }
        if let Some(x) = input {
            let Ok(r) = run::run(&program, Some(x)) else { continue };
            program.target = Some(r.output);
        }
        let mut text = program.to_string();
        let Ok(mut a) = domain.analyze(&text, &Limits::default()) else { continue };
        if a.padded() {
            // A cut leaves a copy (`a=x*3` to `a=x`) or a statement nothing reads: the edit is
            // the program without them.
            text = a.canonical.clone();
            let Ok(again) = domain.analyze(&text, &Limits::default()) else { continue };
            a = again;
        }
        // An edit that leaves the input unread answers nothing about it: an abduction that any
        // input answers, or a deduction of constants.
        let reads_input = a.canonical.contains(char::from(INPUT));
        if reads_input
            && a.hash != before.hash
            && !a.padded()
            && a.depth == spec.depth
            && a.max_literal <= spec.max_literal
        {
            return Some(text);
        }
    }
    None
}

/// Every expression of a program: assignments', conditions' sides, and the output last. A
/// deduction's input binding (`x=4`) is among them only for `with_input`: its literal may be
/// redrawn, but it is not grown into an operation (no generated program computes its input).
fn expressions(program: &mut Program, with_input: bool) -> Vec<&mut Expr> {
    fn walk<'a>(stmts: &'a mut [Stmt], with_input: bool, out: &mut Vec<&'a mut Expr>) {
        for s in stmts {
            match &mut s.kind {
                StmtKind::Assign { var: INPUT, .. } if !with_input => {}
                StmtKind::Assign { expr, .. } => out.push(expr),
                StmtKind::If { cond, then, otherwise } => {
                    out.push(&mut cond.lhs);
                    out.push(&mut cond.rhs);
                    walk(then, with_input, out);
                    walk(otherwise, with_input, out);
                }
                StmtKind::Repeat { body, .. } => walk(body, with_input, out),
            }
        }
    }
    let mut out = Vec::new();
    walk(&mut program.stmts, with_input, &mut out);
    out.push(&mut program.output);
    out
}

/// The nodes of `e` that `wanted` picks, in pre-order.
fn nodes<'a>(e: &'a mut Expr, wanted: &dyn Fn(&Expr) -> bool, out: &mut Vec<&'a mut Expr>) {
    if wanted(e) {
        // A picked node is edited whole: what is under it is not offered as well.
        out.push(e);
        return;
    }
    if let Expr::Bin(_, l, r) = e {
        nodes(l, wanted, out);
        nodes(r, wanted, out);
    }
}

/// Applies `edit` to one node `wanted` picks, drawn uniformly over the program; whether there
/// was one.
fn edit_one(
    program: &mut Program,
    with_input: bool,
    wanted: &dyn Fn(&Expr) -> bool,
    rng: &mut dyn RngCore,
    edit: &mut dyn FnMut(&mut Expr, &mut dyn RngCore),
) -> bool {
    let mut picked = Vec::new();
    for e in expressions(program, with_input) {
        nodes(e, wanted, &mut picked);
    }
    if picked.is_empty() {
        return false;
    }
    let i = rng.random_range(0..picked.len());
    edit(picked.swap_remove(i), rng);
    true
}

fn is_literal(e: &Expr) -> bool {
    matches!(e, Expr::Lit(_))
}

fn redraw_literal(program: &mut Program, max_literal: u32, rng: &mut dyn RngCore) -> bool {
    edit_one(program, true, &is_literal, rng, &mut |e, rng| {
        *e = Expr::Lit(rng.random_range(0..=i64::from(max_literal)))
    })
}

/// One literal moved by at most a fifth of itself (at least 1), within `0..=max_literal`.
fn nudge_literal(program: &mut Program, max_literal: u32, rng: &mut dyn RngCore) -> bool {
    edit_one(program, true, &is_literal, rng, &mut |e, rng| {
        if let Expr::Lit(value) = e {
            *value =
                i64::from(EditSize::nudge(u32::try_from(*value).unwrap_or(max_literal), max_literal, rng));
        }
    })
}

fn change_operator(program: &mut Program, rng: &mut dyn RngCore) -> bool {
    edit_one(program, false, &|e| matches!(e, Expr::Bin(..)), rng, &mut |e, rng| {
        if let Expr::Bin(op, ..) = e {
            let others: Vec<Op> = [Op::Add, Op::Sub, Op::Mul].into_iter().filter(|o| o != op).collect();
            *op = others[rng.random_range(0..others.len())];
        }
    })
}

/// A literal or a variable read becomes an operation of itself and a new literal.
fn grow(program: &mut Program, max_literal: u32, size: EditSize, rng: &mut dyn RngCore) -> bool {
    let (op, fresh) = match size {
        EditSize::Free => {
            ([Op::Add, Op::Sub, Op::Mul][rng.random_range(0..3)], rng.random_range(0..=max_literal))
        }
        EditSize::Small => {
            ([Op::Add, Op::Sub][rng.random_range(0..2)], rng.random_range(1..=max_literal.clamp(1, 9)))
        }
    };
    let fresh = Expr::Lit(i64::from(fresh));
    let new_on_left = rng.random_bool(0.5);
    let leaf = |e: &Expr| !matches!(e, Expr::Bin(..));
    edit_one(program, false, &leaf, rng, &mut |e, _| {
        let old = std::mem::replace(e, Expr::Lit(0));
        *e = if new_on_left { Expr::bin(op, fresh.clone(), old) } else { Expr::bin(op, old, fresh.clone()) };
    })
}

/// An operation with an operand that is a literal or a variable becomes one of its operands.
fn cut(program: &mut Program, rng: &mut dyn RngCore) -> bool {
    let has_leaf = |e: &Expr| match e {
        Expr::Bin(_, l, r) => !matches!(**l, Expr::Bin(..)) || !matches!(**r, Expr::Bin(..)),
        _ => false,
    };
    edit_one(program, false, &|e| has_leaf(e) && !contains(e, &has_leaf), rng, &mut |e, rng| {
        if let Expr::Bin(_, l, r) = e {
            *e = if rng.random_bool(0.5) { l.as_ref().clone() } else { r.as_ref().clone() };
        }
    })
}

/// Whether a node strictly under `e` is one `wanted` picks: cuts take the innermost.
fn contains(e: &Expr, wanted: &dyn Fn(&Expr) -> bool) -> bool {
    match e {
        Expr::Bin(_, l, r) => wanted(l) || wanted(r) || contains(l, wanted) || contains(r, wanted),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    proptest! {
        #[test]
        fn mutations_have_the_asked_depth_and_answer_exactly(
            seed in 0u64..10_000,
            from in 1u32..=5,
            change in -2i32..=2,
            max_literal in prop::sample::select(vec![9u32, 20]),
        ) {
            let to = (from as i32 + change).max(1) as u32;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let reference = Programs.generate(&GenSpec { depth: from, max_literal }, &mut rng).unwrap().problem;
            let spec = GenSpec { depth: to, max_literal };
            let Some(m) = Programs.mutate(&reference, &spec, EditSize::Free, &mut rng) else { return Ok(()) };
            let a = Programs.analyze(&m, &Limits::default()).unwrap();
            let r = Programs.analyze(&reference, &Limits::default()).unwrap();
            prop_assert_eq!(a.depth, to, "{} from {}", m, reference);
            prop_assert!(!a.padded() && a.max_literal <= max_literal, "{} from {}", m, reference);
            prop_assert_ne!(a.hash, r.hash, "{} copies {}", m, reference);
            prop_assert!(Programs.accepts(&m, &a.answer, &a.answer), "{} answered {}", m, a.answer);
            // The kind is kept: an abduction stays one, and so does a deduction.
            let is_abduction = |t: &str| parse(t, &Limits::default()).unwrap().target.is_some();
            prop_assert_eq!(is_abduction(&m), is_abduction(&reference), "{} from {}", m, reference);
        }
    }

    #[test]
    fn most_references_give_a_mutation_and_they_vary() {
        // Fewer operations leave few programs (a cut has few places); more leave many.
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for reference in ["x=7;a=x*3;b=a+5;b", "a=x*3;?a>9{a=a-5}:{a=a+2};a=16"] {
            for (depth, least) in [(1, 1), (2, 1), (3, 20), (4, 50)] {
                let spec = GenSpec { depth, max_literal: 20 };
                let made: std::collections::BTreeSet<String> = (0..200)
                    .filter_map(|_| Programs.mutate(reference, &spec, EditSize::Free, &mut rng))
                    .collect();
                assert!(made.len() >= least, "{reference} to depth {depth}: {} {made:?}", made.len());
            }
        }
    }

    #[test]
    fn an_abduction_keeps_an_answer() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let reference = "a=x*3;b=a+5;b=20";
        for _ in 0..50 {
            let m =
                Programs.mutate(reference, &GenSpec { depth: 2, max_literal: 20 }, EditSize::Small, &mut rng);
            let Some(m) = m else { continue };
            assert!(parse(&m, &Limits::default()).unwrap().target.is_some(), "{m} is no abduction");
            let a = Programs.analyze(&m, &Limits::default()).unwrap();
            assert!(Programs.accepts(&m, &a.answer, &a.answer), "{m} answered {}", a.answer);
        }
    }

    #[test]
    fn small_edits_change_no_operator_and_nudge_one_literal() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let reference = "x=15;a=x*3;b=a+10;b";
        let mut seen = 0;
        for _ in 0..100 {
            let Some(m) =
                Programs.mutate(reference, &GenSpec { depth: 2, max_literal: 20 }, EditSize::Small, &mut rng)
            else {
                continue;
            };
            seen += 1;
            let ops = |s: &str| s.chars().filter(|c| "+-*".contains(*c)).collect::<String>();
            assert_eq!(ops(&m), ops(reference), "{m}");
            let lits = |s: &str| -> Vec<i64> {
                s.split(|c: char| !c.is_ascii_digit())
                    .filter(|t| !t.is_empty())
                    .map(|t| t.parse().unwrap())
                    .collect()
            };
            let moved: Vec<(i64, i64)> =
                lits(reference).into_iter().zip(lits(&m)).filter(|(a, b)| a != b).collect();
            assert_eq!(moved.len(), 1, "{m}");
            assert!(moved[0].0.abs_diff(moved[0].1) <= (moved[0].0 as u64 / 5).max(1), "{m}");
        }
        assert!(seen >= 50, "{seen} of 100 small edits kept");
    }

    #[test]
    fn what_cannot_be_mutated_is_none() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let spec = |depth| GenSpec { depth, max_literal: 20 };
        assert_eq!(Programs.mutate("x=3;a=", &spec(1), EditSize::Free, &mut rng), None, "not a program");
        assert_eq!(
            Programs.mutate("x=3;x+4", &spec(4), EditSize::Free, &mut rng),
            None,
            "too far from its depth"
        );
    }
}
