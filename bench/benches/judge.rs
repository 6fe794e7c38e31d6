//! Judge throughput on depth-6 problems: parse + evaluate + canonicalize, against parse +
//! evaluate alone (the reference), measured in the same run.
//!
//! `cargo bench -p selfplay-bench --bench judge`

use std::hint::black_box;

use problem::arith::parse;
use problem::{Arith, Domain, Limits};
use selfplay_bench::{median_time, problems};

fn main() {
    let n = 20_000;
    let texts = problems(6, n, 1);
    let limits = Limits::default();
    let reference = median_time(7, || {
        for t in &texts {
            black_box(parse(t, &limits).unwrap().eval().unwrap());
        }
    });
    let full = median_time(7, || {
        for t in &texts {
            black_box(Arith.analyze(t, &limits).unwrap());
        }
    });
    let batch = median_time(7, || {
        black_box(judge::judge_batch(&Arith, &limits, &texts, &|_h: u64| false));
    });
    let per_s = |d: std::time::Duration| n as f64 / d.as_secs_f64();
    let report = serde_json::json!({
        "bench": "judge",
        "problems": n,
        "depth": 6,
        "parse_eval_per_s": per_s(reference).round(),
        "analyze_per_s": per_s(full).round(),
        "judge_batch_per_s": per_s(batch).round(),
        "analyze_us_per_problem": full.as_secs_f64() * 1e6 / n as f64,
        "analyze_over_parse_eval": full.as_secs_f64() / reference.as_secs_f64(),
    });
    println!("{report}");
}
