//! Interestingness scorers end to end through `selfplay run`: the built-ins, the example plug-ins of
//! both protocols, and plug-ins that hang, crash, babble, answer out of order or out of range.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use common::{copy_dir, fails, ok};
use serde_json::Value;
use store::{Archive, Filter, Order, ProblemRecord};

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tiny.toml");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const WEIGHT: f64 = 0.5;

/// The tiny configuration with a proposer trained long enough to write mostly valid problems,
/// the interestingness weight on in `mode`, and `scorers` appended.
fn config(dir: &Path, scorers: &str, mode: &str) -> PathBuf {
    let tiny = std::fs::read_to_string(TINY).unwrap();
    // A proposer trained longer, and more proposals a round: valid problems to score, even in
    // one round.
    let trained =
        tiny.replace("steps = 80\n", "steps = 300\n").replace("proposals = 8\n", "proposals = 16\n");
    assert_eq!(trained.len(), tiny.len() + 2, "tiny.toml's proposer steps or proposals moved");
    let text = format!(
        "{trained}\n[reward]\ninterestingness_weight = {WEIGHT}\ninterestingness_mode = \"{mode}\"\n\n{scorers}"
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A run directory after the warm start, made once and copied for each test.
fn warm(dir: &Path) -> PathBuf {
    static BASE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, base) = BASE.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        let cfg = config(d.path(), "", "additive");
        let run = d.path().join("base");
        ok(&["run", "--config", cfg.to_str().unwrap(), "--run-dir", run.to_str().unwrap(), "--rounds", "0"]);
        (d, run)
    });
    let run = dir.join("run");
    copy_dir(base, &run);
    run
}

struct Outcome {
    valid: Vec<ProblemRecord>,
    metrics: Vec<Value>,
    stdout: String,
    /// Bytes in the run's log files.
    log_bytes: u64,
    /// Everything the run wrote that a person or a tool reads: logs, metrics, records, output.
    everything: String,
}

/// `rounds` rounds with `scorers` configured, the score paid additively so that every valid
/// problem's shows in its reward (few are in the band here); the run must end well whatever the
/// scorers do.
fn run_with(scorers: &str, rounds: u32) -> Outcome {
    run_in_mode(scorers, rounds, "additive")
}

/// `rounds` rounds with `scorers` configured and interestingness paid in `mode`.
fn run_in_mode(scorers: &str, rounds: u32, mode: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let run = warm(dir.path());
    let cfg = config(dir.path(), scorers, mode);
    let stdout = ok(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--run-dir",
        run.to_str().unwrap(),
        "--rounds",
        &rounds.to_string(),
        // The warm base was made without scorers.
        "--reconfigure",
    ]);
    let archive = Archive::open_existing(run.join("archive")).unwrap();
    let valid: Vec<ProblemRecord> = archive
        .scan(&Filter { valid: Some(true), ..Default::default() }, Order::Ascending, None)
        .map(Result::unwrap)
        .collect();
    assert!(valid.len() >= 5, "too few valid problems to test with: {}", valid.len());
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let log_bytes =
        std::fs::read_dir(run.join("logs")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    let mut everything: String = std::fs::read_dir(run.join("logs"))
        .unwrap()
        .map(|e| String::from_utf8_lossy(&std::fs::read(e.unwrap().path()).unwrap()).into_owned())
        .collect();
    everything += &std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    everything += &format!("{valid:?}{stdout}");
    Outcome { valid, metrics, stdout, log_bytes, everything }
}

/// The reward without its interestingness term: the product of the factors less the repetition,
/// padding and target charges (at their default costs, which the test configuration keeps). The
/// miss is recomputed from the record's text and target, not read from its rewards.
fn base_reward(r: &ProblemRecord) -> f64 {
    let w = r.rewards.as_ref().unwrap();
    let costs = judge::RewardConfig::default();
    let miss = if common::on_target(r) { 0.0 } else { 1.0 };
    w.frontier.unwrap() * w.padding_factor * w.length_factor.unwrap() * (1.0 - w.repetition)
        - costs.repetition.cost * w.repetition
        - costs.padding.cost * r.padding.unwrap()
        - costs.target.cost * miss
}

