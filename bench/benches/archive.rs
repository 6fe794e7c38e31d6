//! The archive against raw sled, measured in the same run.
//!
//! 1. Batched insert: `Archive::append` (serialize, index, one atomic batch, flush) against raw sled
//!    inserting the same serialized bytes under the same keys in the same batches, flushed the
//!    same way. Target: overhead at most 1.5×.
//! 2. Scale: with `SELFPLAY_BENCH_RECORDS` records (default 1,000,000), `stats`, a filtered scan
//!    through an index and a filtered full scan, against raw sled iterating the same records
//!    without decoding; with the peak memory each takes. Then what a person waits for in the
//!    CLI: `archive list`'s first page with a filter, `show`, `stats`, a sorted `list`, and
//!    `browse` showing its first page and scrolling 20 pages (on a test terminal).
//!
//! `cargo bench -p selfplay-bench --bench archive`

use std::hint::black_box;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use selfplay_bench::{peak_rss_kb, record, reset_peak_rss, rss_kb};
use store::{Archive, Filter, Order, ProblemRecord};

const ROUND: usize = 256;

fn rounds(n_rounds: usize, seed: u64) -> Vec<Vec<ProblemRecord>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n_rounds).map(|r| (0..ROUND).map(|_| record(&mut rng, "bench", r as u64)).collect()).collect()
}

fn insert_bench(dir: &std::path::Path) -> serde_json::Value {
    let n_rounds = 200;
    let data = rounds(n_rounds, 1);
    let encoded: Vec<Vec<(u64, Vec<u8>)>> = data
        .iter()
        .enumerate()
        .map(|(r, batch)| {
            batch
                .iter()
                .enumerate()
                .map(|(i, rec)| {
                    let id = (r * ROUND + i + 1) as u64;
                    let mut rec = rec.clone();
                    rec.id = id;
                    (id, store::record::encode(&rec))
                })
                .collect()
        })
        .collect();
    let bytes: usize = encoded.iter().flatten().map(|(_, b)| b.len()).sum();

    // Alternate the two, three times each, fresh databases every time; keep the medians.
    let (mut raw_times, mut archive_times) = (Vec::new(), Vec::new());
    for rep in 0..3 {
        let raw_path = dir.join(format!("raw-{rep}"));
        let db = sled::Config::new().path(&raw_path).cache_capacity(64 << 20).open().unwrap();
        let tree = db.open_tree("archive").unwrap();
        let t = Instant::now();
        for batch in &encoded {
            let mut b = sled::Batch::default();
            for (id, bytes) in batch {
                let mut key = vec![b'r'];
                key.extend_from_slice(&id.to_be_bytes());
                b.insert(key, &bytes[..]);
            }
            tree.apply_batch(b).unwrap();
            db.flush().unwrap();
        }
        raw_times.push(t.elapsed().as_secs_f64());
        drop((tree, db));

        let archive = Archive::open(dir.join(format!("archive-{rep}"))).unwrap();
        let mut data = data.clone();
        let t = Instant::now();
        for batch in &mut data {
            archive.append(batch).unwrap();
        }
        archive_times.push(t.elapsed().as_secs_f64());
    }
    raw_times.sort_by(f64::total_cmp);
    archive_times.sort_by(f64::total_cmp);
    let (raw, arch) = (raw_times[1], archive_times[1]);
    let n = (n_rounds * ROUND) as f64;
    serde_json::json!({
        "records": n,
        "batch": ROUND,
        "mean_record_bytes": bytes as f64 / n,
        "raw_sled_records_per_s": (n / raw).round(),
        "archive_records_per_s": (n / arch).round(),
        "archive_over_raw": arch / raw,
    })
}

