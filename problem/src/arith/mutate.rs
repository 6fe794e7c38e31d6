//! Mutation: a new problem one small edit away from a given one, of a given depth — what a
//! proposer shown a reference problem is taught to write (ACCEL and POET edit the levels that
//! sit at the student's frontier, and a small edit keeps most of what made them hard).
//!
//! Each edit changes the tree in one place: a literal redrawn, an operator changed, a literal
//! grown into an operation of two literals (one operation more), or an operation of two literals
//! cut back to one literal (one fewer). A depth further from the reference's takes as many grow
//! or cut edits as the difference. The result is kept only when it is valid, unpadded, of the
//! asked depth and literal bound, and not the reference itself up to canonical form.
//!
//! [`EditSize::Small`] edits keep the work as it was where they can: a literal is nudged (by at
//! most a fifth of itself, at least 1) rather than redrawn, no operator is changed (`+` to `*`
//! can turn a sum a solver always gets into a product it never does), a grown operation adds or
//! takes a one-digit literal, and a cut operation leaves one of its own operands.

use rand::{Rng, RngCore};

use super::parse::{parse, Expr, Op};
use super::Arith;
use crate::{EditSize, GenSpec, Limits};

pub(super) fn mutate(
    arith: &Arith,
    reference: &str,
    spec: &GenSpec,
    size: EditSize,
    rng: &mut dyn RngCore,
) -> Option<String> {
    let hard = Limits { max_tokens: Limits::HARD_MAX_TOKENS, max_nesting: Limits::HARD_MAX_NESTING };
    let source = parse(reference, &hard).ok()?;
    let before = arith.analyze_expr(&source).ok()?;
    let from = source.ops();
    if from.abs_diff(spec.depth) > EditSize::MAX_DEPTH_CHANGE {
        return None;
    }
    for _ in 0..EditSize::MAX_TRIES {
        let mut expr = source.clone();
        if from == spec.depth {
            match size {
                EditSize::Free => same_depth_edit(&mut expr, spec.max_literal, rng),
                EditSize::Small => nudge(&mut expr, spec.max_literal, rng),
            }
        }
        for _ in spec.depth..from {
            cut(&mut expr, spec.max_literal, size, rng);
        }
        for _ in from..spec.depth {
            grow(&mut expr, spec.max_literal, size, rng);
        }
        let Ok(a) = arith.analyze_expr(&expr) else { continue };
        if a.hash != before.hash && !a.padded() && a.depth == spec.depth && a.max_literal <= spec.max_literal
        {
            return Some(expr.to_string());
        }
    }
    None
}

/// A literal redrawn, or an operator changed, chosen with equal chance where both exist.
fn same_depth_edit(expr: &mut Expr, max_literal: u32, rng: &mut dyn RngCore) {
    let ops = expr.ops();
    if ops > 0 && rng.random_bool(0.5) {
        let mut nth = rng.random_range(0..ops);
        with_nth_operation(expr, &mut nth, &mut |e| {
            if let Expr::Bin { op, .. } = e {
                let others: Vec<Op> = [Op::Add, Op::Sub, Op::Mul].into_iter().filter(|o| o != op).collect();
                *op = others[rng.random_range(0..others.len())];
            }
        });
    } else {
        let mut nth = rng.random_range(0..=ops);
        with_nth_literal(expr, &mut nth, &mut |e| *e = Expr::lit(rng.random_range(0..=max_literal)));
    }
}

/// One literal, drawn uniformly, moved by at most a fifth of itself (at least 1), within
/// `0..=max_literal`.
fn nudge(expr: &mut Expr, max_literal: u32, rng: &mut dyn RngCore) {
    let mut nth = rng.random_range(0..=expr.ops());
    with_nth_literal(expr, &mut nth, &mut |e| {
        if let Expr::Lit { value, .. } = e {
            *e = Expr::lit(EditSize::nudge(*value, max_literal, rng));
        }
    });
}

/// One literal, drawn uniformly, becomes an operation of itself and a new literal (small edits:
/// a one-digit literal added or taken away).
fn grow(expr: &mut Expr, max_literal: u32, size: EditSize, rng: &mut dyn RngCore) {
    let mut nth = rng.random_range(0..=expr.ops());
    let (op, fresh) = match size {
        EditSize::Free => {
            ([Op::Add, Op::Sub, Op::Mul][rng.random_range(0..3)], rng.random_range(0..=max_literal))
        }
        EditSize::Small => {
            ([Op::Add, Op::Sub][rng.random_range(0..2)], rng.random_range(1..=max_literal.clamp(1, 9)))
        }
    };
    let fresh = Expr::lit(fresh);
    let new_on_left = rng.random_bool(0.5);
    with_nth_literal(expr, &mut nth, &mut |e| {
        let old = std::mem::replace(e, Expr::lit(0));
        *e = if new_on_left { Expr::bin(op, fresh.clone(), old) } else { Expr::bin(op, old, fresh.clone()) };
    });
}

