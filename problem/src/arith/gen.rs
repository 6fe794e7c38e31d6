//! Seeded random problems of a given composition depth.
//!
//! A draw picks a random binary tree with `depth` operators (the operator count of the left
//! subtree uniform over what is left), operators uniformly from `+ - *`, and literals uniformly
//! from `0..=max_literal`. Draws that are invalid (a value past 10^9) or padded (canonical form
//! shorter than `depth`, e.g. `x*1` or `x-x`) are rejected and drawn again, so every generated
//! problem has exactly `depth` essential operations.
//!
//! [`pad`] adds identities to a problem (`x+0`, `x*1`, ...) without changing its value or its
//! canonical form: the padding a proposer writes, for teaching a proposer that prior.

use rand::{Rng, RngCore};

use super::parse::{parse, Expr, Op, MAX_LITERAL};
use super::Arith;
use crate::{GenError, GenSpec, Generated, Limits};

/// Draws before giving up: a spec that is this hard to satisfy is a spec to change.
const MAX_DRAWS: usize = 10_000;
/// Deepest problem the generator writes (the default token budget holds about 60 operators).
pub const MAX_GEN_DEPTH: u32 = 64;

pub(super) fn generate(arith: &Arith, spec: &GenSpec, rng: &mut dyn RngCore) -> Result<Generated, GenError> {
    if spec.max_literal > MAX_LITERAL {
        return Err(GenError(format!("max_literal {} exceeds {MAX_LITERAL}", spec.max_literal)));
    }
    if spec.depth > MAX_GEN_DEPTH {
        return Err(GenError(format!("depth {} exceeds {MAX_GEN_DEPTH}", spec.depth)));
    }
    for _ in 0..MAX_DRAWS {
        let expr = draw(spec.depth, spec.max_literal, rng);
        match arith.analyze_expr(&expr) {
            Ok(a) if a.essential_ops == spec.depth => {
                return Ok(Generated { problem: expr.to_string(), answer: a.answer, depth: spec.depth })
            }
            _ => continue,
        }
    }
    Err(GenError(format!(
        "no depth-{} problem without padding or out-of-range values in {MAX_DRAWS} draws with literals \
         0..={}; use larger literals or a smaller depth",
        spec.depth, spec.max_literal
    )))
}

/// `problem` with `identities` identity operations, each around a subexpression drawn uniformly
/// from the nodes of the tree so far (literals and operations alike): one of `x+0`, `0+x`, `x-0`,
/// `x*1`, `1*x`. `None` when `problem` is not a valid problem.
pub(super) fn pad(arith: &Arith, problem: &str, identities: u32, rng: &mut dyn RngCore) -> Option<String> {
    let hard = Limits { max_tokens: Limits::HARD_MAX_TOKENS, max_nesting: Limits::HARD_MAX_NESTING };
    let mut expr = parse(problem, &hard).ok()?;
    let before = arith.analyze_expr(&expr).ok()?;
    for _ in 0..identities {
        let nodes = 2 * expr.ops() + 1;
        let mut nth = rng.random_range(0..nodes);
        let (op, identity_left) =
            [(Op::Add, false), (Op::Add, true), (Op::Sub, false), (Op::Mul, false), (Op::Mul, true)]
                [rng.random_range(0..5)];
        let identity = Expr::lit(if op == Op::Mul { 1 } else { 0 });
        wrap_nth(&mut expr, &mut nth, &mut |x| {
            if identity_left {
                Expr::bin(op, identity.clone(), x)
            } else {
                Expr::bin(op, x, identity.clone())
            }
        });
    }
    let padded = expr.to_string();
    debug_assert!(
        arith
            .analyze_expr(&expr)
            .is_ok_and(|a| a.hash == before.hash && a.surface_ops == before.surface_ops + identities),
        "padding {problem} as {padded} changed its canonical form"
    );
    Some(padded)
}

/// Replaces the `nth` node of `e` in pre-order by `wrap` of it; whether it was found.
fn wrap_nth(e: &mut Expr, nth: &mut u32, wrap: &mut dyn FnMut(Expr) -> Expr) -> bool {
    if *nth == 0 {
        let inner = std::mem::replace(e, Expr::lit(0));
        *e = wrap(inner);
        return true;
    }
    *nth -= 1;
    match e {
        Expr::Lit { .. } => false,
        Expr::Bin { lhs, rhs, .. } => wrap_nth(lhs, nth, wrap) || wrap_nth(rhs, nth, wrap),
    }
}

