//! The arithmetic domain on any text: parse, evaluate, canonical form, features, under the largest
//! limits a configuration may set. Nothing may panic; a valid problem's canonical form keeps its
//! value, and printing then parsing gives the same expression.
#![no_main]

use libfuzzer_sys::fuzz_target;
use problem::arith::{parse, Arith, Canonical};
use problem::{Domain, Limits};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let limits = Limits { max_tokens: Limits::HARD_MAX_TOKENS, max_nesting: Limits::HARD_MAX_NESTING };
    let analysis = Arith.analyze(text, &limits);
    let Ok(expr) = parse(text, &limits) else {
        assert!(analysis.is_err(), "parse failed but analysis succeeded on {text:?}");
        return;
    };
    match expr.eval() {
        Ok(value) => {
            let canonical = Canonical::of(&expr);
            assert_eq!(canonical.value(), i128::from(value), "canonical form of {text:?} changed its value");
            let a = analysis.expect("a problem that evaluates is valid");
            assert_eq!(a.answer, value.to_string());
            assert!((0.0..=1.0).contains(&a.padding));
            let _ = Arith.features(text, &a);
        }
        Err(_) => assert!(analysis.is_err()),
    }
    // Printing normalizes spaces and parentheses; the printed text parses to the same expression.
    let printed = expr.to_string();
    let again = parse(&printed, &Limits { max_tokens: usize::MAX, max_nesting: usize::MAX })
        .expect("a printed expression parses");
    assert_eq!(again.to_string(), printed);
});