/// One operation of two literals, drawn uniformly, becomes one of its literals or (free edits) a
/// new one. Every tree with an operation has such an operation.
fn cut(expr: &mut Expr, max_literal: u32, size: EditSize, rng: &mut dyn RngCore) {
    let count = innermost_operations(expr);
    if count == 0 {
        return;
    }
    let mut nth = rng.random_range(0..count);
    let which = rng.random_range(0..if size == EditSize::Small { 2 } else { 3 });
    let fresh = Expr::lit(rng.random_range(0..=max_literal));
    with_nth_innermost(expr, &mut nth, &mut |e| {
        if let Expr::Bin { lhs, rhs, .. } = e {
            let kept = match which {
                0 => lhs.as_ref().clone(),
                1 => rhs.as_ref().clone(),
                _ => fresh.clone(),
            };
            *e = kept;
        }
    });
}

/// Operations whose operands are both literals.
fn innermost_operations(e: &Expr) -> u32 {
    match e {
        Expr::Lit { .. } => 0,
        Expr::Bin { lhs, rhs, .. } => match (lhs.as_ref(), rhs.as_ref()) {
            (Expr::Lit { .. }, Expr::Lit { .. }) => 1,
            _ => innermost_operations(lhs) + innermost_operations(rhs),
        },
    }
}

/// Applies `f` to the `nth` literal of `e` in pre-order; whether it was found.
fn with_nth_literal(e: &mut Expr, nth: &mut u32, f: &mut dyn FnMut(&mut Expr)) -> bool {
    match e {
        Expr::Lit { .. } if *nth == 0 => {
            f(e);
            true
        }
        Expr::Lit { .. } => {
            *nth -= 1;
            false
        }
        Expr::Bin { lhs, rhs, .. } => with_nth_literal(lhs, nth, f) || with_nth_literal(rhs, nth, f),
    }
}

/// Applies `f` to the `nth` operation of `e` in pre-order; whether it was found.
fn with_nth_operation(e: &mut Expr, nth: &mut u32, f: &mut dyn FnMut(&mut Expr)) -> bool {
    let Expr::Bin { .. } = e else { return false };
    if *nth == 0 {
        f(e);
        return true;
    }
    *nth -= 1;
    let Expr::Bin { lhs, rhs, .. } = e else { unreachable!("matched above") };
    with_nth_operation(lhs, nth, f) || with_nth_operation(rhs, nth, f)
}

