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
            let mut line = String::new();
            let n = (&mut run.stdout)
                .take(MAX_LINE)
                .read_line(&mut line)
                .await
                .map_err(|e| format!("reading its answer: {e}"))?;
            if n == 0 {
                let status =
                    run.child.try_wait().ok().flatten().map_or("still running".into(), |s| s.to_string());
                return Err(format!("the process closed its output before answering ({status})"));
            }
            answers.push(serde_json::from_str::<ScoreResponse>(line.trim()).map_err(|e| {
                let shown: String = line.trim().chars().take(80).collect();
                format!("unreadable answer {shown:?}: {e}")
            }));
        }
        check_responses(batch, answers)
    }
}

/// Each line the process writes to standard error, logged as a warning, on a thread of its own.
fn forward_stderr(name: String, stderr: tokio::process::ChildStderr) {
    let Ok(fd) = stderr.into_owned_fd() else { return };
    let _ = std::thread::Builder::new().name(format!("scorer-{name}-stderr")).spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(std::fs::File::from(fd)).lines() {
            match line {
                Ok(l) => tracing::warn!(scorer = %name, "scorer says: {l}"),
                Err(_) => break,
            }
        }
    });
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
