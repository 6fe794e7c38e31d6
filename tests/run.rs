//! End-to-end tests of the experiment daemon: a real (tiny) run, resume, stop, bad config.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{metrics, ok, run_records as records, selfplay};
use serde_json::Value;

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tiny.toml");

/// A valid problem's shape, as `Arith::shape` writes it: its canonical form, digits as `#`.
fn shape(r: &store::ProblemRecord) -> String {
    r.canonical.as_ref().unwrap().chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect()
}

#[test]
fn literal_bounds_are_asked_for_and_kept_across_a_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let cfg = dir.path().join("bounds.toml");
    let tiny = std::fs::read_to_string(TINY).unwrap();
    let bounded = tiny.replace("[warm_start]\n", "[warm_start]\nproposer_wide_literals = 0.25\n");
    assert_ne!(bounded, tiny, "tiny.toml has a [warm_start] table");
    let bounds = "[[controller.literals]]\nmax_literal = 20\nshare = 3.0\nmin_depth = 2\n\
                  [[controller.literals]]\nmax_literal = 99\nshare = 1.0\nstart = 1.0\n";
    std::fs::write(&cfg, format!("{bounded}\n{bounds}")).unwrap();
    let c = cfg.to_str().unwrap();
    ok(&["run", "--config", c, "--run-dir", r, "--rounds", "3"]);
    let out = ok(&["run", "--config", c, "--run-dir", r, "--rounds", "2"]);
    assert!(out.contains("resumed; ran rounds 4..5"), "{out}");
    let records = records(&run);
    assert_eq!(records.len(), 5 * 8);
    // Both bounds were asked for, the narrow one from two operations on.
    let asked = |b| records.iter().filter(|r| r.literal_target == Some(b)).count();
    assert!(asked(20) > asked(99) && asked(99) > 0 && asked(20) + asked(99) == records.len());
    assert!(records.iter().all(|r| r.literal_target != Some(20) || r.difficulty_target >= Some(2)));
    // The target term sees the bound.
    for r in records.iter().filter(|r| r.valid) {
        let miss = r.rewards.as_ref().unwrap().target_miss;
        assert_eq!(miss, Some(f64::from(u8::from(!common::on_target(r)))), "{r:?}");
    }
    for line in metrics(&run) {
        let levels = line["difficulty_levels"].as_object().unwrap();
        assert_eq!(levels.keys().collect::<Vec<_>>(), ["20", "99"], "{line}");
        assert_eq!(levels["20"], line["difficulty_level"]);
    }
    // Reconfigured without its bounds, the same run directory is refused before any round.
    let err = common::fails(&["run", "--config", TINY, "--run-dir", r, "--rounds", "1", "--reconfigure"]);
    assert!(err.contains("the proposer's checkpoint teaches the proposer literal bounds [20, 99]"), "{err}");
    assert_eq!(metrics(&run).len(), 5);
}

/// The share of copies by key, as the judge's crowding term and the controller keep it: the
/// first `window` problems averaged plainly, later ones at `1 / window`.
#[derive(Default)]
struct Shares(std::collections::HashMap<String, (f64, u64)>);

impl Shares {
    fn observe(&mut self, key: String, copy: bool, window: u32) {
        let (share, n) = self.0.entry(key).or_insert((0.0, 0));
        *n += 1;
        *share += (1.0 / *n as f64).max(1.0 / f64::from(window)) * (f64::from(u8::from(copy)) - *share);
    }

    fn share(&self, key: &str, window: u32) -> Option<f64> {
        self.0.get(key).filter(|(_, n)| *n >= u64::from(window)).map(|(s, _)| *s)
    }
}

