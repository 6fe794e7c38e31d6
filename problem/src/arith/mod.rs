//! Integer arithmetic: the first built-in domain.
//!
//! A problem is an expression over literals `0..=999`, binary `+ - *` and parentheses, with
//! optional spaces: `(12+7)*3-5`. Usual precedence, left-associative. Its answer is the exact
//! integer value in decimal, with a leading `-` when negative. A problem is invalid when it does
//! not parse, when any intermediate value exceeds 10^9 in magnitude, or when it exceeds the token
//! budget or the nesting bound of its [`Limits`]. This text form is stable: benchmark files and
//! external tools rely on it.

pub mod canon;
pub mod features;
mod gen;
mod mutate;
pub mod parse;
pub mod skills;
pub mod steps;

pub use canon::Canonical;
pub use parse::{parse, Expr, Op, MAX_ABS_VALUE, MAX_LITERAL};
pub use steps::{rewrite_chain, step_value};

use std::collections::BTreeMap;

use rand::RngCore;

use crate::{Analysis, Domain, EditSize, GenError, GenSpec, Generated, Limits, ProblemError};

/// The arithmetic domain.
#[derive(Debug, Clone, Copy, Default)]
pub struct Arith;

/// Digits, operators, parentheses, space, and `=` for solver scratchpads (`(3+4)*2=7*2=14`).
const ALPHABET: [char; 17] =
    ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '+', '-', '*', '(', ')', ' ', '='];

impl Arith {
    /// Analysis of an already parsed expression.
    pub fn analyze_expr(&self, expr: &Expr) -> Result<Analysis, ProblemError> {
        let value = expr.eval()?;
        let canonical = Canonical::of(expr);
        debug_assert_eq!(canonical.value(), i128::from(value));
        let surface_ops = expr.ops();
        let essential_ops = canonical.essential_ops();
        let padding = if surface_ops == 0 {
            0.0
        } else {
            (1.0 - f64::from(essential_ops) / f64::from(surface_ops)).clamp(0.0, 1.0)
        };
        Ok(Analysis {
            answer: value.to_string(),
            canonical: canonical.text().to_string(),
            hash: canonical.hash(),
            surface_ops,
            essential_ops,
            distinct_ops: canonical.distinct_ops(),
            depth: essential_ops,
            padding,
            max_literal: expr.max_literal(),
        })
    }
}