fn scale_bench(dir: &std::path::Path, n: usize) -> serde_json::Value {
    let path = dir.join("large");
    let t = Instant::now();
    {
        let archive = Archive::open(&path).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let per = 10_000;
        let mut done = 0;
        while done < n {
            let k = per.min(n - done);
            let mut batch: Vec<ProblemRecord> =
                (0..k).map(|i| record(&mut rng, "large", ((done + i) / ROUND) as u64)).collect();
            archive.append(&mut batch).unwrap();
            done += k;
        }
    }
    let build_s = t.elapsed().as_secs_f64();

    let archive = Archive::open_existing(&path).unwrap();
    let size = archive.size_on_disk().unwrap();
    let measure = |name: &str, f: &mut dyn FnMut() -> u64| {
        reset_peak_rss();
        let before = rss_kb().unwrap_or(0);
        let t = Instant::now();
        let count = f();
        let secs = t.elapsed().as_secs_f64();
        let peak = peak_rss_kb().unwrap_or(0);
        (name.to_string(), secs, count, peak.saturating_sub(before))
    };
    let mut results = Vec::new();
    // Reference: raw sled iterating the same record entries, nothing decoded. sled's lock allows
    // one opener, so the archive is closed for it and reopened after.
    drop(archive);
    {
        let db = sled::Config::new().path(&path).cache_capacity(64 << 20).open().unwrap();
        let tree = db.open_tree("archive").unwrap();
        results.push(measure("raw_sled_iterate", &mut || {
            tree.scan_prefix(b"r").map(|kv| kv.unwrap().1.len() as u64).filter(|&l| l > 0).count() as u64
        }));
    }
    let archive = Archive::open_existing(&path).unwrap();
    results.push(measure("stats", &mut || archive.stats(&Filter::default()).unwrap().total));
    let indexed = Filter { solve_rate: Some((0.45, 0.55)), depth: Some((3, 3)), ..Default::default() };
    results.push(measure("scan_solve_rate_index", &mut || {
        archive
            .scan(&indexed, Order::Ascending, None)
            .fold(0, |n, r| n + u64::from(black_box(r.unwrap()).id > 0))
    }));
    let full = Filter { contains: Some("77*".into()), valid: Some(true), ..Default::default() };
    results.push(measure("scan_full_contains", &mut || {
        archive
            .scan(&full, Order::Ascending, None)
            .fold(0, |n, r| n + u64::from(black_box(r.unwrap()).id > 0))
    }));
    let first_page = Filter { depth: Some((5, 5)), ..Default::default() };
    results.push(measure("first_page_of_50", &mut || {
        archive
            .scan(&first_page, Order::Descending, None)
            .take(50)
            .fold(0, |n, r| n + u64::from(r.unwrap().id > 0))
    }));
    // The CLI's own code paths, output written to memory as it would be to a terminal.
    use selfplay::commands::archive::{ArchiveCommand, SortKey};
    use selfplay::filter_args::FilterArgs;
    let access = selfplay::access::Access::Local(archive);
    let held = &access;
    let cli = |cmd: ArchiveCommand| {
        move || {
            let mut out = Vec::new();
            selfplay::commands::archive::print(held, &cmd, &mut out).unwrap();
            out.iter().filter(|&&b| b == b'\n').count() as u64
        }
    };
    let depth5 = FilterArgs { depth: Some("5".into()), valid: true, ..Default::default() };
    let list = |filter: FilterArgs, sort: Option<SortKey>| ArchiveCommand::List {
        filter,
        limit: 20,
        after: None,
        newest: false,
        sort,
        desc: true,
        offset: 0,
        json: false,
    };
    results.push(measure("cli_list_first_page_depth_5", &mut cli(list(depth5.clone(), None))));
    let p_band = FilterArgs { solve_rate: Some("0.4..0.6".into()), ..Default::default() };
    results.push(measure("cli_list_first_page_p_0.4..0.6", &mut cli(list(p_band, None))));
    results.push(measure("cli_show", &mut cli(ArchiveCommand::Show { id: n as u64 / 2, json: false })));
    results.push(measure(
        "cli_stats",
        &mut cli(ArchiveCommand::Stats { filter: FilterArgs::default(), window: None, json: false }),
    ));
    results.push(measure(
        "cli_stats_window_100",
        &mut cli(ArchiveCommand::Stats { filter: FilterArgs::default(), window: Some(100), json: true }),
    ));
    results.push(measure(
        "cli_list_sorted_by_padding",
        &mut cli(list(FilterArgs::default(), Some(SortKey::Padding))),
    ));
    drop(access);
    // browse: from start to the first page on screen, then 20 pages down, each drawn.
    {
        use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
        let archive = Archive::open_existing(&path).unwrap();
        let mut app = selfplay::browse::App::new(selfplay::access::Access::Local(archive));
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 45)).unwrap();
        // One frame: take the worker's answers, draw, return the screen's text.
        let mut frame = |app: &mut selfplay::browse::App| -> String {
            app.poll();
            term.draw(|f| app.draw(f)).unwrap();
            term.backend().buffer().content().iter().map(|c| c.symbol()).collect()
        };
        results.push(measure("browse_first_page", &mut || {
            while !frame(&mut app).contains("problem 1 ") {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            1
        }));
        results.push(measure("browse_scroll_20_pages", &mut || {
            // PageDown moves 20 rows within what is loaded while the worker loads ahead; every
            // press is drawn. Row 4,000 is 20 of the worker's pages down.
            let start = Instant::now();
            loop {
                app.handle_key(KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE));
                frame(&mut app);
                if app.position().0.is_some_and(|i| i >= 4000) {
                    return 4000;
                }
                assert!(start.elapsed().as_secs() < 60, "browse did not reach row 4,000 in a minute");
            }
        }));
    }
    let reference = results[0].1;
    let rows: Vec<serde_json::Value> = results
        .iter()
        .map(|(name, secs, count, mem)| {
            serde_json::json!({
                "what": name,
                "seconds": secs,
                "matched": count,
                "over_raw_iterate": secs / reference,
                "peak_rss_growth_mib": *mem as f64 / 1024.0,
            })
        })
        .collect();
    serde_json::json!({
        "records": n,
        "build_seconds": build_s,
        "size_on_disk_mib": size as f64 / (1 << 20) as f64,
        "results": rows,
    })
}

fn main() {
    let dir = tempfile::tempdir_in(
        std::env::var("SELFPLAY_BENCH_DIR").unwrap_or_else(|_| env!("CARGO_TARGET_TMPDIR").into()),
    )
    .unwrap();
    let n: usize =
        std::env::var("SELFPLAY_BENCH_RECORDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let insert = insert_bench(dir.path());
    println!("{}", serde_json::json!({ "bench": "archive_insert", "result": insert }));
    let scale = scale_bench(dir.path(), n);
    println!("{}", serde_json::json!({ "bench": "archive_scale", "result": scale }));
}
