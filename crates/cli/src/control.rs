//! The running node's control endpoint: while `peergroup run` or `chat` serves a data
//! directory (and holds its lock, see `peergroup::LOCK_FILE`), every other command on that
//! directory is carried out *by that node* instead of failing on the lock: a record added is
//! flooded at once, a revocation closes the revoked member's connections at once, `group show`
//! and `members` say what the node sees now, an invitation names the addresses it listens on.
//!
//! The endpoint is a Unix socket, [`SOCKET`] in the data directory (which is 0700), made 0600,
//! and only a process of the same user is answered (its credentials are checked). A client
//! sends one JSON line — its arguments and working directory — and gets one back: the
//! command's exit code, output and error line. The node runs the command as it would run
//! alone, with the client's relative paths resolved against the client's directory and its
//! output captured ([`write_out`]); a command that would read standard input is refused.
//!
//! Bounds: [`MAX_REQUEST`] bytes a request, [`MAX_OUTPUT`] bytes of output, one client at
//! a time (the node's loop serves them in turn; the others wait in the socket's backlog),
//! [`REQUEST_TIMEOUT`] to send the request. Elsewhere than Unix there is no endpoint yet, and
//! commands on a directory in use fail with the lock's error.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

/// The socket's name in the data directory.
pub(crate) const SOCKET: &str = "control.sock";
/// The most bytes of one request (arguments and directory).
pub(crate) const MAX_REQUEST: usize = 256 * 1024;
/// The most bytes of one command's output the node keeps for its client; past it the output
/// ends with a notice.
pub(crate) const MAX_OUTPUT: usize = 64 * 1024 * 1024;
/// How long a client may take to send its request.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A command for the running node.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    /// The command line, program name first.
    args: Vec<String>,
    /// The client's working directory.
    cwd: PathBuf,
}

/// What the command did.
#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    /// The exit code.
    code: u8,
    /// Its standard output.
    stdout: String,
    /// Its standard error (the one-line reason of a failure).
    stderr: String,
}

/// The client a command runs for (set only while the node serves one).
struct Client {
    cwd: PathBuf,
    out: Mutex<Vec<u8>>,
}

tokio::task_local! {
    static CLIENT: Client;
}

/// Whether this command runs for a client of the running node.
pub(crate) fn serving() -> bool {
    CLIENT.try_with(|_| ()).is_ok()
}

