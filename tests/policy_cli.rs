//! End-to-end tests of the commands that train, evaluate and time the models.

mod common;

use std::path::Path;

use common::{fails, ok};

use serde_json::Value;

/// A warm start small enough for a test: two tiny models, a few dozen steps.
fn tiny_pretrain(out: &Path) -> Value {
    let out = out.to_str().unwrap();
    let report = ok(&[
        "pretrain",
        "--out",
        out,
        "--d-model",
        "32",
        "--layers",
        "1",
        "--heads",
        "2",
        "--batch",
        "16",
        "--solver-steps",
        "40",
        "--proposer-steps",
        "20",
        "--eval-every",
        "20",
        "--max-literal",
        "9",
        "--json",
    ]);
    serde_json::from_str(report.lines().last().unwrap()).unwrap()
}

#[test]
fn pretrain_reads_a_run_configuration_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("warm.toml");
    std::fs::write(
        &cfg,
        "[warm_start]\nseed = 5\nreport_problems = 4\n\
         [warm_start.solver]\nd_model = 32\nlayers = 1\nheads = 2\nsteps = 7\nbatch = 8\n\
         [warm_start.proposer]\nd_model = 32\nlayers = 1\nheads = 2\nsteps = 30\nbatch = 8\n",
    )
    .unwrap();
    let (c, out) = (cfg.to_str().unwrap(), dir.path().join("warm"));
    let args = ["pretrain", "--config", c, "--out", out.to_str().unwrap(), "--proposer-steps", "5", "--json"];
    let report: Value = serde_json::from_str(ok(&args).lines().last().unwrap()).unwrap();
    assert_eq!((report["solver_steps"].as_u64(), report["proposer_steps"].as_u64()), (Some(7), Some(5)));
    // Bad files and flags that break the configuration are refused before any training.
    std::fs::write(&cfg, "[warm_start.solver]\nstepz = 7\n").unwrap();
    let err = fails(&["pretrain", "--config", c, "--out", dir.path().join("x").to_str().unwrap()]);
    assert!(err.contains("stepz"), "{err}");
    std::fs::write(&cfg, "[warm_start.solver]\nd_model = 32\nheads = 2\n").unwrap();
    let err =
        fails(&["pretrain", "--config", c, "--heads", "3", "--out", dir.path().join("y").to_str().unwrap()]);
    assert!(err.contains("must be a multiple of heads 3"), "{err}");
    assert!(!dir.path().join("y").exists());
}

