//! The archive against a model of what it must hold, over random sequences of what happens to an
//! archive: appends, imports with extreme and duplicate ids (kept or renumbered), reopening, a
//! lost watermark, a cut tail. After every step: no id was ever reused, nothing stored was ever
//! altered, and every index agrees with a full scan.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use store::{Archive, Filter, Order, ProblemRecord, StoreError, MAX_ID};

#[derive(Debug, Clone)]
enum Op {
    /// A round of `n` records appended.
    Append(u8),
    /// JSON lines with these ids imported, keeping them or renumbered.
    Import { ids: Vec<u64>, renumber: bool },
    /// The archive closed and opened again.
    Reopen,
    /// The watermark file lost, then reopened.
    LoseWatermark,
    /// A copy of the archive with the last `n` bytes of its log cut off, opened: refused, or
    /// holding only what was stored, unaltered.
    CutTail(u16),
}

/// Ids an import may carry: small, duplicated, at and beyond the bound.
fn extreme_id() -> impl Strategy<Value = u64> {
    prop_oneof![
        1u64..40,
        Just(MAX_ID - 1),
        Just(MAX_ID),
        Just(MAX_ID + 1),
        Just(u64::MAX - 1),
        Just(u64::MAX),
        Just(0u64),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..6).prop_map(Op::Append),
        3 => (prop::collection::vec(extreme_id(), 1..5), any::<bool>())
            .prop_map(|(ids, renumber)| Op::Import { ids, renumber }),
        1 => Just(Op::Reopen),
        1 => Just(Op::LoseWatermark),
        1 => (1u16..4000).prop_map(Op::CutTail),
    ]
}

fn record(id: u64, round: u64, salt: u64) -> ProblemRecord {
    let valid = !salt.is_multiple_of(3);
    ProblemRecord {
        id,
        run: if salt.is_multiple_of(2) { "even" } else { "odd" }.into(),
        round,
        domain: "arith".into(),
        text: format!("{salt}+{round}"),
        valid,
        reason: (!valid).then(|| "syntax".into()),
        canonical_hash: valid.then_some(salt % 5),
        depth: valid.then_some((salt % 4) as u32),
        solve_rate: valid.then_some((salt % 9) as f64 / 8.0),
        created_ms: 1,
        updated_ms: 1,
        ..Default::default()
    }
}

/// What the archive must hold: id → the record's JSON.
type Model = BTreeMap<u64, String>;

fn json(r: &ProblemRecord) -> String {
    serde_json::to_string(r).unwrap()
}

fn check(archive: &Archive, model: &Model) {
    let stored: Model = archive
        .scan(&Filter::default(), Order::Ascending, None)
        .map(|r| {
            let r = r.unwrap();
            (r.id, json(&r))
        })
        .collect();
    assert_eq!(stored.keys().collect::<Vec<_>>(), model.keys().collect::<Vec<_>>(), "ids");
    for (id, want) in model {
        assert_eq!(&stored[id], want, "record {id} altered");
    }
    assert!(archive.next_id() > model.keys().next_back().copied().unwrap_or(0), "the next id is taken");
    assert!(archive.next_id() <= MAX_ID + 1);
    // Each index against the plain scan.
    let records: Vec<ProblemRecord> = model.values().map(|j| serde_json::from_str(j).unwrap()).collect();
    let filters = [
        Filter { run: Some("even".into()), ..Default::default() },
        Filter { valid: Some(false), ..Default::default() },
        Filter { hash: Some(3), ..Default::default() },
        Filter { rounds: Some((2, 5)), run: Some("odd".into()), ..Default::default() },
        Filter { solve_rate: Some((0.2, 0.8)), ..Default::default() },
    ];
    for f in &filters {
        let got: Vec<u64> = archive.scan(f, Order::Ascending, None).map(|r| r.unwrap().id).collect();
        let want: Vec<u64> = records.iter().filter(|r| f.matches(r)).map(|r| r.id).collect();
        assert_eq!(got, want, "{f:?}");
    }
    for run in ["even", "odd"] {
        let want = records.iter().filter(|r| r.run == run).map(|r| r.round).max();
        assert_eq!(archive.last_round(run).unwrap(), want, "the last round of {run}");
    }
    // The references index: each problem's direct descendants are those that reference it.
    for r in records.iter().take(6) {
        let lineage = store::Lineage::of(archive, r.id, 1).unwrap();
        let parents: Vec<u64> = r.references.clone();
        let got: Vec<u64> =
            lineage.records().keys().copied().filter(|&id| id != r.id && !parents.contains(&id)).collect();
        let want: Vec<u64> =
            records.iter().filter(|c| c.references.contains(&r.id) && c.id != r.id).map(|c| c.id).collect();
        assert_eq!(got, want, "children of {}", r.id);
    }
}

