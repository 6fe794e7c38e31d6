//! Faults and hostile input, end to end: `kill -9` at random moments, a full and a read-only
//! filesystem, damaged checkpoints and archives, hostile queries to the daemon's endpoint.
//!
//! The filesystem tests mount a small tmpfs, which needs root (as in CI); elsewhere they say so
//! and pass without running, unless `SELFPLAY_REQUIRE_ROOT_TESTS` is set (.ci/run sets it): then
//! they fail. `SELFPLAY_SOAK_KILLS` sets the soak's kill count (20 by default).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{archive_records as all_records, copy_dir, fails, metrics, ok, selfplay};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use store::ProblemRecord;

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tiny.toml");
/// Problems a round of the tiny configuration writes.
const PROPOSALS: usize = 8;

/// `selfplay run` on the tiny configuration in the background, its standard error into
/// `stderr` (a file: a pipe nobody reads would stall a long run).
fn spawn_run(run: &Path, rounds: u64, stderr: &Path) -> Daemon {
    Daemon(
        Command::new(env!("CARGO_BIN_EXE_selfplay"))
            .args([
                "run",
                "--config",
                TINY,
                "--run-dir",
                run.to_str().unwrap(),
                "--rounds",
                &rounds.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// A daemon a test started: killed when the test ends, passed or failed, so a failing test
/// leaves no run behind.
struct Daemon(Child);

impl std::ops::Deref for Daemon {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits for `child` at most `limit` (killing it and failing the test past that); its exit
/// status.
fn wait_at_most(mut child: Daemon, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A run directory after `rounds` rounds of the tiny configuration.
fn short_run(dir: &Path, rounds: u32) -> PathBuf {
    let run = dir.join("run");
    ok(&["run", "--config", TINY, "--run-dir", run.to_str().unwrap(), "--rounds", &rounds.to_string()]);
    run
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dir_bytes(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

/// Rounds checked against what the archive must hold: each round written whole (all its
/// problems) and once, in increasing order of ids.
fn check_rounds(records: &[ProblemRecord]) -> BTreeMap<u64, usize> {
    let mut per_round = BTreeMap::new();
    for r in records {
        *per_round.entry(r.round).or_insert(0) += 1;
    }
    let rounds: Vec<u64> = records.iter().map(|r| r.round).collect();
    assert!(rounds.windows(2).all(|w| w[0] <= w[1]), "rounds go up with ids");
    for (round, n) in &per_round {
        assert_eq!(*n, PROPOSALS, "round {round} holds {n} problems: written in part, or twice");
    }
    per_round
}

#[test]
fn kill_9_soak_loses_nothing_written() {
    let kills: usize = std::env::var("SELFPLAY_SOAK_KILLS").map_or(20, |v| v.parse().expect("a count"));
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let db = run.join("archive");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    // id -> the record as JSON, as it was after the previous kill.
    let mut written: BTreeMap<u64, String> = BTreeMap::new();
    let started = Instant::now();
    for kill in 0..kills {
        // The first kills land in the warm start of a fresh run directory; then one run finishes
        // it (on a loaded machine every kill could land in it), and the other kills land
        // anywhere: starting, proposing, solving, writing, checkpointing.
        if kill == 3 {
            ok(&["run", "--config", TINY, "--run-dir", run.to_str().unwrap(), "--rounds", "1"]);
        }
        let mut child = spawn_run(&run, 100_000, &dir.path().join("stderr"));
        let wait = if kill < 3 { rng.random_range(50..600) } else { rng.random_range(100..1500) };
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if !db.join("conf").exists() {
            continue;
        }
        let records = all_records(&db);
        let now: BTreeMap<u64, String> =
            records.iter().map(|r| (r.id, serde_json::to_string(r).unwrap())).collect();
        for (id, before) in &written {
            assert_eq!(now.get(id), Some(before), "kill {kill}: problem {id} changed or was lost");
        }
        check_rounds(&records);
        written = now;
    }
    // The next run resumes from its checkpoint, repairs the metrics, and never reuses a round.
    let out = ok(&["run", "--config", TINY, "--run-dir", run.to_str().unwrap(), "--rounds", "2"]);
    assert!(out.contains("resumed"), "{out}");
    let records = all_records(&db);
    assert!(written.keys().all(|id| records.iter().any(|r| r.id == *id)));
    let per_round = check_rounds(&records);
    let m = metrics(&run);
    let metric_rounds: Vec<u64> = m.iter().map(|l| l["round"].as_u64().unwrap()).collect();
    assert!(metric_rounds.windows(2).all(|w| w[0] < w[1]), "metrics rounds repeat: {metric_rounds:?}");
    assert_eq!(metric_rounds.last(), per_round.keys().last(), "the last round is in both");
    // Every checkpoint left loads; none was set aside as damaged, no temporary one is left.
    let mut loaded = 0;
    for e in std::fs::read_dir(run.join("checkpoints")).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("round-") && !name.contains("corrupt"), "left in checkpoints: {name}");
        for player in ["solver", "proposer"] {
            policy::Trainable::load(&path.join(player), None, &candle_core::Device::Cpu)
                .unwrap_or_else(|e| panic!("{name}/{player}: {e}"));
        }
        let curriculum = std::fs::read(path.join("curriculum.json")).unwrap();
        serde_json::from_slice::<Value>(&curriculum).unwrap();
        loaded += 1;
    }
    assert!(loaded >= 2, "the warm start and at least one round checkpoint");
    eprintln!(
        "soak: {kills} kills in {:.0} s; {} problems in {} rounds kept; {loaded} checkpoints load",
        started.elapsed().as_secs_f64(),
        records.len(),
        per_round.len()
    );
}

#[test]
fn a_damaged_checkpoint_is_set_aside_and_the_one_before_it_used() {
    let dir = tempfile::tempdir().unwrap();
    let run = short_run(dir.path(), 4);
    let r = run.to_str().unwrap();
    let cks = run.join("checkpoints");
    let model = cks.join("round-000004/solver/model.safetensors");
    let len = std::fs::metadata(&model).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&model).unwrap().set_len(len / 2).unwrap();
    let out = selfplay(&["run", "--config", TINY, "--run-dir", r, "--rounds", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("round-000004 does not load") && said.contains("model.safetensors"), "{said}");
    assert!(said.contains("resuming from the older checkpoint"), "{said}");
    let aside: Vec<String> = std::fs::read_dir(&cks)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("round-000004.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "kept aside, not deleted");
    // Rounds 3 and 4 are in the archive: the run goes on after them, from round 2's models.
    assert_eq!(metrics(&run).last().unwrap()["round"].as_u64(), Some(5));
    check_rounds(&all_records(&run.join("archive")));

    // When no checkpoint loads, the run stops and names each one; nothing is deleted.
    for e in std::fs::read_dir(&cks).unwrap() {
        let path = e.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("round-") && path.join("solver").is_dir() {
            std::fs::write(path.join("solver/state.json"), "{ not json").unwrap();
        }
    }
    let before = std::fs::read_dir(&cks).unwrap().count();
    let err = fails(&["run", "--config", TINY, "--run-dir", r, "--rounds", "1"]);
    assert!(err.contains("no checkpoint of") && err.contains("state.json"), "{err}");
    assert!(err.contains("round-000000") && err.contains("round-000005"), "{err}");
    assert_eq!(std::fs::read_dir(&cks).unwrap().count(), before);
}

#[test]
fn a_truncated_archive_is_reported_and_never_written_over() {
    let dir = tempfile::tempdir().unwrap();
    let run = short_run(dir.path(), 3);
    let r = run.to_str().unwrap();
    let db = run.join("archive").join("db");
    std::fs::OpenOptions::new().write(true).open(&db).unwrap().set_len(1000).unwrap();
    let want = "were written to it: its files were truncated or damaged";
    let err = fails(&["run", "--config", TINY, "--run-dir", r, "--rounds", "1"]);
    assert!(err.contains(want) && err.contains("problems up to id 24"), "{err}");
    let err = fails(&["archive", "--run-dir", r, "stats"]);
    assert!(err.contains(want), "{err}");
    assert_eq!(metrics(&run).len(), 3, "the run did not go on");
}

#[test]
fn the_unfinished_warm_start_of_a_killed_run_is_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let run = short_run(dir.path(), 1);
    let r = run.to_str().unwrap();
    // As if killed after the solver was saved and before the proposer: no checkpoint yet.
    std::fs::remove_dir_all(run.join("checkpoints")).unwrap();
    std::fs::remove_dir_all(run.join("archive")).unwrap();
    std::fs::remove_file(run.join("metrics.jsonl")).unwrap();
    std::fs::remove_dir_all(run.join("warmstart/proposer")).unwrap();
    std::fs::remove_file(run.join("warmstart/report.json")).unwrap();
    let out = ok(&["run", "--config", TINY, "--run-dir", r, "--rounds", "1"]);
    assert!(out.contains("ran rounds 1..1"), "{out}");
    assert!(run.join("warmstart/proposer/state.json").is_file());
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` (and a note) where mounting is not permitted, unless `SELFPLAY_REQUIRE_ROOT_TESTS`
    /// is set (as .ci/run sets it): then a test that cannot run fails.
    fn mount(at: &Path, bytes: u64) -> Option<Tmpfs> {
        let skip = |why: String| -> Option<Tmpfs> {
            if std::env::var_os("SELFPLAY_REQUIRE_ROOT_TESTS").is_some() {
                panic!("SELFPLAY_REQUIRE_ROOT_TESTS is set, and this test cannot run: {why}");
            }
            eprintln!("not run: {why}");
            None
        };
        std::fs::create_dir_all(at).unwrap();
        let size = format!("size={}k", bytes.div_ceil(1024));
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &size, "tmpfs"]).arg(at).output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(at.to_path_buf())),
            Ok(o) => {
                skip(format!("cannot mount a tmpfs here: {}", String::from_utf8_lossy(&o.stderr).trim()))
            }
            Err(e) => skip(format!("no mount command: {e}")),
        }
    }

    fn remount(&self, options: &str) {
        let status =
            Command::new("mount").args(["-o", &format!("remount,{options}")]).arg(&self.0).status().unwrap();
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_stops_the_run_with_a_message_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let base = short_run(dir.path(), 2);
    // Room for a few rounds and their checkpoints, then the disk is full.
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), dir_bytes(&base) + (1 << 20)) else { return };
    let run = disk.0.join("run");
    copy_dir(&base, &run);
    let stderr = dir.path().join("stderr");
    let status = wait_at_most(spawn_run(&run, 100_000, &stderr), Duration::from_secs(300));
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert!(!status.success(), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.contains("No space left on device") && last.contains(run.to_str().unwrap()), "{last}");
    assert!(!err.contains("panicked"), "{err}");
    // What was written before the disk filled up is all there, whole.
    let m = metrics(&run);
    let records = all_records(&run.join("archive"));
    let per_round = check_rounds(&records);
    let last_metrics = m.last().unwrap()["round"].as_u64().unwrap();
    assert!(last_metrics > 2, "it ran rounds before the disk filled up");
    assert!(
        per_round.keys().last().copied() >= Some(last_metrics),
        "a round in the metrics is in the archive"
    );
    let leftovers: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "a half-written checkpoint keeps its space: {leftovers:?}");
    // With room again, the same command goes on from there.
    disk.remount("size=64m");
    let out = ok(&["run", "--config", TINY, "--run-dir", run.to_str().unwrap(), "--rounds", "2"]);
    assert!(out.contains("resumed"), "{out}");
    let after = all_records(&run.join("archive"));
    assert!(records.iter().all(|r| after.iter().any(|a| a.id == r.id && a.text == r.text)));
    check_rounds(&after);
}

#[test]
fn a_read_only_run_directory_is_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let base = short_run(dir.path(), 2);
    let Some(disk) = Tmpfs::mount(&dir.path().join("ro"), 64 << 20) else { return };
    let run = disk.0.join("run");
    copy_dir(&base, &run);
    disk.remount("ro");
    let r = run.to_str().unwrap();
    let err = fails(&["run", "--config", TINY, "--run-dir", r, "--rounds", "1"]);
    assert!(err.contains("Read-only file system") && err.contains(r), "{err}");
    let err = fails(&["archive", "--run-dir", r, "stats"]);
    assert!(err.contains("Read-only file system") && err.contains(r), "{err}");
    disk.remount("rw");
    ok(&["run", "--config", TINY, "--run-dir", r, "--rounds", "1"]);
    check_rounds(&all_records(&run.join("archive")));
}

/// One request line to the daemon's endpoint; the tag and body of its first frame.
fn ask_raw(socket: &Path, request: &[u8]) -> (u8, String) {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    let mut header = [0u8; 5];
    s.read_exact(&mut header).unwrap();
    let len = u32::from_be_bytes(header[1..].try_into().unwrap()) as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (header[0], String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn hostile_queries_leave_the_daemon_running_and_answering() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let stderr = dir.path().join("stderr");
    let daemon = spawn_run(&run, 100_000, &stderr);
    let socket = run.join("archive.sock");
    let start = Instant::now();
    // Whole lines only: the daemon may be writing the next one.
    let rounds_done =
        || std::fs::read(run.join("metrics.jsonl")).map_or(0, |t| t.iter().filter(|&&b| b == b'\n').count());
    while !(socket.exists() && rounds_done() > 0) {
        assert!(start.elapsed() < Duration::from_secs(120), "the daemon did not get going");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "owner only");

    for (request, want) in [
        (b"this is not json\n".to_vec(), "malformed query"),
        (b"{\"version\": 2, \"query\": {\"drop\": {}}}\n".to_vec(), "malformed query: unknown variant"),
        (b"{\"version\": 2, \"query\": {\"record\": {\"id\": 1, \"json\": true}}}\n".to_vec(), "unknown field `json`"),
        (b"{\"version\": 99, \"query\": {\"record\": {\"id\": 1}}}\n".to_vec(), "protocol 2, not 99"),
        (vec![b'['; 200_000], "query longer than 65536 bytes"),
        // A client of the first protocol, which sent command-line subcommands, is told so.
        (b"{\"version\": 1, \"command\": {\"import\": {\"input\": \"/etc/passwd\", \"renumber\": false}}}\n".to_vec(), "protocol 2, not 1"),
        (b"{\"version\": 2, \"query\": {\"record\": {\"id\": 999999999}}}\n".to_vec(), "no problem with id 999999999"),
    ] {
        let (tag, body) = ask_raw(&socket, &request);
        assert_eq!(tag, b'e', "{body}");
        assert!(body.contains(want), "{want:?} in {body:?}");
    }
    // A well-formed query is answered with typed replies: the first record of the archive.
    let (tag, body) = ask_raw(
        &socket,
        b"{\"version\": 2, \"query\": {\"page\": {\"order\": {\"id\": {}}, \"limit\": 1}}}\n",
    );
    assert_eq!(tag, b'r', "{body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["record"]["id"], 1, "{body}");
    // Many connections that never send a request: the extra ones are turned away at once, and
    // once they are gone, queries are answered again.
    let idle: Vec<UnixStream> = (0..100).map(|_| UnixStream::connect(&socket).unwrap()).collect();
    let mut turned_away = 0;
    for mut s in idle.iter().skip(64) {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        if String::from_utf8_lossy(&buf).contains("too many open queries") {
            turned_away += 1;
        }
    }
    assert!(turned_away > 0, "connections beyond the limit are refused");
    drop(idle);
    // The daemon sees them close in its own time: a query may still be turned away for a moment.
    let start = Instant::now();
    let stats = loop {
        let out = selfplay(&["archive", "--run-dir", r, "stats", "--json"]);
        if out.status.success() {
            break String::from_utf8(out.stdout).unwrap();
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("busy") && start.elapsed() < Duration::from_secs(10), "{err}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(serde_json::from_str::<Value>(&stats).unwrap()["total"].as_u64().unwrap() > 0, "{stats}");
    let mut daemon = daemon;
    assert!(daemon.try_wait().unwrap().is_none(), "the daemon is still running");
    let rounds = rounds_done();
    let start = Instant::now();
    while rounds_done() == rounds {
        assert!(start.elapsed() < Duration::from_secs(60), "rounds go on");
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill").args(["-TERM", &daemon.id().to_string()]).status().unwrap();
    let status = wait_at_most(daemon, Duration::from_secs(60));
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert!(status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_stop_request_during_the_warm_start_ends_it_and_the_next_run_starts_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = std::fs::read_to_string(TINY).unwrap();
    let long = tiny.replacen("steps = 40\n", "steps = 1000000\n", 1);
    assert_ne!(long, tiny, "tiny.toml's solver steps moved");
    let cfg = dir.path().join("long.toml");
    std::fs::write(&cfg, long).unwrap();
    let run = dir.path().join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_selfplay"))
        .args(["run", "--config", cfg.to_str().unwrap(), "--run-dir", run.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !run.join("warmstart").exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "no warm start began");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let stopped = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(stopped.elapsed() < Duration::from_secs(20), "the stop waited for the warm start");
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("stopped on request before round 1"), "{said}");
    // Started again on the short warm start: a change of configuration, asked for.
    let out =
        ok(&["run", "--config", TINY, "--run-dir", run.to_str().unwrap(), "--rounds", "1", "--reconfigure"]);
    assert!(out.contains("ran rounds 1..1"), "{out}");
}

#[test]
fn hostile_text_in_the_archive_is_shown_never_interpreted() {
    let dir = tempfile::tempdir().unwrap();
    let run = short_run(dir.path(), 2);
    let r = run.to_str().unwrap();
    // Records from elsewhere (an import) can hold any text: terminal escapes, markup, shell.
    let hostile = "\u{1b}[2J\u{1b}]0;owned\u{7}<script>alert(1)</script>$(touch pwned)`id`=1+2";
    let mut rec: Value = serde_json::from_str(
        ok(&["archive", "--run-dir", r, "export", "--format", "jsonl"]).lines().next().unwrap(),
    )
    .unwrap();
    rec["id"] = serde_json::json!(100_000);
    rec["text"] = serde_json::json!(hostile);
    rec["valid"] = serde_json::json!(false);
    rec["reason"] = serde_json::json!("bad_char");
    for key in ["answer", "canonical", "canonical_hash"] {
        rec[key] = Value::Null;
    }
    let file = dir.path().join("hostile.jsonl");
    std::fs::write(&file, format!("{rec}\n")).unwrap();
    ok(&["archive", "--run-dir", r, "import", file.to_str().unwrap()]);
    for args in [vec!["list", "--limit", "100"], vec!["show", "100000"]] {
        let out = ok(&[&["archive", "--run-dir", r], &args[..]].concat());
        assert!(out.contains("100000") && out.contains("<script>alert(1)</script>$(touch pwned)"), "{out}");
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{7}'),
            "control characters reach the terminal: {out:?}"
        );
    }
    // The judge only parses it, and says where it stops.
    let out = common::ok_with(&["judge", "--json"], format!("{hostile}\n").as_bytes());
    let line: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((line["valid"].as_bool(), line["reason"].as_str()), (Some(false), Some("bad_char")));
    assert!(!dir.path().join("pwned").exists() && !Path::new("pwned").exists());
}

#[test]
fn a_run_directory_is_owner_only_and_links_or_strangers_are_refused() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let run = short_run(dir.path(), 1);
    let mode = std::fs::metadata(&run).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "run directory mode {mode:o}");
    let r = run.to_str().unwrap();

    // metrics.jsonl as a link to a file elsewhere: refused, and the file elsewhere untouched.
    let elsewhere = dir.path().join("elsewhere.txt");
    std::fs::write(&elsewhere, "precious\n").unwrap();
    let metrics = run.join("metrics.jsonl");
    let kept = std::fs::read(&metrics).unwrap();
    std::fs::remove_file(&metrics).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &metrics).unwrap();
    let err = fails(&["run", "--run-dir", r, "--rounds", "1"]);
    assert!(err.contains("metrics.jsonl is a symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "precious\n");
    std::fs::remove_file(&metrics).unwrap();
    std::fs::write(&metrics, kept).unwrap();

    // A directory of another user's (root can make one): refused before anything is written.
    let me = std::fs::metadata(&run).unwrap().uid();
    if me != 0 {
        let why = "only root can give a directory to another user";
        assert!(std::env::var_os("SELFPLAY_REQUIRE_ROOT_TESTS").is_none(), "cannot run: {why}");
        eprintln!("not run: {why}");
        return;
    }
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let err = fails(&["run", "--run-dir", theirs.to_str().unwrap(), "--rounds", "1"]);
    assert!(err.contains("belongs to user 65534"), "{err}");
    assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0, "nothing written in it");
    ok(&["run", "--run-dir", r, "--rounds", "1"]);
}