/// Every valid problem carries a score from `label` that entered its reward with the weight.
fn assert_scored(o: &Outcome, label: &str) {
    for r in &o.valid {
        let s = r.interestingness.unwrap_or_else(|| panic!("{} unscored: {:?}", r.text, r.scorer_error));
        assert!((0.0..=1.0).contains(&s));
        assert!(r.scorer.as_deref().unwrap().contains(label), "{:?}", r.scorer);
        let w = r.rewards.as_ref().unwrap();
        assert_eq!(w.interestingness, Some(s));
        assert!((w.total - (base_reward(r) + WEIGHT * s)).abs() < 1e-9, "{r:?}");
    }
}

/// Every valid problem has no score, the error, and a reward without the term.
fn assert_unscored(o: &Outcome, error: &str) {
    for r in &o.valid {
        assert_eq!(r.interestingness, None, "{}", r.text);
        let e = r.scorer_error.as_deref().unwrap_or_default();
        assert!(e.contains(error), "{error:?} in {e:?}");
        let w = r.rewards.as_ref().unwrap();
        assert_eq!(w.interestingness, None);
        assert!((w.total - base_reward(r)).abs() < 1e-9);
        assert_eq!(r.scores.len(), 1);
        assert_eq!(r.scores[0].error.as_deref(), Some(e.split_once(": ").unwrap().1));
    }
}

fn health<'a>(o: &'a Outcome, label: &str) -> &'a Value {
    &o.metrics.last().unwrap()["scorers"][label]
}

fn process(name: &str, args: &[&str]) -> String {
    let command: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!("[[scorers]]\nkind = \"process\"\nname = \"{name}\"\ncommand = [{}]\n", command.join(", "))
}

fn misbehaving(mode: &str) -> String {
    let script = format!("{ROOT}/tests/scorers/misbehave.py");
    // Two seconds: each retry starts python3 again, which takes more than half a second on a
    // loaded machine.
    process("bad", &["python3", &script, mode])
        + "[scorers.retry]\ntimeout_s = 2.0\nretries = 1\nbackoff_s = 0.05\nbreaker_failures = 2\nbreaker_cooldown_s = 600\n"
}

#[test]
fn the_example_process_scorer_and_novelty_score_every_valid_problem() {
    let script = format!("{ROOT}/examples/scorer_process.py");
    let scorers = process("structure", &["python3", &script])
        + "weight = 3.0\n[[scorers]]\nkind = \"novelty\"\nweight = 1.0\n";
    let o = run_with(&scorers, 3);
    assert_scored(&o, "structure@1+novelty@1");
    for r in &o.valid {
        assert_eq!(r.scores.len(), 2);
        let (s, n) = (&r.scores[0], &r.scores[1]);
        assert_eq!(
            (s.scorer.as_str(), s.weight, n.scorer.as_str(), n.weight),
            ("structure@1", 3.0, "novelty@1", 1.0)
        );
        assert!(s.reason.as_deref().unwrap().contains("of operation"), "{s:?}");
        assert!(
            n.reason.as_deref().unwrap().contains("closest to")
                || n.reason.as_deref() == Some("nothing seen yet")
        );
        // The combined score is the weighted mean.
        let want = (3.0 * s.score.unwrap() + n.score.unwrap()) / 4.0;
        assert!((r.interestingness.unwrap() - want).abs() < 1e-12);
    }
    let h = health(&o, "structure@1");
    assert_eq!(h["state"], "closed");
    assert_eq!(h["failed_calls"], 0);
    assert!(o.metrics.iter().all(|m| m["scored_fraction"].as_f64() == Some(1.0)));
    assert!(o.stdout.contains("ran rounds 1..3"));
}