#[test]
fn pretrain_then_eval_from_the_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("warm");
    let report = tiny_pretrain(&run);
    assert_eq!(report["solver_steps"], 40);
    assert!(report["solver_accuracy_by_depth"]["1"].as_f64().is_some());
    assert!(report["proposer_valid_by_target"]["6"].as_f64().is_some());
    // Per target: padded and on target is within both, each within valid.
    for d in 1..=6 {
        let share = |key: &str| report[key][d.to_string()].as_f64().unwrap_or_else(|| panic!("{key} {d}"));
        let (valid, on, padded, both) = (
            share("proposer_valid_by_target"),
            share("proposer_on_target_by_target"),
            share("proposer_padded_by_target"),
            share("proposer_padded_on_target_by_target"),
        );
        assert!(both <= on.min(padded) && on.max(padded) <= valid && valid <= 1.0, "{report}");
    }
    for f in
        ["solver/state.json", "solver/model.safetensors", "proposer/optimizer.safetensors", "report.json"]
    {
        assert!(run.join(f).is_file(), "{f}");
    }
    // A finished warm start is reported, not redone; an unfinished one is not overwritten.
    let again = ok(&["pretrain", "--out", run.to_str().unwrap(), "--solver-steps", "1", "--json"]);
    assert_eq!(serde_json::from_str::<Value>(again.trim()).unwrap(), report);
    let text = ok(&["pretrain", "--out", run.to_str().unwrap()]);
    assert!(text.contains("valid / exactly on target / padded / padded and on target"), "{text}");
    let partial = dir.path().join("partial");
    std::fs::create_dir_all(partial.join("solver")).unwrap();
    let err = fails(&["pretrain", "--out", partial.to_str().unwrap(), "--solver-steps", "1"]);
    assert!(err.contains("unfinished"), "{err}");

    let bench = dir.path().join("bench.jsonl");
    let mut lines = ok(&["gen", "--depth", "1", "--count", "20", "--max-literal", "9", "--seed", "3"]);
    lines.push_str(&ok(&["gen", "--depth", "2", "--count", "10", "--max-literal", "9", "--seed", "4"]));
    // One line without its depth: computed.
    lines.push_str("{\"problem\": \"2*(3+4)\", \"answer\": \"14\"}\n");
    std::fs::write(&bench, lines).unwrap();
    let (ck, b) = (run.to_str().unwrap(), bench.to_str().unwrap());
    let items = dir.path().join("items.jsonl");
    let i = items.to_str().unwrap();
    let out = ok(&["eval", "--checkpoint", ck, "--benchmark", b, "--samples", "3", "--json", "--items", i]);
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    // Each problem's outcome, in the benchmark's order; the report is their summary.
    let outcomes: Vec<Value> =
        std::fs::read_to_string(&items).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(outcomes.len(), 31);
    assert_eq!(outcomes[30]["problem"], "2*(3+4)");
    assert_eq!(outcomes[30]["depth"], 2);
    let greedy = outcomes.iter().filter(|o| o["greedy"] == true).count();
    assert_eq!(last["accuracy"].as_f64().unwrap(), greedy as f64 / 31.0);
    let correct: u64 = outcomes.iter().map(|o| o["correct_samples"].as_u64().unwrap()).sum();
    assert!((last["sampled"].as_f64().unwrap() - correct as f64 / 93.0).abs() < 1e-12);
    assert_eq!(last["n"], 31);
    assert_eq!(last["by_depth"]["1"]["n"], 20);
    assert_eq!(last["by_depth"]["2"]["n"], 11);
    // Literals up to 9: one operand size, every problem in it; `2*(3+4)`'s largest literal is 4.
    assert_eq!(outcomes[30]["max_literal"], 4);
    assert_eq!(last["by_operand_digits"].as_object().unwrap().len(), 1, "{last}");
    assert_eq!(last["by_operand_digits"]["1"]["n"], 31);
    for key in ["accuracy", "pass_at_k", "sampled"] {
        let v = last[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    assert!(last["pass_at_k"].as_f64() >= last["accuracy"].as_f64(), "greedy is one of the chances");
    // The samples' mean is at most "some sample correct", and the overall mean is the depths' means
    // weighted by their problems.
    let mut weighted = 0.0;
    for (_, d) in last["by_depth"].as_object().unwrap() {
        let sampled = d["sampled"].as_f64().unwrap();
        assert!(sampled <= d["pass_at_k"].as_f64().unwrap() + 1e-12, "{d}");
        weighted += sampled * d["n"].as_f64().unwrap();
    }
    assert!((weighted / 31.0 - last["sampled"].as_f64().unwrap()).abs() < 1e-9, "{last}");
    let greedy_only = ok(&["eval", "--checkpoint", ck, "--benchmark", b, "--samples", "0", "--json"]);
    let greedy_only: Value = serde_json::from_str(greedy_only.lines().last().unwrap()).unwrap();
    assert!(greedy_only.get("sampled").is_none(), "no samples, no sampled accuracy: {greedy_only}");
    assert_eq!(greedy_only["accuracy"], last["accuracy"], "greedy answers do not depend on sampling");
    // The same evaluation twice gives the same numbers; the solver directory works directly.
    let again = ok(&[
        "eval",
        "--checkpoint",
        run.join("solver").to_str().unwrap(),
        "--benchmark",
        b,
        "--samples",
        "3",
        "--json",
    ]);
    assert_eq!(again, out);
    let err = fails(&[
        "eval",
        "--checkpoint",
        ck,
        "--benchmark",
        b,
        "--items",
        dir.path().join("no/such/dir").to_str().unwrap(),
    ]);
    assert!(err.contains("cannot write") && err.contains("no/such/dir"), "{err}");
    let table = ok(&["eval", "--checkpoint", ck, "--benchmark", b, "--samples", "0"]);
    assert!(table.contains("greedy") && !table.contains("sampled"), "{table}");

    // Bad input.
    let err = fails(&["eval", "--checkpoint", run.join("proposer").to_str().unwrap(), "--benchmark", b]);
    assert!(err.contains("Proposer checkpoint, not a Solver one"), "{err}");
    let err = fails(&["eval", "--checkpoint", dir.path().join("none").to_str().unwrap(), "--benchmark", b]);
    assert!(err.contains("no checkpoint at"), "{err}");
    std::fs::write(
        &bench,
        "{\"problem\": \"1+1\", \"answer\": \"2\"}\n{\"problem\": \"1+1\", \"answer\": \"3\"}\n",
    )
    .unwrap();
    let err = fails(&["eval", "--checkpoint", ck, "--benchmark", b]);
    assert!(err.contains("line 2: answer \"3\" is wrong"), "{err}");
    std::fs::write(&bench, "not json\n").unwrap();
    let err = fails(&["eval", "--checkpoint", ck, "--benchmark", b]);
    assert!(err.contains("line 1: not a benchmark item"), "{err}");
    let err = fails(&["eval", "--checkpoint", ck, "--benchmark", b, "--device", "cuda:0"]);
    assert!(err.contains("--device"), "{err}");

    // A truncated checkpoint is refused and left as it is.
    let weights = run.join("solver/model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(&bench, "{\"problem\": \"1+1\", \"answer\": \"2\"}\n").unwrap();
    let err = fails(&["eval", "--checkpoint", ck, "--benchmark", b]);
    assert!(err.contains("does not fit") || err.contains("not a readable checkpoint"), "{err}");
    assert_eq!(std::fs::read(&weights).unwrap().len(), bytes.len() / 3);
}

#[test]
fn bench_commands_print_their_contract_keys() {
    let train = ok(&[
        "bench",
        "train",
        "--d-model",
        "32",
        "--layers",
        "1",
        "--heads",
        "2",
        "--ctx",
        "16",
        "--batch",
        "4",
        "--vocab",
        "32",
        "--steps",
        "3",
        "--json",
    ]);
    let v: Value = serde_json::from_str(train.trim()).unwrap();
    assert!(v["ms_per_step_median"].as_f64().unwrap() > 0.0);
    let sample = ok(&[
        "bench",
        "sample",
        "--d-model",
        "32",
        "--layers",
        "1",
        "--heads",
        "2",
        "--batch",
        "4",
        "--prompt",
        "4",
        "--new",
        "8",
        "--reps",
        "1",
        "--json",
    ]);
    let v: Value = serde_json::from_str(sample.trim()).unwrap();
    assert!(v["tokens_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["tokens_per_s_no_cache"].as_f64().unwrap() > 0.0);
    assert!(["avx512", "avx2", "baseline"].contains(&v["isa"].as_str().unwrap()), "{v}");
    // The kernels held to a narrower ISA than the CPU's, or to one that does not exist.
    let held = |isa: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_selfplay"))
            .args(["bench", "sample", "--d-model", "32", "--layers", "1", "--heads", "2"])
            .args(["--batch", "2", "--prompt", "2", "--new", "2", "--reps", "1", "--json"])
            .env("SELFPLAY_CPU_ISA", isa)
            .output()
            .unwrap()
    };
    let baseline = held("baseline");
    assert!(baseline.status.success());
    let v: Value = serde_json::from_slice(&baseline.stdout).unwrap();
    assert_eq!(v["isa"], "baseline");
    let unknown = held("sse");
    assert!(!unknown.status.success());
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(err.contains("SELFPLAY_CPU_ISA=\"sse\": expected avx512, avx2 or baseline"), "{err}");
    let err = fails(&["bench", "train", "--d-model", "30", "--heads", "4", "--steps", "1"]);
    assert!(err.contains("multiple of heads"), "{err}");
}

/// The tiny warm start's flags, with `steps` solver steps.
fn tiny_flags(out: &Path, steps: u64) -> Vec<String> {
    let mut args: Vec<String> = ["pretrain", "--out", out.to_str().unwrap()].map(String::from).to_vec();
    args.extend(
        ["--d-model", "32", "--layers", "1", "--heads", "2", "--batch", "16", "--eval-every", "50"]
            .map(String::from),
    );
    args.extend(["--max-literal", "9", "--proposer-steps", "50", "--solver-steps"].map(String::from));
    args.push(steps.to_string());
    args
}

#[test]
fn pretrain_shows_progress_on_a_terminal_and_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    // On a terminal (a pseudo-terminal from `script`): a bar with the time left.
    let out = dir.path().join("shown");
    let command = std::iter::once(env!("CARGO_BIN_EXE_selfplay").to_string())
        .chain(tiny_flags(&out, 200))
        .collect::<Vec<_>>()
        .join(" ");
    let shown = std::process::Command::new("script").args(["-qec", &command, "/dev/null"]).output();
    let shown = shown.expect("`script` (util-linux) runs the command on a pseudo-terminal");
    assert!(shown.status.success());
    let screen = String::from_utf8_lossy(&shown.stdout);
    assert!(screen.contains("ETA") && screen.contains("/250 steps"), "{screen}");
    // Not on a terminal: no bar in what a script reads.
    let plain = dir.path().join("plain");
    let args = tiny_flags(&plain, 20);
    let out = common::selfplay(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("ETA"));

    // Ctrl-C: it stops at the next step and leaves nothing that blocks the next try.
    let stopped = dir.path().join("stopped");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_selfplay"))
        .args(tiny_flags(&stopped, 1_000_000))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !stopped.exists() {
        assert!(started.elapsed().as_secs() < 60, "the warm start never began");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped on request"));
    assert!(!stopped.exists(), "the unfinished warm start is gone");
    let args = tiny_flags(&stopped, 20);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(stopped.join("report.json").is_file());
}

#[test]
fn a_run_starts_from_a_pretrained_warm_start() {
    let dir = tempfile::tempdir().unwrap();
    let warm = dir.path().join("warm");
    let args = tiny_flags(&warm, 40);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let tiny = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tiny.toml");
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let w = warm.to_str().unwrap();
    ok(&["run", "--config", tiny, "--run-dir", r, "--warm-start", w, "--rounds", "1"]);
    // Copied, not retrained: the run's warm start is the one given, and the run stands alone.
    let report = |d: &Path| std::fs::read(d.join("report.json")).unwrap();
    assert_eq!(report(&run.join("warmstart")), report(&warm));
    let logs: String = std::fs::read_dir(run.join("logs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(logs.contains("warm start already done"), "{logs}");
    // Given again on a resume: the same warm start is no change; another one is refused.
    ok(&["run", "--run-dir", r, "--warm-start", w, "--rounds", "1"]);
    let other = dir.path().join("other");
    let args = tiny_flags(&other, 20);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let err = fails(&["run", "--run-dir", r, "--warm-start", other.to_str().unwrap(), "--rounds", "1"]);
    assert!(err.contains("already has a warm start of its own"), "{err}");
    let err = fails(&[
        "run",
        "--run-dir",
        dir.path().join("new").to_str().unwrap(),
        "--warm-start",
        "/nonexistent",
    ]);
    assert!(err.contains("no finished warm start there"), "{err}");
    assert!(!dir.path().join("new").exists(), "nothing made for a run that cannot start");
}
