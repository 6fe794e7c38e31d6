//! The daemon's query endpoint: archive queries answered by the process that holds the archive.
//!
//! sled lets one process open a database. While `selfplay run` holds its archive it listens on a
//! Unix socket beside it, `<archive dir>.sock` (`RUN_DIR/archive.sock`), readable by its owner
//! only; it is never a network socket. Each query is one connection:
//!
//! ```text
//! request   one JSON line: {"version": 2, "query": <a store::Query>}
//! answer    frames, each a tag byte, a big-endian u32 length, and that many bytes:
//!             b'r'  reply: one store::Reply as JSON (a page is one frame per record)
//!             b'k'  done: the answer is complete (empty body); last frame
//!             b'e'  failed: the error message (UTF-8); last frame
//! ```
//!
//! The request and the replies are the archive's own query types ([`store::query`]), versioned by
//! [`store::QUERY_VERSION`]; the daemon answers with [`store::query::answer`], the function a
//! process that opened the database runs itself. A connection that closes before its last frame
//! is a daemon that stopped mid-answer, and the client says so; a client that closes its
//! connection calls its query off (one that only shuts down its sending half still gets the whole
//! answer).

use std::io::{BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use store::{Archive, Query, Reply, QUERY_VERSION};

/// Largest frame a client accepts.
const MAX_FRAME: usize = 64 << 20;
/// Longest request line the daemon reads.
const MAX_REQUEST: u64 = 64 << 10;
/// Queries the daemon answers at once; more wait for a turn.
const CONCURRENT_QUERIES: usize = 4;
/// Connections open at once (reading a request, waiting, or answering); more are refused.
const MAX_CONNECTIONS: usize = 64;
/// A connection that has not sent its whole request line by then is closed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one frame may take to reach a client: one that stops reading is dropped, which ends
/// its query and frees its turn.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a query waits for a turn before it is told the daemon is busy.
const TURN_TIMEOUT: Duration = Duration::from_secs(20);

const REPLY: u8 = b'r';
const DONE: u8 = b'k';
const FAILED: u8 = b'e';

/// A request line. The version comes first and is read on its own, so that a request of another
/// version is refused as such, not as a malformed query.
#[derive(Debug, Serialize, Deserialize)]
struct Request<Q> {
    version: u32,
    query: Q,
}

/// The endpoint of the archive at `db`: `<db>.sock`, beside the database directory.
pub fn socket_path(db: &Path) -> PathBuf {
    // Components drop a trailing separator: `runs/x/archive/` gives `runs/x/archive.sock`.
    let db: PathBuf = db.components().collect();
    let mut name = db.as_os_str().to_owned();
    name.push(".sock");
    PathBuf::from(name)
}

/// A daemon's endpoint: each query is a connection of its own.
#[derive(Debug, Clone)]
pub struct Client {
    path: PathBuf,
    timeout: Duration,
}

/// Connects to the endpoint at `path`; `None` when nothing listens (no socket, or one left by a
/// daemon that is gone).
fn connect(path: &Path) -> anyhow::Result<Option<UnixStream>> {
    use std::os::unix::fs::MetadataExt;
    // Only a socket of this user's is this user's daemon: another's could answer anything.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(unavailable(anyhow!(
                "{} belongs to user {}, not to this user ({me}): not asking it",
                path.display(),
                meta.uid()
            )));
        }
    }
    match UnixStream::connect(path) {
        Ok(stream) => Ok(Some(stream)),
        Err(e)
            if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) =>
        {
            Ok(None)
        }
        Err(e) => Err(unavailable(anyhow!("cannot reach the daemon at {}: {e}", path.display()))),
    }
}

fn unavailable(e: anyhow::Error) -> anyhow::Error {
    crate::exit::mark(crate::exit::Kind::Unavailable, e)
}

