//! End-to-end tests of the `selfplay` binary: its output contracts and its errors.

mod common;

use std::path::Path;

use common::{fails_with as fails, ok_with as ok};

use serde_json::{json, Value};
use store::{Archive, Attempt, Filter, ProblemRecord, Rewards};

fn json_lines(s: &str) -> Vec<Value> {
    s.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

const JUDGE_KEYS: [&str; 11] = [
    "problem",
    "valid",
    "error",
    "answer",
    "canonical",
    "hash",
    "surface_ops",
    "essential_ops",
    "depth",
    "padding",
    "padded",
];

#[test]
fn judge_json_contract() {
    let input = b"(12+7)*1+0\n1+\n\xff\xfe\x00garbage\n\n999*999*999*2\n3 + 4\r\n(3+4)*(4+3)";
    let lines = json_lines(&ok(&["judge", "--json"], input));
    assert_eq!(lines.len(), 7, "one output line per input line, the last without newline too");
    for l in &lines {
        for key in JUDGE_KEYS {
            assert!(l.get(key).is_some(), "missing {key} in {l}");
        }
    }
    let v = &lines[0];
    assert_eq!(v["problem"], "(12+7)*1+0");
    assert_eq!((v["valid"].as_bool(), v["error"].is_null()), (Some(true), true));
    assert_eq!(v["answer"], "19");
    assert_eq!(v["canonical"], "7+12");
    assert_eq!(v["hash"].as_str().unwrap().len(), 16);
    assert_eq!(
        (v["surface_ops"].as_u64(), v["essential_ops"].as_u64(), v["depth"].as_u64()),
        (Some(3), Some(1), Some(1))
    );
    assert!((v["padding"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(v["padded"], true);

    let bad = &lines[1];
    assert_eq!(bad["valid"], false);
    assert_eq!(bad["error"], "expected a number or '(', found the end at byte 2");
    assert!(bad["answer"].is_null() && bad["canonical"].is_null());
    assert_eq!(lines[2]["valid"], false);
    assert!(lines[2]["error"].as_str().unwrap().contains("not UTF-8"));
    assert_eq!(lines[3]["error"], "empty problem");
    assert!(lines[4]["error"].as_str().unwrap().contains("exceeds 10^9"));
    assert_eq!(lines[5]["problem"], "3 + 4", "CRLF line endings are stripped");
    let three_plus_four = json_lines(&ok(&["judge", "--json"], b"4+3\n"));
    assert_eq!(lines[5]["hash"], three_plus_four[0]["hash"]);
    assert_eq!(lines[6]["canonical"], "(3+4)*(3+4)");
    assert_eq!((lines[6]["essential_ops"].as_u64(), lines[6]["padded"].as_bool()), (Some(3), Some(false)));
    // Equivalent problems share a hash.
    let same = json_lines(&ok(&["judge", "--json"], b"4+3\n3+4+0\n"));
    assert_eq!(same[0]["hash"], same[1]["hash"]);
}

#[test]
fn judge_reads_files_and_reports_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("problems.txt");
    std::fs::write(&file, "1+1\n2*3\n").unwrap();
    let out = ok(&["judge", file.to_str().unwrap()], b"");
    assert_eq!(out.lines().count(), 2);
    assert!(out.starts_with("ok "), "{out}");
    let err = fails(&["judge", dir.path().join("missing").to_str().unwrap()], b"");
    assert!(err.contains("cannot read") && err.contains("missing"), "{err}");
    let err = fails(&["judge", dir.path().to_str().unwrap()], b"");
    assert!(err.contains(&format!("reading {}", dir.path().display())), "{err}");
    let err = fails(&["judge", "--max-tokens", "0"], b"");
    assert!(err.contains("max_tokens must be in 1..=1024"), "{err}");
    // The token budget applies.
    let lines = json_lines(&ok(&["judge", "--json", "--max-tokens", "5"], b"1+2+3\n1+2+3+4\n"));
    assert_eq!((lines[0]["valid"].as_bool(), lines[1]["valid"].as_bool()), (Some(true), Some(false)));
    // A line of megabytes is judged too long from its first bytes; the next line is whole.
    let mut input = b"1+2\n".to_vec();
    input.extend(std::iter::repeat_n(b'(', 5 << 20));
    input.extend_from_slice(b"\n3*4\r\n");
    let lines = json_lines(&ok(&["judge", "--json"], &input));
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["reason"], "too_long");
    assert!(lines[1]["error"]
        .as_str()
        .unwrap()
        .contains("a line of 5242880 bytes exceeds the budget of 256"));
    assert!(lines[1]["problem"].as_str().unwrap().len() < 2048, "not echoed whole");
    assert_eq!((lines[2]["valid"].as_bool(), lines[2]["answer"].as_str()), (Some(true), Some("12")));
}

#[test]
fn gen_is_reproducible_and_agrees_with_judge() {
    let a = ok(&["gen", "--depth", "4", "--count", "30", "--seed", "9"], b"");
    assert_eq!(a, ok(&["gen", "--depth", "4", "--count", "30", "--seed", "9"], b""));
    assert_ne!(a, ok(&["gen", "--depth", "4", "--count", "30", "--seed", "10"], b""));
    let generated = json_lines(&a);
    assert_eq!(generated.len(), 30);
    let problems: String =
        generated.iter().map(|g| format!("{}\n", g["problem"].as_str().unwrap())).collect();
    assert_eq!(ok(&["gen", "--depth", "4", "--count", "30", "--seed", "9", "--text"], b""), problems);
    let judged = json_lines(&ok(&["judge", "--json"], problems.as_bytes()));
    for (g, j) in generated.iter().zip(&judged) {
        assert_eq!(g["answer"], j["answer"]);
        assert_eq!(g["depth"], 4);
        assert_eq!(j["depth"], 4);
        assert_eq!(j["padded"], false);
    }
    let err = fails(&["gen", "--depth", "2", "--count", "1", "--max-literal", "1000"], b"");
    assert!(err.contains("max_literal 1000 exceeds 999"), "{err}");
}

/// `gen --mutate`: variants of given problems, each naming its reference, valid, of the asked
/// depth; small edits keep the operators; bad lines are named.
#[test]
fn gen_mutates_given_problems() {
    let input = b"(3+4)*12-5\n{\"problem\": \"17*13+8\"}\n1+\n";
    let out = common::selfplay_with(&["gen", "--mutate", "-", "--count", "5", "--edits", "small"], input);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("- line 3: skipped, not a valid problem"), "{err}");
    let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert!(lines.len() >= 8, "most references give their mutations: {}", lines.len());
    let texts: String = lines.iter().map(|l| format!("{}\n", l["problem"].as_str().unwrap())).collect();
    let judged = json_lines(&ok(&["judge", "--json"], texts.as_bytes()));
    for (m, j) in lines.iter().zip(&judged) {
        let reference = m["reference"].as_str().unwrap();
        assert_ne!(m["problem"], reference);
        assert_eq!(
            (j["valid"].as_bool(), &j["answer"], &j["depth"]),
            (Some(true), &m["answer"], &m["depth"])
        );
        let operators = |t: &str| t.chars().filter(|c| "+-*".contains(*c)).collect::<String>();
        assert_eq!(
            operators(m["problem"].as_str().unwrap()),
            operators(reference),
            "small edits keep operators"
        );
    }
    let deeper = json_lines(&ok(&["gen", "--mutate", "-", "--count", "3", "--depth", "4"], b"(3+4)*12-5\n"));
    assert!(!deeper.is_empty() && deeper.iter().all(|m| m["depth"] == 4));
    let err = fails(&["gen", "--mutate", "-", "--count", "1"], b"{\"text_of\": 1}\n");
    assert!(err.contains("- line 1") && err.contains("\"problem\" or \"text\""), "{err}");
    let err = fails(&["gen", "--count", "1", "--edits", "small"], b"");
    assert!(err.contains("--mutate"), "{err}");
}

/// An archive with a few rounds of realistic records, made through the store's API.
#[test]
fn gen_and_judge_speak_the_program_domain() {
    let generated =
        json_lines(&ok(&["gen", "--domain", "program", "--depth", "3", "--count", "20", "--seed", "4"], b""));
    let texts: String = generated.iter().map(|g| format!("{}\n", g["problem"].as_str().unwrap())).collect();
    let judged = json_lines(&ok(&["judge", "--domain", "program", "--json"], texts.as_bytes()));
    assert_eq!(judged.len(), 20);
    for (g, j) in generated.iter().zip(&judged) {
        assert_eq!(
            (&j["valid"], &j["answer"], &j["depth"], &j["padded"]),
            (&json!(true), &g["answer"], &json!(3), &json!(false))
        );
    }
    // The same keys as arithmetic, padding by dead code found, an error with its byte.
    let judged =
        json_lines(&ok(&["judge", "--domain", "program", "--json"], b"x=4;c=x*7;a=x*3;a-1\nx=4;a=y\n"));
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let arith = json_lines(&ok(&["judge", "--json"], b"1+2\n"));
    assert_eq!(keys(&judged[0]), keys(&arith[0]));
    assert_eq!(
        (
            &judged[0]["canonical"],
            &judged[0]["surface_ops"],
            &judged[0]["essential_ops"],
            &judged[0]["padded"]
        ),
        (&json!("x=4;a=x*3;a-1"), &json!(3), &json!(2), &json!(true))
    );
    assert_eq!((&judged[1]["valid"], &judged[1]["reason"]), (&json!(false), &json!("bad_char")));
    assert!(judged[1]["error"].as_str().unwrap().contains("at byte 6"));
    let err = fails(&["judge", "--domain", "prog"], b"");
    assert!(err.contains("\"prog\" is not a domain: arith, program"), "{err}");
    // The archive finds equivalents of a program given as text, in its domain.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("archive");
    make_archive(&db);
    let db = db.to_str().unwrap();
    let found = ok(
        &["archive", "--db", db, "equivalents", "--problem", "x=4;e=x*3;e=e;e-1", "--domain", "program"],
        b"",
    );
    assert!(found.starts_with("canonical form x=4;a=x*3;a-1 ("), "{found}");
    let err = fails(&["archive", "--db", db, "equivalents", "--problem", "x=4;e=x*3;e-1"], b"");
    assert!(err.contains("not a valid problem"), "read as arithmetic by default: {err}");
}

fn make_archive(path: &Path) -> Vec<ProblemRecord> {
    let a = Archive::open(path).unwrap();
    let mut all = Vec::new();
    for round in 0..4u64 {
        let mut batch: Vec<ProblemRecord> =
            ["(12+7)*1+0", "3+4", "1+", "4+3", "999*999*999*2", "2*(1+4)+3*(4+1)"]
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    let a = problem::Domain::analyze(&problem::Arith, text, &problem::Limits::default());
                    let p = (i as f64 + round as f64) % 5.0 / 4.0;
                    match a {
                        Ok(a) => ProblemRecord {
                            run: "demo".into(),
                            round,
                            domain: "arith".into(),
                            text: text.to_string(),
                            valid: true,
                            answer: Some(a.answer.clone()),
                            canonical: Some(a.canonical),
                            canonical_hash: Some(a.hash),
                            surface_ops: Some(a.surface_ops),
                            essential_ops: Some(a.essential_ops),
                            depth: Some(a.depth),
                            padding: Some(a.padding),
                            references: all.iter().map(|r: &ProblemRecord| r.id).take(2).collect(),
                            attempts: vec![
                                Attempt { output: a.answer.clone(), answer: a.answer.clone(), correct: true },
                                Attempt { output: "1=2".into(), answer: "2".into(), correct: false },
                            ],
                            solve_rate: Some(p),
                            rewards: Some(Rewards {
                                frontier: Some(0.5),
                                padding_factor: 1.0,
                                total: 0.5,
                                ..Default::default()
                            }),
                            proposer_version: Some("proposer@0".into()),
                            ..Default::default()
                        },
                        Err(e) => ProblemRecord {
                            run: "demo".into(),
                            round,
                            domain: "arith".into(),
                            text: text.to_string(),
                            valid: false,
                            reason: Some(e.kind.as_str().into()),
                            error: Some(e.to_string()),
                            ..Default::default()
                        },
                    }
                })
                .collect();
        a.append(&mut batch).unwrap();
        all.extend(batch);
    }
    all
}

