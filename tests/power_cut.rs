//! Power cuts at every point of three rounds, the way SQLite's crash tests cut: a resumed run is
//! traced (every write, truncation, sync, creation, rename and removal under its directory, by
//! `power_cut/trace_writes.rs` loaded with `LD_PRELOAD`), and the trace is replayed to every
//! prefix through a model of what a file system must keep (`power_cut/model.rs`): only what was
//! synced, or that plus any unsynced writes, some torn, and a prefix of each directory's unsynced
//! name changes. After each cut: the archive opens, every round acknowledged in `metrics.jsonl`
//! is whole in it, no round holds more than its problems, every checkpoint under its final name
//! loads, and — at cuts spread over the trace — the run resumes and stays so.

mod common;
#[path = "power_cut/model.rs"]
mod model;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::ok;
use model::{Cut, Disk, Event};

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tiny.toml");
const TRACER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/power_cut/trace_writes.rs");
/// Problems a round of the tiny configuration writes.
const PROPOSALS: usize = 8;
/// Random cuts tried at each point of the trace, beside the synced-only one and the one that
/// keeps everything written (what `kill -9` leaves).
const RANDOM_CUTS: u64 = 2;
/// Cuts after which the run is also resumed (a second each).
const RESUMES: usize = 16;

/// Builds the tracing library into `dir` with the rustc that built this test.
fn build_tracer(dir: &Path) -> PathBuf {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| {
        // Cargo sits beside the rustc of its toolchain (rustup's proxies, or a toolchain's bin/).
        Path::new(env!("CARGO")).with_file_name("rustc").into_os_string()
    });
    let lib = dir.join("libtrace_writes.so");
    let out = Command::new(&rustc)
        .args(["--edition", "2021", "-O", "--crate-type", "cdylib", "-o"])
        .arg(&lib)
        .arg(TRACER)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", Path::new(&rustc).display()));
    assert!(out.status.success(), "building the tracer failed:\n{}", String::from_utf8_lossy(&out.stderr));
    lib
}

/// Every regular file and directory under `root`, as the model lists a state.
fn tree(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::from([(root.to_path_buf(), None)]);
    for entry in std::fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            out.extend(tree(&entry.path()));
        } else if kind.is_file() {
            out.insert(entry.path(), Some(std::fs::read(entry.path()).unwrap()));
        }
    }
    out
}

/// The rounds `metrics.jsonl` acknowledges: its whole lines (a torn last line is not one).
fn acknowledged(run: &Path) -> Result<Vec<u64>, String> {
    let Ok(text) = std::fs::read(run.join("metrics.jsonl")) else { return Ok(Vec::new()) };
    let whole = &text[..text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)];
    whole
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
                format!("metrics.jsonl holds a damaged line ({e}): {}", String::from_utf8_lossy(line))
            })?;
            v["round"].as_u64().ok_or_else(|| "a metrics line without a round".to_string())
        })
        .collect()
}

/// What must hold of a run directory after a cut, or after a resume from one.
fn check(run: &Path) -> Result<(), String> {
    let rounds = acknowledged(run)?;
    if !rounds.windows(2).all(|w| w[0] < w[1]) {
        return Err(format!("round numbers repeat in the metrics: {rounds:?}"));
    }
    let archive = store::Archive::open_existing(run.join("archive"))
        .map_err(|e| format!("the archive does not open: {e}"))?;
    let mut per_round: BTreeMap<u64, usize> = BTreeMap::new();
    for r in archive.scan(&store::Filter::default(), store::Order::Ascending, None) {
        let r = r.map_err(|e| format!("a record does not read: {e}"))?;
        *per_round.entry(r.round).or_default() += 1;
    }
    for round in &rounds {
        if per_round.get(round) != Some(&PROPOSALS) {
            return Err(format!(
                "round {round} is acknowledged but holds {:?} problems",
                per_round.get(round)
            ));
        }
    }
    if let Some((round, n)) = per_round.iter().find(|(_, n)| **n > PROPOSALS) {
        return Err(format!("round {round} holds {n} problems: a round number was used twice"));
    }
    checkpoints_whole(run)
}