/// A path as the user meant it: relative to the client's directory when serving one.
pub(crate) fn path(p: &Path) -> PathBuf {
    CLIENT
        .try_with(|c| c.cwd.join(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

/// Writes to the client's output when serving one (and returns true); otherwise returns false
/// and the caller writes to standard output.
pub(crate) fn write_out(bytes: &[u8]) -> bool {
    CLIENT
        .try_with(|c| {
            let mut out = c
                .out
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            const CUT: &[u8] = b"\n[output cut: over the control endpoint's bound]\n";
            if out.len() + bytes.len() <= MAX_OUTPUT {
                out.extend_from_slice(bytes);
            } else if !out.ends_with(CUT) {
                out.extend_from_slice(CUT);
            }
        })
        .is_ok()
}

/// The endpoint of a running node, or none (it could not be made, or the platform has none
/// yet). Its loop accepts clients with [`Endpoint::next`] in a `select!` (cancel-safe) and
/// serves each with [`Endpoint::serve`] in the branch's body, so a command always runs to
/// its end; meanwhile the loop waits (commands are short; `connections --wait` is bounded).
pub(crate) struct Endpoint(Option<Server>);

impl Endpoint {
    /// The endpoint of a node serving `node`'s directory; none (with a warning) where it
    /// cannot be made — commands on the directory then fail on its lock.
    pub(crate) fn start(node: crate::util::ServedNode) -> Endpoint {
        match Server::start(node) {
            Ok(s) => Endpoint(Some(s)),
            Err(e) => {
                tracing::warn!(
                    error = %crate::util::one_line(&e),
                    "no control endpoint: other commands on this data directory wait for this node to stop"
                );
                Endpoint(None)
            }
        }
    }

    /// The next client (never, without an endpoint).
    pub(crate) async fn next(&self) -> Option<Conn> {
        match &self.0 {
            Some(s) => s.accept().await,
            None => std::future::pending().await,
        }
    }

    /// Serves a client: runs its command, answers.
    pub(crate) async fn serve(&self, conn: Conn) {
        if let Some(s) = &self.0
            && let Err(e) = s.serve(conn).await
        {
            tracing::warn!(error = %e, "control endpoint: a client failed");
        }
    }
}

#[cfg(unix)]
pub(crate) use unix::forward;
#[cfg(unix)]
use unix::{Conn, Server};

#[cfg(not(unix))]
pub(crate) fn forward(_home: &Path, _args: &[std::ffi::OsString]) -> Result<Option<u8>> {
    Ok(None)
}

#[cfg(not(unix))]
pub(crate) struct Conn;

#[cfg(not(unix))]
struct Server;

#[cfg(not(unix))]
impl Server {
    fn start(_node: crate::util::ServedNode) -> Result<Server> {
        anyhow::bail!("this platform has no control endpoint yet")
    }
    async fn accept(&self) -> Option<Conn> {
        None
    }
    async fn serve(&self, _conn: Conn) -> Result<()> {
        Ok(())
    }
}

#[cfg(unix)]
mod unix {
    use std::ffi::OsString;
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    use std::path::{Path, PathBuf};

    use anyhow::{Context as _, Result, anyhow, bail};
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{UnixListener, UnixStream};

    use super::{CLIENT, Client, MAX_OUTPUT, MAX_REQUEST, REQUEST_TIMEOUT, Reply, Request, SOCKET};
    use crate::util::{Home, ServedNode};

    /// A client's connection.
    pub(crate) type Conn = UnixStream;

    /// The socket of a running node; removed when dropped.
    pub(crate) struct Server {
        listener: UnixListener,
        owner: u32,
        node: ServedNode,
        path: PathBuf,
    }

    impl Server {
        /// Serves `node`'s data directory. The caller holds the directory's lock, so a socket
        /// file already there is a dead node's and is replaced.
        pub(crate) fn start(node: ServedNode) -> Result<Server> {
            let path = node.dir().join(SOCKET);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
            }
            let listener = UnixListener::bind(&path)
                .with_context(|| format!("making the control socket {}", path.display()))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {}", path.display()))?;
            let owner = std::fs::metadata(&path)?.uid();
            Ok(Server {
                listener,
                owner,
                node,
                path,
            })
        }

        pub(crate) async fn accept(&self) -> Option<UnixStream> {
            match self.listener.accept().await {
                Ok((s, _)) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "control endpoint: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    None
                }
            }
        }

        pub(crate) async fn serve(&self, stream: UnixStream) -> Result<()> {
            serve(stream, self.owner, self.node.clone()).await
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    async fn serve(mut stream: UnixStream, owner: u32, node: ServedNode) -> Result<()> {
        let uid = stream.peer_cred()?.uid();
        if uid != owner {
            bail!("refused a client of user {uid}");
        }
        let reply = match read_request(&mut stream).await? {
            Ok(request) => run(request, node).await,
            Err(refusal) => refusal,
        };
        let mut bytes = serde_json::to_vec(&reply)?;
        bytes.push(b'\n');
        stream.write_all(&bytes).await?;
        stream.shutdown().await?;
        Ok(())
    }

    /// One request within the bounds, or the answer that refuses it.
    async fn read_request(stream: &mut UnixStream) -> Result<Result<Request, Reply>> {
        let mut line = Vec::new();
        let read = {
            let mut reader = tokio::io::BufReader::new(stream).take(MAX_REQUEST as u64 + 1);
            tokio::time::timeout(REQUEST_TIMEOUT, reader.read_until(b'\n', &mut line)).await
        };
        Ok(match read {
            Err(_) => Err(reply_error(2, "the request did not come in time")),
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(_)) if line.len() > MAX_REQUEST => {
                Err(reply_error(2, "the request is over 256 KiB"))
            }
            Ok(Ok(_)) => serde_json::from_slice::<Request>(&line)
                .map_err(|e| reply_error(2, &format!("a malformed request: {e}"))),
        })
    }

    fn reply_error(code: u8, why: &str) -> Reply {
        Reply {
            code,
            stdout: String::new(),
            stderr: format!("error: {}\n", crate::terminal::inert(why)),
        }
    }

    async fn run(request: Request, node: ServedNode) -> Reply {
        let cli = match crate::parse(request.args.iter().map(OsString::from)) {
            Ok(cli) => cli,
            Err(e) => return reply_error(2, &crate::usage_line(&e)),
        };
        if !crate::forwardable(&cli.command) {
            return reply_error(
                1,
                &format!(
                    "a node is already running on this data directory (process {})",
                    std::process::id()
                ),
            );
        }
        let home = Home::served(node);
        let client = Client {
            cwd: request.cwd,
            out: std::sync::Mutex::new(Vec::new()),
        };
        let (result, client) = CLIENT
            .scope(client, async {
                // Boxed: `run` and `chat` serve clients, so their futures hold this one.
                let command: std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + '_>> =
                    Box::pin(crate::dispatch(&home, cli.command, cli.verbose));
                let result = command.await;
                (
                    result,
                    CLIENT.with(|c| {
                        std::mem::take(
                            &mut *c
                                .out
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner),
                        )
                    }),
                )
            })
            .await;
        let stdout = String::from_utf8_lossy(&client).into_owned();
        match result {
            Ok(()) => Reply {
                code: 0,
                stdout,
                stderr: String::new(),
            },
            Err(e) => Reply {
                code: 1,
                stdout,
                stderr: format!("error: {}\n", crate::util::one_line(&e)),
            },
        }
    }

    /// Has the node running on `home` carry out the command `args`: `Some(exit code)` once it
    /// did (its output written here), `None` when no node runs there (the caller runs the
    /// command itself).
    pub(crate) fn forward(home: &Path, args: &[OsString]) -> Result<Option<u8>> {
        let path = home.join(SOCKET);
        let mut stream = match std::os::unix::net::UnixStream::connect(&path) {
            Ok(s) => s,
            // No node, or a dead one's socket: run here (the lock says if one runs after all).
            Err(_) => return Ok(None),
        };
        let args = args
            .iter()
            .map(|a| {
                a.to_str()
                    .map(str::to_owned)
                    .ok_or_else(|| anyhow!("an argument is not UTF-8: {}", a.to_string_lossy()))
            })
            .collect::<Result<Vec<_>>>()?;
        let cwd = std::env::current_dir().context("reading the working directory")?;
        let mut request = serde_json::to_vec(&Request { args, cwd })?;
        request.push(b'\n');
        stream
            .write_all(&request)
            .context("sending the command to the running node")?;
        let mut line = Vec::new();
        // The output and the JSON around it (every byte escaped at most six times over).
        let bound = (MAX_OUTPUT as u64 + 64 * 1024) * 6;
        BufReader::new(&mut stream)
            .take(bound)
            .read_until(b'\n', &mut line)
            .context("reading the running node's answer")?;
        let reply: Reply = serde_json::from_slice(&line)
            .context("the running node's answer is malformed (did it stop?)")?;
        std::io::stdout().write_all(reply.stdout.as_bytes())?;
        std::io::stdout().flush()?;
        std::io::stderr().write_all(reply.stderr.as_bytes())?;
        Ok(Some(reply.code))
    }

    #[cfg(test)]
    mod tests {
        use tokio::io::AsyncWriteExt as _;

        use super::*;

        #[tokio::test]
        async fn a_request_over_the_bound_is_refused_without_reading_it_all() {
            let (mut client, mut server) = UnixStream::pair().unwrap();
            let writer = tokio::spawn(async move {
                // No newline: a reader without a bound would wait for more for ever.
                let _ = client.write_all(&vec![b'a'; super::MAX_REQUEST * 4]).await;
            });
            let refused = read_request(&mut server).await.unwrap().unwrap_err();
            assert_eq!(refused.code, 2);
            assert!(
                refused.stderr.contains("over 256 KiB"),
                "{}",
                refused.stderr
            );
            drop(server);
            writer.await.unwrap();
        }

        #[tokio::test]
        async fn a_malformed_request_is_refused_and_a_good_one_read() {
            let (mut client, mut server) = UnixStream::pair().unwrap();
            client.write_all(b"{\"args\": 7}\n").await.unwrap();
            let refused = read_request(&mut server).await.unwrap().unwrap_err();
            assert!(refused.stderr.contains("malformed"), "{}", refused.stderr);
            let (mut client, mut server) = UnixStream::pair().unwrap();
            client
                .write_all(b"{\"args\": [\"peergroup\", \"members\"], \"cwd\": \"/tmp\"}\n")
                .await
                .unwrap();
            let request = read_request(&mut server).await.unwrap().unwrap();
            assert_eq!(request.args, ["peergroup", "members"]);
        }
    }
}

/// Refuses standard input while serving a client (the node cannot read the client's).
pub(crate) fn no_stdin(what: &Path) -> Result<()> {
    if serving() {
        anyhow::bail!(
            "{} from standard input cannot go through the running node; pass a file",
            what.display()
        );
    }
    Ok(())
}