#[test]
fn archive_commands_on_a_real_archive() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("archive");
    let all = make_archive(&db);
    let db = db.to_str().unwrap();

    let listed = json_lines(&ok(&["archive", "--db", db, "list", "--json", "--limit", "100"], b""));
    assert_eq!(listed.len(), all.len());
    assert_eq!(listed[0]["id"], 1);
    let page =
        json_lines(&ok(&["archive", "--db", db, "list", "--json", "--limit", "5", "--after", "5"], b""));
    assert_eq!(page.iter().map(|r| r["id"].as_u64().unwrap()).collect::<Vec<_>>(), vec![6, 7, 8, 9, 10]);
    let newest = json_lines(&ok(&["archive", "--db", db, "list", "--json", "--newest", "--limit", "1"], b""));
    assert_eq!(newest[0]["id"].as_u64(), Some(all.len() as u64));

    let invalid =
        json_lines(&ok(&["archive", "--db", db, "list", "--json", "--invalid", "--reason", "range"], b""));
    assert_eq!(invalid.len(), 4);
    assert!(invalid.iter().all(|r| r["text"] == "999*999*999*2"));
    let filtered = json_lines(&ok(
        &[
            "archive",
            "--db",
            db,
            "list",
            "--json",
            "--rounds",
            "1..2",
            "--solve-rate",
            "0.2..0.8",
            "--depth",
            "1..",
            "--padding",
            "..0.5",
        ],
        b"",
    ));
    let want: Vec<u64> = all
        .iter()
        .filter(|r| {
            (1..=2).contains(&r.round)
                && r.solve_rate.is_some_and(|p| (0.2..=0.8).contains(&p))
                && r.depth.is_some_and(|d| d >= 1)
                && r.padding.is_some_and(|p| p <= 0.5)
        })
        .map(|r| r.id)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(filtered.iter().map(|r| r["id"].as_u64().unwrap()).collect::<Vec<_>>(), want);
    let hash = store::hex_u64::format(all[1].canonical_hash.unwrap());
    let equivalent = json_lines(&ok(&["archive", "--db", db, "list", "--json", "--hash", &hash], b""));
    assert_eq!(equivalent.len(), 8, "3+4 and 4+3 in four rounds");
    let contains = json_lines(&ok(&["archive", "--db", db, "list", "--json", "--contains", "(4+1)"], b""));
    assert_eq!(contains.len(), 4);
    let human = ok(&["archive", "--db", db, "list", "--run", "demo", "--limit", "3"], b"");
    assert_eq!(human.lines().count(), 4, "header and three rows:\n{human}");

    // Equivalents and lineage.
    let eq = json_lines(&ok(&["archive", "--db", db, "equivalents", "2", "--json"], b""));
    assert_eq!(eq.len(), 8);
    assert!(eq.iter().all(|r| r["canonical"] == "3+4"));
    assert!(ok(&["archive", "--db", db, "equivalents", "2"], b"").starts_with("canonical form 3+4"));
    let err = fails(&["archive", "--db", db, "equivalents", "3"], b"");
    assert!(err.contains("problem 3 is invalid"), "{err}");
    let lineage: Value =
        serde_json::from_str(&ok(&["archive", "--db", db, "lineage", "7", "--json"], b"")).unwrap();
    let ids = |v: &Value| v.as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect::<Vec<_>>();
    assert_eq!(ids(&lineage["ancestors"]), vec![1, 2]);
    assert!(ids(&lineage["descendants"]).is_empty());
    let lineage: Value =
        serde_json::from_str(&ok(&["archive", "--db", db, "lineage", "1", "--json"], b"")).unwrap();
    let want: Vec<u64> = all.iter().filter(|r| r.references.contains(&1)).map(|r| r.id).collect();
    assert!(!want.is_empty());
    assert_eq!(ids(&lineage["descendants"]), want);
    let tree = ok(&["archive", "--db", db, "lineage", "7"], b"");
    assert!(
        tree.contains("references (ancestors):\n  ├─ 1  round 0") && tree.contains("└─ 2  round 0"),
        "{tree}"
    );
    // A run directory names its archive.
    let run_dir = dir.path().join("run");
    std::fs::create_dir(&run_dir).unwrap();
    std::fs::rename(db, run_dir.join("archive")).unwrap();
    let via_run = json_lines(&ok(
        &["archive", "--run-dir", run_dir.to_str().unwrap(), "list", "--json", "--limit", "3"],
        b"",
    ));
    assert_eq!(via_run.len(), 3);
    std::fs::rename(run_dir.join("archive"), db).unwrap();
    // Without either, the default run directory's archive.
    let err = fails(&["archive", "list"], b"");
    assert!(err.contains("no archive at runs/default/archive") && err.contains("--run-dir DIR"), "{err}");

    let shown: Value =
        serde_json::from_str(&ok(&["archive", "--db", db, "show", "1", "--json"], b"")).unwrap();
    assert_eq!(shown, serde_json::to_value(&all[0]).unwrap());
    let text = ok(&["archive", "--db", db, "show", "1"], b"");
    for needle in ["(12+7)*1+0", "7+12", "padding 0.667", "proposer proposer@0", "right", "wrong"] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }

    let stats: Value = serde_json::from_str(&ok(&["archive", "--db", db, "stats", "--json"], b"")).unwrap();
    assert_eq!(
        (stats["total"].as_u64(), stats["valid"].as_u64(), stats["invalid"].as_u64()),
        (Some(24), Some(16), Some(8))
    );
    assert_eq!(stats["invalid_reasons"]["syntax"], 4);
    let stats: Value =
        serde_json::from_str(&ok(&["archive", "--db", db, "stats", "--json", "--rounds", "3"], b"")).unwrap();
    assert_eq!(stats["total"], 6);
    assert!(ok(&["archive", "--db", db, "stats"], b"").contains("problems   24 (16 valid, 8 invalid)"));
    let windows: Value =
        serde_json::from_str(&ok(&["archive", "--db", db, "stats", "--json", "--window", "3"], b"")).unwrap();
    assert_eq!(windows["total"], 24);
    let w = windows["windows"].as_array().unwrap();
    assert_eq!((w.len(), w[0]["total"].as_u64(), w[1]["total"].as_u64()), (2, Some(18), Some(6)));
    assert_eq!(w[1]["window"], serde_json::json!([3, 5]));
    assert!(ok(&["archive", "--db", db, "stats", "--window", "2"], b"").contains("by rounds"));
    assert!(fails(&["archive", "--db", db, "stats", "--window", "0"], b"")
        .contains("--window must be at least 1"));

    let jsonl = ok(&["archive", "--db", db, "export", "--format", "jsonl"], b"");
    assert_eq!(jsonl.lines().count(), 24);
    let csv = ok(&["archive", "--db", db, "export", "--format", "csv", "--valid"], b"");
    assert_eq!(csv.lines().count(), 17);
    assert!(csv.starts_with("id,run,round,domain,text,valid"));
    let out_file = dir.path().join("out.csv");
    ok(&["archive", "--db", db, "export", "--format", "csv", "--out", out_file.to_str().unwrap()], b"");
    assert_eq!(std::fs::read_to_string(&out_file).unwrap().lines().count(), 25);

    // Import into a new archive reproduces it; readers changed nothing in the first.
    let copy = dir.path().join("copy");
    let copy = copy.to_str().unwrap();
    assert_eq!(
        ok(&["archive", "--db", copy, "import", "-"], jsonl.as_bytes()).trim(),
        "imported 24, skipped 0 already present"
    );
    assert_eq!(ok(&["archive", "--db", copy, "export", "--format", "jsonl"], b""), jsonl);
    assert_eq!(ok(&["archive", "--db", db, "export", "--format", "jsonl"], b""), jsonl);
}

