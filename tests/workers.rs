//! Sampling on workers over NATS JetStream (`selfplay run --nats`, `selfplay worker`), against a
//! real `nats-server` on a loopback port with JetStream in a temporary directory.
//!
//! Every test holds the run with workers to the same run in one process: the same metrics, the
//! same archive and the same weights, round for round, whatever happened to the workers or the
//! server on the way.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{metrics, ok, run_records};

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tiny.toml");
const BIN: &str = env!("CARGO_BIN_EXE_selfplay");

/// A `nats-server -js` on a free loopback port, its store in `dir`; stopped when dropped.
struct Server {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = Server { child: None, port, store: dir.join("jetstream") };
        server.restart();
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again), on the same port and store, and waits until it listens.
    fn restart(&mut self) {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("these tests need nats-server on the PATH (apt-get install nats-server): {e}")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server as a service manager would (SIGTERM), and waits for it to exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            child.wait().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A `selfplay worker`, its log in a file; killed when dropped.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn start(server: &Server, log: PathBuf, failpoints: Option<&str>) -> Worker {
        let mut cmd = Command::new(BIN);
        cmd.args(["worker", "--nats", &server.url()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(spec) = failpoints {
            cmd.env("SELFPLAY_FAILPOINTS", spec);
        }
        Worker { child: cmd.spawn().unwrap(), log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the worker's log has `needle`.
    fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.log().contains(needle) {
            assert!(Instant::now() < deadline, "the worker never logged {needle:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny warm start and a configuration cutting each round's attempts into shards of 8.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    warm: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let tiny = std::fs::read_to_string(TINY).unwrap();
        let cfg = tiny.replace("[round]\n", "[round]\nsampling_shard = 8\n");
        assert!(cfg.contains("sampling_shard"), "tiny.toml changed shape");
        let config = dir.path().join("shards.toml");
        std::fs::write(&config, cfg).unwrap();
        let warm = dir.path().join("warm");
        // Solver steps enough for an attempt to be right now and then: the solver then learns
        // during the run, and its new weights must reach the workers.
        let args = ["pretrain", "--config", config.to_str().unwrap(), "--solver-steps", "300", "--out"];
        ok(&[&args[..], &[warm.to_str().unwrap()]].concat());
        Setup { dir, config, warm }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `selfplay run` of `rounds` from the warm start in `run`, with `extra` flags.
    fn run(&self, run: &Path, rounds: u32, extra: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--config", self.config.to_str().unwrap(), "--warm-start"])
            .arg(&self.warm)
            .arg("--run-dir")
            .arg(run)
            .args(["--rounds", &rounds.to_string()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// The same run in one process: what every run with workers must equal.
    fn in_process(&self, rounds: u32) -> PathBuf {
        let run = self.path("in-process");
        let out = self.run(&run, rounds, &[]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        run
    }
}

/// Runs `cmd` to its end; it must succeed.
fn succeeds(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "the run failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A metrics line without what depends on the machine's speed or on where sampling ran.
fn comparable(mut line: serde_json::Value) -> serde_json::Value {
    for key in ["timings", "wall_time", "problems_per_s", "attempt_tokens_per_s", "workers"] {
        line.as_object_mut().unwrap().remove(key);
    }
    line
}

/// Asserts that `run` wrote what `reference` wrote: metrics, archive and final weights.
fn assert_same_run(run: &Path, reference: &Path, rounds: usize) {
    let (ours, theirs) = (metrics(run), metrics(reference));
    assert_eq!(ours.len(), rounds, "one metrics line a round");
    assert_eq!(theirs.len(), rounds);
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(comparable(a.clone()), comparable(b.clone()), "round {}", a["round"]);
    }
    let records = |r: &Path| -> Vec<serde_json::Value> {
        run_records(r)
            .into_iter()
            .map(|rec| {
                let mut v = serde_json::to_value(rec).unwrap();
                for key in ["created_ms", "updated_ms"] {
                    v.as_object_mut().unwrap().remove(key);
                }
                v
            })
            .collect()
    };
    let (a, b) = (records(run), records(reference));
    assert!(!a.is_empty());
    assert_eq!(a.len(), b.len(), "the archives hold as many problems");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "problem {} differs", x["id"]);
    }
    let last = format!("checkpoints/round-{rounds:06}");
    for player in ["solver", "proposer"] {
        let weights = |r: &Path| std::fs::read(r.join(&last).join(player).join("model.safetensors")).unwrap();
        assert!(weights(run) == weights(reference), "the {player}'s weights differ");
    }
}

/// The `workers` object of every metrics line.
fn reports(run: &Path) -> Vec<serde_json::Value> {
    metrics(run).into_iter().map(|m| m["workers"].clone()).collect()
}

#[test]
fn a_run_on_two_workers_writes_what_it_writes_in_one_process() {
    let setup = Setup::new();
    let reference = setup.in_process(4);
    let server = Server::start(setup.dir.path());
    let workers = [
        Worker::start(&server, setup.path("w1.log"), None),
        Worker::start(&server, setup.path("w2.log"), None),
    ];
    let run = setup.path("on-workers");
    succeeds(setup.run(&run, 4, &["--nats", &server.url()]).stdin(Stdio::null()));
    assert_same_run(&run, &reference, 4);
    for r in reports(&run) {
        let tasks = r["tasks"].as_u64().unwrap();
        assert!(tasks >= 3, "shards of 8 attempts: several tasks a round: {r}");
        assert_eq!((r["stale"].as_u64(), r["malformed"].as_u64()), (Some(0), Some(0)), "{r}");
    }
    // The solver learnt during the run, and the workers sampled with its new weights.
    assert!(metrics(&run).iter().skip(1).any(|m| !m["solver_loss"].is_null()), "the solver trains");
    assert!(reports(&run).iter().skip(1).any(|r| r["weights_sent"] == true), "new weights were sent");
    // Both workers sampled, and every shard was answered once.
    let answered: usize = workers.iter().map(|w| w.log().matches(": answered,").count()).sum();
    let tasks: u64 = reports(&run).iter().map(|r| r["tasks"].as_u64().unwrap()).sum();
    assert!(workers.iter().all(|w| w.log().contains(": answered,")), "each worker took tasks");
    assert!(answered as u64 >= tasks);
}

#[test]
fn a_worker_killed_mid_task_has_its_task_redelivered() {
    let setup = Setup::new();
    let reference = setup.in_process(2);
    let server = Server::start(setup.dir.path());
    // This worker takes a task and hangs in it until it is killed.
    let mut stuck = Worker::start(&server, setup.path("stuck.log"), Some("worker-sample=sleep(600000)"));
    let run = setup.path("on-workers");
    let daemon = setup.run(&run, 2, &["--nats", &server.url(), "--nats-ack-wait", "2"]).spawn().unwrap();
    stuck.wait_for("sampling");
    stuck.kill();
    let _healthy = Worker::start(&server, setup.path("healthy.log"), None);
    let out = daemon.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_same_run(&run, &reference, 2);
}

#[test]
fn a_server_restarted_mid_round_is_waited_for() {
    let setup = Setup::new();
    let reference = setup.in_process(2);
    let mut server = Server::start(setup.dir.path());
    // Slow shards, so that the restart falls inside a round.
    let worker = Worker::start(&server, setup.path("w.log"), Some("worker-sample=sleep(300)"));
    let run = setup.path("on-workers");
    let daemon = setup.run(&run, 2, &["--nats", &server.url(), "--nats-ack-wait", "5"]).spawn().unwrap();
    worker.wait_for("round 1 shard 0: sampling");
    server.stop();
    std::thread::sleep(Duration::from_secs(2));
    server.restart();
    let out = daemon.wait_with_output().unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), worker.log());
    assert_same_run(&run, &reference, 2);
    let waited: f64 = reports(&run).iter().map(|r| r["server_waits_s"].as_f64().unwrap()).sum();
    assert!(waited > 0.5, "the learner waited for the server: {waited}");
}

#[test]
fn with_no_worker_the_round_fails_with_a_message_and_writes_nothing() {
    let setup = Setup::new();
    let reference = setup.in_process(1);
    let server = Server::start(setup.dir.path());
    let run = setup.path("on-workers");
    let flags = ["--nats", &server.url(), "--nats-ack-wait", "1", "--nats-timeout", "3"];
    let out = setup.run(&run, 1, &flags).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no worker answered for 3 s") && err.contains("selfplay worker --nats"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Nothing of round 1: no metrics line, no archived problem, no checkpoint past round 0.
    assert!(std::fs::read_to_string(run.join("metrics.jsonl")).unwrap_or_default().is_empty());
    assert!(run_records(&run).is_empty());
    assert!(!run.join("checkpoints/round-000001").exists());
    // With a worker, the same command runs the round the run in one process runs.
    let _worker = Worker::start(&server, setup.path("w.log"), None);
    succeeds(&mut setup.run(&run, 1, &flags[..2]));
    assert_same_run(&run, &reference, 1);
    // A server that is not there is named.
    let err = common::fails(&[
        "run",
        "--run-dir",
        setup.path("x").to_str().unwrap(),
        "--nats",
        "nats://127.0.0.1:1",
    ]);
    assert!(err.contains("cannot reach the NATS server at nats://127.0.0.1:1"), "{err}");
}

#[test]
fn stale_and_malformed_answers_are_refused_and_counted() {
    let setup = Setup::new();
    let reference = setup.in_process(1);
    let server = Server::start(setup.dir.path());
    let run = setup.path("on-workers");
    let daemon = setup.run(&run, 1, &["--nats", &server.url()]).spawn().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
        // Once the round's tasks wait in the queue, answers that no worker should send.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut tasks) = js.get_stream(workers::protocol::TASKS_STREAM).await {
                if tasks.info().await.unwrap().state.messages > 0 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "the round's tasks never came");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let id = workers::protocol::run_id(&run).unwrap();
        let stale = workers::protocol::Answer {
            protocol: workers::protocol::PROTOCOL,
            run: id.clone(),
            round: 7,
            index: 0,
            weights_hash: 0,
            worker: "impostor".into(),
            sampled: Vec::new(),
        };
        let subject = workers::protocol::results_subject(&id);
        for payload in [workers::protocol::encode(&stale).unwrap(), b"\xff\xfe not postcard".to_vec()] {
            js.publish(subject.clone(), payload.into()).await.unwrap().await.unwrap();
        }
    });
    let _worker = Worker::start(&server, setup.path("w.log"), None);
    let out = daemon.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_same_run(&run, &reference, 1);
    let r = &reports(&run)[0];
    assert_eq!((r["stale"].as_u64(), r["malformed"].as_u64()), (Some(1), Some(1)), "{r}");
}

#[test]
fn a_daemon_killed_mid_round_resumes_on_its_workers() {
    let setup = Setup::new();
    let reference = setup.in_process(4);
    let server = Server::start(setup.dir.path());
    // Slow shards, so that the kill falls inside round 3, past the checkpoint of round 2.
    let worker = Worker::start(&server, setup.path("w.log"), Some("worker-sample=sleep(300)"));
    let run = setup.path("on-workers");
    let url = server.url();
    let mut daemon = setup.run(&run, 4, &["--nats", &url]).spawn().unwrap();
    worker.wait_for("round 3 shard 0: sampling");
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert_eq!(metrics(&run).len(), 2, "rounds 1 and 2 were done");
    // The resumed daemon clears what the dead one left, and runs rounds 3 and 4 as they would
    // have run: the whole run is the run in one process.
    succeeds(&mut setup.run(&run, 2, &["--nats", &url]));
    assert_same_run(&run, &reference, 4);
}

#[test]
fn waits_that_cannot_work_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let args = ["run", "--run-dir", run.to_str().unwrap(), "--nats", "nats://127.0.0.1:1"];
    let out = common::selfplay(&[&args[..], &["--nats-ack-wait", "10", "--nats-timeout", "5"]].concat());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--nats-timeout (5 s) must be longer than --nats-ack-wait (10 s)"), "{err}");
    assert!(!run.exists(), "nothing written");
    let err = common::fails(&["run", "--run-dir", run.to_str().unwrap(), "--nats-timeout", "5"]);
    assert!(err.contains("--nats <URL>"), "the wait needs a server: {err}");
}

/// A worker started before the learner marks its task in progress within the learner's wait,
/// not the one the queue had when the worker started: a slow shard is not handed out twice.
#[test]
fn a_slow_worker_keeps_its_task_within_the_learners_wait() {
    let setup = Setup::new();
    let server = Server::start(setup.dir.path());
    let worker = Worker::start(&server, setup.path("w.log"), Some("worker-sample=sleep(3000)"));
    worker.wait_for("serving tasks");
    let run = setup.path("on-workers");
    succeeds(&mut setup.run(&run, 1, &["--nats", &server.url(), "--nats-ack-wait", "1"]));
    let r = &reports(&run)[0];
    assert_eq!(r["duplicate"].as_u64(), Some(0), "no task was handed out twice: {r}");
}