impl Domain for Arith {
    fn name(&self) -> &'static str {
        "arith"
    }

    fn alphabet(&self) -> &'static [char] {
        &ALPHABET
    }

    fn analyze(&self, text: &str, limits: &Limits) -> Result<Analysis, ProblemError> {
        let limits = limits.clamped();
        self.analyze_expr(&parse(text, &limits)?)
    }

    /// An answer matches when, with surrounding spaces removed, it is exactly the expected
    /// integer in canonical decimal: optional `-`, no `+`, no leading zeros, no `-0`. `"07"` and
    /// `"+7"` do not match `"7"`: the solver is asked for the one canonical spelling.
    fn answers_match(&self, expected: &str, given: &str) -> bool {
        let given = given.trim_matches(' ');
        is_canonical_integer(given) && given == expected
    }

    fn generate(&self, spec: &GenSpec, rng: &mut dyn RngCore) -> Result<Generated, GenError> {
        gen::generate(self, spec, rng)
    }

    fn pad(&self, problem: &str, identities: u32, rng: &mut dyn RngCore) -> Option<String> {
        gen::pad(self, problem, identities, rng)
    }

    fn mutate(
        &self,
        reference: &str,
        spec: &GenSpec,
        size: EditSize,
        rng: &mut dyn RngCore,
    ) -> Option<String> {
        mutate::mutate(self, reference, spec, size, rng)
    }

    /// The canonical form with each literal replaced by one `#` per digit: `9*(2+13)` is
    /// `#*(#+##)`, the shape of every product of a one-digit number and a sum of a one-digit and
    /// a two-digit one.
    fn shape(&self, analysis: &Analysis) -> String {
        analysis.canonical.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect()
    }

    fn features(&self, text: &str, analysis: &Analysis) -> BTreeMap<String, f64> {
        features::features(text, analysis)
    }

    /// The operator count of a step as [`step_value`] reads it.
    fn step_operations(&self, step: &str) -> Option<u32> {
        step_value(step).map(|(_, ops)| ops)
    }

    /// A step holds when it is a number (an intermediate value) or an expression whose value is
    /// `expected`, read by [`step_value`].
    fn step_holds(&self, step: &str, expected: &str) -> bool {
        match step_value(step) {
            Some((_, 0)) => true,
            Some((value, _)) => value.to_string() == expected,
            None => false,
        }
    }

    fn first_operation(&self, step: &str) -> Option<String> {
        steps::first_operation(step)
    }

    fn replace_first_operation(&self, step: &str, value: &str) -> Option<String> {
        steps::replace_first_operation(step, value)
    }

    /// Atomic skills of one-operation problems, compositions of longer ones
    /// ([`skills::skills_of`]).
    fn skills(&self, problem: &str) -> BTreeMap<crate::Skill, Vec<crate::Skill>> {
        parse(problem, &Limits::default()).map(|e| skills::skills_of(&e)).unwrap_or_default()
    }

    fn max_literal(&self) -> Option<u32> {
        Some(MAX_LITERAL)
    }

    /// The rewrite chain of [`steps`]: one operation evaluated per step.
    fn worked_solution(&self, problem: &str) -> Option<Vec<crate::WorkedStep>> {
        parse(problem, &Limits::default()).ok().and_then(|e| rewrite_chain(&e).ok())
    }
}