#[test]
fn in_advantage_mode_the_score_is_recorded_and_left_out_of_the_reward() {
    // The configuration is taken, every valid problem scored, and no score paid, whatever the
    // solver made of the problem (judge's unit tests check the reward against the other modes).
    let o = run_in_mode("[[scorers]]\nkind = \"novelty\"\n", 3, "advantage");
    for r in &o.valid {
        let s = r.interestingness.unwrap_or_else(|| panic!("{} unscored: {:?}", r.text, r.scorer_error));
        let w = r.rewards.as_ref().unwrap();
        assert_eq!((w.interestingness, w.interestingness_weight), (Some(s), WEIGHT));
        assert!((w.total - base_reward(r)).abs() < 1e-9, "{r:?}");
    }
    // The proposer learns from the two signals.
    assert!(o.metrics.iter().any(|m| m["proposer"]["loss"].as_f64().is_some_and(f64::is_finite)));
}

#[test]
fn a_scorer_that_hangs_opens_the_circuit_and_the_run_goes_on() {
    let o = run_with(&misbehaving("hang"), 3);
    assert_unscored(&o, "bad@1: ");
    let early = o.valid.iter().filter(|r| r.round < 3).collect::<Vec<_>>();
    assert!(!early.is_empty());
    assert!(early.iter().all(|r| r
        .scorer_error
        .as_deref()
        .unwrap()
        .contains("no answer within 2 s (after 2 tries)")));
    let h = health(&o, "bad@1");
    assert_eq!(h["state"], "open");
    assert_eq!(h["breaker_opened"], 1);
    assert_eq!(h["timeouts"], 4, "two rounds of two tries, then the circuit refuses");
    assert_eq!(h["refused"], 1);
    assert_eq!(h["last_batch_ok"], false);
    let third = o.valid.iter().filter(|r| r.round == 3).collect::<Vec<_>>();
    assert!(third.iter().all(|r| r.scorer_error.as_deref().unwrap().contains("circuit open")));
}

#[test]
fn a_scorer_that_crashes_is_restarted_and_its_failures_recorded() {
    let o = run_with(&misbehaving("crash"), 2);
    assert_unscored(&o, "the process");
    assert!(health(&o, "bad@1")["failed_calls"].as_u64().unwrap() >= 4);

    // One that crashes once comes back: the next call starts it again.
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("crashed");
    let script = format!("{ROOT}/tests/scorers/misbehave.py");
    let scorers = format!(
        "[[scorers]]\nkind = \"process\"\nname = \"flaky\"\ncommand = [\"env\", \"MISBEHAVE_MARKER={}\", \"python3\", {script:?}, \"crash_once\"]\n",
        marker.display()
    );
    let o = run_with(&scorers, 2);
    assert_scored(&o, "flaky@1");
    let h = health(&o, "flaky@1");
    assert_eq!((h["failed_calls"].as_u64(), h["state"].as_str()), (Some(1), Some("closed")));
    assert_eq!(h["last_batch_ok"], true, "a failure long past does not mark it troubled");
    assert!(h["last_error"].as_str().is_some(), "but is remembered");
}

#[test]
fn garbage_out_of_order_and_out_of_range_answers_are_refused_one_by_one() {
    for (mode, error) in [
        ("garbage", "unreadable answer \"this is not json\""),
        ("out_of_order", "answered out of order"),
        ("out_of_range", "score 1.7 is outside [0, 1]"),
    ] {
        let o = run_with(&misbehaving(mode), 2);
        assert_unscored(&o, error);
        let h = health(&o, "bad@1");
        assert_eq!(h["bad_answers"].as_u64(), Some(o.valid.len() as u64), "{mode}");
        assert_eq!(h["state"], "closed", "{mode}: answering badly is not a failed call");
    }
}

#[test]
fn a_scorer_that_floods_its_output_is_cut_off() {
    // An answer line without end: refused at 1 MiB, the process restarted, the run goes on.
    let o = run_with(&misbehaving("flood_stdout"), 2);
    assert_unscored(&o, "an answer line longer than 1048576 bytes");
    // Megabytes on standard error: the answers count, the log keeps only a bounded sample.
    let o = run_with(&misbehaving("flood_stderr"), 2);
    assert_scored(&o, "bad@1");
    assert!(o.log_bytes < 512 << 10, "the log grew to {} bytes", o.log_bytes);
    // An HTTP answer without end: cut off at the limit.
    let service = misbehaving_service("flood");
    let o = run_with(&http("bad", service.1), 2);
    assert_unscored(&o, "answered more than the 1048576 bytes allowed");
}

