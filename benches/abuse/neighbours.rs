//! Part (b) of the abuse benchmark: the ingest-to-success latency of a healthy handler, alone
//! and while its neighbours misbehave. The handlers are `tests/fixtures/neighbours/` as they
//! are; the third party they call is served here with the routes the integration test
//! (`tests/eddy/neighbours.rs`) gives it. Latency comes from the delivery records: from when
//! the event was stored to when its delivery was marked succeeded.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

use crate::support::load::{Pace, http_client, paced};
use crate::support::procs::{RssSampler, Server};
use crate::support::{eddy, ms, percentiles};

/// Healthy events per second, in both phases.
const HEALTHY_RATE: f64 = 20.0;
/// Abusive events per second under abuse: one of each kind a second.
const ABUSE_RATE: f64 = 8.0;
/// The abusive event types, each routed to `spin.js`, `leak.js`, `hang.js` or `api.js`.
const ABUSIVE: [&str; 8] = [
    "abuse.spin",
    "abuse.leak",
    "abuse.hang",
    "api.hang",
    "api.reset",
    "api.storm",
    "api.limited",
    "api.trickle",
];
/// The fixture handlers: healthy, spin, leak, hang and api.
const HANDLERS: usize = 5;
/// The heap limit the integration test runs the fixtures with: `leak.js` reaches it sooner.
const HEAP_LIMIT_MB: u64 = 64;
/// The longest a phase waits after its load for the healthy deliveries to succeed.
const DRAIN: Duration = Duration::from_secs(30);

/// Where the fixtures call: `base` serves the routes, `reset` drops every connection.
struct BadApi {
    base: String,
    reset: String,
}

/// What one phase measured.
struct Figures {
    /// Healthy events posted, and acknowledged.
    sent: usize,
    accepted: usize,
    /// Ingest to success of every healthy delivery that succeeded.
    latencies: Vec<Duration>,
    abusive: usize,
    rss_peak_kib: Option<u64>,
}

/// Runs the baseline and the phase under abuse on one server and prints both.
pub async fn run(duration: Duration) -> Result<(), String> {
    let api = start_bad_api().await;
    let server = start_server()?;
    eddy::wait_for_handlers(&server.url, HANDLERS).await?;
    println!(
        "\n(b) healthy handler (tests/fixtures/neighbours/healthy.js) at {HEALTHY_RATE} events/s for {} s, \
         ingest to success; [runtime] heap_limit_mb = {HEAP_LIMIT_MB}",
        duration.as_secs()
    );
    println!(
        "    under abuse also {ABUSE_RATE} abusive events/s, cycling through {}",
        ABUSIVE.join(", ")
    );
    let baseline = phase(&server, &api, duration, false).await?;
    let abused = phase(&server, &api, duration, true).await?;
    print(baseline, abused);
    if let Some(attempts) = eddy::attempt_counts(&server.url).await {
        println!("eddy's {attempts} (both phases)");
    }
    Ok(())
}

async fn phase(server: &Server, api: &BadApi, duration: Duration, abuse: bool) -> Result<Figures, String> {
    let (http, url) = (http_client(), format!("{}/events", server.url));
    let sampler = server.pid().map(RssSampler::start);
    let healthy = Pace {
        http: &http,
        url: &url,
        rate: HEALTHY_RATE,
        body: |n| json!({"type": "healthy", "data": {"base": api.base, "n": n}}).to_string(),
    };
    let abusive = Pace {
        http: &http,
        url: &url,
        rate: ABUSE_RATE,
        body: |n| {
            json!({"type": ABUSIVE[n % ABUSIVE.len()], "data": {"base": api.base, "reset": api.reset}}).to_string()
        },
    };
    let (healthy, abusive) = tokio::join!(paced(healthy, duration), async {
        match abuse {
            true => paced(abusive, duration).await,
            false => Vec::new(),
        }
    });
    let ids: HashSet<String> = healthy.iter().filter_map(|p| p.id.clone()).collect();
    let records = wait_for_success(&http, &server.url, &ids).await?;
    let rss_peak_kib = match sampler {
        Some(sampler) => sampler.stop().await,
        None => None,
    };
    let latencies = records
        .iter()
        .filter(|d| d["status"] == "succeeded")
        .map(|d| {
            let (created, updated) = (d["created_ms"].as_u64(), d["updated_ms"].as_u64());
            Duration::from_millis(updated.unwrap_or(0).saturating_sub(created.unwrap_or(0)))
        })
        .collect();
    Ok(Figures {
        sent: healthy.len(),
        accepted: ids.len(),
        latencies,
        abusive: abusive.iter().filter(|p| p.ok()).count(),
        rss_peak_kib,
    })
}

