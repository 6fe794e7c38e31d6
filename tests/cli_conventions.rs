//! The command line's conventions, end to end: flags accepted where a person types them, one
//! default run directory, shell completions, exit codes a script can tell apart, dates for
//! people and JSON for scripts.

mod common;

use std::path::Path;
use std::process::Output;

use common::{ok, ok_with, selfplay, selfplay_with};

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tiny.toml");

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A run directory with a round of problems in its archive.
fn short_run(dir: &Path) -> std::path::PathBuf {
    let run = dir.join("run");
    let out = ok(&["run", "--config", TINY, "--run-dir", run.to_str().unwrap(), "--rounds", "1", "--json"]);
    // `run --json`: the final summary as one object.
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((summary["first_round"].as_u64(), summary["last_round"].as_u64()), (Some(1), Some(1)));
    assert_eq!((summary["rounds"].as_u64(), summary["resumed"].as_bool()), (Some(1), Some(false)));
    assert_eq!(summary["problems"].as_u64(), Some(8));
    assert!(summary["rounds_per_minute"].as_f64().unwrap() > 0.0);
    assert_eq!(summary["stopped_by_request"], false);
    run
}

#[test]
fn flags_go_before_or_after_the_subcommand_and_dates_are_dates() {
    let dir = tempfile::tempdir().unwrap();
    let run = short_run(dir.path());
    let r = run.to_str().unwrap();
    let db = run.join("archive");
    let before = ok(&["archive", "--run-dir", r, "list", "--json"]);
    assert_eq!(before.lines().count(), 8);
    assert_eq!(ok(&["archive", "list", "--run-dir", r, "--json"]), before);
    assert_eq!(ok(&["archive", "list", "--json", "--db", db.to_str().unwrap(), "--timeout", "5"]), before);
    let both = selfplay(&["archive", "list", "--db", db.to_str().unwrap(), "--run-dir", r]);
    assert_eq!(code(&both), 2, "{}", stderr(&both));
    assert!(stderr(&both).contains("cannot be used with"), "{}", stderr(&both));
    let bad = selfplay(&["archive", "stats", "--run-dir", r, "--timeout", "-1"]);
    assert_eq!(code(&bad), 2);

    // The default run directory is the same for every command that takes one.
    let cwd = tempfile::tempdir().unwrap();
    common::copy_dir(&run, &cwd.path().join("runs/default"));
    let here = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_selfplay"))
            .args(args)
            .current_dir(cwd.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(here(&["archive", "list", "--json"]), before);
    assert!(here(&["report"]).contains("runs/default/report.html"));

    // `archive show` tells a person when, as a date.
    let shown = ok(&["archive", "show", "1", "--run-dir", r]);
    let created = shown.lines().find(|l| l.trim_start().starts_with("created")).unwrap();
    let when = created.split_whitespace().nth(1).unwrap().trim_end_matches(',');
    // 2026-12-05T07:03:18.123Z
    let shape: String = when.chars().map(|c| if c.is_ascii_digit() { '9' } else { c }).collect();
    assert!(shape.starts_with("9999-99-99T99:99:99") && shape.ends_with('Z'), "{created}");
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in
        [("bash", "complete -F"), ("zsh", "#compdef selfplay"), ("fish", "complete -c selfplay")]
    {
        let script = ok(&["completions", shell]);
        assert!(script.contains(marker), "{shell}: {}", &script[..script.len().min(200)]);
        assert!(script.contains("archive") && script.contains("run-dir"), "{shell} knows the commands");
    }
    let out = selfplay(&["completions", "tcsh"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn exit_codes_tell_usage_busy_and_damaged_apart() {
    let dir = tempfile::tempdir().unwrap();
    // Documented where a person looks first.
    let help = ok(&["--help"]);
    assert!(help.contains("Exit codes: 0 success; 1 failure; 2 usage error"), "{help}");
    let run_help = ok(&["run", "--help"]);
    for flag in ["--set <KEY=VALUE>", "--reconfigure", "--warm-start <DIR>", "--json"] {
        let line =
            run_help.lines().find(|l| l.trim_start().starts_with(flag)).unwrap_or_else(|| panic!("{flag}"));
        assert!(line.trim().len() > flag.len() + 10, "{flag} has no help: {line:?}");
    }
    // Usage: an unknown flag, a bad value, a configuration that is refused.
    assert_eq!(code(&selfplay(&["archive", "--no-such-flag"])), 2);
    assert_eq!(code(&selfplay(&["gen", "--depth", "x", "--count", "1"])), 2);
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[round]\nattempts = 0\n").unwrap();
    let out = selfplay(&[
        "run",
        "--config",
        bad.to_str().unwrap(),
        "--run-dir",
        dir.path().join("r").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("round.attempts must be positive"));

    let run = short_run(dir.path());
    let r = run.to_str().unwrap();
    // Busy: the archive is held by a process that answers no queries.
    {
        let _held = store::Archive::open(run.join("archive")).unwrap();
        let out = selfplay(&["archive", "stats", "--run-dir", r]);
        assert_eq!(code(&out), 3, "{}", stderr(&out));
        assert!(stderr(&out).contains("in use by another process"));
    }
    // Damaged: the archive lost problems it had written.
    std::fs::write(run.join("archive").join(store::WATERMARK), "999999").unwrap();
    let out = selfplay(&["archive", "stats", "--run-dir", r]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("truncated or damaged"));
    // Anything else: 1.
    let out =
        selfplay(&["archive", "import", "/nonexistent/file", "--db", dir.path().join("x").to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
}

#[test]
fn imports_say_what_they_did_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let run = short_run(dir.path());
    let exported = ok(&["archive", "export", "--format", "jsonl", "--run-dir", run.to_str().unwrap()]);
    let copy = dir.path().join("copy");
    let said =
        ok_with(&["archive", "import", "-", "--json", "--db", copy.to_str().unwrap()], exported.as_bytes());
    let said: serde_json::Value = serde_json::from_str(said.trim()).unwrap();
    assert_eq!(said, serde_json::json!({"imported": 8, "skipped": 0, "dropped_references": 0}));
    let again =
        ok_with(&["archive", "import", "-", "--json", "--db", copy.to_str().unwrap()], exported.as_bytes());
    assert_eq!(serde_json::from_str::<serde_json::Value>(again.trim()).unwrap()["skipped"], 8);

    let texts: Vec<String> = common::run_records(&run).iter().map(|r| r.text.clone()).collect();
    let ratings = format!("{{\"a\": {:?}, \"b\": {:?}, \"winner\": \"a\"}}\n", texts[0], texts[1]);
    let r = run.to_str().unwrap();
    let said = ok_with(&["rate", "import", "-", "--json", "--run-dir", r], ratings.as_bytes());
    let said: serde_json::Value = serde_json::from_str(said.trim()).unwrap();
    assert_eq!(said, serde_json::json!({"imported": 1, "already_imported": 0, "ratings": 1}));
    let out = selfplay_with(&["rate", "import", "-", "--json", "--run-dir", r], ratings.as_bytes());
    let said: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((said["imported"].as_u64(), said["already_imported"].as_u64()), (Some(0), Some(1)));
}
