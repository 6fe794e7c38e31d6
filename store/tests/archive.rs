//! The archive through its public API: filters, scans, stats, export and import.

use store::{parse_range, Archive, Attempt, Filter, Order, ProblemRecord, Rewards, StoreError};

/// Builds a varied archive: 3 runs × 10 rounds × 10 problems, every 7th invalid.
fn archive(dir: &std::path::Path) -> (Archive, Vec<ProblemRecord>) {
    let a = Archive::open(dir.join("a")).unwrap();
    let mut all = Vec::new();
    for round in 0..10u64 {
        for run in ["alpha", "beta", "gamma"] {
            let mut batch: Vec<ProblemRecord> = (0..10u64)
                .map(|i| {
                    let n = all.len() as u64 + i;
                    let valid = n % 7 != 3;
                    let depth = (n % 5) as u32;
                    ProblemRecord {
                        run: run.into(),
                        round,
                        domain: "arith".into(),
                        text: format!("{n}+{i}"),
                        valid,
                        reason: (!valid).then(|| if n.is_multiple_of(2) { "syntax" } else { "range" }.into()),
                        canonical_hash: valid.then_some(n % 13),
                        depth: valid.then_some(depth),
                        surface_ops: valid.then_some(depth + (n % 2) as u32),
                        essential_ops: valid.then_some(depth),
                        padding: valid.then_some((n % 2) as f64 / (depth + 1) as f64),
                        solve_rate: valid.then_some((n % 9) as f64 / 8.0),
                        // Scored by one of two scorers, or not at all (a scorer failure).
                        interestingness: (valid && !n.is_multiple_of(3)).then_some((n % 11) as f64 / 10.0),
                        scorer: (valid && !n.is_multiple_of(3))
                            .then(|| if n % 3 == 1 { "novelty@1" } else { "novelty@2" }.into()),
                        scorer_error: (valid && n.is_multiple_of(3)).then(|| "timed out".into()),
                        rewards: Some(if valid {
                            let frontier = (n % 5) as f64 / 4.0;
                            Rewards {
                                frontier: Some(frontier),
                                padding_factor: 1.0,
                                target_miss: Some(f64::from(u8::from(n.is_multiple_of(4)))),
                                total: frontier,
                                ..Default::default()
                            }
                        } else {
                            Rewards { invalid: Some(-1.0), total: -1.0, ..Default::default() }
                        }),
                        attempts: vec![Attempt {
                            output: "1".into(),
                            answer: "1".into(),
                            correct: n.is_multiple_of(2),
                        }],
                        ..Default::default()
                    }
                })
                .collect();
            a.append(&mut batch).unwrap();
            all.extend(batch);
        }
    }
    (a, all)
}

fn ids(it: impl Iterator<Item = store::Result<ProblemRecord>>) -> Vec<u64> {
    it.map(|r| r.unwrap().id).collect()
}

fn expected(all: &[ProblemRecord], f: &Filter) -> Vec<u64> {
    all.iter().filter(|r| f.matches(r)).map(|r| r.id).collect()
}

fn filters() -> Vec<Filter> {
    vec![
        Filter::default(),
        Filter { run: Some("beta".into()), ..Default::default() },
        Filter { run: Some("beta".into()), rounds: Some((3, 5)), ..Default::default() },
        Filter { rounds: Some((3, 5)), ..Default::default() },
        Filter { valid: Some(false), ..Default::default() },
        Filter { valid: Some(false), reason: Some("range".into()), ..Default::default() },
        Filter { solve_rate: Some((0.2, 0.8)), ..Default::default() },
        Filter { solve_rate: Some((1.0, 1.0)), ..Default::default() },
        Filter { solve_rate: Some((0.2, 0.8)), run: Some("gamma".into()), ..Default::default() },
        Filter { padding: Some((0.01, 1.0)), ..Default::default() },
        Filter { depth: Some((2, 3)), ..Default::default() },
        Filter { contains: Some("+7".into()), ..Default::default() },
        Filter { hash: Some(4), ..Default::default() },
        Filter { hash: Some(4), run: Some("alpha".into()), ..Default::default() },
        Filter { run: Some("nobody".into()), ..Default::default() },
        Filter { interestingness: Some((0.5, 1.0)), ..Default::default() },
        Filter { scorer: Some("novelty".into()), ..Default::default() },
        Filter { scorer: Some("novelty@2".into()), interestingness: Some((0.0, 0.3)), ..Default::default() },
        Filter { scorer: Some("novel".into()), ..Default::default() },
    ]
}

