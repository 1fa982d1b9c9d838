//! The traffic of the peers benchmark: the fake API the handler posts to (it counts completed
//! handler runs), and the clients that post events to the server under test.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;

/// The longest one ingest request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An in-process HTTP API on 127.0.0.1 that answers every `POST /orders` with 200 at once.
pub struct FakeApi {
    hits: Arc<AtomicU64>,
    /// Where handlers post: `http://127.0.0.1:PORT/orders`.
    pub url: String,
}

impl FakeApi {
    /// Binds 127.0.0.1 on a port the system picks and serves until the process ends.
    pub async fn start() -> FakeApi {
        let hits = Arc::new(AtomicU64::new(0));
        let app = axum::Router::new()
            .route("/orders", post(order))
            .with_state(hits.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake API");
        let url = format!("http://{}/orders", listener.local_addr().expect("fake API address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeApi { hits, url }
    }

    /// Requests received so far: each is one handler run that reached its `fetch`.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

async fn order(State(hits): State<Arc<AtomicU64>>, _body: Bytes) -> Json<serde_json::Value> {
    hits.fetch_add(1, Ordering::Relaxed);
    Json(serde_json::json!({ "ok": true }))
}

/// How one server is loaded: `clients` connections posting back to back, first for `warmup`
/// (not measured), then for `measure`.
pub struct Phases {
    pub clients: usize,
    pub warmup: Duration,
    pub measure: Duration,
}

/// What one load produced.
pub struct Load {
    /// Latency of every 2xx answer to a request sent during the measured phase.
    pub latencies: Vec<Duration>,
    /// Requests of the measured phase answered otherwise, or not at all.
    pub errors: u64,
    /// What went wrong with the first of them.
    pub first_error: Option<String>,
    /// Events answered 2xx over both phases.
    pub accepted: u64,
    /// Requests the fake API received during the measured phase.
    pub runs: u64,
}

/// Posts `body` to `url` from `phases.clients` tasks, each with its own connection.
pub async fn drive(url: &str, body: &str, phases: &Phases, api: &FakeApi) -> Load {
    let start = Instant::now();
    let window = (start + phases.warmup, start + phases.warmup + phases.measure);
    let tasks: Vec<_> = (0..phases.clients)
        .map(|_| tokio::spawn(client(url.to_owned(), body.to_owned(), window)))
        .collect();
    tokio::time::sleep_until(window.0.into()).await;
    let first = api.hits();
    tokio::time::sleep_until(window.1.into()).await;
    let runs = api.hits() - first;
    let mut load = Load {
        latencies: Vec::new(),
        errors: 0,
        first_error: None,
        accepted: 0,
        runs,
    };
    for task in tasks {
        let one = task.await.expect("load client");
        load.latencies.extend(one.latencies);
        load.errors += one.errors;
        load.first_error = load.first_error.or(one.first_error);
        load.accepted += one.accepted;
    }
    load
}

/// One connection posting back to back until the end of `window`.
async fn client(url: String, body: String, window: (Instant, Instant)) -> Load {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("http client");
    let mut load = Load {
        latencies: Vec::new(),
        errors: 0,
        first_error: None,
        accepted: 0,
        runs: 0,
    };
    while Instant::now() < window.1 {
        let sent = Instant::now();
        let answer = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        let error = match answer {
            Ok(a) if a.status().is_success() => None,
            Ok(a) => Some(format!("answered {}", a.status())),
            Err(e) => Some(e.to_string()),
        };
        let failed = error.is_some();
        load.accepted += u64::from(!failed);
        match (sent >= window.0, error) {
            (true, None) => load.latencies.push(sent.elapsed()),
            (true, Some(e)) => {
                load.errors += 1;
                load.first_error.get_or_insert(e);
            }
            (false, _) => {}
        }
        if failed {
            // A server that fails at once must not turn this loop into a busy spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    load
}

/// The 50th and 99th percentiles; zero for no samples.
pub fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    if samples.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99))
}