fn import(archive: &Archive, lines: &str, renumber: bool) -> store::Result<store::ImportReport> {
    store::import_jsonl(archive, &mut lines.as_bytes(), renumber)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn run(ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive");
    let mut archive = Some(Archive::open(&path).unwrap());
    let mut model = Model::new();
    // Every id ever given to a record: none is given twice.
    let mut ever = std::collections::BTreeSet::new();
    let mut salt = 0u64;
    for (step, op) in ops.iter().enumerate() {
        let a = archive.as_ref().unwrap();
        match op {
            Op::Append(n) => {
                let stored: Vec<u64> = model.keys().copied().collect();
                let mut batch: Vec<ProblemRecord> = (0..*n)
                    .map(|_| {
                        salt += 1;
                        let mut r = record(0, step as u64, salt);
                        // References to problems already stored, as a proposer's are.
                        if !stored.is_empty() && salt.is_multiple_of(2) {
                            r.references = vec![stored[salt as usize % stored.len()]];
                        }
                        r
                    })
                    .collect();
                match a.append(&mut batch) {
                    Ok(ids) => {
                        for r in &batch {
                            assert!(ids.contains(&r.id));
                            assert!(ever.insert(r.id), "id {} given twice", r.id);
                            model.insert(r.id, json(r));
                        }
                    }
                    // Only an archive whose ids reach the bound refuses an append.
                    Err(e) => {
                        assert!(model.keys().next_back().is_some_and(|&m| m + u64::from(*n) > MAX_ID), "{e}")
                    }
                }
            }
            Op::Import { ids, renumber } => {
                let records: Vec<ProblemRecord> = ids
                    .iter()
                    .map(|&id| {
                        salt += 1;
                        record(id, step as u64, salt)
                    })
                    .collect();
                let lines: String = records.iter().map(|r| json(r) + "\n").collect();
                let before = a.next_id();
                match import(a, &lines, *renumber) {
                    Ok(report) => {
                        assert_eq!(report.imported as usize + report.skipped as usize, records.len());
                        for (i, r) in records.iter().enumerate() {
                            let id = if *renumber { before + i as u64 } else { r.id };
                            let mut stored = r.clone();
                            stored.id = id;
                            if *renumber || !model.contains_key(&id) {
                                assert!(ever.insert(id), "id {id} given twice");
                                model.insert(id, json(&stored));
                            }
                        }
                    }
                    Err(e) => {
                        // Refused whole: an id out of bounds or reserved, a duplicate within the
                        // input, an id taken by another record, or too many for the ids left.
                        assert!(
                            matches!(e, StoreError::Import { .. } | StoreError::InvalidRecord { .. }),
                            "{e}"
                        );
                        let bad = ids.iter().any(|&id| id == 0 || id > MAX_ID);
                        let dup = (1..ids.len()).any(|i| ids[..i].contains(&ids[i]));
                        let taken = ids.iter().any(|id| model.contains_key(id));
                        let full = before.saturating_add(ids.len() as u64) > MAX_ID + 1;
                        assert!(
                            if *renumber {
                                full || ids.iter().any(|&id| id > MAX_ID)
                            } else {
                                bad || dup || taken
                            },
                            "refused for no reason: {e}"
                        );
                    }
                }
            }
            Op::Reopen => {
                drop(archive.take());
                archive = Some(Archive::open(&path).unwrap());
            }
            Op::LoseWatermark => {
                drop(archive.take());
                let _ = std::fs::remove_file(path.join(store::WATERMARK));
                archive = Some(Archive::open(&path).unwrap());
            }
            Op::CutTail(n) => {
                a.flush().unwrap();
                let copy = dir.path().join(format!("cut-{step}"));
                copy_dir(&path, &copy);
                let db = copy.join("db");
                let len = std::fs::metadata(&db).unwrap().len();
                let f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
                f.set_len(len.saturating_sub(u64::from(*n))).unwrap();
                drop(f);
                // sled may recover less than was written: the watermark catches it.
                if let Ok(cut) = Archive::open(&copy) {
                    for r in cut.scan(&Filter::default(), Order::Ascending, None).flatten() {
                        assert_eq!(model.get(&r.id), Some(&json(&r)), "record {} altered by a cut", r.id);
                    }
                }
                std::fs::remove_dir_all(&copy).unwrap();
            }
        }
        check(archive.as_ref().unwrap(), &model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_archive_never_reuses_an_id_nor_alters_what_it_stored(ops in prop::collection::vec(op(), 1..14)) {
        run(&ops);
    }
}

#[test]
fn an_import_at_the_largest_id_leaves_no_room_but_breaks_nothing() {
    // The sequence that once wrapped the id counter to 0 and overwrote records 1, 2, ...
    run(&[
        Op::Append(3),
        Op::Import { ids: vec![MAX_ID], renumber: false },
        Op::Append(2),
        Op::Reopen,
        Op::Import { ids: vec![u64::MAX], renumber: false },
        Op::Import { ids: vec![5, 6], renumber: true },
        Op::LoseWatermark,
        Op::Append(1),
    ]);
}
