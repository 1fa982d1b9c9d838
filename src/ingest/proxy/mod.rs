//! The API-observing proxy: forwards every request to `[proxy] upstream` unchanged and
//! streams the answer back unchanged. Write requests (POST, PUT, PATCH, DELETE) answered
//! 2xx become events named by [`naming`]; recording happens after the exchange, off the
//! request path, so the proxied request never waits for it or fails because of it.

mod naming;
mod path;
mod record;
mod tee;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub use naming::{Named, PathRules};
pub use path::{PathError, check_forwarded, check_path};
pub use record::PROXY_SOURCE;

use crate::config::ProxyConfig;
use crate::http::{ApiError, HttpLimits};
use crate::ingest::Intake;
use crate::metrics::Metrics;
use record::Exchange;
use tee::{Captured, Tee};

/// Errors setting the proxy up.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("[proxy] has no upstream")]
    NoUpstream,
    #[error("proxy: cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Everything a proxied request needs.
pub struct Proxy {
    client: reqwest::Client,
    upstream: url::Url,
    rules: PathRules,
    max_capture: usize,
    queue: mpsc::Sender<Exchange>,
    metrics: Arc<Metrics>,
    limits: HttpLimits,
    /// The runtime, told where the proxy listens.
    runtime: Arc<crate::runtime::Runtime>,
}

// Connection-level headers (RFC 9110 section 7.6.1) belong to one hop and are not forwarded;
// so are all `Proxy-*` headers (`-Authenticate`, `-Authorization`, `-Authentication-Info`,
// the legacy `-Connection`), which address the proxy, not the other end.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];
const PROXY_PREFIX: &str = "proxy-";

impl Proxy {
    /// Builds the proxy over `intake`, its listener held to `limits`, and starts the task
    /// that records its events.
    pub fn start(config: &ProxyConfig, intake: Arc<Intake>, limits: HttpLimits) -> Result<Arc<Self>, ProxyError> {
        let upstream = config.upstream.as_ref().ok_or(ProxyError::NoUpstream)?.url().clone();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_millis(config.timeout_ms))
            .build()?;
        let (queue, receiver) = mpsc::channel(record::QUEUE);
        let (metrics, runtime) = (intake.services.metrics.clone(), intake.services.runtime.clone());
        tokio::spawn(record::recorder(intake, receiver));
        Ok(Arc::new(Self {
            client,
            upstream,
            rules: PathRules::new(config),
            max_capture: config.max_capture_bytes,
            queue,
            metrics,
            limits,
            runtime,
        }))
    }

    /// The upstream URL for a request's path and query; refused if the path would not reach
    /// the upstream as the path it names ([`path`]).
    fn target(&self, uri: &axum::http::Uri) -> Result<url::Url, PathError> {
        check_path(uri.path())?;
        let mut url = self.upstream.clone();
        let base = self.upstream.path().trim_end_matches('/');
        let wanted = format!("{base}{}", uri.path());
        url.set_path(&wanted);
        check_forwarded(&wanted, url.path())?;
        url.set_query(uri.query());
        Ok(url)
    }
}

/// Serves the proxy on `listener` until `shutdown` turns true, with the API's limits on
/// header time and open connections. The listener is made known to the runtime at once, not
/// when the future is first polled, so no handler can reach it before that.
pub fn serve(
    proxy: Arc<Proxy>,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) -> impl Future<Output = std::io::Result<()>> + Send {
    let local = listener.local_addr();
    if let Ok(addr) = &local {
        proxy.runtime.own_listener(*addr);
    }
    let limits = proxy.limits;
    let router = Router::new().fallback(forward).with_state(proxy);
    async move {
        local?;
        crate::http::serve(listener, router, limits, shutdown).await
    }
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let target = match proxy.target(&parts.uri) {
        Ok(target) => target,
        Err(e) => return ApiError::new(StatusCode::BAD_REQUEST, "bad_path", e.to_string()).into_response(),
    };
    let named = proxy.rules.name(parts.method.as_str(), parts.uri.path());
    let mut outbound = proxy
        .client
        .request(parts.method.clone(), target)
        .headers(forwarded_headers(&parts.headers, client));
    let request_capture = Arc::new(Mutex::new(Captured::default()));
    if !body.is_end_stream() {
        let slot = named.is_some().then(|| request_capture.clone());
        outbound = outbound.body(request_body(&proxy, body, &parts.headers, slot));
    }
    let upstream = match outbound.send().await {
        Ok(response) => response,
        Err(e) => return upstream_failed(&proxy, &e),
    };
    proxy.metrics.proxy_forwarded();
    let status = upstream.status();
    let mut response = Response::builder().status(status);
    if let Some(headers) = response.headers_mut() {
        copy_end_to_end(upstream.headers(), headers);
    }
    let body = match named.filter(|_| status.is_success()) {
        None => Body::from_stream(upstream.bytes_stream()),
        Some(named) => {
            let exchange = Exchange {
                kind: named.kind,
                path: parts.uri.path().to_owned(),
                params: named.params,
                query: parts.uri.query().map(str::to_owned),
                request: Captured::default(),
                request_type: content_type(&parts.headers),
                status: status.as_u16(),
                response: Captured::default(),
                response_type: content_type(upstream.headers()),
            };
            recorded_body(&proxy, upstream, exchange, request_capture)
        }
    };
    response
        .body(body)
        .unwrap_or_else(|e| ApiError::internal(e).into_response())
}