#[test]
fn crowded_shapes_are_paid_less_and_exhausted_depths_skipped_across_a_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let cfg = dir.path().join("crowding.toml");
    let tiny = std::fs::read_to_string(TINY).unwrap();
    // A level held at 4 and a wide spread, so that depths 1–3 are asked below the level's floor.
    let (window, exhausted_window, exhausted) = (2, 4, 0.25);
    std::fs::write(
        &cfg,
        format!(
            "{tiny}\n[reward.repetition]\ncrowding_window = {window}\n\
             [controller]\nexhausted = {exhausted}\nexhausted_window = {exhausted_window}\n\
             start = 4.0\ngain = 0.0\nspread = 3\n"
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    ok(&["run", "--config", c, "--run-dir", r, "--rounds", "30"]);
    let out = ok(&["run", "--config", c, "--run-dir", r, "--rounds", "10"]);
    assert!(out.contains("resumed; ran rounds 31..40"), "{out}");
    let records = records(&run);
    let lines = metrics(&run);
    assert_eq!(lines.len(), 40);
    // Replayed round by round from the archive: each round is paid on what the rounds before it
    // left, then taken in — the resume included.
    let (mut shapes, mut depths) = (Shares::default(), Shares::default());
    let mut skipped_before: Vec<u64> = Vec::new();
    let (mut crowded, mut skipped) = (0, 0);
    for (round, line) in (1..=40u64).zip(&lines) {
        let this: Vec<_> = records.iter().filter(|x| x.round == round).collect();
        for x in this.iter().filter(|x| x.valid) {
            let shape = shape(x);
            let paid = x.rewards.as_ref().unwrap().repetition;
            if x.repetition.as_deref() == Some("fresh") {
                let expected = shapes.share(&shape, window).unwrap_or(0.0);
                assert!(
                    (paid - expected).abs() < 1e-12,
                    "round {round}: {x:?} paid {paid}, expected {expected}"
                );
                crowded += usize::from(expected > 0.0);
            } else {
                assert_eq!(paid, 1.0, "{x:?}");
            }
        }
        // No target asks for a depth the round before skipped.
        for x in &this {
            let d = u64::from(x.difficulty_target.unwrap());
            assert!(!skipped_before.contains(&d), "round {round} asked for {d}: {skipped_before:?}");
        }
        for x in this.iter().filter(|x| x.valid) {
            let copy = x.repetition.as_deref() != Some("fresh");
            shapes.observe(shape(x), copy, window);
            depths.observe(x.difficulty_target.unwrap().to_string(), copy, exhausted_window);
        }
        // Exhausted and below the level's floor.
        let floor = line["difficulty_level"].as_f64().unwrap().floor() as u64;
        let expected: Vec<u64> = (1..floor.min(7))
            .filter(|d| depths.share(&d.to_string(), exhausted_window).is_some_and(|s| s > exhausted))
            .collect();
        let reported: Vec<u64> = line["skipped_depths"]
            .as_array()
            .map_or(Vec::new(), |a| a.iter().map(|d| d.as_u64().unwrap()).collect());
        assert_eq!(reported, expected, "round {round}: {line}");
        skipped += usize::from(!expected.is_empty());
        skipped_before = expected;
    }
    // What is checked happened: fresh problems paid less for their shape, depths skipped.
    assert!(crowded > 0 && skipped > 0, "crowded {crowded}, rounds with skipped depths {skipped}");
    // Every round measures what the generator would copy at its targets.
    for line in &lines {
        let g = line["generator_duplicate_fraction"].as_f64().expect("every round draws");
        assert!((0.0..=1.0).contains(&g), "{line}");
    }
}

#[test]
fn a_run_writes_everything_and_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let out = ok(&["run", "--config", TINY, "--run-dir", r, "--rounds", "3"]);
    assert!(out.contains("ran rounds 1..3"), "{out}");
    assert!(
        out.contains("3 rounds in ") && out.contains("rounds/min") && out.contains("problems/s"),
        "{out}"
    );
    for p in [
        "config.toml",
        "archive",
        "warmstart/report.json",
        "checkpoints/round-000000/solver/state.json",
        "checkpoints/round-000003/curriculum.json",
    ] {
        assert!(run.join(p).exists(), "{p}");
    }
    let m = metrics(&run);
    assert_eq!(m.iter().map(|l| l["round"].as_u64().unwrap()).collect::<Vec<_>>(), vec![1, 2, 3]);
    for key in ["propose", "judge", "solve", "store", "update", "curriculum"] {
        assert!(m[0]["timings"][key].as_f64().is_some(), "timing {key}");
    }
    assert!(m[1]["held_out"]["1"].as_f64().is_some(), "held-out accuracy on evaluation rounds");
    // Rehearsal problems (8 by default) are retested every round.
    assert!(m.iter().all(|l| (0.0..=1.0).contains(&l["rehearsal_solve_rate"].as_f64().unwrap())));
    let logs: String = std::fs::read_dir(run.join("logs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(logs.contains("round     3"), "rounds are logged to files: {logs}");

    // Resumed with KL penalties: the references load from the warm start, round-000000.
    let with_kl = dir.path().join("kl.toml");
    let tiny = std::fs::read_to_string(TINY).unwrap();
    std::fs::write(
        &with_kl,
        tiny.replace("[round]", "[solver_ppo]\nkl_coef = 0.1\n[proposer_ppo]\nkl_coef = 0.1\n[round]"),
    )
    .unwrap();
    let out =
        ok(&["run", "--config", with_kl.to_str().unwrap(), "--run-dir", r, "--rounds", "2", "--reconfigure"]);
    assert!(out.contains("resumed; ran rounds 4..5"), "{out}");
    let changes = std::fs::read_to_string(run.join("config-changes.jsonl")).unwrap();
    assert!(changes.contains("\"round\":4") && changes.contains("solver_ppo.kl_coef"), "{changes}");
    assert_eq!(metrics(&run).len(), 5);
    let records = records(&run);
    assert_eq!(records.len(), 5 * 8, "every proposal archived, valid or not");
    let rounds: Vec<u64> = records.iter().map(|r| r.round).collect();
    assert!(rounds.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(rounds.last(), Some(&5));
    assert!(records.iter().all(|r| r.run == "tiny" && r.rewards.is_some()));
    // Each round's `on_target_fraction` is what the archive holds of its valid proposals.
    for line in metrics(&run) {
        let round = line["round"].as_u64().unwrap();
        let hits: Vec<bool> =
            records.iter().filter(|r| r.round == round && r.valid).map(common::on_target).collect();
        let want = (!hits.is_empty()).then(|| hits.iter().filter(|&&b| b).count() as f64 / hits.len() as f64);
        assert_eq!(line["on_target_fraction"].as_f64(), want, "round {round}");
    }
    assert!(records.iter().filter(|r| !r.valid).all(|r| r.reason.is_some() && r.error.is_some()));
    let valid: Vec<_> = records.iter().filter(|r| r.valid).collect();
    assert!(valid.iter().all(|r| r.rewards.as_ref().unwrap().length_factor.is_some()));
    // The target term: charged exactly where the essential depth is not the one asked for, or a
    // literal is above the bound asked for.
    for r in &valid {
        let miss = r.rewards.as_ref().unwrap().target_miss;
        assert_eq!(miss, Some(f64::from(u8::from(!common::on_target(r)))), "{r:?}");
    }
    // The default controller asks for no literal bound.
    assert!(records.iter().all(|r| r.literal_target.is_none()));
    assert!(metrics(&run).iter().all(|l| l.get("difficulty_levels").is_none()));
    assert!(records.iter().filter(|r| !r.valid).all(|r| r.rewards.as_ref().unwrap().target_miss.is_none()));
    // The length curve took in every valid problem's solve rate, across the resume.
    let curriculum: Value =
        serde_json::from_slice(&std::fs::read(run.join("checkpoints/round-000005/curriculum.json")).unwrap())
            .unwrap();
    let points = curriculum["length_curve"]["points"].as_object().unwrap();
    let seen: u64 = points.values().map(|p| p[1].as_u64().unwrap()).sum();
    assert_eq!(seen, valid.len() as u64, "{points:?}");
    for (size, p) in points {
        let rates: Vec<f64> = valid
            .iter()
            .filter(|r| r.text.chars().count().to_string() == *size)
            .map(|r| r.solve_rate.unwrap())
            .collect();
        let (lo, hi) = rates.iter().fold((1.0f64, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        let mean = p[0].as_f64().unwrap();
        assert!(mean >= lo - 1e-9 && mean <= hi + 1e-9, "size {size}: {mean} outside the rates {rates:?}");
    }
    // Checkpoints: the warm start is kept, old rounds are pruned, any of them evaluates.
    let cks: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        cks.contains(&"round-000000".to_string()) && cks.contains(&"round-000005".to_string()),
        "{cks:?}"
    );
    let bench = dir.path().join("b.jsonl");
    std::fs::write(&bench, ok(&["gen", "--depth", "1", "--count", "5", "--max-literal", "9"])).unwrap();
    for ck in ["round-000000", "round-000005"] {
        let out = ok(&[
            "eval",
            "--checkpoint",
            run.join("checkpoints").join(ck).to_str().unwrap(),
            "--benchmark",
            bench.to_str().unwrap(),
            "--samples",
            "0",
            "--json",
        ]);
        assert!(out.contains("\"n\":5"), "{out}");
    }
}

#[test]
fn a_stop_request_finishes_the_round_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_selfplay"))
        .args(["run", "--config", TINY, "--run-dir", run.to_str().unwrap(), "--rounds", "100000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Whole lines only: the daemon may be writing the next one.
    let whole_lines =
        || std::fs::read(run.join("metrics.jsonl")).map_or(0, |t| t.iter().filter(|&&b| b == b'\n').count());
    while whole_lines() < 2 {
        assert!(started.elapsed() < Duration::from_secs(120), "no round in two minutes");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "a stop request exits 0");
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped on request"));
    let last = metrics(&run).last().unwrap()["round"].as_u64().unwrap();
    assert!(
        run.join(format!("checkpoints/round-{last:06}/curriculum.json")).is_file(),
        "checkpoint of round {last}"
    );
}

#[test]
fn configuration_errors_stop_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    for (text, want) in [
        ("[round]\nattempts = 0\n", "round.attempts must be positive"),
        ("[round]\nproposal = 3\n", "unknown key `round.proposal`"),
        ("[reward]\nfrontier = \"middle\"\n", "unknown variant `middle`"),
        // Syntax, with where.
        ("seed = 1\nthis is = not toml\n", "line 2, column 6: key with no value"),
        ("[round\n", "line 1, column"),
        // Types and values, with the key.
        ("seed = \"x\"\n", "seed: invalid type: string \"x\", expected u64"),
        ("seed = -1\n", "seed: invalid value: integer `-1`"),
        ("[round]\nproposals = 3.5\n", "round.proposals: invalid type: floating point"),
        ("round = 5\n", "round: invalid type: integer `5`"),
        ("[[scorers]]\nkind = \"novelty\"\nweight = \"a\"\n", "scorers[0].weight: invalid type"),
        ("[reward.padding]\nexponent = -2\n", "padding.exponent must be a finite number >= 0, got -2"),
        ("[frontier]\nlow = 0.9\nhigh = 0.1\n", "frontier band must satisfy 0 <= low <= high <= 1"),
        ("[round]\nmax_problem_tokens = 100000\n", "round.max_problem_tokens must be at most 1024"),
        ("[round]\ntemperature = nan\n", "round.temperature must be positive, got NaN"),
        ("[round]\nanchor = -0.5\n", "round.anchor must be a non-negative number, got -0.5"),
        ("[solver_ppo]\nkl_coef = nan\n", "solver_ppo: epochs must be positive"),
        ("[replay]\ntemperature = inf\n", "replay: temperature must be positive, got inf"),
        ("[warm_start.solver]\nheads = 3\n", "warm_start.solver.d_model 128 must be a multiple of heads 3"),
        ("name = \"\"\n", "name must be a non-empty string"),
        (
            "[warm_start]\nsolver_shift = 90\n",
            "warm_start.solver_shift (90) and warm_start.solver.max_new_tokens (48)",
        ),
        ("[warm_start]\nsolver_answers = \"essay\"\n", "warm_start.solver_answers: unknown variant `essay`"),
        ("[reward.length]\nweight = 2\n", "length.weight must be a finite number in [0, 1], got 2"),
        ("[reward]\ndepth_exponent = -1\n", "depth_exponent must be a finite number in [0, 4], got -1"),
    ] {
        std::fs::write(&bad, text).unwrap();
        let out = selfplay(&["run", "--config", bad.to_str().unwrap(), "--run-dir", r]);
        assert!(!out.status.success(), "{text:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want) && err.contains("bad.toml"), "{text:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!run.exists(), "nothing created");
    }
    // Files that are not there, not files, or not text.
    let missing = dir.path().join("missing.toml");
    let err = common::fails(&["run", "--config", missing.to_str().unwrap(), "--run-dir", r]);
    assert!(err.contains("missing.toml"), "{err}");
    let err = common::fails(&["run", "--config", dir.path().to_str().unwrap(), "--run-dir", r]);
    assert!(err.contains(dir.path().to_str().unwrap()), "{err}");
    std::fs::write(&bad, b"\xff\xfe").unwrap();
    let err = common::fails(&["run", "--config", bad.to_str().unwrap(), "--run-dir", r]);
    assert!(err.contains("bad.toml"), "{err}");
    assert!(!run.exists(), "nothing created");
    let default = ok(&["config", "--default"]);
    std::fs::write(&bad, &default).unwrap();
    let checked = ok(&["config", "--check", bad.to_str().unwrap()]);
    assert!(checked.contains("proposals = 32"), "{checked}");
}

/// The difficulty targets asked in `round`, each with how many proposals were asked it.
fn targets_asked(records: &[store::ProblemRecord], round: u64) -> std::collections::BTreeMap<String, usize> {
    let mut asked = std::collections::BTreeMap::new();
    for r in records.iter().filter(|r| r.round == round) {
        *asked.entry(r.difficulty_target.unwrap().to_string()).or_default() += 1;
    }
    asked
}

/// The mean of shares by target, each weighted by the proposals asked it.
fn weighted_by_targets(
    shares: &serde_json::Map<String, Value>,
    asked: &std::collections::BTreeMap<String, usize>,
) -> f64 {
    let n: usize = shares.keys().map(|d| asked[d]).sum();
    shares.iter().map(|(d, s)| s.as_f64().unwrap() * asked[d] as f64).sum::<f64>() / n as f64
}

#[test]
fn the_generator_probe_measures_the_generator_without_changing_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let probed = dir.path().join("probed");
    let plain = dir.path().join("plain");
    // tiny.toml evaluates every 2 rounds; 8 proposals, so the default probe takes all 8 targets.
    ok(&["run", "--config", TINY, "--run-dir", probed.to_str().unwrap(), "--rounds", "4"]);
    let warm = probed.join("warmstart");
    let plain_dir = plain.to_str().unwrap();
    let warm_dir = warm.to_str().unwrap();
    let off = ["--set", "round.generator_probe=0"];
    ok(&[
        &["run", "--config", TINY, "--run-dir", plain_dir, "--warm-start", warm_dir, "--rounds", "4"][..],
        &off,
    ]
    .concat());
    // Its own random stream, nothing trained: the same problems, attempts and rewards.
    let key = |r: &store::ProblemRecord| {
        let outputs: Vec<(String, bool)> = r.attempts.iter().map(|a| (a.output.clone(), a.correct)).collect();
        (r.round, r.text.clone(), outputs, r.rewards.as_ref().map(|w| w.total))
    };
    let (a, b) = (records(&probed), records(&plain));
    assert_eq!(a.len(), 4 * 8);
    assert_eq!(a.iter().map(key).collect::<Vec<_>>(), b.iter().map(key).collect::<Vec<_>>());
    let (with, without) = (metrics(&probed), metrics(&plain));
    assert_eq!(with.len(), without.len());
    for (p, q) in with.iter().zip(&without) {
        let round = p["round"].as_u64().unwrap();
        assert_eq!(p["held_out"], q["held_out"], "round {round}");
        assert_eq!(p["band_by_target"], q["band_by_target"], "round {round}");
        assert!(q.get("generator_band_fraction").is_none(), "no probe, no figure: {q}");
        let asked = targets_asked(&a, round);
        // The proposer's share by target agrees with its overall share where every proposal is valid.
        if p["valid_fraction"].as_f64() == Some(1.0) {
            let shares = p["band_by_target"].as_object().unwrap();
            assert!(
                (weighted_by_targets(shares, &asked) - p["band_fraction"].as_f64().unwrap()).abs() < 1e-9
            );
        }
        if round % 2 == 1 {
            assert!(p.get("generator_band_fraction").is_none(), "only evaluation rounds probe: {p}");
            continue;
        }
        let overall = p["generator_band_fraction"].as_f64().expect("evaluation rounds probe");
        let shares = p["generator_band_by_target"].as_object().expect("by target depth");
        assert!((0.0..=1.0).contains(&overall), "{p}");
        // The probe asks the round's own targets, one problem each: only depths the proposals were
        // asked, and overall the shares by depth weighted by the targets asked of each.
        assert!(!shares.is_empty() && shares.keys().all(|d| asked.contains_key(d)), "{shares:?} {asked:?}");
        assert!((weighted_by_targets(shares, &asked) - overall).abs() < 1e-9, "{p}");
    }
}

#[test]
fn the_depth_exponent_pays_a_problem_its_depth_up_to_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let cfg = dir.path().join("depth.toml");
    let tiny = std::fs::read_to_string(TINY).unwrap();
    // Targets of one to three operations, and a solver taught long enough to solve some attempts
    // at two.
    let taught = tiny.replace("steps = 40\n", "steps = 400\n");
    assert_ne!(taught, tiny, "tiny.toml sets the solver's steps");
    std::fs::write(
        &cfg,
        format!("{taught}\n[reward]\ndepth_exponent = 1.0\n\n[controller]\nstart = 2.0\ngain = 0.0\n"),
    )
    .unwrap();
    ok(&["run", "--config", cfg.to_str().unwrap(), "--run-dir", run.to_str().unwrap(), "--rounds", "8"]);
    let defaults = judge::RewardConfig::default();
    let mut deep_in_band = 0;
    for r in records(&run).iter().filter(|r| r.valid) {
        let w = r.rewards.as_ref().unwrap();
        let depth = r.depth.unwrap().min(r.difficulty_target.unwrap()).max(1);
        let paid = w.frontier.unwrap()
            * f64::from(depth)
            * w.padding_factor
            * w.length_factor.unwrap()
            * (1.0 - w.repetition);
        let charged = defaults.repetition.cost * w.repetition
            + defaults.padding.cost * r.padding.unwrap()
            + defaults.target.cost * w.target_miss.unwrap();
        assert!((w.total - (paid - charged)).abs() < 1e-9, "{r:?}");
        deep_in_band += usize::from(depth > 1 && w.frontier.unwrap() > 0.0);
    }
    // What is checked happened: problems of more than one operation earned their depth.
    assert!(deep_in_band > 0, "no problem of two or more operations was in the band");
}

#[test]
fn step_credit_trains_on_unsolved_problems_whose_attempts_got_unequally_far() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = std::fs::read_to_string(TINY).unwrap();
    // A solver taught long enough to take some steps right, asked for two operations by the
    // generator (the tiny proposer writes few valid problems; step credit is the solver's).
    let taught =
        tiny.replace("steps = 40\n", "steps = 400\n").replace("[round]\n", "[round]\narm = \"generator\"\n");
    assert_ne!(taught, tiny, "tiny.toml sets the solver's steps");
    let base = format!("{taught}\n[controller]\nstart = 2.0\ngain = 0.0\n");
    let plain_cfg = dir.path().join("plain.toml");
    std::fs::write(&plain_cfg, &base).unwrap();
    let credit_cfg = dir.path().join("credit.toml");
    std::fs::write(&credit_cfg, base.replace("[round]\n", "[round]\nstep_credit = 0.5\n")).unwrap();
    let mut lines = Vec::new();
    for (name, cfg) in [("plain", &plain_cfg), ("credit", &credit_cfg)] {
        let run = dir.path().join(name);
        if name == "credit" {
            // From the plain run's warm start, untouched by its rounds.
            common::copy_dir(&dir.path().join("plain/warmstart"), &run.join("warmstart"));
        }
        ok(&["run", "--config", cfg.to_str().unwrap(), "--run-dir", run.to_str().unwrap(), "--rounds", "4"]);
        lines.push(metrics(&run));
    }
    let count = |m: &serde_json::Value, key: &str| m[key].as_u64().unwrap_or(0);
    // The first round's attempts are the same bits in both runs (same warm start, same seed):
    // credit only adds problems, and exactly those it says it added.
    let (plain, credit) = (&lines[0][0], &lines[1][0]);
    assert_eq!(count(plain, "solver_problems_credited"), 0);
    assert_eq!(plain["mean_reward"], credit["mean_reward"], "the same round 1");
    assert_eq!(
        count(credit, "solver_problems_trained"),
        count(plain, "solver_problems_trained") + count(credit, "solver_problems_credited"),
        "plain {plain}\ncredit {credit}"
    );
    // And what is checked happened: some round learnt from a problem for its step credit alone.
    let credited: u64 = lines[1].iter().map(|m| count(m, "solver_problems_credited")).sum();
    assert!(credited > 0, "no problem was trained on for its step credit");
}
