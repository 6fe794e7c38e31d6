//! Numeric features of a problem's structure, for interestingness scorers.
//!
//! Computed on the canonical form (so `+0` and `*1` padding does not change them) plus a few of the
//! written text: operator counts, operator pairs (an operator applied to another's result), tree
//! height, literal sizes, and padding. Names are stable: user scorers receive them.

use std::collections::BTreeMap;

use super::parse::{parse, Expr, Op};
use crate::{Analysis, Limits};

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Add => "add",
        Op::Sub => "sub",
        Op::Mul => "mul",
    }
}

/// Feature names, in a fixed order.
pub const FEATURES: [&str; 21] = [
    "ops",
    "ops_written",
    "padding",
    "height",
    "add",
    "sub",
    "mul",
    "add_in_add",
    "add_in_sub",
    "add_in_mul",
    "sub_in_add",
    "sub_in_sub",
    "sub_in_mul",
    "mul_in_add",
    "mul_in_sub",
    "mul_in_mul",
    "literals",
    "distinct_literals",
    "max_digits",
    "trivial_literals",
    "chars",
];

struct Walk {
    f: BTreeMap<String, f64>,
    literals: Vec<u32>,
}

impl Walk {
    fn bump(&mut self, key: String) {
        *self.f.entry(key).or_insert(0.0) += 1.0;
    }

    /// Height of the subtree.
    fn visit(&mut self, e: &Expr, parent: Option<Op>) -> u32 {
        match e {
            Expr::Lit { value, .. } => {
                self.literals.push(*value);
                0
            }
            Expr::Bin { op, lhs, rhs, .. } => {
                self.bump(op_name(*op).to_string());
                if let Some(p) = parent {
                    self.bump(format!("{}_in_{}", op_name(*op), op_name(p)));
                }
                1 + self.visit(lhs, Some(*op)).max(self.visit(rhs, Some(*op)))
            }
        }
    }
}

/// The features of a valid problem `text` with its analysis; every name in [`FEATURES`] is set.
pub fn features(text: &str, analysis: &Analysis) -> BTreeMap<String, f64> {
    let mut walk = Walk { f: FEATURES.iter().map(|k| (k.to_string(), 0.0)).collect(), literals: Vec::new() };
    // The canonical form is itself a problem in this syntax; when it is not (it always is for
    // this domain), the written text stands in.
    let limits = Limits { max_tokens: Limits::HARD_MAX_TOKENS, max_nesting: Limits::HARD_MAX_NESTING };
    let height = match parse(&analysis.canonical, &limits).or_else(|_| parse(text, &limits)) {
        Ok(expr) => walk.visit(&expr, None),
        Err(_) => 0,
    };
    let mut f = walk.f;
    let lits = &walk.literals;
    let digits = |v: u32| {
        if v >= 100 {
            3.0
        } else if v >= 10 {
            2.0
        } else {
            1.0
        }
    };
    let mut distinct = lits.clone();
    distinct.sort_unstable();
    distinct.dedup();
    f.insert("ops".into(), f64::from(analysis.essential_ops));
    f.insert("ops_written".into(), f64::from(analysis.surface_ops));
    f.insert("padding".into(), analysis.padding);
    f.insert("height".into(), f64::from(height));
    f.insert("literals".into(), lits.len() as f64);
    f.insert("distinct_literals".into(), distinct.len() as f64);
    f.insert("max_digits".into(), lits.iter().map(|&v| digits(v)).fold(0.0, f64::max));
    f.insert("trivial_literals".into(), lits.iter().filter(|&&v| v <= 1).count() as f64);
    f.insert("chars".into(), text.chars().count() as f64);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Domain;

    fn of(text: &str) -> BTreeMap<String, f64> {
        let a = crate::Arith.analyze(text, &Limits::default()).unwrap();
        features(text, &a)
    }

    #[test]
    fn features_describe_the_canonical_structure() {
        let f = of("(2+3)*4");
        assert_eq!(f.len(), FEATURES.len());
        assert_eq!((f["ops"], f["add"], f["mul"], f["add_in_mul"], f["height"]), (2.0, 1.0, 1.0, 1.0, 2.0));
        assert_eq!((f["literals"], f["max_digits"], f["padding"]), (3.0, 1.0, 0.0));
        // Padding is seen in `padding` and `ops_written`, not in the structure.
        let padded = of("(2+3)*4*1+0");
        for k in ["ops", "add", "mul", "add_in_mul", "height", "literals"] {
            assert_eq!(padded[k], f[k], "{k}");
        }
        assert!(padded["padding"] > 0.0 && padded["ops_written"] > f["ops_written"]);
        assert_eq!(of("7")["height"], 0.0);
    }
}
