//! A scorer that is a process of the user's: started once and kept, one JSON line per problem on
//! its standard input, one JSON line back per problem, in order.
//!
//! The requests are written while the answers are read, so a scorer that answers each line as it
//! comes never blocks on a full pipe whatever the batch's size. The process starts in a process
//! group of its own, and ending it ends the group: a wrapper script's children go with it.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::{check_responses, BoxFuture, ItemResult, ScoreRequest, ScoreResponse, Scorer};

/// Longest answer line read.
const MAX_LINE: u64 = 1 << 20;

struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Running {
    /// Ends the process and every process of its group.
    fn end_group(&mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill has no memory effects; the group is the one this scorer started
            // (its leader's id, while the leader is not yet reaped).
            unsafe {
                libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
            }
        }
        let _ = self.child.start_kill();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.end_group();
    }
}

/// See the module documentation. The process's standard error goes to the log.
pub struct ProcessScorer {
    name: String,
    version: String,
    command: Vec<String>,
    dir: Option<PathBuf>,
    /// When set, the only environment variables the process gets (with their values here).
    env: Option<Vec<String>>,
    running: Option<Running>,
    /// Times the process was started.
    pub starts: u64,
}

impl ProcessScorer {
    /// `command` is the program and its arguments; `dir` its working directory; `env`, when
    /// given, the only environment variables passed on to it.
    pub fn new(
        name: &str,
        version: &str,
        command: Vec<String>,
        dir: Option<PathBuf>,
        env: Option<Vec<String>>,
    ) -> Result<Self, String> {
        if command.is_empty() || command[0].is_empty() {
            return Err(format!("scorer {name}: the command is empty"));
        }
        Ok(ProcessScorer {
            name: name.into(),
            version: version.into(),
            command,
            dir,
            env,
            running: None,
            starts: 0,
        })
    }

    fn start(&mut self) -> Result<&mut Running, String> {
        if let Some(r) = &mut self.running {
            if let Ok(Some(status)) = r.child.try_wait() {
                tracing::warn!(scorer = %self.name, "the scorer process exited ({status}): restarting it");
                self.running = None;
            }
        }
        if self.running.is_none() {
            let mut cmd = Command::new(&self.command[0]);
            cmd.args(&self.command[1..])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .kill_on_drop(true);
            if let Some(dir) = &self.dir {
                cmd.current_dir(dir);
            }
            if let Some(names) = &self.env {
                cmd.env_clear();
                for name in names {
                    if let Some(value) = std::env::var_os(name) {
                        cmd.env(name, value);
                    }
                }
            }
            let mut child =
                cmd.spawn().map_err(|e| format!("cannot start {:?}: {e}", self.command.join(" ")))?;
            let stdin = child.stdin.take().expect("piped");
            let stdout = BufReader::new(child.stdout.take().expect("piped"));
            if let Some(stderr) = child.stderr.take() {
                forward_stderr(self.name.clone(), stderr);
            }
            self.starts += 1;
            if self.starts > 1 {
                tracing::info!(scorer = %self.name, "scorer process started again (start {})", self.starts);
            }
            self.running = Some(Running { child, stdin, stdout });
        }
        Ok(self.running.as_mut().expect("just started"))
    }

    async fn ask(&mut self, batch: &[ScoreRequest]) -> Result<Vec<ItemResult>, String> {
        let mut lines = Vec::new();
        for r in batch {
            serde_json::to_writer(&mut lines, r).map_err(|e| e.to_string())?;
            lines.push(b'\n');
        }
        let run = self.start()?;
        let Running { child, stdin, stdout } = run;
        let gone = |e: std::io::Error| format!("the process is gone ({e})");
        // Written and read side by side: a scorer answering as it reads fills its output pipe
        // long before a large batch is written.
        let write = async {
            stdin.write_all(&lines).await.map_err(gone)?;
            stdin.flush().await.map_err(gone)
        };
        let read = async {
            let mut answers = Vec::with_capacity(batch.len());
            for _ in batch {
                let mut line = Vec::new();
                let n = (&mut *stdout)
                    .take(MAX_LINE)
                    .read_until(b'\n', &mut line)
                    .await
                    .map_err(|e| format!("reading its answer: {e}"))?;
                if n == 0 {
                    let status =
                        child.try_wait().ok().flatten().map_or("still running".into(), |s| s.to_string());
                    return Err(format!("the process closed its output before answering ({status})"));
                }
                if line.last() != Some(&b'\n') && n as u64 == MAX_LINE {
                    // The rest of the line is still in the pipe: the stream is out of step.
                    return Err(format!("an answer line longer than {MAX_LINE} bytes"));
                }
                answers.push(answer_line(&line));
            }
            Ok(answers)
        };
        let (written, answers) = tokio::join!(write, read);
        // An answer for every problem is what counts; a write error after them is the process
        // closing its input early, which it may.
        let answers = match (written, answers) {
            (_, Ok(answers)) => answers,
            (Err(w), Err(_)) => return Err(w),
            (Ok(()), Err(r)) => return Err(r),
        };
        check_responses(batch, answers)
    }
}

