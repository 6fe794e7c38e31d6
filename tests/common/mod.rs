//! Running the `selfplay` binary from end-to-end tests.
#![allow(dead_code)] // each test file uses its own subset

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `selfplay ARGS` with `stdin` as its standard input.
pub fn selfplay_with(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_selfplay"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

pub fn selfplay(args: &[&str]) -> Output {
    selfplay_with(args, b"")
}

/// Standard output of a command that must succeed.
pub fn ok_with(args: &[&str], stdin: &[u8]) -> String {
    let out = selfplay_with(args, stdin);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

pub fn ok(args: &[&str]) -> String {
    ok_with(args, b"")
}

/// Standard error of a command that must fail, without a panic.
pub fn fails_with(args: &[&str], stdin: &[u8]) -> String {
    let out = selfplay_with(args, stdin);
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    err
}

pub fn fails(args: &[&str]) -> String {
    fails_with(args, b"")
}

/// Copies the files and directories under `from` to `to`.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Whether an archived valid problem is on the difficulty target it was asked for: its essential
/// depth, and (where a literal bound was asked for) no literal above it — recomputed from its
/// text, not read from its rewards.
#[allow(dead_code)]
pub fn on_target(r: &store::ProblemRecord) -> bool {
    use problem::Domain;
    let a = problem::Arith.analyze(&r.text, &problem::Limits::default()).expect("a valid problem");
    r.difficulty_target == Some(a.depth) && r.literal_target.is_none_or(|b| a.max_literal <= b)
}

/// Every line of a run's `metrics.jsonl` as JSON: a line that is not whole fails the test.
pub fn metrics(run: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a whole JSON line ({e}): {l}")))
        .collect()
}

/// Every problem of the archive at `db`, in the order written.
pub fn archive_records(db: &std::path::Path) -> Vec<store::ProblemRecord> {
    let archive =
        store::Archive::open_existing(db).unwrap_or_else(|e| panic!("the archive does not open: {e}"));
    archive.scan(&store::Filter::default(), store::Order::Ascending, None).map(Result::unwrap).collect()
}

/// Every problem of the run directory's archive, in the order written.
pub fn run_records(run: &std::path::Path) -> Vec<store::ProblemRecord> {
    archive_records(&run.join("archive"))
}
