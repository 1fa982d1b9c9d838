//! HTTP load from this process: closed-loop clients that post back to back, each on its own
//! connection, and an open-loop sender that posts at a fixed rate whatever the answers take.

use std::time::{Duration, Instant};

/// The longest one request may take before it counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for loopback servers: never through a proxy the environment names.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("http client")
}

/// How a server is loaded: `clients` connections posting back to back, first for `warmup`
/// (not measured), then for `measure`.
pub struct Phases {
    pub clients: usize,
    pub warmup: Duration,
    pub measure: Duration,
}

/// What one closed-loop load produced.
#[derive(Default)]
pub struct Load {
    /// Latency of every 2xx answer to a request sent during the measured phase.
    pub latencies: Vec<Duration>,
    /// Requests of the measured phase answered otherwise, or not at all.
    pub errors: u64,
    /// What went wrong with the first of them.
    pub first_error: Option<String>,
    /// Requests answered 2xx over both phases.
    pub accepted: u64,
}

impl Load {
    /// 2xx answers per second of the measured phase, each standing for `batch` events.
    pub fn rate(&self, phases: &Phases, batch: usize) -> f64 {
        (self.latencies.len() * batch) as f64 / phases.measure.as_secs_f64()
    }
}

/// Posts `body` (JSON) to `url` from `phases.clients` tasks, each with its own connection.
pub async fn drive(url: &str, body: &str, phases: &Phases) -> Load {
    let start = Instant::now();
    let window = (start + phases.warmup, start + phases.warmup + phases.measure);
    let tasks: Vec<_> = (0..phases.clients)
        .map(|_| tokio::spawn(client(url.to_owned(), body.to_owned(), window)))
        .collect();
    let mut load = Load::default();
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
    let http = http_client();
    let mut load = Load::default();
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

/// The answer to one request of [`paced`].
pub struct Posted {
    /// The status, or `None` when the request failed without one.
    pub status: Option<u16>,
    /// The first id of a JSON answer `{ "ids": [...] }` (what `POST /events` answers).
    pub id: Option<String>,
    pub latency: Duration,
}

impl Posted {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// What [`paced`] sends: `body(n)` (JSON) as the n-th request to `url`, `rate` per second.
pub struct Pace<'a, F> {
    pub http: &'a reqwest::Client,
    pub url: &'a str,
    pub rate: f64,
    pub body: F,
}

/// Sends `pace` for `duration`, open loop: each request has its own task, so a slow answer
/// delays no later request.
pub async fn paced<F: FnMut(usize) -> String>(pace: Pace<'_, F>, duration: Duration) -> Vec<Posted> {
    let Pace {
        http,
        url,
        rate,
        mut body,
    } = pace;
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    while started.elapsed() < duration {
        tokio::time::sleep_until((started + interval.mul_f64(tasks.len() as f64)).into()).await;
        let request = post_json(http, url, body(tasks.len()));
        tasks.push(tokio::spawn(request));
    }
    let mut posted = Vec::with_capacity(tasks.len());
    for task in tasks {
        posted.push(task.await.expect("paced request"));
    }
    posted
}

/// A JSON array of `n` events `e<i>` of type `work` whose data names the fake API's `base`.
pub fn work_events(n: usize, base: &str) -> String {
    let events: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"id":"e{i}","type":"work","data":{{"base":"{base}"}}}}"#))
        .collect();
    format!("[{}]", events.join(","))
}

/// Posts `body` as JSON and reads the answer.
pub fn post_json(http: &reqwest::Client, url: &str, body: String) -> impl Future<Output = Posted> + use<> {
    let request = http.post(url).header("content-type", "application/json").body(body);
    async move { post(request).await }
}

async fn post(request: reqwest::RequestBuilder) -> Posted {
    let sent = Instant::now();
    let Ok(answer) = request.send().await else {
        return Posted {
            status: None,
            id: None,
            latency: sent.elapsed(),
        };
    };
    let status = answer.status().as_u16();
    let bytes = answer.bytes().await.unwrap_or_default();
    let json: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let id = json.and_then(|j| j["ids"][0].as_str().map(str::to_owned));
    Posted {
        status: Some(status),
        id,
        latency: sent.elapsed(),
    }
}
