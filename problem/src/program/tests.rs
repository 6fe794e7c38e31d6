use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;

fn analyze(text: &str) -> Analysis {
    Programs.analyze(text, &Limits::default()).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn a_deduction_answers_its_output() {
    let a = analyze("x=4;a=x*3;?a>9{a=a-5};a");
    assert_eq!(a.answer, "7");
    assert_eq!((a.surface_ops, a.essential_ops, a.depth, a.padded()), (3, 3, 3, false));
    assert!(Programs.accepts("x=4;a=x*3;?a>9{a=a-5};a", &a.answer, " 7 "));
    assert!(!Programs.accepts("x=4;a=x*3;?a>9{a=a-5};a", &a.answer, "07"));
}

#[test]
fn an_abduction_accepts_any_input_that_gives_its_output() {
    let problem = "a=x*x;a-x*4=0";
    let a = analyze(problem);
    assert_eq!(a.answer, "0", "the smallest input is the analysis's answer");
    assert!(Programs.accepts(problem, &a.answer, "0"));
    assert!(Programs.accepts(problem, &a.answer, "4"), "another input that gives 0");
    for wrong in ["3", "-4", "04", "100", "", "x"] {
        assert!(!Programs.accepts(problem, &a.answer, wrong), "{wrong:?}");
    }
    let e = Programs.analyze("a=x*2;a=7", &Limits::default()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsolvable);
    for constant in ["a=x*0;a+5=5", "a=x-x;a=0", "a=4*3;a=12", "?x<x+1{a=7}:{a=x};a=7"] {
        let e = Programs.analyze(constant, &Limits::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Constant, "{constant}: every input answers it");
        assert!(e.to_string().contains("must depend on x"), "{e}");
    }
    let a = analyze("?x<99{a=7}:{a=x};a=7");
    assert_eq!(a.answer, "0", "the output moves with x at the last input alone");
    let e = Programs.analyze("x=3;a=x*2;a=6", &Limits::default()).unwrap_err();
    assert_eq!((e.kind, e.at), (ErrorKind::Syntax, Some(0)), "an abduction may not bind its input");
}

#[test]
fn errors_say_what_and_where() {
    let e = Programs.analyze("a=x*3;a", &Limits::default()).unwrap_err();
    assert_eq!((e.kind, e.at), (ErrorKind::Unbound, Some(0)));
    assert!(e.to_string().contains("x=4"), "{e}");
    let e = Programs.analyze("x=9;#9{#9{x=x*x}};x", &Limits::default()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Range);
}

#[test]
fn the_generator_writes_the_work_it_is_asked_for_without_padding() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut kinds = [0; 2];
    for depth in 0..=8 {
        for _ in 0..40 {
            let g = Programs.generate(&GenSpec { depth, max_literal: 20 }, &mut rng).unwrap();
            let a = analyze(&g.problem);
            assert_eq!(
                (a.depth, a.answer.as_str(), a.padded()),
                (depth, g.answer.as_str(), false),
                "{}",
                g.problem
            );
            assert!(a.max_literal <= 20);
            kinds[usize::from(g.problem.contains(['=']) && !g.problem.starts_with("x="))] += 1;
        }
    }
    assert!(kinds[0] > 100 && kinds[1] > 100, "both kinds drawn: {kinds:?}");
    let again = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Programs.generate(&GenSpec { depth: 5, max_literal: 20 }, &mut rng).unwrap()
    };
    assert_eq!(again(3), again(3));
}

#[test]
fn worked_solutions_reach_the_answer_and_every_step_holds() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for depth in 1..=6 {
        for _ in 0..30 {
            let g = Programs.generate(&GenSpec { depth, max_literal: 20 }, &mut rng).unwrap();
            let Some(steps) = Programs.worked_solution(&g.problem) else {
                assert!(!g.problem.starts_with("x="), "a deduction has steps: {}", g.problem);
                continue;
            };
            assert_eq!(steps.last().unwrap().expression, g.answer, "{}", g.problem);
            for s in &steps {
                assert!(Programs.step_holds(&s.expression, &g.answer), "{}: {}", g.problem, s.expression);
                assert!(!s.expression.contains('|'));
            }
        }
    }
}

