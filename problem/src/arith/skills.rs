//! The skills an arithmetic problem exercises.

use std::collections::BTreeMap;

use super::Expr;
use crate::Skill;

fn digits(v: u32) -> u8 {
    if v >= 100 {
        3
    } else if v >= 10 {
        2
    } else {
        1
    }
}

fn largest_literal(e: &Expr) -> u32 {
    match e {
        Expr::Lit { value, .. } => *value,
        Expr::Bin { lhs, rhs, .. } => largest_literal(lhs).max(largest_literal(rhs)),
    }
}

/// The skills a problem exercises, each with the atomic skills it is made of.
///
/// A single operation exercises its atomic skill; a longer problem exercises its compositions
/// (whose parts are the atomic skills at the problem's literal size). Atomic mastery is thus
/// measured on atomic problems alone, not blurred by the compositions around it.
pub fn skills_of(e: &Expr) -> BTreeMap<Skill, Vec<Skill>> {
    let size = digits(largest_literal(e));
    let mut out = BTreeMap::new();
    if let Expr::Bin { op, lhs, rhs, .. } = e {
        if matches!((lhs.as_ref(), rhs.as_ref()), (Expr::Lit { .. }, Expr::Lit { .. })) {
            out.insert(Skill::Atomic { op: op.symbol(), digits: size }, Vec::new());
            return out;
        }
    }
    fn walk(e: &Expr, size: u8, out: &mut BTreeMap<Skill, Vec<Skill>>) {
        if let Expr::Bin { op, lhs, rhs, .. } = e {
            let outer = op.symbol();
            for (child, left) in [(lhs, true), (rhs, false)] {
                if let Expr::Bin { op: inner, .. } = child.as_ref() {
                    let inner = inner.symbol();
                    out.insert(
                        Skill::Composition { outer, inner, left },
                        vec![
                            Skill::Atomic { op: outer, digits: size },
                            Skill::Atomic { op: inner, digits: size },
                        ],
                    );
                }
                walk(child, size, out);
            }
        }
    }
    walk(e, size, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arith::parse;
    use crate::Limits;

    fn expr(s: &str) -> Expr {
        parse(s, &Limits::default()).unwrap()
    }

    #[test]
    fn skills_of_a_problem() {
        let s = skills_of(&expr("(12+3)*4-5"));
        let names: Vec<String> = s.keys().map(|k| k.to_string()).collect();
        assert_eq!(names, vec!["(a+b)*c", "(a*b)-c"], "{names:?}");
        let atomic: Vec<String> = skills_of(&expr("12*3")).keys().map(|k| k.to_string()).collect();
        assert_eq!(atomic, vec!["* on 2-digit"]);
        assert_eq!(s[&Skill::Composition { outer: '*', inner: '+', left: true }].len(), 2);
        assert!(skills_of(&expr("7")).is_empty());
        assert!(skills_of(&expr("1-(2*3)")).contains_key(&Skill::Composition {
            outer: '-',
            inner: '*',
            left: false
        }));
    }
}