/// One answer line of the process, as read: a [`ScoreResponse`] in JSON.
pub fn answer_line(line: &[u8]) -> Result<ScoreResponse, String> {
    let text = String::from_utf8_lossy(line);
    serde_json::from_str::<ScoreResponse>(text.trim()).map_err(|e| {
        let shown: String = text.trim().chars().take(80).collect();
        format!("unreadable answer {shown:?}: {e}")
    })
}

/// Longest stderr line logged; the rest of a longer line is skipped.
const MAX_STDERR_LINE: usize = 1000;
/// Most stderr lines logged a minute; the others are counted, so a flood cannot fill the log.
const STDERR_LINES_PER_MINUTE: u32 = 60;

/// Each line the process writes to standard error, logged as a warning, on a thread of its own:
/// lines cut at [`MAX_STDERR_LINE`] bytes, at most [`STDERR_LINES_PER_MINUTE`] a minute.
fn forward_stderr(name: String, stderr: tokio::process::ChildStderr) {
    let Ok(fd) = stderr.into_owned_fd() else { return };
    let _ = std::thread::Builder::new().name(format!("scorer-{name}-stderr")).spawn(move || {
        let mut lines = BoundedLines::new(std::fs::File::from(fd), MAX_STDERR_LINE);
        let mut window = std::time::Instant::now();
        let (mut logged, mut dropped) = (0u32, 0u64);
        while let Some(line) = lines.next_line() {
            if window.elapsed() >= std::time::Duration::from_secs(60) {
                if dropped > 0 {
                    tracing::warn!(scorer = %name, "scorer wrote {dropped} more stderr lines, not logged");
                }
                (window, logged, dropped) = (std::time::Instant::now(), 0, 0);
            }
            if logged < STDERR_LINES_PER_MINUTE {
                logged += 1;
                tracing::warn!(scorer = %name, "scorer says: {line}");
            } else {
                dropped += 1;
            }
        }
    });
}

/// Lines of a byte stream, each cut at a bound so that a stream without newlines cannot grow one
/// without limit.
struct BoundedLines<R> {
    inner: std::io::BufReader<R>,
    max: usize,
}

impl<R: std::io::Read> BoundedLines<R> {
    fn new(inner: R, max: usize) -> Self {
        BoundedLines { inner: std::io::BufReader::new(inner), max }
    }

    /// The next line (lossy UTF-8, without its newline; ` [cut]` after a cut one), `None` at the
    /// end or on an error.
    fn next_line(&mut self) -> Option<String> {
        let mut line = Vec::new();
        let len = problem::input::read_line_bounded(&mut self.inner, self.max, &mut line).ok()??;
        let mut text = String::from_utf8_lossy(&line).into_owned();
        if len > self.max {
            text.push_str(" [cut]");
        }
        Some(text)
    }
}

impl Scorer for ProcessScorer {
    fn name(&self) -> &str {
        &self.name
    }

    fn version(&self) -> String {
        self.version.clone()
    }

    fn score<'a>(&'a mut self, batch: &'a [ScoreRequest]) -> BoxFuture<'a, Result<Vec<ItemResult>, String>> {
        Box::pin(self.ask(batch))
    }

