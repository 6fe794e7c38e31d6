//! A scorer that is a process of the user's: started once and kept, one JSON line per problem on
//! its standard input, one JSON line back per problem, in order.

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

/// See the module documentation. The process's standard error goes to the log.
pub struct ProcessScorer {
    name: String,
    version: String,
    command: Vec<String>,
    dir: Option<PathBuf>,
    running: Option<Running>,
    /// Times the process was started.
    pub starts: u64,
}

impl ProcessScorer {
    /// `command` is the program and its arguments; `dir` its working directory.
    pub fn new(
        name: &str,
        version: &str,
        command: Vec<String>,
        dir: Option<PathBuf>,
    ) -> Result<Self, String> {
        if command.is_empty() || command[0].is_empty() {
            return Err(format!("scorer {name}: the command is empty"));
        }
        Ok(ProcessScorer {
            name: name.into(),
            version: version.into(),
            command,
            dir,
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
                .kill_on_drop(true);
            if let Some(dir) = &self.dir {
                cmd.current_dir(dir);
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
        let gone = |e: std::io::Error| format!("the process is gone ({e})");
        run.stdin.write_all(&lines).await.map_err(gone)?;
        run.stdin.flush().await.map_err(gone)?;
        let mut answers = Vec::with_capacity(batch.len());
        for _ in batch {
            let mut line = Vec::new();
            let n = (&mut run.stdout)
                .take(MAX_LINE)
                .read_until(b'\n', &mut line)
                .await
                .map_err(|e| format!("reading its answer: {e}"))?;
            if n == 0 {
                let status =
                    run.child.try_wait().ok().flatten().map_or("still running".into(), |s| s.to_string());
                return Err(format!("the process closed its output before answering ({status})"));
            }
            if line.last() != Some(&b'\n') && n as u64 == MAX_LINE {
                // The rest of the line is still in the pipe: the stream is out of step.
                return Err(format!("an answer line longer than {MAX_LINE} bytes"));
            }
            answers.push(answer_line(&line));
        }
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
                let _ = r.child.kill().await;
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

    #[test]
    fn answer_lines_are_read_or_refused_with_what_was_seen() {
        let ok = answer_line(b"{\"id\": \"7\", \"score\": 0.25}\n").unwrap();
        assert_eq!((ok.id.as_str(), ok.score), ("7", 0.25));
        let err = answer_line(b"\xff\xfe not json").unwrap_err();
        assert!(err.starts_with("unreadable answer"), "{err}");
    }
}