/// Applies `f` to the `nth` operation of two literals of `e` in pre-order; whether it was found.
fn with_nth_innermost(e: &mut Expr, nth: &mut u32, f: &mut dyn FnMut(&mut Expr)) -> bool {
    let Expr::Bin { lhs, rhs, .. } = e else { return false };
    if matches!((lhs.as_ref(), rhs.as_ref()), (Expr::Lit { .. }, Expr::Lit { .. })) {
        if *nth == 0 {
            f(e);
            return true;
        }
        *nth -= 1;
        return false;
    }
    with_nth_innermost(lhs, nth, f) || with_nth_innermost(rhs, nth, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Domain;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Nodes of `a` and `b` (as pre-order sequences of literals and operators) that differ, plus
    /// the difference in length: a small number for one edit.
    fn changed_nodes(a: &Expr, b: &Expr) -> usize {
        fn nodes(e: &Expr, out: &mut Vec<String>) {
            match e {
                Expr::Lit { value, .. } => out.push(value.to_string()),
                Expr::Bin { op, lhs, rhs, .. } => {
                    out.push(op.symbol().to_string());
                    nodes(lhs, out);
                    nodes(rhs, out);
                }
            }
        }
        let (mut x, mut y) = (Vec::new(), Vec::new());
        nodes(a, &mut x);
        nodes(b, &mut y);
        // Longest common subsequence: nodes kept in order.
        let mut lcs = vec![vec![0usize; y.len() + 1]; x.len() + 1];
        for i in 0..x.len() {
            for j in 0..y.len() {
                lcs[i + 1][j + 1] =
                    if x[i] == y[j] { lcs[i][j] + 1 } else { lcs[i][j + 1].max(lcs[i + 1][j]) };
            }
        }
        x.len().max(y.len()) - lcs[x.len()][y.len()]
    }

    proptest! {
        #[test]
        fn mutations_have_the_asked_depth_and_stay_close(
            seed in 0u64..10_000,
            from in 1u32..=6,
            change in -2i32..=2,
            max_literal in prop::sample::select(vec![9u32, 20, 99]),
        ) {
            let to = (from as i32 + change).max(1) as u32;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let reference = Arith.generate(&GenSpec { depth: from, max_literal }, &mut rng).unwrap().problem;
            let spec = GenSpec { depth: to, max_literal };
            let Some(m) = Arith.mutate(&reference, &spec, EditSize::Free, &mut rng) else {
                // Only an edit that cannot be made valid (values past the bound) gives up.
                return Ok(());
            };
            let (a, r) = (Arith.analyze(&m, &Limits::default()).unwrap(), Arith.analyze(&reference, &Limits::default()).unwrap());
            prop_assert_eq!(a.depth, to, "{} from {}", m, reference);
            prop_assert!(!a.padded() && a.max_literal <= max_literal, "{} from {}", m, reference);
            prop_assert_ne!(a.hash, r.hash, "{} copies {}", m, reference);
            let hard = Limits::default();
            let edits = changed_nodes(&parse(&reference, &hard).unwrap(), &parse(&m, &hard).unwrap());
            // A same-depth edit changes one node; each grow adds two nodes, each cut removes two (and
            // may change the one it leaves).
            let most = if from == to { 1 } else { 3 * from.abs_diff(to) as usize };
            prop_assert!(edits <= most, "{} from {}: {} nodes changed", m, reference, edits);
        }
    }

    #[test]
    fn most_references_give_a_mutation_and_they_vary() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let reference = "(3+4)*12-5";
        for (depth, least) in [(1, 10), (2, 10), (3, 20), (4, 40), (5, 40)] {
            let spec = GenSpec { depth, max_literal: 20 };
            let made: std::collections::BTreeSet<String> =
                (0..200).filter_map(|_| Arith.mutate(reference, &spec, EditSize::Free, &mut rng)).collect();
            assert!(made.len() >= least, "depth {depth}: {} {made:?}", made.len());
        }
    }

    #[test]
    fn what_cannot_be_mutated_is_none() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let spec = |depth| GenSpec { depth, max_literal: 20 };
        assert_eq!(Arith.mutate("3+", &spec(1), EditSize::Free, &mut rng), None, "not a problem");
        assert_eq!(Arith.mutate("3+4", &spec(4), EditSize::Small, &mut rng), None, "too far from its depth");
    }

    /// The operators of `e` in pre-order, and its literals.
    fn operators_and_literals(e: &Expr) -> (Vec<char>, Vec<u32>) {
        fn walk(e: &Expr, ops: &mut Vec<char>, lits: &mut Vec<u32>) {
            match e {
                Expr::Lit { value, .. } => lits.push(*value),
                Expr::Bin { op, lhs, rhs, .. } => {
                    ops.push(op.symbol());
                    walk(lhs, ops, lits);
                    walk(rhs, ops, lits);
                }
            }
        }
        let (mut ops, mut lits) = (Vec::new(), Vec::new());
        walk(e, &mut ops, &mut lits);
        (ops, lits)
    }

    proptest! {
        /// A small same-depth edit keeps every operator and moves one literal by at most a fifth
        /// of itself (at least 1); a small grow adds `+` or `-` of a one-digit literal; a small
        /// cut leaves only literals the reference had.
        #[test]
        fn small_edits_keep_the_work(seed in 0u64..10_000, from in 1u32..=5, change in -1i32..=1) {
            let to = (from as i32 + change).max(1) as u32;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let reference = Arith.generate(&GenSpec { depth: from, max_literal: 99 }, &mut rng).unwrap().problem;
            let spec = GenSpec { depth: to, max_literal: 99 };
            let Some(m) = Arith.mutate(&reference, &spec, EditSize::Small, &mut rng) else { return Ok(()) };
            let hard = Limits::default();
            let (ops_r, lits_r) = operators_and_literals(&parse(&reference, &hard).unwrap());
            let (ops_m, lits_m) = operators_and_literals(&parse(&m, &hard).unwrap());
            if from == to {
                prop_assert_eq!(&ops_r, &ops_m, "{} from {}", m, reference);
                let moved: Vec<(u32, u32)> =
                    lits_r.iter().zip(&lits_m).filter(|(a, b)| a != b).map(|(a, b)| (*a, *b)).collect();
                prop_assert_eq!(moved.len(), 1, "{} from {}", m, reference);
                let (a, b) = moved[0];
                prop_assert!(a.abs_diff(b) <= (a / 5).max(1), "{} from {}", m, reference);
            } else if to > from {
                let added: Vec<char> = ops_m.iter().filter(|o| **o == '*').copied().collect();
                prop_assert_eq!(added.len(), ops_r.iter().filter(|o| **o == '*').count(), "{} from {}", m, reference);
                let mut left = lits_m.clone();
                for l in &lits_r {
                    let i = left.iter().position(|x| x == l).expect("every old literal stays");
                    left.remove(i);
                }
                prop_assert!(left.len() == 1 && (1..=9).contains(&left[0]), "{} from {}", m, reference);
            } else {
                let mut left = lits_r.clone();
                for l in &lits_m {
                    let i = left.iter().position(|x| x == l);
                    prop_assert!(i.is_some(), "{} from {}: {} is new", m, reference, l);
                    left.remove(i.unwrap());
                }
            }
        }
    }
}
