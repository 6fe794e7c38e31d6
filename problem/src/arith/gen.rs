//! Seeded random problems of a given composition depth.
//!
//! A draw picks a random binary tree with `depth` operators (the operator count of the left
//! subtree uniform over what is left), operators uniformly from `+ - *`, and literals uniformly
//! from `0..=max_literal`. Draws that are invalid (a value past 10^9) or padded (canonical form
//! shorter than `depth`, e.g. `x*1` or `x-x`) are rejected and drawn again, so every generated
//! problem has exactly `depth` essential operations.

use rand::{Rng, RngCore};

use super::parse::{Expr, Op, MAX_LITERAL};
use super::Arith;
use crate::{GenError, GenSpec, Generated};

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
    fn impossible_specs_are_errors() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let err = Arith.generate(&GenSpec { depth: 3, max_literal: 0 }, &mut rng).unwrap_err();
        assert!(err.0.contains("no depth-3 problem"), "{err}");
        let err = Arith.generate(&GenSpec { depth: 1, max_literal: 1000 }, &mut rng).unwrap_err();
        assert_eq!(err.0, "max_literal 1000 exceeds 999");
    }
}