/// `-?(0|[1-9][0-9]*)` and not `-0`.
pub fn is_canonical_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && s != "-0"
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn analysis_of_a_padded_problem() {
        let a = Arith.analyze("(12+7)*1+0", &Limits::default()).unwrap();
        assert_eq!(a.answer, "19");
        assert_eq!(a.canonical, "7+12");
        assert_eq!((a.surface_ops, a.essential_ops, a.depth), (3, 1, 1));
        assert!((a.padding - 2.0 / 3.0).abs() < 1e-12);
        assert!(a.padded());
        let b = Arith.analyze("7 + 12", &Limits::default()).unwrap();
        assert_eq!((b.hash, b.padding, b.padded()), (a.hash, 0.0, false));
    }

    #[test]
    fn a_shape_keeps_the_operations_and_the_literals_digits() {
        let shape = |t: &str| Arith.shape(&Arith.analyze(t, &Limits::default()).unwrap());
        assert_eq!(shape("9*(2+13)"), "#*(#+##)");
        // Padding and the order of commutative operands are the canonical form's: gone.
        assert_eq!(shape("(13+2)*9*1+0"), shape("9*(2+13)"));
        assert_eq!(shape("3*5"), shape("7*4"));
        assert_ne!(shape("3*5"), shape("3*15"));
        assert_ne!(shape("3*5"), shape("3+5"));
        assert_eq!(shape("120-7"), "###-#");
    }

    #[test]
    fn answer_matching_is_exact() {
        assert!(Arith.answers_match("-52", "-52"));
        assert!(Arith.answers_match("52", " 52 "));
        for wrong in ["53", "052", "+52", "52.0", "", "-", "5 2", "fifty-two"] {
            assert!(!Arith.answers_match("52", wrong), "{wrong:?}");
        }
        assert!(!Arith.answers_match("0", "-0"));
        assert!(Arith.answers_match("0", "0"));
    }

    /// Expressions drawn from the grammar: literals, operators, redundant parentheses, spaces.
    fn arb_text() -> impl Strategy<Value = String> {
        let leaf =
            prop_oneof![(0u32..=12).prop_map(|v| v.to_string()), (0u32..=999).prop_map(|v| v.to_string())];
        leaf.prop_recursive(6, 40, 2, |inner| {
            (inner.clone(), prop::sample::select(vec!['+', '-', '*']), inner, any::<u8>()).prop_map(
                |(a, op, b, style)| match style % 4 {
                    0 => format!("{a}{op}{b}"),
                    1 => format!("({a}){op}({b})"),
                    2 => format!("{a} {op} ({b})"),
                    _ => format!("({a}{op}{b})"),
                },
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn canonical_form_has_the_same_value(text in arb_text()) {
            let limits = Limits { max_tokens: Limits::HARD_MAX_TOKENS, max_nesting: Limits::HARD_MAX_NESTING };
            let expr = parse(&text, &limits).unwrap();
            if let Ok(value) = expr.eval() {
                let canonical = Canonical::of(&expr);
                prop_assert_eq!(canonical.value(), i128::from(value), "{} -> {}", text, canonical.text());
                prop_assert!(canonical.essential_ops() <= expr.ops() + 1);
                prop_assert!(canonical.distinct_ops() <= canonical.essential_ops());
                // Canonicalizing the canonical text changes nothing.
                if let Ok(again) = parse(canonical.text(), &limits) {
                    let again = Canonical::of(&again);
                    prop_assert_eq!(again.text(), canonical.text());
                }
            }
        }

        #[test]
        fn print_parse_is_stable(text in arb_text()) {
            let limits = Limits { max_tokens: Limits::HARD_MAX_TOKENS, max_nesting: Limits::HARD_MAX_NESTING };
            let expr = parse(&text, &limits).unwrap();
            let printed = expr.to_string();
            let reparsed = parse(&printed, &limits).unwrap();
            prop_assert_eq!(reparsed.to_string(), printed);
            prop_assert_eq!(reparsed.ops(), expr.ops());
            prop_assert_eq!(reparsed.eval().ok(), expr.eval().ok());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = Arith.analyze(&text, &Limits::default());
        }

        #[test]
        fn arbitrary_grammar_soup_never_panics(text in "[0-9+*() -]{0,300}") {
            let _ = Arith.analyze(&text, &Limits::default());
        }
    }
}

#[cfg(test)]
mod worst_case {
    use super::*;

    /// The largest problems any configuration admits, analyzed on a thread with half the default
    /// stack of a spawned thread: recursion is bounded by the limits, not by the input.
    #[test]
    fn the_largest_admitted_problems_fit() {
        let limits = Limits { max_tokens: Limits::HARD_MAX_TOKENS, max_nesting: Limits::HARD_MAX_NESTING };
        let n = Limits::HARD_MAX_TOKENS;
        let nest = Limits::HARD_MAX_NESTING;
        let chain = |op: &str| {
            let mut s = "1".to_string();
            while s.len() + op.len() < n {
                s.push_str(op);
                s.push('1');
            }
            s
        };
        let mut right_deep = "1-(".repeat(nest - 1) + "1";
        right_deep.push_str(&")".repeat(nest - 1));
        let mut cases = vec![chain("+"), chain("*"), chain("-"), chain("+0*"), right_deep];
        cases.push(format!("{}1{}", "(".repeat(nest), ")".repeat(nest)));
        cases.push(format!("{}1{}", "(".repeat(nest + 1), ")".repeat(nest + 1)));
        let handle = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || {
                cases
                    .iter()
                    .map(|c| {
                        assert!(c.chars().count() <= Limits::HARD_MAX_TOKENS, "{}", c.len());
                        Arith.analyze(c, &limits).map(|a| a.essential_ops).map_err(|e| e.kind)
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap();
        let results = handle.join().expect("no stack overflow");
        assert!(results[..6].iter().all(|r| r.is_ok()), "{results:?}");
        assert_eq!(results[6], Err(crate::ErrorKind::TooDeep));
    }
}
