//! `archive import` on any bytes: into an archive holding two problems, the import is refused
//! whole (the archive exactly as it was) or taken whole; ids stay within the bound, the id
//! counter never wraps, and nothing stored before is altered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use store::{Archive, Filter, Order, ProblemRecord, MAX_ID};

fn held(a: &Archive) -> Vec<String> {
    a.scan(&Filter::default(), Order::Ascending, None)
        .map(|r| serde_json::to_string(&r.expect("stored records read back")).unwrap())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flag, input)) = data.split_first() else { return };
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path().join("a")).unwrap();
    let mut two: Vec<ProblemRecord> = (0..2)
        .map(|i| ProblemRecord { run: "r".into(), domain: "arith".into(), text: format!("{i}+1"), ..Default::default() })
        .collect();
    archive.append(&mut two).unwrap();
    let before = held(&archive);
    let renumber = flag & 1 == 1;
    match store::import_jsonl(&archive, &mut &input[..], renumber) {
        Err(_) => assert_eq!(held(&archive), before, "a refused import changed the archive"),
        Ok(report) => {
            let after = held(&archive);
            assert_eq!(after.len() as u64, before.len() as u64 + report.imported);
            for old in &before {
                assert!(after.contains(old), "a stored record was altered");
            }
        }
    }
    assert!(archive.next_id() <= MAX_ID + 1 && archive.next_id() > 2);
    drop(archive);
    // What was written opens again.
    Archive::open(dir.path().join("a")).expect("the archive reopens");
});
