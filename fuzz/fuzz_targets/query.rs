//! The daemon's query endpoint on any request line: parsed, and when it is a query, answered
//! from a small archive, as the daemon would (`store::query::answer`). An answer or an error, never a panic or a runaway
//! allocation.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use selfplay::endpoint::parse_request;
use store::{Archive, ProblemRecord};

fn archive() -> &'static Archive {
    static ARCHIVE: OnceLock<(tempfile::TempDir, Archive)> = OnceLock::new();
    &ARCHIVE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let archive = Archive::open(dir.path().join("archive")).unwrap();
            let seed = include_str!("../seeds/archive.jsonl");
            let records: Vec<ProblemRecord> = seed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            archive.put(&records).unwrap();
            (dir, archive)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else { return };
    if let Ok(query) = parse_request(line) {
        let mut replies = 0usize;
        let _ = store::query::answer::<store::StoreError>(archive(), &query, |_| {
            replies += 1;
            Ok(())
        });
    }
});