/// Polls the healthy handler's deliveries until those of `ids` have all succeeded, or
/// [`DRAIN`] has passed; returns them.
async fn wait_for_success(http: &reqwest::Client, url: &str, ids: &HashSet<String>) -> Result<Vec<Value>, String> {
    let deadline = Instant::now() + DRAIN;
    loop {
        let records: Vec<Value> = healthy_deliveries(http, url)
            .await?
            .into_iter()
            .filter(|d| d["event_id"].as_str().is_some_and(|id| ids.contains(id)))
            .collect();
        let succeeded = records.iter().filter(|d| d["status"] == "succeeded").count();
        if succeeded == ids.len() || Instant::now() >= deadline {
            return Ok(records);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every delivery to the healthy handler, page by page.
async fn healthy_deliveries(http: &reqwest::Client, url: &str) -> Result<Vec<Value>, String> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = format!("{url}/deliveries?handler=healthy&limit=1000{cursor}");
        let answer = http.get(&page).send().await.map_err(|e| e.to_string())?;
        let bytes = answer.bytes().await.map_err(|e| e.to_string())?;
        let json: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        all.extend(json["deliveries"].as_array().cloned().unwrap_or_default());
        match json["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return Ok(all),
        }
    }
}

fn print(baseline: Figures, abused: Figures) {
    println!(
        "{:<24} {:>8} {:>9} {:>8} {:>8} {:>8} {:>12}",
        "phase", "healthy", "succeeded", "p50 ms", "p99 ms", "max ms", "RSS peak"
    );
    let row = |label: &str, f: &mut Figures| {
        let (p50, p99) = percentiles(&mut f.latencies);
        let max = f.latencies.iter().max().copied().unwrap_or_default();
        println!(
            "{label:<24} {:>8} {:>9} {:>8.0} {:>8.0} {:>8.0} {:>12}",
            f.sent,
            f.latencies.len(),
            ms(p50),
            ms(p99),
            ms(max),
            crate::mib(f.rss_peak_kib)
        );
    };
    // No ratio row: the two phases are one run each, and a ratio of two single runs on a
    // shared machine says less than the figures themselves.
    let (mut baseline, mut abused) = (baseline, abused);
    row("baseline", &mut baseline);
    row("under abuse", &mut abused);
    for (label, f) in [("baseline", &baseline), ("under abuse", &abused)] {
        println!(
            "{label}: {} healthy events sent, {} acknowledged, {} succeeded; {} abusive events acknowledged",
            f.sent,
            f.accepted,
            f.latencies.len(),
            f.abusive
        );
    }
}

/// eddy over the fixture handlers, with loopback exempted from the network policy.
fn start_server() -> Result<Server, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let handlers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/neighbours");
    let config = format!(
        "handlers = {:?}\ndata = \"data\"\nlisten = \"127.0.0.1:0\"\n\n[runtime]\nheap_limit_mb = {HEAP_LIMIT_MB}\n\n\
         [net]\nallow_private = [\"127.0.0.1/32\"]\n",
        handlers.display().to_string()
    );
    let launch = eddy::launch(dir, &config)?;
    tokio::task::block_in_place(|| Server::start(launch))
}

/// A third party having a bad day; `/ok` is the one route that behaves.
async fn start_bad_api() -> BadApi {
    let app = Router::new()
        .route("/ok", post(|| async { "ok" }))
        .route("/hang", post(std::future::pending::<&'static str>))
        .route(
            "/status/{code}",
            post(|UrlPath(code): UrlPath<u16>| async move { StatusCode::from_u16(code).unwrap_or(StatusCode::OK) }),
        )
        .route(
            "/limited",
            post(|| async { (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "slow down") }),
        )
        .route("/trickle", post(|| async { Body::from_stream(trickle()) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake API");
    let base = format!("http://{}", listener.local_addr().expect("fake API address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    // Accepts, reads a little, and drops the connection without answering.
    let rude = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the rude API");
    let reset = format!("http://{}/", rude.local_addr().expect("rude API address"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = rude.accept().await {
            let mut buf = [0u8; 64];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
        }
    });
    BadApi { base, reset }
}

/// A body of 100 bytes, one every 100 ms: longer than the fixture's 500 ms limit.
fn trickle() -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::unfold(0, |n| async move {
        if n == 100 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok(Bytes::from_static(b".")), n + 1))
    })
}