/// A Python HTTP scorer on a free loopback port, killed on drop.
struct Service(Child, u16);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn example_service() -> Service {
    let mut child = Command::new("python3")
        .args([&format!("{ROOT}/examples/scorer_http.py"), "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap();
    Service(child, port)
}

fn misbehaving_service(mode: &str) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let port_file = dir.path().join("port");
    let child = Command::new("python3")
        .args([&format!("{ROOT}/tests/scorers/misbehave.py"), "--http", port_file.to_str().unwrap(), mode])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !port_file.exists() {
        assert!(start.elapsed().as_secs() < 20, "the service did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Service(child, std::fs::read_to_string(&port_file).unwrap().parse().unwrap())
}

fn http(name: &str, port: u16) -> String {
    http_at(name, &format!("http://127.0.0.1:{port}/score"), "")
}

/// An HTTP scorer at `url`, with `more` keys in its table.
fn http_at(name: &str, url: &str, more: &str) -> String {
    format!(
        "[[scorers]]\nkind = \"http\"\nname = \"{name}\"\nurl = \"{url}\"\n{more}\
         [scorers.retry]\ntimeout_s = 0.5\nretries = 1\nbackoff_s = 0.05\nbreaker_failures = 5\n"
    )
}

#[test]
fn an_http_scorer_sends_its_token_follows_no_redirect_and_never_shows_credentials() {
    // The bearer token comes from the variable the configuration names, and only from there.
    std::env::set_var("SELFPLAY_TEST_SCORER_TOKEN", "s3cret-token");
    let service = misbehaving_service("bearer");
    let url = format!("http://127.0.0.1:{}/score", service.1);
    let o = run_with(&http_at("auth", &url, "token_env = \"SELFPLAY_TEST_SCORER_TOKEN\"\n"), 2);
    assert_scored(&o, "auth@1");
    assert!(!o.everything.contains("s3cret-token"), "the token was written somewhere");
    let o = run_with(&http_at("auth", &url, ""), 1);
    assert_unscored(&o, "answered 401 Unauthorized: no token");
    drop(service);

    // A redirect is an answer, not an address to follow (the same server would have scored).
    let service = misbehaving_service("redirect");
    let o = run_with(&http("moved", service.1), 1);
    assert_unscored(&o, "answered 307 Temporary Redirect (redirects are not followed");
    drop(service);

    // Credentials in the URL reach the server but never an error, a record, a metric or a log.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let o = run_with(&http_at("cred", &format!("http://alice:hunter2@127.0.0.1:{port}/score"), ""), 1);
    assert_unscored(&o, &format!("POST http://127.0.0.1:{port}/score"));
    for secret in ["hunter2", "alice"] {
        if let Some(at) = o.everything.find(secret) {
            let around = &o.everything[at.saturating_sub(300)..(at + 100).min(o.everything.len())];
            panic!("credentials shown: …{around}…");
        }
    }
}

#[test]
fn an_https_scorer_speaks_tls_and_verifies_the_server() {
    // A server that takes the connection and reads what the scorer sends first, then hangs up.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let first_bytes = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let mut seen = Vec::new();
        while started.elapsed() < std::time::Duration::from_secs(120) && seen.is_empty() {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
                    let mut buf = [0u8; 3];
                    if std::io::Read::read_exact(&mut stream, &mut buf).is_ok() {
                        seen = buf.to_vec();
                    }
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        seen
    });
    let o = run_with(&http_at("tls", &format!("https://127.0.0.1:{port}/score"), ""), 1);
    assert_unscored(&o, &format!("POST https://127.0.0.1:{port}/score"));
    // A TLS handshake record (0x16) of TLS 1.x (0x03 ..): the scorer spoke TLS, not plain HTTP.
    let seen = first_bytes.join().unwrap();
    assert_eq!(seen.first(), Some(&0x16), "the scorer's first bytes: {seen:?}");
    assert_eq!(seen.get(1), Some(&0x03), "the scorer's first bytes: {seen:?}");
}

#[test]
fn the_example_http_scorer_scores_every_valid_problem() {
    let service = example_service();
    let o = run_with(&http("structure-http", service.1), 2);
    assert_scored(&o, "structure-http@1");
    assert!(o.valid.iter().all(|r| r.scores[0].reason.is_some()));
}

#[test]
fn a_misbehaving_http_scorer_never_stops_the_run() {
    for (mode, error) in [
        ("status_500", "answered 500 Internal Server Error: internal error"),
        ("garbage", "unreadable answer \"<html>not json</html>\""),
        ("hang", "no answer within 0.5 s"),
        ("count_wrong", "scores for"),
        ("out_of_range", "score 1.7 is outside [0, 1]"),
    ] {
        let service = misbehaving_service(mode);
        let o = run_with(&http("bad", service.1), 2);
        assert_unscored(&o, error);
        drop(service);
    }
    // Nobody listening at all.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let o = run_with(&http("bad", port), 1);
    assert_unscored(&o, "POST http://127.0.0.1");
}

#[test]
fn scorer_configuration_errors_stop_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    for (scorers, want) in [
        ("[[scorers]]\nkind = \"preference\"\n", "no preference model at"),
        (
            "[[scorers]]\nkind = \"http\"\nurl = \"ftp://u:hunter2@example.org\"\n",
            "\"ftp://example.org/\" must be http:// or https://",
        ),
        (
            "[[scorers]]\nkind = \"http\"\nurl = \"http://x\"\ntoken_env = \"SELFPLAY_NO_SUCH_VARIABLE\"\n",
            "the environment variable SELFPLAY_NO_SUCH_VARIABLE is not set",
        ),
        ("[[scorers]]\nkind = \"novelty\"\ntoken_env = \"X\"\n", "token_env is for http scorers"),
        ("[[scorers]]\nkind = \"process\"\ncommand = []\n", "needs `command`"),
    ] {
        let cfg = config(dir.path(), scorers, "additive");
        let err = fails(&["run", "--config", cfg.to_str().unwrap(), "--run-dir", run.to_str().unwrap()]);
        assert!(err.contains(want), "{err}");
        assert!(!err.contains("hunter2"), "a URL's password shown: {err}");
        assert!(!run.join("warmstart").exists(), "no warm start for a run that cannot score");
    }
}

#[test]
fn ratings_train_a_preference_scorer_that_the_run_then_uses() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let dir = tempfile::tempdir().unwrap();
    let run = warm(dir.path());
    let r = run.to_str().unwrap();
    let plain = config(dir.path(), "", "additive");
    ok(&["run", "--config", plain.to_str().unwrap(), "--run-dir", r, "--rounds", "3"]);