fn draw(ops: u32, max_literal: u32, rng: &mut dyn RngCore) -> Expr {
    if ops == 0 {
        return Expr::lit(rng.random_range(0..=max_literal));
    }
    let left = rng.random_range(0..ops);
    let op = [Op::Add, Op::Sub, Op::Mul][rng.random_range(0..3)];
    let lhs = draw(left, max_literal, rng);
    let rhs = draw(ops - 1 - left, max_literal, rng);
    Expr::bin(op, lhs, rhs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Domain, Limits};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn gen_many(spec: GenSpec, seed: u64, n: usize) -> Vec<Generated> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| Arith.generate(&spec, &mut rng).unwrap()).collect()
    }

    #[test]
    fn generated_problems_have_their_depth_and_answer() {
        for depth in 0..=8 {
            let spec = GenSpec { depth, max_literal: 99 };
            for g in gen_many(spec, u64::from(depth), 50) {
                let a = Arith.analyze(&g.problem, &Limits::default()).unwrap();
                assert_eq!(a.answer, g.answer, "{}", g.problem);
                assert_eq!((a.surface_ops, a.depth, g.depth), (depth, depth, depth), "{}", g.problem);
                assert!(!a.padded());
            }
        }
    }

    #[test]
    fn same_seed_same_problems() {
        let spec = GenSpec { depth: 4, max_literal: 20 };
        assert_eq!(gen_many(spec, 7, 20), gen_many(spec, 7, 20));
        assert_ne!(gen_many(spec, 7, 20), gen_many(spec, 8, 20));
    }

    #[test]
    fn literals_stay_in_range_and_cover_it() {
        let spec = GenSpec { depth: 1, max_literal: 9 };
        let mut seen = [false; 10];
        for g in gen_many(spec, 1, 400) {
            for lit in g.problem.split(['+', '-', '*']) {
                let v: usize = lit.parse().unwrap();
                assert!(v <= 9);
                seen[v] = true;
            }
        }
        // 0 and 1 only appear where they are not identities (`0-x`, `1+x`, ...).
        assert!(seen.iter().all(|&s| s), "{seen:?}");
    }

    #[test]
    fn padding_keeps_the_value_and_the_canonical_form() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut forms = std::collections::BTreeSet::new();
        for depth in 0..=6 {
            for g in gen_many(GenSpec { depth, max_literal: 20 }, 40 + u64::from(depth), 40) {
                let before = Arith.analyze(&g.problem, &Limits::default()).unwrap();
                for identities in 0..=3 {
                    let padded = Arith.pad(&g.problem, identities, &mut rng).unwrap();
                    let a = Arith.analyze(&padded, &Limits::default()).unwrap();
                    let what = format!("{} padded as {padded}", g.problem);
                    assert_eq!((a.answer.as_str(), a.hash), (g.answer.as_str(), before.hash), "{what}");
                    assert_eq!((a.surface_ops, a.essential_ops), (depth + identities, depth), "{what}");
                    assert_eq!(a.padded(), identities > 0, "{what}");
                    if identities == 1 {
                        // Which identity, and which side of its operand.
                        let form =
                            ["+0", "0+", "-0", "*1", "1*"].iter().find(|f| padded.contains(*f)).copied();
                        forms.insert(form.unwrap_or_else(|| panic!("no identity in {what}")));
                    }
                }
            }
        }
        assert_eq!(forms.len(), 5, "{forms:?}");
    }

    #[test]
    fn padding_reaches_every_subexpression_and_is_reproducible() {
        // `(2+3)*4` has five nodes and there are five identities: the text keeps the tree, so
        // 25 different padded texts, each drawn.
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let padded: std::collections::BTreeSet<String> =
            (0..400).map(|_| Arith.pad("(2+3)*4", 1, &mut rng).unwrap()).collect();
        assert_eq!(padded.len(), 25, "{padded:?}");
        assert!(padded.contains("(2+3)*(4*1)") && padded.contains("(0+2+3)*4"), "{padded:?}");
        let pad = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..20).map(|_| Arith.pad("7*(8-2)+5", 2, &mut rng).unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(pad(1), pad(1));
        assert_ne!(pad(1), pad(2));
        assert_eq!(Arith.pad("7+", 1, &mut rng), None);
        assert_eq!(Arith.pad("999*999*999*999", 1, &mut rng), None);
    }

    #[test]
    fn impossible_specs_are_errors() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let err = Arith.generate(&GenSpec { depth: 3, max_literal: 0 }, &mut rng).unwrap_err();
        assert!(err.0.contains("no depth-3 problem"), "{err}");
        let err = Arith.generate(&GenSpec { depth: 1, max_literal: 1000 }, &mut rng).unwrap_err();
        assert_eq!(err.0, "max_literal 1000 exceeds 999");
    }
}