#[test]
fn archive_bad_input_gives_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("archive");
    make_archive(&db_path);
    let db = db_path.to_str().unwrap();
    let before = ok(&["archive", "--db", db, "export", "--format", "jsonl"], b"");

    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["show", "999"], format!("error: no problem with id 999 in {db}")),
        (
            vec!["list", "--solve-rate", "0.9..0.1"],
            "error: --solve-rate: range \"0.9..0.1\" must satisfy 0 <= low <= high <= 1".into(),
        ),
        (vec!["list", "--rounds", "x"], "error: --rounds: \"x\" in range \"x\" is not a number".into()),
        (vec!["list", "--hash", "zz"], "error: --hash: hash \"zz\" must be 1 to 16 hex digits".into()),
    ];
    for (args, want) in cases {
        let mut full = vec!["archive", "--db", db];
        full.extend(&args);
        let err = fails(&full, b"");
        assert_eq!(err.trim_end(), want, "{args:?}");
    }
    let missing = dir.path().join("missing");
    let err = fails(&["archive", "--db", missing.to_str().unwrap(), "stats"], b"");
    assert_eq!(
        err.trim_end(),
        format!(
            "error: no archive at {} (a run directory's is DIR/archive: name it with --run-dir DIR, or --db DIR)",
            missing.display()
        )
    );
    assert!(!missing.exists());
    let plain = dir.path();
    let err = fails(&["archive", "--db", plain.to_str().unwrap(), "list"], b"");
    assert!(err.contains("is not a selfplay archive"), "{err}");

    // Import of a malformed file: the line is named and nothing is written.
    let mut bad = before.clone().replace("\"run\":\"demo\"", "\"run\":\"other\"");
    bad.push_str("{not json\n");
    let err = fails(&["archive", "--db", db, "import", "--renumber", "-"], bad.as_bytes());
    assert!(err.contains("line 25: not a problem record"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // Importing a file that is not there creates nothing.
    let fresh = dir.path().join("fresh");
    let err = fails(&["archive", "--db", fresh.to_str().unwrap(), "import", "/nonexistent/file"], b"");
    assert!(err.contains("cannot read /nonexistent/file"), "{err}");
    assert!(!fresh.exists());

    // A database held by another process.
    {
        let _held = Archive::open(&db_path).unwrap();
        let err = fails(&["archive", "--db", db, "list"], b"");
        assert_eq!(
            err.trim_end(),
            format!(
                "error: archive at {db} is in use by another process, and no daemon answers at {db}.sock"
            )
        );
    }
    assert_eq!(ok(&["archive", "--db", db, "export", "--format", "jsonl"], b""), before);
    assert_eq!(Archive::open_existing(&db_path).unwrap().stats(&Filter::default()).unwrap().total, 24);
}

#[test]
fn archive_of_another_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive");
    make_archive(&path);
    {
        let db = sled::open(&path).unwrap();
        db.open_tree("meta").unwrap().insert("schema_version", &2u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let err = fails(&["archive", "--db", path.to_str().unwrap(), "stats"], b"");
    assert_eq!(
        err.trim_end(),
        format!("error: archive at {} has schema version 2; this build reads version 1", path.display())
    );
}
