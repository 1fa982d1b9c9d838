//! A raw HTTP/1.1 peer for tests that must see exactly the bytes a server sent, or send
//! exactly the bytes they choose: an upstream with scripted answers that records every
//! request as it arrived, and a client exchange that reads the whole answer.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the upstream answers a request, given its head: the raw answer, or None to never
/// answer (the connection stays open).
pub type Answer = fn(&str) -> Option<String>;

/// An upstream that records every request (head and raw body) as it arrived.
pub struct RawUpstream {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

impl RawUpstream {
    pub async fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve_raw(socket, answer, seen.clone()));
            }
        });
        Self { addr, requests }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// Reads until `buffer` holds `needle` after `from`; the index just past it.
async fn read_until(socket: &mut TcpStream, buffer: &mut Vec<u8>, needle: &[u8], from: usize) -> Option<usize> {
    loop {
        if let Some(i) = find(buffer, needle, from) {
            return Some(i + needle.len());
        }
        let mut chunk = [0u8; 8192];
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Serves the requests of one connection, one after the other.
async fn serve_raw(mut socket: TcpStream, answer: Answer, seen: Arc<Mutex<Vec<String>>>) {
    let mut buffer = Vec::new();
    while let Some(head_end) = read_until(&mut socket, &mut buffer, b"\r\n\r\n", 0).await {
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let body_end = if !header(&head, "transfer-encoding").is_empty() {
            read_until(&mut socket, &mut buffer, b"0\r\n\r\n", head_end).await
        } else {
            let length: usize = header(&head, "content-length")
                .first()
                .map_or(0, |l| l.parse().unwrap());
            while buffer.len() < head_end + length {
                let mut chunk = [0u8; 8192];
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            }
            Some(head_end + length)
        };
        let Some(body_end) = body_end else { return };
        seen.lock()
            .unwrap()
            .push(String::from_utf8_lossy(&buffer[..body_end]).into_owned());
        buffer.drain(..body_end);
        match answer(&head) {
            Some(raw) => {
                if socket.write_all(raw.as_bytes()).await.is_err() {
                    return;
                }
            }
            None => {
                tokio::time::sleep(Duration::from_secs(120)).await;
                return;
            }
        }
    }
}

/// The values of header `name` in a raw message head, in order.
pub fn header(head: &str, name: &str) -> Vec<String> {
    head.lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// Sends `request` as written to `addr` and reads the whole answer (the request must ask
/// the connection to close).
pub async fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the proxy answers and closes")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}