/// Every filter, through whatever index it uses, gives what checking every record gives, in both
/// orders and from any page.
fn assert_filters_agree(a: &Archive, all: &[ProblemRecord]) {
    for f in &filters() {
        let want = expected(all, f);
        assert_eq!(ids(a.scan(f, Order::Ascending, None)), want, "{f:?}");
        let mut rev = want.clone();
        rev.reverse();
        assert_eq!(ids(a.scan(f, Order::Descending, None)), rev, "{f:?} descending");
        // Paging: everything after the 5th match.
        if want.len() > 5 {
            assert_eq!(ids(a.scan(f, Order::Ascending, Some(want[4]))), want[5..].to_vec(), "{f:?} after");
            assert_eq!(ids(a.scan(f, Order::Descending, Some(rev[4]))), rev[5..].to_vec(), "{f:?} before");
        }
    }
}

#[test]
fn every_filter_agrees_with_a_plain_scan_in_both_orders() {
    let dir = tempfile::tempdir().unwrap();
    let (a, all) = archive(dir.path());
    assert!(!expected(&all, &filters()[6]).is_empty());
    // The scorer filters mean what they say: by name every version, by name@version one.
    let n = |f: &Filter| expected(&all, f).len();
    let by_name = n(&Filter { scorer: Some("novelty".into()), ..Default::default() });
    let v1 = n(&Filter { scorer: Some("novelty@1".into()), ..Default::default() });
    let v2 = n(&Filter { scorer: Some("novelty@2".into()), ..Default::default() });
    assert!(v1 > 0 && v2 > 0);
    assert_eq!(by_name, v1 + v2);
    assert_eq!(all.iter().filter(|r| r.interestingness.is_some()).count(), by_name);
    assert_eq!(n(&Filter { scorer: Some("novel".into()), ..Default::default() }), 0);
    assert_filters_agree(&a, &all);
}

#[test]
fn rewritten_records_are_found_under_their_new_values_only() {
    let dir = tempfile::tempdir().unwrap();
    let (a, mut all) = archive(dir.path());
    // Rewrite every 9th record: new solve rate, new hash, new round, some twice.
    for pass in 0..2u64 {
        let changed: Vec<ProblemRecord> = all
            .iter_mut()
            .filter(|r| r.id % 9 == pass)
            .map(|r| {
                r.solve_rate = r.solve_rate.map(|p| 1.0 - p);
                r.canonical_hash = r.canonical_hash.map(|h| h ^ (0xf << 60) ^ pass);
                r.round = (r.round + 3) % 10;
                r.clone()
            })
            .collect();
        a.put(&changed).unwrap();
    }
    assert_filters_agree(&a, &all);
    let hashes: std::collections::HashMap<u64, usize> =
        all.iter().filter_map(|r| r.canonical_hash).fold(Default::default(), |mut m, h| {
            *m.entry(h).or_default() += 1;
            m
        });
    let s = a.stats(&Filter::default()).unwrap();
    assert_eq!(s.distinct_canonical, Some(hashes.len() as u64));
    assert_eq!(s.canonical_duplicates, Some(hashes.values().map(|&n| n as u64 - 1).sum()));
    let current: std::collections::HashSet<u64> = hashes.keys().copied().collect();
    assert_eq!(a.canonical_hashes().unwrap(), current);
    let moved = all.iter().find(|r| r.id % 9 == 0 && r.canonical_hash.is_some()).unwrap();
    assert!(a.contains_hash(moved.canonical_hash.unwrap()).unwrap());
}