/// Every checkpoint under its final name loads whole: both players and the curriculum. (A
/// damaged one would be set aside by the next start, losing the rounds since the one before.)
fn checkpoints_whole(run: &Path) -> Result<(), String> {
    let cks = policy::Checkpoints { root: run.join("checkpoints"), prefix: "round".into(), keep: 0 };
    for n in cks.list() {
        let dir = cks.path(n);
        for player in ["solver", "proposer"] {
            policy::Trainable::load(&dir.join(player), None, &candle_core::Device::Cpu)
                .map_err(|e| format!("checkpoint round-{n:06} does not load: {e}"))?;
        }
        let curriculum = std::fs::read(dir.join("curriculum.json"))
            .map_err(|e| format!("checkpoint round-{n:06}: curriculum.json: {e}"))?;
        serde_json::from_slice::<serde_json::Value>(&curriculum)
            .map_err(|e| format!("checkpoint round-{n:06}: curriculum.json is not whole: {e}"))?;
    }
    Ok(())
}

/// A base run, then three more rounds of it traced; the model's disk before them and the events.
fn traced_rounds(dir: &Path) -> (PathBuf, Disk, Vec<Event>) {
    let lib = build_tracer(dir);
    let run = dir.canonicalize().unwrap().join("run");
    let r = run.to_str().unwrap();
    ok(&["run", "--config", TINY, "--run-dir", r, "--rounds", "2"]);
    let before = Disk::snapshot(&run).unwrap();
    let trace = dir.join("trace");
    // Rounds 3..5: the archive's batches and syncs, metrics lines, a checkpoint (every 2 rounds).
    let out = Command::new(env!("CARGO_BIN_EXE_selfplay"))
        .args(["run", "--run-dir", r, "--rounds", "3"])
        .env("LD_PRELOAD", &lib)
        .env("TRACE_WRITES_ROOT", &run)
        .env("TRACE_WRITES_OUT", &trace)
        .output()
        .unwrap();
    assert!(out.status.success(), "the traced run failed: {}", String::from_utf8_lossy(&out.stderr));
    let events = model::parse(&std::fs::read(&trace).expect("the tracer wrote nothing")).unwrap();
    // The trace must account for every byte: replayed whole, it gives the directory as it is.
    let mut replayed = before.clone();
    for e in &events {
        replayed.apply(e).unwrap();
    }
    let (got, want) = (replayed.after(Cut::Everything), tree(&run));
    let differ: Vec<_> = want.keys().chain(got.keys()).filter(|p| got.get(*p) != want.get(*p)).collect();
    assert!(differ.is_empty(), "the trace misses writes: replayed, these differ: {differ:?}");
    (run, before, events)
}

#[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
#[test]
fn an_acknowledged_round_survives_a_power_cut_at_any_point() {
    let dir = tempfile::tempdir().unwrap();
    let (run, mut disk, events) = traced_rounds(dir.path());
    let syncs = events.iter().filter(|e| matches!(e, Event::Sync { .. })).count();
    assert!(
        syncs > 20 && events.len() > 100,
        "a suspiciously short trace: {} events, {syncs} syncs",
        events.len()
    );
    let resume_every = (events.len() + 1).div_ceil(RESUMES);
    let (mut cuts, mut resumed, mut failures) = (0, 0, Vec::new());
    for point in 0..=events.len() {
        if point > 0 {
            disk.apply(&events[point - 1]).unwrap();
        }
        let kinds = [Cut::SyncedOnly, Cut::Everything]
            .into_iter()
            .chain((0..RANDOM_CUTS).map(|i| Cut::Random(point as u64 * 8 + i)));
        for (k, cut) in kinds.enumerate() {
            let case = format!("cut after event {point} of {} ({cut:?})", events.len());
            let at = dir.path().join(format!("cut-{point}-{k}"));
            model::materialize(&disk.after(cut), &run, &at).unwrap();
            cuts += 1;
            if let Err(e) = check(&at) {
                failures.push(format!("{case}: {e}"));
            } else if k < 2 && point % resume_every == 0 {
                // The run goes on from what the cut left, and what it then holds is consistent.
                let resume = Command::new(env!("CARGO_BIN_EXE_selfplay"))
                    .args(["run", "--run-dir", at.to_str().unwrap(), "--rounds", "1"])
                    .output()
                    .unwrap();
                resumed += 1;
                if !resume.status.success() {
                    failures.push(format!(
                        "{case}: the resume failed: {}",
                        String::from_utf8_lossy(&resume.stderr)
                    ));
                } else if let Err(e) = check(&at) {
                    failures.push(format!("{case}, resumed: {e}"));
                }
            }
            std::fs::remove_dir_all(&at).unwrap();
        }
    }
    eprintln!("{} events ({syncs} syncs), {cuts} cuts, {resumed} resumed", events.len());
    assert!(
        failures.is_empty(),
        "{} of {cuts} cuts lost something:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu")))]
#[test]
fn an_acknowledged_round_survives_a_power_cut_at_any_point() {
    panic!("the power-cut test traces libc's calls on x86-64 Linux with glibc only; it cannot run here");
}