/// The request body for the upstream, streamed; its first bytes go to `slot` when recorded.
fn request_body(proxy: &Proxy, body: Body, headers: &HeaderMap, slot: Option<Arc<Mutex<Captured>>>) -> reqwest::Body {
    let stream = body.into_data_stream();
    let Some(slot) = slot else {
        return reqwest::Body::wrap_stream(stream);
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    reqwest::Body::wrap_stream(Tee::new(stream, proxy.max_capture, declared, move |c| {
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = c
    }))
}

/// The upstream's answer streamed to the client; once it has passed, the exchange is queued
/// for recording without waiting (a full queue drops the event and counts it).
fn recorded_body(
    proxy: &Proxy,
    upstream: reqwest::Response,
    exchange: Exchange,
    request_capture: Arc<Mutex<Captured>>,
) -> Body {
    let (queue, metrics) = (proxy.queue.clone(), proxy.metrics.clone());
    let length = upstream.content_length();
    Body::from_stream(Tee::new(
        upstream.bytes_stream(),
        proxy.max_capture,
        length,
        move |captured| {
            let request = std::mem::take(&mut *request_capture.lock().unwrap_or_else(|p| p.into_inner()));
            let exchange = Exchange {
                request,
                response: captured,
                ..exchange
            };
            if queue.try_send(exchange).is_err() {
                metrics.proxy_record_failed(1);
                tracing::warn!("proxy: the recording queue is full; an event was not recorded");
            }
        },
    ))
}

fn upstream_failed(proxy: &Proxy, error: &reqwest::Error) -> Response {
    proxy.metrics.proxy_upstream_failed();
    let (status, code) = if error.is_timeout() {
        (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout")
    } else {
        (StatusCode::BAD_GATEWAY, "upstream_unreachable")
    };
    let detail = format!("{} did not answer: {}", proxy.upstream, error_chain(error));
    ApiError::new(status, code, detail).into_response()
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers.get(header::CONTENT_TYPE)?.to_str().ok().map(str::to_owned)
}

fn is_hop_by_hop(name: &HeaderName, connection: &HeaderMap) -> bool {
    let listed = connection
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case(name.as_str()));
    HOP_BY_HOP.contains(&name.as_str()) || name.as_str().starts_with(PROXY_PREFIX) || listed
}

fn copy_end_to_end(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !is_hop_by_hop(name, from) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// The request's headers for the upstream: end-to-end ones unchanged; `Host` becomes the
/// upstream's (set by the client) and the original goes to `X-Forwarded-Host`, with the
/// caller's address appended to `X-Forwarded-For`.
fn forwarded_headers(incoming: &HeaderMap, client: SocketAddr) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(incoming.len() + 3);
    copy_end_to_end(incoming, &mut headers);
    if let Some(host) = headers.remove(header::HOST) {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host);
    }
    let chain = match incoming.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {}", client.ip()),
        None => client.ip().to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&chain) {
        headers.insert(HeaderName::from_static("x-forwarded-for"), value);
    }
    if !headers.contains_key("x-forwarded-proto") {
        headers.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static("http"),
        );
    }
    headers
}

/// An error and its causes, as one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