#[test]
fn stats_count_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let (a, all) = archive(dir.path());
    let s = a.stats(&Filter::default()).unwrap();
    assert_eq!(s.total, 300);
    let invalid = all.iter().filter(|r| !r.valid).count() as u64;
    assert_eq!((s.valid, s.invalid), (300 - invalid, invalid));
    assert_eq!(s.invalid_reasons.values().sum::<u64>(), invalid);
    assert_eq!(s.runs["beta"], 100);
    assert_eq!(s.rounds, Some((0, 9)));
    assert_eq!(s.solve_rate.counts.iter().sum::<u64>(), s.attempted);
    assert_eq!(s.depth.values().sum::<u64>(), s.valid);
    assert_eq!(s.padded, all.iter().filter(|r| r.surface_ops > r.essential_ops).count() as u64);
    assert_eq!(s.distinct_canonical, Some(13));
    assert_eq!(s.canonical_duplicates, Some(s.valid - 13));
    let mean = all.iter().filter_map(|r| r.solve_rate).sum::<f64>() / s.attempted as f64;
    assert!((s.mean_solve_rate.unwrap() - mean).abs() < 1e-12);
    // Interestingness and reward terms, each over the problems that have it.
    let scores: Vec<f64> = all.iter().filter_map(|r| r.interestingness).collect();
    assert_eq!(s.scored, scores.len() as u64);
    assert_eq!(s.interestingness.counts.iter().sum::<u64>(), s.scored);
    assert!(
        (s.mean_interestingness.unwrap() - scores.iter().sum::<f64>() / scores.len() as f64).abs() < 1e-12
    );
    assert_eq!(s.scorer_errors, all.iter().filter(|r| r.scorer_error.is_some()).count() as u64);
    assert_eq!(s.rewards.rewarded, 300);
    let mean_of = |f: fn(&Rewards) -> Option<f64>| {
        let v: Vec<f64> = all.iter().filter_map(|r| f(r.rewards.as_ref().unwrap())).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!((s.rewards.total.unwrap() - mean_of(|w| Some(w.total))).abs() < 1e-12);
    assert!((s.rewards.frontier.unwrap() - mean_of(|w| w.frontier)).abs() < 1e-12);
    assert!((s.rewards.target_miss.unwrap() - mean_of(|w| w.target_miss)).abs() < 1e-12);
    assert_eq!(s.rewards.invalid, Some(-1.0));
    assert_eq!(s.rewards.interestingness, None);

    let (_, windows) = a.stats_with_windows(&Filter::default(), Some(4)).unwrap();
    assert_eq!(windows.iter().map(|w| w.0).collect::<Vec<_>>(), vec![(0, 3), (4, 7), (8, 11)]);
    assert_eq!(windows.iter().map(|w| w.1.total).sum::<u64>(), 300);
    assert_eq!(windows[2].1.total, 60, "rounds 8 and 9");
    assert_eq!(windows.iter().map(|w| w.1.valid).sum::<u64>(), s.valid);

    let f = Filter { run: Some("alpha".into()), valid: Some(true), ..Default::default() };
    let s = a.stats(&f).unwrap();
    assert_eq!(s.total, expected(&all, &f).len() as u64);
    assert_eq!(s.invalid, 0);
    assert_eq!(s.distinct_canonical, None);
}

#[test]
fn export_then_import_reproduces_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let (a, all) = archive(dir.path());
    let mut jsonl = Vec::new();
    assert_eq!(store::export_jsonl(&a, &Filter::default(), &mut jsonl).unwrap(), 300);

    let b = Archive::open(dir.path().join("b")).unwrap();
    let report = store::import_jsonl(&b, &mut &jsonl[..], false).unwrap();
    assert_eq!((report.imported, report.skipped), (300, 0));
    let copied: Vec<ProblemRecord> =
        b.scan(&Filter::default(), Order::Ascending, None).map(Result::unwrap).collect();
    assert_eq!(copied, all);
    assert_eq!(b.stats(&Filter::default()).unwrap(), a.stats(&Filter::default()).unwrap());
    assert_eq!(b.next_id(), 301);

    // Importing the same lines again changes nothing.
    let report = store::import_jsonl(&b, &mut &jsonl[..], false).unwrap();
    assert_eq!((report.imported, report.skipped), (0, 300));

    // A different record under a taken id is refused, and nothing is written.
    let mut changed: ProblemRecord =
        serde_json::from_slice(jsonl.split(|&b| b == b'\n').next().unwrap()).unwrap();
    changed.text = "9*9".into();
    let mut lines = serde_json::to_vec(&changed).unwrap();
    lines.push(b'\n');
    let err = store::import_jsonl(&b, &mut &lines[..], false).unwrap_err();
    assert_eq!(err.to_string(), "line 1: id 1 is already taken by a different problem; use --renumber");
    assert_eq!(b.get(1).unwrap().unwrap(), all[0]);

    // Renumbered, it is appended, and references among the imported records follow.
    let mut child = changed.clone();
    child.id = 1000;
    child.references = vec![1, 77];
    let mut lines = Vec::new();
    for r in [&changed, &child] {
        lines.extend(serde_json::to_vec(r).unwrap());
        lines.push(b'\n');
    }
    let report = store::import_jsonl(&b, &mut &lines[..], true).unwrap();
    assert_eq!((report.imported, report.dropped_references), (2, 1));
    assert_eq!(b.get(301).unwrap().unwrap().text, "9*9");
    assert_eq!(b.get(302).unwrap().unwrap().references, vec![301]);
}