    // A person at the terminal: A, B, a tie and a skip give three ratings.
    {
        let archive = Archive::open_existing(run.join("archive")).unwrap();
        let mut app = selfplay::rate::RateApp::new(archive, 7).unwrap();
        let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 20)).unwrap();
        t.draw(|f| app.draw(f)).unwrap();
        let screen: String = t.backend().buffer().content().iter().map(|c| c.symbol()).collect();
        assert!(
            screen.contains("Which problem is more interesting?") && screen.contains("solve rate"),
            "{screen}"
        );
        for c in ['a', 'b', 't', 's'] {
            app.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        }
        assert_eq!((app.given, app.skipped), (3, 1));
    }
    let archive = Archive::open_existing(run.join("archive")).unwrap();
    let winners: Vec<store::Winner> = archive.ratings().unwrap().iter().map(|r| r.winner).collect();
    assert_eq!(winners, vec![store::Winner::A, store::Winner::B, store::Winner::Tie]);

    // Imported ratings from a rater who likes mixing operations and nesting them.
    let valid: Vec<ProblemRecord> = archive
        .scan(&Filter { valid: Some(true), ..Default::default() }, Order::Ascending, None)
        .map(Result::unwrap)
        .collect();
    drop(archive);
    let taste = |t: &str| {
        t.chars().filter(|c| "+-*".contains(*c)).collect::<std::collections::BTreeSet<_>>().len() as f64
            + 0.5 * t.matches('(').count() as f64
    };
    let mut lines = String::new();
    for i in 0..300 {
        let (a, b) = (&valid[(i * 7) % valid.len()], &valid[(i * 13 + 5) % valid.len()]);
        let winner = match taste(&a.text).partial_cmp(&taste(&b.text)).unwrap() {
            std::cmp::Ordering::Greater => "a",
            std::cmp::Ordering::Less => "b",
            std::cmp::Ordering::Equal => "tie",
        };
        // One side by archive id, the other by text.
        lines += &serde_json::json!({"a": a.id.to_string(), "b": b.text, "winner": winner}).to_string();
        lines.push('\n');
    }
    let said = common::ok_with(&["rate", "--run-dir", r, "import", "-"], lines.as_bytes());
    assert_eq!(said.trim(), "imported 300 ratings (303 in the archive now)");
    // The same file again adds nothing; the file grown by two lines adds those two.
    let again = common::ok_with(&["rate", "--run-dir", r, "import", "-"], lines.as_bytes());
    assert_eq!(again.trim(), "imported 0 ratings, 300 imported before (303 in the archive now)");
    let first = lines.lines().next().unwrap();
    let grown = format!("{lines}{first}\n{{\"a\": \"7*7\", \"b\": \"1+2\", \"winner\": \"a\"}}\n");
    let said = common::ok_with(&["rate", "--run-dir", r, "import", "-"], grown.as_bytes());
    assert_eq!(said.trim(), "imported 2 ratings, 300 imported before (305 in the archive now)");
    let trained: Value = serde_json::from_str(&ok(&["rate", "--run-dir", r, "train", "--json"])).unwrap();
    let version = trained["version"].as_str().unwrap().to_string();
    assert!(trained["held_out"].as_u64().unwrap() > 30, "{trained}");
    let eval: Value = serde_json::from_str(&ok(&["rate", "--run-dir", r, "eval", "--json"])).unwrap();
    assert_eq!(eval["version"], version.as_str());
    let (acc, lo) = (eval["accuracy"].as_f64().unwrap(), eval["ci95"][0].as_f64().unwrap());
    assert!(acc > 0.8 && lo > 0.5, "the rater's taste is learnable: {eval}");
    assert!(ok(&["rate", "--run-dir", r, "eval"]).contains("95% CI"));

    // The run scores with it.
    let cfg = config(dir.path(), "[[scorers]]\nkind = \"preference\"\n", "additive");
    ok(&["run", "--config", cfg.to_str().unwrap(), "--run-dir", r, "--rounds", "2", "--reconfigure"]);
    let archive = Archive::open_existing(run.join("archive")).unwrap();
    let scored: Vec<ProblemRecord> = archive
        .scan(
            &Filter { valid: Some(true), rounds: Some((4, 5)), ..Default::default() },
            Order::Ascending,
            None,
        )
        .map(Result::unwrap)
        .collect();
    assert!(!scored.is_empty());
    for p in &scored {
        assert_eq!(p.scorer.as_deref(), Some(format!("preference@{version}").as_str()));
        assert!(p.scores[0].reason.as_deref().unwrap().starts_with("utility"));
    }
    drop(archive);

    // Bad input: a line naming a problem that is not there, an unknown winner.
    let err = common::fails_with(
        &["rate", "--run-dir", r, "import", "-"],
        b"{\"a\": \"99999\", \"b\": \"1+2\", \"winner\": \"a\"}\n",
    );
    assert!(err.contains("line 1: no problem with id 99999"), "{err}");
    let err = common::fails_with(
        &["rate", "--run-dir", r, "import", "-"],
        b"\n{\"a\": \"1+2\", \"b\": \"3\", \"winner\": \"c\"}\n",
    );
    assert!(err.contains("line 2: unknown variant `c`"), "{err}");
    let archive = Archive::open_existing(run.join("archive")).unwrap();
    assert_eq!(archive.ratings().unwrap().len(), 305, "nothing imported from a bad file");
}
