//! Hostile clients on raw TCP, so they can send what an HTTP library would not: request heads
//! that never end, bodies far over the limit, bodies that trickle. Each client reconnects as
//! soon as the server is done with it, until the phase ends, and records how each request
//! ended.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The start of every hostile request.
const REQUEST_LINE: &str = "POST /events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n";
/// How long a client whose writes failed still listens for the answer sent before.
const LAST_WORDS: Duration = Duration::from_secs(1);
/// The most of an answer read to find its status line.
const MAX_HEAD: usize = 16 * 1024;

/// What one hostile client writes on each connection.
pub enum Plan {
    /// A head that never ends: the request line, then a header value growing by a byte every
    /// `pause` (slowloris).
    EndlessHead { pause: Duration },
    /// A complete request with `body`, written at once.
    Whole { body: Arc<[u8]> },
    /// `len` bytes of filler in writes of `chunk` bytes with `pause` after each: in chunked
    /// framing, or announced as `len` by Content-Length.
    Stream {
        len: usize,
        chunk: usize,
        pause: Duration,
        chunked: bool,
    },
}

/// How one hostile request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// The server answered with this status.
    Status(u16),
    /// The server closed the connection without an answer.
    Closed,
    /// The connection was reset (or a write failed) with no answer read.
    Reset,
    /// The phase ended first.
    Unfinished,
    ConnectFailed,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Status(code) => write!(f, "{code}"),
            Outcome::Closed => f.write_str("closed without an answer"),
            Outcome::Reset => f.write_str("reset"),
            Outcome::Unfinished => f.write_str("still open at the end"),
            Outcome::ConnectFailed => f.write_str("connect failed"),
        }
    }
}

/// What the clients of one phase saw.
#[derive(Default)]
pub struct Attack {
    pub outcomes: BTreeMap<Outcome, usize>,
    /// How long each request that ended before the phase did took, from connecting.
    pub ended_after: Vec<Duration>,
}

impl Attack {
    pub fn requests(&self) -> usize {
        self.outcomes.values().sum()
    }

    /// `413: 120, closed without an answer: 3`.
    pub fn outcomes_text(&self) -> String {
        let parts: Vec<String> = self.outcomes.iter().map(|(o, n)| format!("{o}: {n}")).collect();
        parts.join(", ")
    }

    fn merge(&mut self, other: Attack) {
        for (outcome, n) in other.outcomes {
            *self.outcomes.entry(outcome).or_default() += n;
        }
        self.ended_after.extend(other.ended_after);
    }
}

/// Runs `clients` hostile clients following `plan` against `addr` until `until`.
pub async fn attack(addr: SocketAddr, clients: usize, plan: Plan, until: Instant) -> Attack {
    let plan = Arc::new(plan);
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(client(addr, plan.clone(), until)))
        .collect();
    let mut all = Attack::default();
    for task in tasks {
        all.merge(task.await.expect("hostile client"));
    }
    all
}

async fn client(addr: SocketAddr, plan: Arc<Plan>, until: Instant) -> Attack {
    let mut mine = Attack::default();
    while Instant::now() < until {
        let started = Instant::now();
        let outcome = tokio::time::timeout_at(until.into(), exchange(addr, &plan))
            .await
            .unwrap_or(Outcome::Unfinished);
        *mine.outcomes.entry(outcome).or_default() += 1;
        match outcome {
            Outcome::Unfinished => {}
            // Out of ports or refused: do not spin.
            Outcome::ConnectFailed => tokio::time::sleep(Duration::from_millis(10)).await,
            _ => mine.ended_after.push(started.elapsed()),
        }
    }
    mine
}

/// One connection: writes `plan` while listening for the answer, which may come before the
/// writing is done (a 413 does not wait for the rest of the body).
async fn exchange(addr: SocketAddr, plan: &Plan) -> Outcome {
    let Ok(stream) = TcpStream::connect(addr).await else {
        return Outcome::ConnectFailed;
    };
    let (mut reader, mut writer) = stream.into_split();
    let answer = read_status(&mut reader);
    tokio::pin!(answer);
    tokio::select! {
        biased;
        outcome = &mut answer => outcome,
        written = write(&mut writer, plan) => match written {
            Ok(()) => answer.await,
            Err(_) => tokio::time::timeout(LAST_WORDS, answer).await.unwrap_or(Outcome::Reset),
        },
    }
}

async fn write(writer: &mut OwnedWriteHalf, plan: &Plan) -> std::io::Result<()> {
    match plan {
        Plan::EndlessHead { pause } => {
            writer.write_all(REQUEST_LINE.as_bytes()).await?;
            writer.write_all(b"X-Padding: ").await?;
            loop {
                tokio::time::sleep(*pause).await;
                writer.write_all(b"a").await?;
            }
        }
        Plan::Whole { body } => {
            let head = format!("{REQUEST_LINE}Content-Length: {}\r\n\r\n", body.len());
            writer.write_all(head.as_bytes()).await?;
            writer.write_all(body).await
        }
        Plan::Stream {
            len,
            chunk,
            pause,
            chunked,
        } => stream_body(writer, *len, *chunk, *pause, *chunked).await,
    }
}

async fn stream_body(
    writer: &mut OwnedWriteHalf,
    len: usize,
    chunk: usize,
    pause: Duration,
    chunked: bool,
) -> std::io::Result<()> {
    let framing = match chunked {
        true => "Transfer-Encoding: chunked".to_owned(),
        false => format!("Content-Length: {len}"),
    };
    writer
        .write_all(format!("{REQUEST_LINE}{framing}\r\n\r\n").as_bytes())
        .await?;
    let filler = vec![b'a'; chunk];
    let mut sent = 0;
    while sent < len {
        let n = chunk.min(len - sent);
        if chunked {
            writer.write_all(format!("{n:x}\r\n").as_bytes()).await?;
        }
        writer.write_all(&filler[..n]).await?;
        if chunked {
            writer.write_all(b"\r\n").await?;
        }
        sent += n;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    if chunked {
        writer.write_all(b"0\r\n\r\n").await?;
    }
    Ok(())
}

/// Reads until the status line of the answer is in, or the connection ends.
async fn read_status(reader: &mut OwnedReadHalf) -> Outcome {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => return Outcome::Closed,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(_) => return Outcome::Reset,
        }
        if let Some(end) = head.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&head[..end]);
            let code = line.split_whitespace().nth(1).and_then(|c| c.parse().ok());
            return code.map_or(Outcome::Closed, Outcome::Status);
        }
        if head.len() > MAX_HEAD {
            return Outcome::Closed;
        }
    }
}