    fn reset(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(mut r) = self.running.take() {
                r.end_group();
                let _ = r.child.wait().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lines_cut_long_lines_and_keep_the_next() {
        let mut text = vec![b'x'; 10_000];
        text.extend_from_slice(b"\nshort\nlast");
        let mut lines = BoundedLines::new(&text[..], 100);
        let first = lines.next_line().unwrap();
        assert_eq!(first, format!("{} [cut]", "x".repeat(100)));
        assert_eq!(lines.next_line().as_deref(), Some("short"));
        assert_eq!(lines.next_line().as_deref(), Some("last"));
        assert_eq!(lines.next_line(), None);
    }

    /// A scorer in Python that answers each line as it reads it, with a reason of `reason`
    /// (evaluated per request `r`), writing its pid to `pid_file` when given.
    fn python_scorer(reason: &str, pid_file: Option<&std::path::Path>) -> Vec<String> {
        let pid = pid_file.map_or(String::new(), |p| format!("open({:?}, 'w').write(str(os.getpid()))\n", p));
        let script = format!(
            "import json, os, sys\n{pid}for line in sys.stdin:\n    r = json.loads(line)\n    \
             print(json.dumps({{'id': r['id'], 'score': 0.5, 'reason': {reason}}}), flush=True)\n"
        );
        vec!["python3".into(), "-c".into(), script]
    }

    fn batch(n: usize, problem_bytes: usize) -> Vec<ScoreRequest> {
        (0..n)
            .map(|i| ScoreRequest {
                id: i.to_string(),
                problem: "1+".repeat(problem_bytes / 2) + "1",
                answer: "1".into(),
                solve_rate: Some(0.5),
                canonical: "1".into(),
                features: Default::default(),
            })
            .collect()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn a_batch_larger_than_both_pipes_is_answered() {
        // 3 MB of requests, 2 MB of answers: written whole before reading, both pipes fill.
        let mut scorer =
            ProcessScorer::new("big", "1", python_scorer("'x' * 1000", None), None, None).unwrap();
        let requests = batch(2000, 1500);
        let answers = runtime().block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(60), scorer.ask(&requests)).await
        });
        let answers = answers.expect("no deadlock").expect("answered");
        assert_eq!(answers.len(), 2000);
        assert!(answers
            .iter()
            .all(|a| a.as_ref().is_ok_and(|r| r.reason.as_deref().map(str::len) == Some(1000))));
    }

    #[test]
    fn ending_a_scorer_ends_its_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // A wrapper shell whose child is the scorer (`; true` keeps the shell from exec-ing it).
        let inner = python_scorer("'ok'", Some(&pid_file));
        let quoted: Vec<String> = inner.iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect();
        let command = vec!["sh".into(), "-c".into(), format!("{}; true", quoted.join(" "))];
        let mut scorer = ProcessScorer::new("wrapped", "1", command, None, None).unwrap();
        let rt = runtime();
        let answers = rt.block_on(scorer.ask(&batch(3, 10))).unwrap();
        assert_eq!(answers.len(), 3);
        let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
        let alive = |pid: i32| unsafe { libc::kill(pid, 0) } == 0;
        assert!(alive(pid), "the grandchild scorer runs");
        rt.block_on(scorer.reset());
        let started = std::time::Instant::now();
        while alive(pid) && started.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!alive(pid), "the wrapper's child outlived the scorer");
    }

    #[test]
    fn a_listed_environment_is_all_the_scorer_gets() {
        std::env::set_var("SELFPLAY_SCORER_TEST_PASSED", "yes");
        std::env::set_var("SELFPLAY_SCORER_TEST_SECRET", "no");
        let reason = "','.join(sorted(k for k in os.environ if k.startswith('SELFPLAY_SCORER_TEST')))";
        let rt = runtime();
        let listed = Some(vec!["SELFPLAY_SCORER_TEST_PASSED".to_string(), "PATH".to_string()]);
        let mut only = ProcessScorer::new("env", "1", python_scorer(reason, None), None, listed).unwrap();
        let seen = rt.block_on(only.ask(&batch(1, 4))).unwrap().remove(0).unwrap().reason;
        assert_eq!(seen.as_deref(), Some("SELFPLAY_SCORER_TEST_PASSED"));
        let mut all = ProcessScorer::new("env", "1", python_scorer(reason, None), None, None).unwrap();
        let seen = rt.block_on(all.ask(&batch(1, 4))).unwrap().remove(0).unwrap().reason;
        assert_eq!(seen.as_deref(), Some("SELFPLAY_SCORER_TEST_PASSED,SELFPLAY_SCORER_TEST_SECRET"));
    }

    #[test]
    fn answer_lines_are_read_or_refused_with_what_was_seen() {
        let ok = answer_line(b"{\"id\": \"7\", \"score\": 0.25}\n").unwrap();
        assert_eq!((ok.id.as_str(), ok.score), ("7", 0.25));
        let err = answer_line(b"\xff\xfe not json").unwrap_err();
        assert!(err.starts_with("unreadable answer"), "{err}");
    }
}
