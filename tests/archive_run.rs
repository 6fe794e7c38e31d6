//! The archive CLI, `browse` and `report` on archives made by real (tiny) runs; queries answered by
//! a running daemon; daemons that misbehave; the report in a real browser.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{fails, ok, ok_with};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use selfplay::access::Access;
use selfplay::browse::App;
use serde_json::Value;
use store::{Archive, ProblemRecord};

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tiny.toml");

fn records(s: &str) -> Vec<ProblemRecord> {
    s.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn ids(rs: &[ProblemRecord]) -> Vec<u64> {
    rs.iter().map(|r| r.id).collect()
}

/// A run directory after `rounds` rounds of the tiny configuration.
fn short_run(dir: &Path, rounds: u32) -> PathBuf {
    let run = dir.join("run");
    ok(&["run", "--config", TINY, "--run-dir", run.to_str().unwrap(), "--rounds", &rounds.to_string()]);
    run
}

#[test]
fn every_archive_command_on_a_real_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = short_run(dir.path(), 6);
    let r = run.to_str().unwrap();
    let q = |args: &[&str]| ok(&[&["archive", "--run-dir", r], args].concat());
    let before = q(&["export", "--format", "jsonl"]);
    let all = records(&q(&["list", "--json", "--limit", "1000"]));
    assert_eq!(all.len(), 6 * 8, "8 proposals a round");
    assert_eq!(records(&before), all);

    // Every filter gives what the filter means, checked record by record.
    type Case = (Vec<&'static str>, Box<dyn Fn(&ProblemRecord) -> bool>);
    let cases: Vec<Case> = vec![
        (vec!["--valid"], Box::new(|x| x.valid)),
        (vec!["--invalid"], Box::new(|x| !x.valid)),
        (vec!["--rounds", "2..3"], Box::new(|x| (2..=3).contains(&x.round))),
        (vec!["--solve-rate", "0..0.5"], Box::new(|x| x.solve_rate.is_some_and(|p| p <= 0.5))),
        (vec!["--padding", "0"], Box::new(|x| x.padding == Some(0.0))),
        (vec!["--depth", "0..1"], Box::new(|x| x.depth.is_some_and(|d| d <= 1))),
        (vec!["--contains", "+"], Box::new(|x| x.text.contains('+'))),
        (vec!["--interestingness", "0..1"], Box::new(|x| x.interestingness.is_some())),
        (vec!["--scorer", "novelty"], Box::new(|x| x.scorer.is_some())),
        (vec!["--run", "tiny", "--rounds", "4"], Box::new(|x| x.round == 4)),
    ];
    for (flags, want) in &cases {
        let got = records(&q(&[&["list", "--json", "--limit", "1000"], flags.as_slice()].concat()));
        let expected: Vec<u64> = all.iter().filter(|x| want(x)).map(|x| x.id).collect();
        assert_eq!(ids(&got), expected, "{flags:?}");
    }
    let reasons: std::collections::BTreeSet<&str> = all.iter().filter_map(|x| x.reason.as_deref()).collect();
    let reason = reasons.iter().next().expect("a tiny run proposes some invalid problems");
    let got = records(&q(&["list", "--json", "--limit", "1000", "--invalid", "--reason", reason]));
    assert_eq!(got.len(), all.iter().filter(|x| x.reason.as_deref() == Some(reason)).count());

    // Sorting, and pages of a sort.
    let mut by_length = all.clone();
    by_length.sort_by_key(|x| (std::cmp::Reverse(x.text.chars().count()), x.id));
    let page1 = records(&q(&["list", "--json", "--sort", "length", "--desc", "--limit", "5"]));
    let page2 =
        records(&q(&["list", "--json", "--sort", "length", "--desc", "--limit", "5", "--offset", "5"]));
    assert_eq!(ids(&page1), ids(&by_length[..5]));
    assert_eq!(ids(&page2), ids(&by_length[5..10]));
    let by_p = records(&q(&["list", "--json", "--sort", "solve-rate", "--limit", "1000"]));
    let attempted = all.iter().filter(|x| x.solve_rate.is_some()).count();
    assert!(by_p[..attempted].windows(2).all(|w| w[0].solve_rate <= w[1].solve_rate));
    assert!(by_p[attempted..].iter().all(|x| x.solve_rate.is_none()), "problems without p̂ come last");
    let table = q(&["list", "--sort", "round", "--desc", "--limit", "3"]);
    assert!(table.lines().next().unwrap().contains("int"), "{table}");
    assert_eq!(table.lines().count(), 4);
    let err = fails(&["archive", "--run-dir", r, "list", "--desc"]);
    assert!(err.contains("--sort"), "{err}");

    // show, equivalents (by id and by text), lineage.
    let valid = all.iter().find(|x| x.valid).expect("some valid problem");
    let shown: ProblemRecord = serde_json::from_str(&q(&["show", &valid.id.to_string(), "--json"])).unwrap();
    assert_eq!(&shown, valid);
    let text = q(&["show", &valid.id.to_string()]);
    for part in ["canonical hash", "solve rate", "reward", "length factor", "models", valid.text.as_str()] {
        assert!(text.contains(part), "{part} in {text}");
    }
    let same = records(&q(&["equivalents", &valid.id.to_string(), "--json"]));
    let by_text = records(&q(&["equivalents", "--problem", &valid.text, "--json"]));
    assert_eq!(ids(&same), ids(&by_text));
    assert!(same.iter().all(|x| x.canonical_hash == valid.canonical_hash) && same.contains(valid));
    let err = fails(&["archive", "--run-dir", r, "equivalents", "--problem", "2+"]);
    assert!(err.contains("is not a valid problem"), "{err}");
    let child = all.iter().find(|x| !x.references.is_empty()).expect("a problem shown references");
    let lineage: Value = serde_json::from_str(&q(&["lineage", &child.id.to_string(), "--json"])).unwrap();
    let ancestors: Vec<u64> =
        lineage["ancestors"].as_array().unwrap().iter().map(|a| a["id"].as_u64().unwrap()).collect();
    assert!(child.references.iter().all(|p| ancestors.contains(p)), "{lineage}");
    // Any depth ends where the lineage does (found by fuzzing: a depth of 777173372 took seconds).
    let deep = q(&["lineage", &child.id.to_string(), "--json", "--depth", &u64::MAX.to_string()]);
    let deep: Value = serde_json::from_str(&deep).unwrap();
    assert!(deep["ancestors"].as_array().unwrap().len() >= ancestors.len());

    // stats, per window too.
    let stats: Value = serde_json::from_str(&q(&["stats", "--json", "--window", "2"])).unwrap();
    assert_eq!(stats["total"], 48);
    assert_eq!(stats["rewards"]["rewarded"], 48, "every problem has its reward terms");
    let windows = stats["windows"].as_array().unwrap();
    assert_eq!(windows.iter().map(|w| w["total"].as_u64().unwrap()).sum::<u64>(), 48);
    assert!(q(&["stats"]).contains("reward     mean"));

    // export in both formats with filters, to standard output and to a file.
    let valid_jsonl = q(&["export", "--format", "jsonl", "--valid"]);
    assert_eq!(records(&valid_jsonl).len(), all.iter().filter(|x| x.valid).count());
    let csv = q(&["export", "--format", "csv", "--rounds", "1"]);
    assert_eq!(csv.lines().count(), 1 + 8);
    let file = dir.path().join("out.csv");
    q(&["export", "--format", "csv", "--rounds", "1", "--out", file.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), csv);

    // browse needs a terminal, and says so.
    let err = fails(&["archive", "--run-dir", r, "browse"]);
    assert!(err.contains("browse needs a terminal"), "{err}");

    // The report: every plot there; an unreadable metrics line is skipped and counted.
    let mut metrics = std::fs::OpenOptions::new().append(true).open(run.join("metrics.jsonl")).unwrap();
    metrics.write_all(b"{not json\n").unwrap();
    let page = dir.path().join("report.html");
    let said = ok(&["report", "--run-dir", r, "--out", page.to_str().unwrap()]);
    assert!(said.contains("6 rounds of metrics, 48 problems"), "{said}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("<figure class=\"plot\"").count(), 8);
    // Every plot but the skill graph has data after 6 rounds; the skill graph once a skill is tried.
    let skills = std::fs::read_to_string(run.join("checkpoints/round-000006/curriculum.json")).unwrap();
    let tried = !serde_json::from_str::<Value>(&skills).unwrap()["skills"].as_array().unwrap().is_empty();
    assert_eq!(html.matches("<svg").count(), 7 + usize::from(tried), "{html}");
    // The proposer beside the generator probe (tiny.toml evaluates, and so probes, every 2 rounds).
    let figure =
        html.split("id=\"proposer-vs-generator\"").nth(1).unwrap().split("</figure>").next().unwrap();
    assert!(figure.contains(">\nproposer\n<") && figure.contains(">\ngenerator\n<"), "{figure}");
    assert!(html.contains("1 unreadable lines skipped"));
    let err = fails(&["report", "--run-dir", dir.path().to_str().unwrap()]);
    assert!(err.contains("is not a run directory"), "{err}");

    // Bad input names what is wrong.
    assert!(fails(&["archive", "--run-dir", r, "show", "99999"]).contains("no problem with id 99999"));
    assert!(fails(&["archive", "--run-dir", r, "list", "--depth", "x"]).contains("--depth"));
    assert!(
        fails(&["archive", "--run-dir", r, "list", "--interestingness", "2"]).contains("--interestingness")
    );
    let nowhere = dir.path().join("nowhere");
    assert!(fails(&["archive", "--run-dir", nowhere.to_str().unwrap(), "list"]).contains("no archive at"));

    // Readers changed nothing.
    assert_eq!(q(&["export", "--format", "jsonl"]), before);
}

