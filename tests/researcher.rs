//! What a researcher relies on from day one: a run keeps its own configuration across restarts,
//! changes to it are asked for and recorded, every start records its provenance, and the metrics
//! reach TensorBoard (read back here with TensorBoard's own reader) with the diagnostics a
//! policy-gradient trainer reports.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fails, metrics, ok, run_records};

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tiny.toml");

/// Whole lines of the run's metrics (the daemon may be writing the next one).
fn whole_metric_lines(run: &Path) -> usize {
    std::fs::read(run.join("metrics.jsonl")).map_or(0, |t| t.iter().filter(|&&b| b == b'\n').count())
}

#[test]
fn a_killed_run_resumes_on_its_own_configuration_and_changes_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    // Started with a configuration file and an override, then killed mid-run.
    let mut child = Command::new(env!("CARGO_BIN_EXE_selfplay"))
        .args(["run", "--config", TINY, "--set", "round.proposals=6", "--run-dir", r, "--rounds", "100000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while whole_metric_lines(&run) < 2 {
        if started.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            panic!("no two rounds in three minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Resumed with neither --config nor --set: the run's own configuration, not the defaults.
    let out = ok(&["run", "--run-dir", r, "--rounds", "2"]);
    assert!(out.contains("resumed; ran"), "{out}");
    let lines = metrics(&run);
    assert!(lines.len() >= 4, "{} lines", lines.len());
    for line in &lines {
        assert_eq!(line["proposals"].as_u64(), Some(6), "round {}", line["round"]);
    }
    assert!(run_records(&run).iter().all(|rec| rec.run == "tiny"), "the run's name is kept");
    let changes = std::fs::read_to_string(run.join("config-changes.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(changes.lines().next().unwrap()).unwrap();
    assert_eq!(first["round"], 1);
    assert_eq!(first["kind"], "start");
    assert_eq!(first["changes"][0]["key"], "round.proposals");
    assert_eq!(
        (first["changes"][0]["from"].as_str(), first["changes"][0]["to"].as_str()),
        (Some("8"), Some("6"))
    );

    // A resume given a different configuration is refused, naming the keys, and changes nothing.
    let before = whole_metric_lines(&run);
    let err = fails(&["run", "--run-dir", r, "--config", TINY, "--rounds", "1"]);
    assert!(err.contains("round.proposals (6 → 8)") && err.contains("--reconfigure"), "{err}");
    let err =
        fails(&["run", "--run-dir", r, "--set", "round.attempts=3", "--set", "seed=9", "--rounds", "1"]);
    assert!(err.contains("round.attempts (4 → 3)") && err.contains("seed ("), "{err}");
    let err = fails(&["run", "--run-dir", r, "--set", "round.atempts=3", "--rounds", "1"]);
    assert!(err.contains("unknown key `round.atempts`"), "{err}");
    let err = fails(&["run", "--run-dir", r, "--set", "round.attempts", "--rounds", "1"]);
    assert!(err.contains("KEY=VALUE"), "{err}");
    assert_eq!(whole_metric_lines(&run), before);

    // Asked for, the change takes effect at the next round and is recorded with it.
    let last = lines.last().unwrap()["round"].as_u64().unwrap();
    ok(&["run", "--run-dir", r, "--set", "round.attempts=3", "--reconfigure", "--rounds", "1"]);
    let history: Vec<serde_json::Value> = std::fs::read_to_string(run.join("config-changes.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let change = history.last().unwrap();
    assert_eq!((change["round"].as_u64(), change["kind"].as_str()), (Some(last + 1), Some("reconfigure")));
    assert_eq!(change["changes"][0]["key"], "round.attempts");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("attempts = 3") && config.contains("proposals = 6"), "{config}");
    // The report shows it.
    let page = dir.path().join("report.html");
    ok(&["report", "--run-dir", r, "--out", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Configuration changes") && html.contains("<code>round.attempts</code>"), "report");

    // Every start recorded what it ran: version, commit, command line, cores.
    let starts: Vec<serde_json::Value> = std::fs::read_to_string(run.join("provenance.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(starts.len(), 3, "three starts that ran: {starts:?}");
    for s in &starts {
        assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
        assert!(s["commit"].as_str().is_some_and(|c| c == "unknown" || c.len() == 40), "{s}");
        assert!(s["cores"].as_u64().is_some_and(|c| c >= 1));
        assert_eq!(s["command_line"][1], "run");
    }
    assert!(starts[2]["command_line"].as_array().unwrap().iter().any(|a| a == "--reconfigure"));
}

/// The scalars TensorBoard's own event reader finds in `dir`: tag → [(step, value)].
fn tensorboard_scalars(dir: &Path) -> BTreeMap<String, Vec<(u64, f64)>> {
    const READ: &str = r#"
import json, sys
from tensorboard.backend.event_processing import event_accumulator as ea
acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0})
acc.Reload()
print(json.dumps({t: [[e.step, e.value] for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}))
"#;
    let out = Command::new("python3").args(["-c", READ, dir.to_str().unwrap()]).output();
    let out = match out {
        Ok(out) if out.status.success() => out,
        Ok(out) => panic!(
            "TensorBoard's reader failed (install it: `pip install tensorboard`, as .ci/run does): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("python3 is needed to read the events back with TensorBoard: {e}"),
    };
    let parsed: BTreeMap<String, Vec<(u64, f64)>> = serde_json::from_slice(&out.stdout).unwrap();
    parsed
}

#[test]
fn tensorboard_reads_back_every_scalar_of_the_metrics_with_the_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    ok(&["run", "--config", TINY, "--run-dir", r, "--rounds", "2"]);
    // A resume writes a second event file; the reader joins them.
    ok(&["run", "--run-dir", r, "--rounds", "1"]);
    let lines = metrics(&run);
    assert_eq!(lines.len(), 3);
    let board = tensorboard_scalars(&run);
    let mut compared = 0;
    for line in &lines {
        let step = line["round"].as_u64().unwrap();
        for (tag, want) in lab::tensorboard::scalars_of(line) {
            let points = board.get(&tag).unwrap_or_else(|| panic!("no tag {tag} in TensorBoard"));
            let got =
                points.iter().find(|(s, _)| *s == step).unwrap_or_else(|| panic!("{tag} lacks step {step}"));
            // Scalars are stored as 32-bit floats.
            assert!(
                (got.1 - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{tag} at {step}: {} vs {want}",
                got.1
            );
            compared += 1;
        }
    }
    assert!(compared > 3 * 40, "{compared} scalars");
    for tag in [
        "judge/valid_fraction",
        "judge/band_fraction",
        "held_out/depth_1",
        "timings/solve",
        "timings/update",
        "curriculum/difficulty_level",
        "proposer/loss",
        "proposer/grad_norm",
        "proposer/clip_ratio",
        "proposer/entropy",
        "proposer/approx_kl",
        "proposer/learning_rate",
        "solver/reward",
        "solver/reward_std",
        "solver/completion_length",
        "solver/skipped_updates",
        "proposer/reward",
        "proposer/completion_length",
    ] {
        assert!(board.contains_key(tag), "{tag} missing from {:?}", board.keys().collect::<Vec<_>>());
    }
    // The diagnostics are what they claim to be.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let mut last_time = 0.0;
    for line in &lines {
        let wall = line["wall_time"].as_f64().unwrap();
        assert!(wall > last_time && wall <= now && now - wall < 3600.0, "wall_time {wall}");
        last_time = wall;
        let s = &line["solver"];
        let solver_rate = s["reward"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&solver_rate));
        assert!(s["reward_std"].as_f64().unwrap() <= 0.5 + 1e-12, "a 0/1 reward's deviation is at most 0.5");
        assert!(s["completion_length"].as_f64().unwrap() >= 1.0);
        // Whichever player was updated reports its update.
        for (player, d) in [("solver", s), ("proposer", &line["proposer"])] {
            let Some(lr) = d["learning_rate"].as_f64() else { continue };
            assert!(lr > 0.0 && d["grad_norm"].as_f64().unwrap() > 0.0, "{player}: {d}");
            let entropy = d["entropy"].as_f64().unwrap();
            assert!(entropy > 0.0 && entropy < 10.0, "{player} entropy {entropy}");
            let clip = d["clip_ratio"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&clip) && d["approx_kl"].as_f64().unwrap() >= 0.0, "{player}: {d}");
            assert_eq!(d["loss"], line[format!("{player}_loss")]);
        }
        let p = &line["proposer"];
        assert!((p["reward"].as_f64().unwrap() - line["mean_reward"].as_f64().unwrap()).abs() < 1e-9);
        assert_eq!(p["completion_length"], line["proposer_output_tokens"]);
    }
    assert!(lines.iter().any(|l| l["proposer"]["learning_rate"].as_f64().is_some()), "the proposer trained");
}
