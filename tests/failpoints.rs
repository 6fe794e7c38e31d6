//! Faults injected at every write a round makes: the archive's batch, its sync, the watermark,
//! the metrics line, the checkpoint's rename, the configuration; and the archive's import. At
//! each, the Nth call fails as a broken disk would (`return`) or ends the process on the spot as
//! a power cut would (`return(crash)`). Whatever happened, the next start resumes, and:
//! no round number is used twice, every round in the metrics has all its problems in the
//! archive, no round holds more than its problems, and an import is all or nothing.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{copy_dir, metrics, ok, run_records};

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tiny.toml");
/// Problems a round of the tiny configuration writes.
const PROPOSALS: usize = 8;

/// A run after its warm start and two rounds, made once and copied for each case.
fn base() -> &'static Path {
    static BASE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, run) = BASE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("base");
        ok(&["run", "--config", TINY, "--run-dir", run.to_str().unwrap(), "--rounds", "2"]);
        (dir, run)
    });
    run
}

/// `selfplay ARGS` with the fail points of `spec`.
fn with_faults(spec: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_selfplay")).args(args).env("SELFPLAY_FAILPOINTS", spec).output().unwrap()
}

/// What must hold of a run directory whatever faults it went through.
fn assert_consistent(run: &Path, case: &str) {
    let lines = metrics(run);
    let rounds: Vec<u64> = lines.iter().map(|l| l["round"].as_u64().unwrap()).collect();
    assert!(
        rounds.windows(2).all(|w| w[0] < w[1]),
        "{case}: round numbers repeat in the metrics: {rounds:?}"
    );
    let mut per_round: BTreeMap<u64, usize> = BTreeMap::new();
    for r in run_records(run) {
        *per_round.entry(r.round).or_default() += 1;
    }
    for round in &rounds {
        assert_eq!(
            per_round.get(round),
            Some(&PROPOSALS),
            "{case}: round {round} in the metrics, not whole in the archive"
        );
    }
    for (round, n) in &per_round {
        assert!(*n <= PROPOSALS, "{case}: round {round} holds {n} problems: a round number was used twice");
    }
}

#[test]
fn a_fault_at_any_write_of_a_round_loses_nothing_acknowledged() {
    let points = [
        "archive-append",
        "archive-sync",
        "watermark",
        "metrics-append",
        "checkpoint-rename",
        "config-write",
    ];
    let mut cases = 0;
    let mut faulted = 0;
    for point in points {
        for how in ["return", "return(crash)"] {
            for n in [0, 2] {
                let case = format!("{point}={n}*off->{how}");
                let dir = tempfile::tempdir().unwrap();
                let run = dir.path().join("run");
                copy_dir(base(), &run);
                let r = run.to_str().unwrap();
                // A resume that changes the configuration writes it: the config-write point.
                let out = with_faults(
                    &case,
                    &["run", "--run-dir", r, "--rounds", "3", "--set", "round.attempts=3", "--reconfigure"],
                );
                cases += 1;
                if !out.status.success() {
                    faulted += 1;
                    let err = String::from_utf8_lossy(&out.stderr);
                    if how == "return" {
                        assert!(
                            err.contains(&format!("injected failure at fail point {point}")),
                            "{case}: {err}"
                        );
                        assert_eq!(out.status.code(), Some(1), "{case}: {err}");
                    } else {
                        use std::os::unix::process::ExitStatusExt;
                        assert_eq!(out.status.signal(), Some(libc_sigabrt()), "{case}: {err}");
                    }
                }
                // The next start, without faults, goes on from what was left.
                let again = Command::new(env!("CARGO_BIN_EXE_selfplay"))
                    .args([
                        "run",
                        "--run-dir",
                        r,
                        "--rounds",
                        "2",
                        "--set",
                        "round.attempts=3",
                        "--reconfigure",
                    ])
                    .output()
                    .unwrap();
                assert!(
                    again.status.success(),
                    "{case}: the resume failed: {}",
                    String::from_utf8_lossy(&again.stderr)
                );
                assert_consistent(&run, &case);
            }
        }
    }
    // Every point was reached: each case with n = 0 faults.
    assert!(faulted >= points.len() * 2, "{faulted} of {cases} cases faulted");
}

fn libc_sigabrt() -> i32 {
    6
}

#[test]
fn a_fault_during_an_import_leaves_the_archive_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let exported = ok(&["archive", "--run-dir", base().to_str().unwrap(), "export", "--format", "jsonl"]);
    let file = dir.path().join("records.jsonl");
    std::fs::write(&file, &exported).unwrap();
    for how in ["return", "return(crash)"] {
        let db = dir.path().join(format!("db-{}", how.len()));
        // An archive holding the records already, into which they are imported again, renumbered.
        ok(&["archive", "--db", db.to_str().unwrap(), "import", file.to_str().unwrap()]);
        let before = ok(&["archive", "--db", db.to_str().unwrap(), "export", "--format", "jsonl"]);
        let out = with_faults(
            &format!("archive-put={how}"),
            &["archive", "--db", db.to_str().unwrap(), "import", "--renumber", file.to_str().unwrap()],
        );
        assert!(!out.status.success(), "{how}: the fault was not reached");
        let after = ok(&["archive", "--db", db.to_str().unwrap(), "export", "--format", "jsonl"]);
        assert_eq!(after, before, "{how}: a failed import wrote something");
        // And a retry does it once.
        ok(&["archive", "--db", db.to_str().unwrap(), "import", "--renumber", file.to_str().unwrap()]);
        let lines =
            ok(&["archive", "--db", db.to_str().unwrap(), "export", "--format", "jsonl"]).lines().count();
        assert_eq!(lines, 2 * exported.lines().count(), "{how}");
    }
}
