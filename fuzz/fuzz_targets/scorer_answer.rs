//! What a plug-in scorer answers, on any bytes: the HTTP body and the process's answer lines.
//! Never a panic; whatever passes the checks is a score in [0, 1] for the right problem.
#![no_main]

use scorers::{answer_body, answer_line, check_responses, check_score, ScoreRequest};
use libfuzzer_sys::fuzz_target;

fn request(id: &str) -> ScoreRequest {
    ScoreRequest {
        id: id.into(),
        problem: "1+2".into(),
        canonical: "1+2".into(),
        answer: "3".into(),
        solve_rate: Some(0.5),
        features: Default::default(),
    }
}

fuzz_target!(|data: &[u8]| {
    let batch: Vec<ScoreRequest> = ["0", "1", "2"].map(request).into();
    let checked = |results: Vec<scorers::ItemResult>| {
        assert_eq!(results.len(), batch.len());
        for r in results.into_iter().map(check_score) {
            if let Ok(s) = r {
                assert!((0.0..=1.0).contains(&s.value));
            }
        }
    };
    if let Ok(results) = answer_body(&batch, data) {
        checked(results);
    }
    let lines: Vec<_> = data.split(|&b| b == b'\n').take(batch.len()).map(answer_line).collect();
    if let Ok(results) = check_responses(&batch, lines) {
        checked(results);
    }
});
