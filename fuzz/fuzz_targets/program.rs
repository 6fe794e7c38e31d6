//! The program domain on any text, under the largest limits a configuration may set: parse, run,
//! canonical form, worked solution, answer checks. Nothing may panic; a valid problem's canonical
//! form is valid, keeps the answer and the essential work, and is its own canonical form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use problem::{Domain, Limits, Programs};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let limits = Limits { max_tokens: Limits::HARD_MAX_TOKENS, max_nesting: Limits::HARD_MAX_NESTING };
    let _ = Programs.step_holds(text, "0");
    let Ok(a) = Programs.analyze(text, &limits) else { return };
    assert!(Programs.accepts(text, &a.answer, &a.answer), "{text:?}");
    let c = Programs.analyze(&a.canonical, &limits).expect("a canonical form is valid");
    assert_eq!((c.canonical.as_str(), c.essential_ops), (a.canonical.as_str(), a.essential_ops), "{text:?}");
    if let Some(steps) = Programs.worked_solution(text) {
        assert!(steps.iter().all(|s| Programs.step_holds(&s.expression, &a.answer)), "{text:?}");
    }
    let _ = (Programs.features(text, &a), Programs.skills(text));
});
