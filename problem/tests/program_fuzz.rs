//! The program domain on untrusted text: generated programs, their padded variants, and both
//! mutated character by character, plus random text over the alphabet. Nothing may panic; a
//! valid problem's canonical form is valid, keeps the answer and the essential work, and is its
//! own canonical form; a deduction's worked solution reaches its answer through steps that hold.
//!
//! `SELFPLAY_FUZZ_CASES` sets how many inputs (default 20,000; docs/RELIABILITY.md records a run
//! of 100,000).

use problem::program::{pad_with, PadKind};
use problem::{Domain, GenSpec, Limits, Programs};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CHARS: &[u8] = b"0123456789+-*()abcdex=;?:{}#<> |";

fn mutate(text: &str, rng: &mut ChaCha8Rng) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let c = CHARS[rng.random_range(0..CHARS.len())];
        let at = rng.random_range(0..=bytes.len());
        match rng.random_range(0..3) {
            0 => bytes.insert(at, c),
            1 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ if at < bytes.len() => bytes[at] = c,
            _ => bytes.push(c),
        }
    }
    String::from_utf8(bytes).expect("ASCII")
}

#[test]
fn fuzzed_programs_crash_nothing_and_keep_their_invariants() {
    let cases: usize =
        std::env::var("SELFPLAY_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let mut rng = ChaCha8Rng::seed_from_u64(0x5e1f);
    let limits = Limits { max_tokens: Limits::HARD_MAX_TOKENS, max_nesting: Limits::HARD_MAX_NESTING };
    let (mut valid, mut kinds) = (0usize, std::collections::BTreeMap::<&str, usize>::new());
    for i in 0..cases {
        let text = if i % 10 == 0 {
            (0..rng.random_range(0..60))
                .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
                .collect()
        } else {
            let depth = rng.random_range(0..=9);
            let g = Programs.generate(&GenSpec { depth, max_literal: 99 }, &mut rng).expect("generated");
            let source = if rng.random_bool(0.5) {
                let kind = PadKind::ALL[rng.random_range(0..PadKind::ALL.len())];
                pad_with(&g.problem, kind, &mut rng).unwrap_or(g.problem)
            } else {
                g.problem
            };
            if rng.random_bool(0.2) {
                source
            } else {
                mutate(&source, &mut rng)
            }
        };
        let analysis = match Programs.analyze(&text, &limits) {
            Ok(a) => a,
            Err(e) => {
                *kinds.entry(e.kind.as_str()).or_default() += 1;
                assert!(e.at.is_none_or(|at| at <= text.len()), "{text:?}: {e}");
                continue;
            }
        };
        valid += 1;
        assert!(
            (0.0..=1.0).contains(&analysis.padding) && analysis.essential_ops <= analysis.surface_ops,
            "{text}"
        );
        assert!(Programs.accepts(&text, &analysis.answer, &analysis.answer), "{text}");
        let canonical = Programs
            .analyze(&analysis.canonical, &limits)
            .unwrap_or_else(|e| panic!("{text} -> {}: {e}", analysis.canonical));
        assert_eq!(canonical.canonical, analysis.canonical, "{text}");
        assert_eq!(canonical.essential_ops, analysis.essential_ops, "{text}");
        assert!(Programs.accepts(&analysis.canonical, &canonical.answer, &analysis.answer), "{text}");
        if let Some(steps) = Programs.worked_solution(&text) {
            assert_eq!(steps.last().map(|s| s.expression.as_str()), Some(analysis.answer.as_str()), "{text}");
            assert!(steps.iter().all(|s| Programs.step_holds(&s.expression, &analysis.answer)), "{text}");
        }
        let _ = Programs.features(&text, &analysis);
        let _ = Programs.skills(&text);
        let wrong = mutate(&analysis.answer, &mut rng);
        let _ = Programs.accepts(&text, &analysis.answer, &wrong);
        let _ = Programs.step_holds(&mutate(&text, &mut rng), &analysis.answer);
    }
    eprintln!("{cases} inputs: {valid} valid; invalid by kind {kinds:?}");
    // The mutations must reach both sides of the judge, or the test says little.
    assert!(valid > cases / 10 && valid < cases * 9 / 10, "{valid} valid of {cases}");
}