/// The text on a test terminal.
fn screen(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let width = buf.area.width as usize;
    buf.content().chunks(width).map(|row| row.iter().map(|c| c.symbol()).collect::<String>() + "\n").collect()
}

/// Polls and redraws until the screen shows `want`.
fn wait_for(app: &mut App, t: &mut Terminal<TestBackend>, want: &str) -> String {
    let start = Instant::now();
    loop {
        app.poll();
        t.draw(|f| app.draw(f)).unwrap();
        let s = screen(t);
        if s.contains(want) {
            return s;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "never showed {want:?}:\n{s}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        app.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
}

fn key(app: &mut App, code: KeyCode) {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
}

#[test]
fn browse_scrolls_filters_and_follows_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let run = short_run(dir.path(), 6);
    let all: Vec<ProblemRecord> = {
        let a = Archive::open_existing(run.join("archive")).unwrap();
        a.scan(&store::Filter::default(), store::Order::Ascending, None).map(Result::unwrap).collect()
    };
    let archive = Archive::open_existing(run.join("archive")).unwrap();
    let mut app = App::new(Access::Local(archive));
    let mut t = Terminal::new(TestBackend::new(140, 30)).unwrap();
    let s = wait_for(&mut app, &mut t, "problem 1 ");
    assert!(s.contains(&format!("{} problems", all.len())), "all loaded, none left:\n{s}");
    // Down three rows: the detail pane follows.
    press(&mut app, "jjj");
    wait_for(&mut app, &mut t, "problem 4 ");
    // A filter: only valid problems are listed, the first of them shown.
    press(&mut app, "/valid");
    key(&mut app, KeyCode::Enter);
    let first_valid = all.iter().find(|r| r.valid).unwrap();
    let s = wait_for(&mut app, &mut t, &format!("problem {} ", first_valid.id));
    let n_valid = all.iter().filter(|r| r.valid).count();
    assert!(s.contains(&format!("· valid · oldest first · {n_valid} problems")), "{s}");
    // A bad filter is refused with its reason; the list stays.
    press(&mut app, "/");
    for _ in 0..10 {
        key(&mut app, KeyCode::Backspace);
    }
    press(&mut app, "depth=x");
    key(&mut app, KeyCode::Enter);
    wait_for(&mut app, &mut t, "--depth");
    key(&mut app, KeyCode::Esc);
    // Lineage: from a problem with references, jump to its first ancestor and back.
    press(&mut app, "/");
    for _ in 0..10 {
        key(&mut app, KeyCode::Backspace);
    }
    key(&mut app, KeyCode::Enter);
    let child = all.iter().find(|r| !r.references.is_empty()).unwrap();
    let row = all.iter().position(|r| r.id == child.id).unwrap();
    wait_for(&mut app, &mut t, &format!("{} problems", all.len()));
    for _ in 0..row {
        key(&mut app, KeyCode::Down);
    }
    wait_for(&mut app, &mut t, &format!("problem {} ", child.id));
    press(&mut app, "l");
    wait_for(&mut app, &mut t, &format!("lineage of {} (", child.id));
    key(&mut app, KeyCode::Enter);
    let parent = child.references[0];
    wait_for(&mut app, &mut t, &format!("problem {parent} "));
    key(&mut app, KeyCode::Backspace);
    wait_for(&mut app, &mut t, &format!("problem {} ", child.id));
    press(&mut app, "?");
    wait_for(&mut app, &mut t, "any key closes this");
    press(&mut app, "xq");
    assert!(app.quit);
}

fn spawn_daemon(run: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_selfplay"))
        .args(["run", "--config", TINY, "--run-dir", run.to_str().unwrap(), "--rounds", "100000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn rounds_done(run: &Path) -> usize {
    std::fs::read_to_string(run.join("metrics.jsonl")).map_or(0, |t| t.lines().count())
}

/// Waits until the daemon answers queries and has finished `rounds` rounds.
fn wait_daemon(run: &Path, rounds: usize) {
    let start = Instant::now();
    while !(run.join("archive.sock").exists() && rounds_done(run) >= rounds) {
        assert!(start.elapsed() < Duration::from_secs(120), "the daemon did not get going");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_cli_gets_the_same_answers_from_a_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let mut daemon = spawn_daemon(&run);
    wait_daemon(&run, 3);
    // Questions whose answers later rounds cannot change.
    let questions: Vec<Vec<&str>> = vec![
        vec!["list", "--rounds", "1..2", "--json", "--limit", "100"],
        vec!["list", "--rounds", "1..2"],
        vec!["list", "--rounds", "1..2", "--sort", "length", "--desc", "--json"],
        vec!["show", "1"],
        vec!["show", "3", "--json"],
        vec!["stats", "--rounds", "1..2", "--json"],
        vec!["stats", "--rounds", "1..2", "--window", "1"],
        vec!["export", "--format", "csv", "--rounds", "1..2"],
        vec!["export", "--format", "jsonl", "--rounds", "1"],
    ];
    let ask = |q: &[&str]| ok(&[&["archive", "--run-dir", r], q].concat());
    let from_daemon: Vec<String> = questions.iter().map(|q| ask(q)).collect();
    assert!(run.join("archive.sock").exists(), "answered while running");
    assert!(from_daemon[0].lines().count() >= 16, "{}", from_daemon[0]);
    // A file export through the daemon is written here.
    let file = dir.path().join("r1.jsonl");
    ask(&["export", "--format", "jsonl", "--rounds", "1", "--out", file.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), from_daemon[8]);
    // Errors come back as they would locally; import is refused while the daemon holds the archive.
    let err = fails(&["archive", "--run-dir", r, "show", "999999"]);
    assert!(err.contains("no problem with id 999999"), "{err}");
    let err = fails(&["archive", "--run-dir", r, "import", file.to_str().unwrap()]);
    assert!(err.contains("stop it to import"), "{err}");
    // The report reads the archive through the daemon too.
    let said = ok(&["report", "--run-dir", r, "--out", dir.path().join("live.html").to_str().unwrap()]);
    assert!(said.starts_with("wrote"), "{said}");

    Command::new("kill").args(["-TERM", &daemon.id().to_string()]).status().unwrap();
    assert!(daemon.wait().unwrap().success());
    assert!(!run.join("archive.sock").exists(), "the endpoint is removed on a clean stop");
    let local: Vec<String> = questions.iter().map(|q| ask(q)).collect();
    for ((q, d), l) in questions.iter().zip(&from_daemon).zip(&local) {
        assert_eq!(d, l, "{q:?}: the daemon's answer differs from the database's");
    }

    // A daemon killed outright leaves its socket; the CLI sees no one answers and opens the
    // database itself.
    let mut daemon = spawn_daemon(&run);
    let done = rounds_done(&run);
    wait_daemon(&run, done + 1);
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert!(run.join("archive.sock").exists());
    assert_eq!(ask(&questions[3]), local[3]);
}

/// What a fake daemon does with the one query it gets.
enum Misbehaviour {
    /// Sends part of an answer and closes the connection.
    DiesMidAnswer,
    /// Never answers.
    Hangs,
    /// Answers in another protocol.
    Garbage,
}

#[test]
fn a_daemon_that_dies_hangs_or_babbles_is_reported_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("archive");
    // This process holds the database, as a daemon would.
    let _held = Archive::open(&db).unwrap();
    let socket = dir.path().join("archive.sock");
    for (behaviour, want) in [
        (Misbehaviour::DiesMidAnswer, "closed the connection before finishing its answer"),
        (Misbehaviour::Hangs, "did not answer within 0.5 s"),
        (Misbehaviour::Garbage, "is it a selfplay daemon?"),
    ] {
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            // Skip the client's probe (a connection that sends nothing), then read the request line.
            let mut conn = loop {
                let (mut conn, _) = listener.accept().unwrap();
                let mut line = Vec::new();
                let mut byte = [0u8; 1];
                while conn.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
                    line.push(byte[0]);
                }
                if !line.is_empty() {
                    break conn;
                }
            };
            match behaviour {
                Misbehaviour::DiesMidAnswer => {
                    // A reply frame cut short: its header promises more than comes.
                    let part = b"{\"record\": {\"id\": 1";
                    let mut frame = vec![b'r'];
                    frame.extend_from_slice(&(4 * part.len() as u32).to_be_bytes());
                    frame.extend_from_slice(part);
                    conn.write_all(&frame).unwrap();
                }
                Misbehaviour::Hangs => std::thread::sleep(Duration::from_secs(2)),
                Misbehaviour::Garbage => conn.write_all(b"HTTP/1.1 200 OK\r\n\r\nhello").unwrap(),
            }
        });
        let out = common::selfplay(&["archive", "--db", db.to_str().unwrap(), "--timeout", "0.5", "list"]);
        server.join().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want) && err.contains("archive.sock"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // Nobody listening on a socket left behind, and the database held: both are named.
    let err = fails(&["archive", "--db", db.to_str().unwrap(), "list"]);
    assert!(err.contains("in use by another process, and no daemon answers at"), "{err}");
}

/// The first of these browsers on the PATH.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

#[test]
fn the_report_loads_in_a_real_browser_with_every_plot_drawn() {
    let Some(browser) = chromium() else {
        // CI installs Chromium (.ci/run); elsewhere the test says what it needs.
        assert!(std::env::var_os("CI").is_none(), "CI must have Chromium: .ci/run installs it");
        eprintln!("skipped: no Chromium on the PATH (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = short_run(dir.path(), 4);
    let page = dir.path().join("report.html");
    ok_with(&["report", "--run-dir", run.to_str().unwrap(), "--out", page.to_str().unwrap()], b"");
    let out = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            &format!("--user-data-dir={}", dir.path().join("profile").display()),
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{browser:?} failed");
    let dom = String::from_utf8_lossy(&out.stdout);
    let html = std::fs::read_to_string(&page).unwrap();
    let with_data = html.matches("<svg").count();
    assert!(with_data >= 7, "{html}");
    let body = dom.split("<body").nth(1).and_then(|b| b.split('>').next()).unwrap_or_default();
    assert!(body.contains(r#"data-plots="8""#), "{body}");
    assert!(body.contains(&format!(r#"data-drawn="{with_data}""#)), "every plot with data drawn: {body}");
    assert!(body.contains(r#"data-errors="0""#), "{body}");
}
