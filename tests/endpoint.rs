//! The daemon's endpoint under clients that misbehave: one that stops reading, one that hangs up
//! mid-query, one that only stops sending. A fail point slows each record of a stats scan, so
//! that a whole scan takes far longer than the tests allow.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use selfplay::endpoint::{Client, Server};
use store::{Archive, ProblemRecord, Query, Reply};

/// Each record a stats scan reads takes this long.
const PER_RECORD: &str = "stats-record=sleep(5)";

/// An archive of `records` problems of `terms` terms each.
fn archive(dir: &Path, records: usize, terms: usize) -> Arc<Archive> {
    let archive = Archive::open(dir.join("archive")).unwrap();
    let mut records: Vec<ProblemRecord> = (0..records)
        .map(|i| ProblemRecord {
            run: "slow".into(),
            domain: "arith".into(),
            text: format!("{i}{}", "+1".repeat(terms)),
            ..Default::default()
        })
        .collect();
    archive.append(&mut records).unwrap();
    Arc::new(archive)
}

/// Serves `archive` at `socket` from a thread of its own, for the rest of the test process.
fn serve(archive: Arc<Archive>, socket: &Path) {
    store::failpoint::configure(PER_RECORD).unwrap();
    let (ready, started) = std::sync::mpsc::channel();
    let socket = socket.to_path_buf();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let _server = Server::start(archive, &socket).unwrap();
            ready.send(()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    started.recv().unwrap();
}

const STATS: &[u8] = b"{\"version\": 2, \"query\": {\"stats\": {}}}\n";
const EVERYTHING: &[u8] = b"{\"version\": 2, \"query\": {\"page\": {\"order\": {\"id\": {}}}}}\n";

/// `clients` connections that each sent `request` and read nothing yet.
fn connect_and_ask(socket: &Path, request: &[u8], clients: usize) -> Vec<UnixStream> {
    let ask = |_| {
        let mut s = UnixStream::connect(socket).unwrap();
        s.write_all(request).unwrap();
        s
    };
    (0..clients).map(ask).collect()
}

/// Asks for problem `id` and says how long the answer took.
fn time_a_record(socket: &Path, id: u64) -> Duration {
    let client = Client::find(socket, Duration::from_secs(60)).unwrap().expect("listening");
    let started = Instant::now();
    let mut got = None;
    client
        .ask(&Query::Record { id }, &mut |reply| {
            if let Reply::Record(r) = reply {
                got = Some(r.id);
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(got, Some(id));
    started.elapsed()
}

#[test]
fn clients_that_never_read_do_not_keep_others_waiting() {
    let dir = tempfile::tempdir().unwrap();
    // 3,000 problems of 500 terms: an export of megabytes, more than a socket buffers.
    let socket = dir.path().join("archive.sock");
    serve(archive(dir.path(), 3000, 500), &socket);
    // Every one of the 4 turns taken by a client that asks for everything and reads nothing.
    let stalled = connect_and_ask(&socket, EVERYTHING, 6);
    std::thread::sleep(Duration::from_millis(300));
    // Answered once the stalled clients are dropped, after the 10 s write timeout.
    let waited = time_a_record(&socket, 11);
    assert!(waited < Duration::from_secs(25), "waited {waited:?}");
    drop(stalled);
}

#[test]
fn clients_that_hang_up_free_their_turns_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // 3,000 records at 5 ms: a whole scan takes 15 s.
    let socket = dir.path().join("archive.sock");
    serve(archive(dir.path(), 3000, 1), &socket);
    // More clients than turns each start a stats scan, then go away without reading.
    let quitters = connect_and_ask(&socket, STATS, 6);
    std::thread::sleep(Duration::from_millis(500));
    drop(quitters);
    let waited = time_a_record(&socket, 7);
    // Scans left running would hold every turn for another 14 s or more.
    assert!(waited < Duration::from_secs(6), "waited {waited:?} for a turn");
}

#[test]
fn a_client_that_only_stops_sending_still_gets_its_answer() {
    let dir = tempfile::tempdir().unwrap();
    // 100 records at 5 ms: half a second of scanning, past the first hang-up check.
    serve(archive(dir.path(), 100, 1), &dir.path().join("archive.sock"));
    let mut s = UnixStream::connect(dir.path().join("archive.sock")).unwrap();
    s.write_all(STATS).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    assert_eq!(answer.first(), Some(&b'r'), "{}", String::from_utf8_lossy(&answer));
    let len = u32::from_be_bytes(answer[1..5].try_into().unwrap()) as usize;
    let reply: Reply = serde_json::from_slice(&answer[5..5 + len]).unwrap();
    let Reply::Stats { stats, .. } = reply else { panic!("not stats: {reply:?}") };
    assert_eq!(stats.total, 100);
    assert_eq!(&answer[5 + len..], b"k\0\0\0\0", "the answer ends with its done frame");
}

#[test]
fn a_called_off_scan_ends_with_cancelled_not_a_partial_answer() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path(), 50, 1);
    let stop = store::Stop::new();
    stop.stop();
    let query = Query::Stats { filter: Default::default(), window: None };
    let mut replies = 0;
    let err = store::query::answer_until::<store::StoreError>(&archive, &query, &stop, |_| {
        replies += 1;
        Ok(())
    })
    .unwrap_err();
    assert!(matches!(err, store::StoreError::Cancelled(_)), "{err}");
    assert_eq!(replies, 0);
    // The same query, not called off, is answered.
    store::query::answer::<store::StoreError>(&archive, &query, |_| {
        replies += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(replies, 1);
}