/// The judge's padding detector on 200+ generated programs and their padded variants of ten
/// kinds, and renamed copies: recall of padding, specificity on the generated ones, and the
/// canonical form of every variant equal to its source's.
#[test]
fn padding_is_flagged_and_generated_programs_are_not() {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let (mut clean, mut clean_flagged) = (0, 0);
    let mut by_kind: BTreeMap<String, (u32, u32, u32)> = BTreeMap::new();
    for i in 0..240 {
        let depth = 1 + i % 7;
        let g = Programs.generate(&GenSpec { depth, max_literal: 20 }, &mut rng).unwrap();
        let a = analyze(&g.problem);
        clean += 1;
        clean_flagged += u32::from(a.padded());
        for kind in PadKind::ALL {
            let Some(variant) = pad_with(&g.problem, kind, &mut rng) else { continue };
            let v =
                Programs.analyze(&variant, &Limits::default()).unwrap_or_else(|e| panic!("{variant}: {e}"));
            assert!(
                Programs.accepts(&variant, &v.answer, &a.answer) || v.answer == a.answer,
                "{kind:?}: {variant}"
            );
            let entry = by_kind.entry(format!("{kind:?}")).or_default();
            entry.0 += 1;
            let caught = if kind == PadKind::Rename { v.hash == a.hash } else { v.padded() };
            entry.1 += u32::from(caught);
            entry.2 += u32::from(v.hash == a.hash);
        }
    }
    let specificity = 1.0 - f64::from(clean_flagged) / f64::from(clean);
    eprintln!("specificity {specificity} on {clean}; (variants, caught, same hash) by kind: {by_kind:?}");
    assert!(specificity >= 0.98, "specificity {specificity}");
    let (n, caught) = by_kind.values().fold((0, 0), |(n, c), e| (n + e.0, c + e.1));
    let recall = f64::from(caught) / f64::from(n);
    assert_eq!(by_kind.len(), PadKind::ALL.len(), "every kind applied: {by_kind:?}");
    assert!(n >= 200 && by_kind.values().all(|e| e.0 >= 20), "{by_kind:?}");
    assert!(recall >= 0.95, "recall {recall}: {by_kind:?}");
    // Copies are caught up to renaming and padding: the same hash as the source.
    for (kind, (n, _, same_hash)) in &by_kind {
        if kind != "Copy" {
            assert!(f64::from(*same_hash) >= 0.95 * f64::from(*n), "{kind}: {same_hash} of {n} same hash");
        }
    }
}

#[test]
fn a_padded_prior_keeps_answer_and_canonical_form() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let g = Programs.generate(&GenSpec { depth: 4, max_literal: 20 }, &mut rng).unwrap();
    let padded = Programs.pad(&g.problem, 3, &mut rng).unwrap();
    let (a, b) = (analyze(&g.problem), analyze(&padded));
    assert!(b.padded() && b.surface_ops >= a.surface_ops + 3, "{padded}");
    assert_eq!(b.answer, a.answer);
}

#[test]
fn skills_name_statements_and_what_feeds_them() {
    let skills = Programs.skills("x=4;a=x*3;?a>9{a=a-5};a");
    assert!(skills.contains_key(&Skill::Atomic { op: '*', digits: 1 }));
    assert!(skills.contains_key(&Skill::Composition { outer: '?', inner: '*', left: true }));
    assert!(Programs.skills("x=").is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Generated programs padded by random edits: the answer is kept, and the canonical form is
    /// valid, has the same work and is its own canonical form.
    #[test]
    fn canonical_forms_are_fixed_points(seed in any::<u64>(), depth in 0u32..8, edits in 0u32..4) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let g = Programs.generate(&GenSpec { depth, max_literal: 20 }, &mut rng).unwrap();
        let text = Programs.pad(&g.problem, edits, &mut rng).unwrap_or(g.problem.clone());
        let a = analyze(&text);
        prop_assert!(Programs.accepts(&text, &a.answer, &g.answer), "{}", text);
        let c = analyze(&a.canonical);
        prop_assert_eq!(&c.canonical, &a.canonical, "{}", text);
        prop_assert_eq!(c.essential_ops, a.essential_ops, "{}", text);
        prop_assert!(!c.padded(), "{} -> {}", text, a.canonical);
    }

    /// Untrusted text of the language's characters: never a panic, and a valid problem's canonical
    /// form is valid, has its answer and its essential work, and is its own canonical form.
    #[test]
    fn fuzzed_programs_crash_nothing(text in "[0-9a-ex+*()=;?:{}#<> -]{0,60}") {
        if let Ok(a) = Programs.analyze(&text, &Limits::default()) {
            let c = analyze(&a.canonical);
            prop_assert_eq!(&c.canonical, &a.canonical);
            prop_assert_eq!(c.essential_ops, a.essential_ops);
            prop_assert!(Programs.accepts(&a.canonical, &c.answer, &a.answer));
        }
    }
}
