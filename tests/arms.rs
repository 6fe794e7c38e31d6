//! The controls self-play is measured against (`round.arm`), and the milestone checkpoints kept
//! for curves drawn afterwards.

mod common;

use std::path::{Path, PathBuf};

use common::{metrics, ok, run_records as records};

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tiny.toml");

/// The tiny configuration with `arm`, checkpoints every round, one kept, milestones every 2.
fn config(dir: &Path, arm: &str) -> PathBuf {
    let tiny = std::fs::read_to_string(TINY).unwrap();
    let cfg = tiny
        .replace(
            "checkpoint_every = 2\n",
            "checkpoint_every = 1\nkeep_checkpoints = 1\nmilestone_every = 2\n",
        )
        .replace("[round]\n", &format!("[round]\narm = \"{arm}\"\n"));
    assert!(cfg.contains("milestone_every") && cfg.contains("arm ="), "tiny.toml changed shape");
    let path = dir.join(format!("{arm}.toml"));
    std::fs::write(&path, cfg).unwrap();
    path
}

fn proposer_weights(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("proposer/model.safetensors")).unwrap()
}

#[test]
fn the_controls_run_the_same_round_with_a_proposer_that_never_learns() {
    let dir = tempfile::tempdir().unwrap();
    for arm in ["generator", "frozen_proposer", "self_play"] {
        let run = dir.path().join(arm);
        let cfg = config(dir.path(), arm);
        ok(&["run", "--config", cfg.to_str().unwrap(), "--run-dir", run.to_str().unwrap(), "--rounds", "5"]);
        let lines = metrics(&run);
        assert_eq!(lines.len(), 5);
        let trained = lines.iter().filter(|m| !m["proposer_loss"].is_null()).count();
        let unchanged = proposer_weights(&run.join("warmstart"))
            == proposer_weights(&run.join("checkpoints/round-000005"));
        let records = records(&run);
        assert_eq!(records.len(), 5 * 8, "{arm}: every problem is archived");
        match arm {
            "generator" => {
                assert_eq!((trained, unchanged), (0, true), "{arm}");
                // The generator writes valid problems at the targets, with no prompt to show
                // references in and no tokens sampled.
                assert!(records.iter().all(|r| r.valid && r.references.is_empty()), "{arm}");
                assert!(records.iter().all(|r| r.depth == r.difficulty_target), "{arm}: on target");
                assert!(lines.iter().all(|m| m["proposer_output_tokens"] == 0.0), "{arm}");
            }
            "frozen_proposer" => {
                assert_eq!((trained, unchanged), (0, true), "{arm}");
                assert!(lines.iter().all(|m| m["proposer_output_tokens"].as_f64().unwrap() > 0.0));
            }
            _ => assert!(trained > 0 && !unchanged, "self-play trains its proposer"),
        }
        // Milestones (multiples of 2) stay beside round 0 and the latest.
        let mut kept: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        kept.sort();
        assert_eq!(kept, ["round-000000", "round-000002", "round-000004", "round-000005"], "{arm}");
    }
}

/// Frontier references (`round.references_from = "frontier"`), with a band holding every solve
/// rate so that replay always has some: every prompt from the second round on shows one, of the
/// target's depth or one off, and the generator arm mutates it into a problem of the target.
#[test]
fn frontier_references_are_shown_and_mutated() {
    let dir = tempfile::tempdir().unwrap();
    for arm in ["generator", "self_play"] {
        let run = dir.path().join(arm);
        let cfg = std::fs::read_to_string(config(dir.path(), arm)).unwrap().replace(
            "[round]\n",
            "[frontier]\nlow = 0.0\nhigh = 1.0\n[round]\nreferences = 1\nreferences_from = \"frontier\"\n",
        );
        let path = dir.path().join(format!("{arm}-frontier.toml"));
        std::fs::write(&path, cfg).unwrap();
        ok(&["run", "--config", path.to_str().unwrap(), "--run-dir", run.to_str().unwrap(), "--rounds", "4"]);
        let records = records(&run);
        let by_id: std::collections::HashMap<u64, &store::ProblemRecord> =
            records.iter().map(|r| (r.id, r)).collect();
        let later: Vec<_> = records.iter().filter(|r| r.round > 1).collect();
        assert_eq!(later.len(), 3 * 8, "{arm}");
        let shown = later.iter().filter(|r| r.references.len() == 1).count();
        if arm == "generator" {
            // Replay holds the generator's depths 1 to 3 after the tiny controller's first round:
            // every target has a reference of its depth or one off.
            assert_eq!(shown, later.len(), "{arm}: every later prompt shows one reference");
        } else {
            // The untrained tiny proposer writes few valid problems for replay to hold, and a
            // reference too long for its context is left out.
            assert!(shown > 0, "{arm}: no reference shown");
        }
        for r in later.iter().filter(|r| !r.references.is_empty()) {
            let reference = by_id[&r.references[0]];
            assert!(reference.round < r.round && reference.valid, "{arm}: {r:?}");
            let (depth, target) = (reference.depth.unwrap(), r.difficulty_target.unwrap());
            assert!(depth.abs_diff(target) <= 1, "{arm}: {reference:?} for {r:?}");
            if arm == "generator" {
                assert!(r.valid && r.depth == r.difficulty_target, "{arm}: {r:?}");
                assert_ne!(r.canonical_hash, reference.canonical_hash, "{arm}: a mutation is no copy");
            }
        }
    }
}