impl Client {
    /// The endpoint at `path` when a daemon listens there.
    pub fn find(path: &Path, timeout: Duration) -> anyhow::Result<Option<Client>> {
        Ok(connect(path)?.map(|_| Client { path: path.to_path_buf(), timeout }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends `query` and hands each part of the answer to `reply` as it comes. Every failure names
    /// the endpoint.
    pub fn ask(
        &self,
        query: &Query,
        reply: &mut dyn FnMut(Reply) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let at = self.path.display();
        let stream = connect(&self.path)?.ok_or_else(|| {
            unavailable(anyhow!("the daemon at {at} stopped answering (no one listens there now)"))
        })?;
        let mut stream = &stream;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let mut line = serde_json::to_vec(&Request { version: QUERY_VERSION, query })?;
        line.push(b'\n');
        stream
            .write_all(&line)
            .with_context(|| format!("cannot send the query to the daemon at {at}"))
            .map_err(unavailable)?;
        let mut reader = BufReader::new(stream);
        loop {
            let mut header = [0u8; 5];
            if let Err(e) = reader.read_exact(&mut header) {
                return Err(unavailable(anyhow!("{}", self.describe(&e))));
            }
            let len = u32::from_be_bytes(header[1..].try_into().expect("4 bytes")) as usize;
            if len > MAX_FRAME {
                bail!("the daemon at {at} sent a frame of {len} bytes, more than any answer has: is it a selfplay daemon?");
            }
            let mut body = vec![0; len];
            if let Err(e) = reader.read_exact(&mut body) {
                return Err(unavailable(anyhow!("{}", self.describe(&e))));
            }
            match header[0] {
                REPLY => reply(serde_json::from_slice(&body).with_context(|| {
                    format!("the daemon at {at} sent a reply this build cannot read: is it another version?")
                })?)?,
                DONE => return Ok(()),
                FAILED => bail!("{}", String::from_utf8_lossy(&body)),
                tag => bail!(
                    "the daemon at {at} answered with an unknown frame {tag:#04x}: is it another version?"
                ),
            }
        }
    }

    fn describe(&self, e: &std::io::Error) -> String {
        let at = self.path.display();
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                format!("the daemon at {at} did not answer within {} s", self.timeout.as_secs_f64())
            }
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => format!(
                "the daemon at {at} closed the connection before finishing its answer (did it stop?); \
                 any output above is incomplete"
            ),
            _ => format!("reading the daemon's answer from {at}: {e}"),
        }
    }
}

/// A listening endpoint; dropping it stops answering and removes the socket.
pub struct Server {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Server {
    /// Listens at `path` (replacing a socket left by a daemon that died) and answers queries on
    /// the current tokio runtime.
    pub fn start(archive: Arc<Archive>, path: &Path) -> anyhow::Result<Server> {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                bail!("{} exists and is not a socket: not replacing it", path.display());
            }
            std::fs::remove_file(path).with_context(|| format!("cannot remove stale {}", path.display()))?;
        }
        // Bound in a directory only this user can enter, made owner-only there, then moved into
        // place: at no moment can anyone else connect.
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let private = tempfile::Builder::new()
            .prefix(".archive-sock-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)
            .with_context(|| format!("cannot make a private directory in {}", parent.display()))?;
        let bound = private.path().join("sock");
        let listener = tokio::net::UnixListener::bind(&bound)
            .with_context(|| format!("cannot listen at {}", path.display()))?;
        std::fs::set_permissions(&bound, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&bound, path).with_context(|| format!("cannot listen at {}", path.display()))?;
        let turns = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_QUERIES));
        let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let task = tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!("query endpoint: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(connection) = connections.clone().try_acquire_owned() else {
                    // Refused at once, without a task: a small frame fits the socket's buffer.
                    let _ = stream.try_write(&frame(FAILED, b"the daemon is busy: too many open queries"));
                    continue;
                };
                let (archive, turns) = (archive.clone(), turns.clone());
                tokio::spawn(async move {
                    let _connection = connection;
                    if let Err(e) = answer(stream, archive, turns).await {
                        tracing::debug!("query endpoint: {e}");
                    }
                });
            }
        });
        Ok(Server { path: path.to_path_buf(), task })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A request line as the daemon reads it: the query, or why it is refused.
pub fn parse_request(line: &str) -> Result<Query, String> {
    /// The version alone, whatever else the line holds.
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let version = serde_json::from_str::<Version>(line).map_err(|e| format!("malformed query: {e}"))?.version;
    if version != QUERY_VERSION {
        return Err(format!("the daemon speaks query protocol {QUERY_VERSION}, not {version}"));
    }
    serde_json::from_str::<Request<Query>>(line).map(|r| r.query).map_err(|e| format!("malformed query: {e}"))
}