#[test]
fn malformed_import_lines_are_reported_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = archive(dir.path());
    let mut jsonl = Vec::new();
    store::export_jsonl(&a, &Filter { run: Some("alpha".into()), ..Default::default() }, &mut jsonl).unwrap();
    let b = Archive::open(dir.path().join("b")).unwrap();
    for (garbage, want) in [
        (&b"{\"id\": 5}\n"[..], "line 101: run name \"\" must be 1 to 255 bytes with no NUL"),
        (
            &b"{\"id\": 5, \"run\": \"r\", \"solve_rate\": 2}\n"[..],
            "line 101: solve_rate 2 is outside [0, 1]",
        ),
        (&b"\xff\xfe binary\n"[..], "line 101: not a problem record: expected value"),
        (&b"{\"id\":1,\"bogus\":1}\n"[..], "line 101: not a problem record: unknown field `bogus`"),
    ] {
        let mut input = jsonl.clone();
        input.extend_from_slice(garbage);
        let err = store::import_jsonl(&b, &mut &input[..], false).unwrap_err();
        assert!(err.to_string().starts_with(want), "{err}");
        assert_eq!(b.stats(&Filter::default()).unwrap().total, 0);
    }
}

#[test]
fn csv_has_one_row_per_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (a, all) = archive(dir.path());
    let mut out = Vec::new();
    let f = Filter { valid: Some(false), ..Default::default() };
    let n = store::export_csv(&a, &f, &mut out).unwrap();
    let mut reader = csv::Reader::from_reader(&out[..]);
    assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), store::CSV_HEADER);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len() as u64, n);
    assert_eq!(n, expected(&all, &f).len() as u64);
    assert!(rows.iter().all(|r| &r[5] == "false" && !r[6].is_empty()));
}

#[test]
fn ranges_parse_with_clear_errors() {
    assert_eq!(parse_range("0.2..0.8", 0.0, 1.0), Ok((0.2, 0.8)));
    assert_eq!(parse_range("..0.5", 0.0, 1.0), Ok((0.0, 0.5)));
    assert_eq!(parse_range("3..", 0u32, u32::MAX), Ok((3, u32::MAX)));
    assert_eq!(parse_range("4", 0u32, u32::MAX), Ok((4, 4)));
    assert_eq!(
        parse_range("0.8..0.2", 0.0, 1.0).unwrap_err(),
        "range \"0.8..0.2\" must satisfy 0 <= low <= high <= 1"
    );
    assert_eq!(parse_range("a..b", 0.0, 1.0).unwrap_err(), "\"a\" in range \"a..b\" is not a number");
    assert!(parse_range("0..2", 0.0, 1.0).is_err());
}

#[test]
fn a_corrupt_record_is_reported_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a");
    {
        let a = Archive::open(&path).unwrap();
        a.append(&mut [ProblemRecord { run: "r".into(), ..Default::default() }]).unwrap();
    }
    {
        let db = sled::open(&path).unwrap();
        let mut key = vec![b'r'];
        key.extend_from_slice(&1u64.to_be_bytes());
        db.open_tree("archive").unwrap().insert(key, &[1u8, 0xff, 0xff][..]).unwrap();
        db.flush().unwrap();
    }
    let a = Archive::open_existing(&path).unwrap();
    let err = a.get(1).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { id: 1, .. }), "{err}");
    assert!(err.to_string().contains("record 1 is unreadable"), "{err}");
}