/// With `round.reference_evidence`, a frontier reference needs that many attempts over the rounds
/// it was scored in: the tiny run's 4 attempts a round are too few for the second round's
/// prompts, and enough once a problem has been replayed.
#[test]
fn frontier_references_wait_for_their_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let cfg = std::fs::read_to_string(config(dir.path(), "generator")).unwrap().replace(
        "[round]\n",
        "[frontier]\nlow = 0.0\nhigh = 1.0\n[round]\nreferences = 1\nreferences_from = \"frontier\"\n\
         reference_evidence = 8\n",
    );
    let path = dir.path().join("evidence.toml");
    std::fs::write(&path, cfg).unwrap();
    ok(&["run", "--config", path.to_str().unwrap(), "--run-dir", run.to_str().unwrap(), "--rounds", "4"]);
    let records = records(&run);
    let shown = |round: u64| records.iter().filter(|r| r.round == round && !r.references.is_empty()).count();
    assert_eq!((shown(1), shown(2)), (0, 0), "one round's 4 attempts are not 8");
    assert!(shown(3) + shown(4) > 0, "replayed problems have 8 attempts from round 3 on");
    // Each reference was scored in two rounds before it was shown: proposed, then replayed.
    let by_id: std::collections::HashMap<u64, &store::ProblemRecord> =
        records.iter().map(|r| (r.id, r)).collect();
    for r in records.iter().filter(|r| !r.references.is_empty()) {
        assert!(by_id[&r.references[0]].round + 2 <= r.round, "{r:?}");
    }
}

/// With `round.mutation_tries`, the generator arm's mutations of frontier references copy
/// nothing: neither the archive nor the round's other problems. Small edits of the tiny run's few
/// references, tried once, come back to problems the archive holds.
#[test]
fn mutations_tried_for_fresh_ones_copy_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut copies = Vec::new();
    for (edits, tries) in [("small", 1), ("free", 64)] {
        let run = dir.path().join(format!("{edits}-{tries}"));
        let cfg = std::fs::read_to_string(config(dir.path(), "generator"))
            .unwrap()
            .replace(
                "[round]\n",
                &format!(
                    "[frontier]\nlow = 0.0\nhigh = 1.0\n[round]\nreferences = 1\n\
                     references_from = \"frontier\"\nmutation_tries = {tries}\n"
                ),
            )
            .replacen(
                "[warm_start]\n",
                &format!("[warm_start]\nproposer_reference_edits = \"{edits}\"\n"),
                1,
            );
        let path = dir.path().join(format!("{edits}-{tries}.toml"));
        std::fs::write(&path, cfg).unwrap();
        ok(&["run", "--config", path.to_str().unwrap(), "--run-dir", run.to_str().unwrap(), "--rounds", "8"]);
        let mutated: Vec<_> = records(&run).into_iter().filter(|r| !r.references.is_empty()).collect();
        assert!(mutated.len() >= 6 * 8, "every later prompt mutates a reference: {}", mutated.len());
        copies.push(mutated.iter().filter(|r| r.repetition.as_deref() != Some("fresh")).count());
    }
    assert!(copies[0] > 0, "small edits tried once come back to the same problems: {copies:?}");
    assert_eq!(copies[1], 0, "with tries, no mutation copies anything");
}