/// Reads one request and streams the answer. The query runs on the blocking pool; its output
/// goes through a small channel, so a slow or vanished client stops it instead of piling up, and
/// a client that hangs up calls it off even while it has nothing to send (a stats scan).
async fn answer(
    stream: tokio::net::UnixStream,
    archive: Arc<Archive>,
    turns: Arc<tokio::sync::Semaphore>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(read.take(MAX_REQUEST));
    match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await {
        // A probe: connected and left.
        Ok(Ok(0)) => return Ok(()),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Ok(()),
    }
    if !line.ends_with('\n') && line.len() as u64 >= MAX_REQUEST {
        let msg = format!("query longer than {MAX_REQUEST} bytes");
        return write_frame(&mut write, FAILED, msg.as_bytes()).await;
    }
    let query = match parse_request(&line) {
        Ok(query) => query,
        Err(msg) => return write_frame(&mut write, FAILED, msg.as_bytes()).await,
    };
    let read = reader.into_inner().into_inner();
    let hung_up = hung_up(&read);
    tokio::pin!(hung_up);
    // A turn only once the request is in: idle connections hold no turn.
    let _turn = tokio::select! {
        turn = tokio::time::timeout(TURN_TIMEOUT, turns.acquire_owned()) => match turn {
            Ok(Ok(turn)) => turn,
            Ok(Err(_)) => return Ok(()),
            Err(_) => {
                let msg =
                    format!("the daemon is busy: no turn for this query within {} s", TURN_TIMEOUT.as_secs());
                return write_frame(&mut write, FAILED, msg.as_bytes()).await;
            }
        },
        () = &mut hung_up => return Ok(()),
    };
    // However this connection ends, the query ends with it.
    let stop = StopOnDrop(store::Stop::new());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u8, Vec<u8>)>(4);
    let query_stop = stop.0.clone();
    tokio::task::spawn_blocking(move || {
        let send = |reply: Reply| -> anyhow::Result<()> {
            let body = serde_json::to_vec(&reply)?;
            tx.blocking_send((REPLY, body)).map_err(|_| anyhow!("the client went away"))
        };
        let last = match store::query::answer_until(&archive, &query, &query_stop, send) {
            Ok(()) => (DONE, Vec::new()),
            Err(e) => (FAILED, format!("{e:#}").into_bytes()),
        };
        let _ = tx.blocking_send(last);
    });
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Some((tag, body)) => write_frame(&mut write, tag, &body).await?,
                None => break,
            },
            () = &mut hung_up => {
                tracing::debug!("query endpoint: the client hung up; calling its query off");
                return Ok(());
            }
        }
    }
    write.shutdown().await
}

/// Sets its [`store::Stop`] when dropped.
struct StopOnDrop(store::Stop);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Resolves once the client has closed its end of the connection. A client sends nothing after
/// its request line, so the socket turning readable means it shut down at least its sending
/// half; only when it has closed both (`POLLHUP`) is it gone: one that merely half-closed may
/// still be reading its answer, and is looked at again every quarter second.
async fn hung_up(read: &tokio::net::unix::OwnedReadHalf) {
    use std::os::fd::AsRawFd;
    let fd = read.as_ref().as_raw_fd();
    let mut sending_closed = false;
    loop {
        if !sending_closed {
            if read.readable().await.is_err() {
                return;
            }
            let mut discard = [0u8; 256];
            match read.try_read(&mut discard) {
                Ok(0) => sending_closed = true,
                // Bytes after the request mean nothing; a real error means the connection is gone.
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return,
            }
        }
        let mut poll = libc::pollfd { fd, events: 0, revents: 0 };
        // SAFETY: one valid pollfd, for a descriptor `read` keeps open; a zero timeout never blocks.
        let ready = unsafe { libc::poll(&mut poll, 1, 0) };
        if ready < 0 || poll.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Writes one frame, or fails when the client has not taken it within [`WRITE_TIMEOUT`].
async fn write_frame(
    w: &mut (impl tokio::io::AsyncWrite + Unpin),
    tag: u8,
    body: &[u8],
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let write = async {
        w.write_all(&header(tag, body.len())?).await?;
        w.write_all(body).await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write).await.map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::TimedOut, "the client stopped reading its answer")
    })?
}

/// A frame's tag and big-endian length.
fn header(tag: u8, len: usize) -> std::io::Result<[u8; 5]> {
    let len = u32::try_from(len).map_err(|_| std::io::Error::other("frame too large"))?;
    let mut header = [tag, 0, 0, 0, 0];
    header[1..].copy_from_slice(&len.to_be_bytes());
    Ok(header)
}

/// One small frame's bytes.
fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = header(tag, body.len()).expect("a small body").to_vec();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_is_owner_only_from_the_start_and_another_users_is_not_asked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let archive = Arc::new(Archive::open(dir.path().join("archive")).unwrap());
        let socket = dir.path().join("archive.sock");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let server = runtime.block_on(async { Server::start(archive, &socket) }).unwrap();
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Nothing else is left in the directory (the private one it was bound in is gone).
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into())
            .collect();
        assert!(names.iter().all(|n| n == "archive" || n == "archive.sock"), "{names:?}");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                std::env::var_os("SELFPLAY_REQUIRE_ROOT_TESTS").is_none(),
                "only root can give a socket away"
            );
            eprintln!("not run: only root can give a socket to another user");
            return;
        }
        std::os::unix::fs::chown(&socket, Some(65534), Some(65534)).unwrap();
        let err = Client::find(&socket, Duration::from_secs(5)).unwrap_err();
        assert!(format!("{err:#}").contains("belongs to user 65534"), "{err:#}");
        assert_eq!(crate::exit::kind_of(&err), Some(crate::exit::Kind::Unavailable));
        drop(server);
    }
}
