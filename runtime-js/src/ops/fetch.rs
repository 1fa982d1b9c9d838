//! `fetch`: one pooled reqwest client for the whole process, with the network policy checked
//! before every hop. Redirects are followed here, not by reqwest, so each hop is checked
//! against the handler's `allowNet` as well as the address policy.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use deno_core::{CancelFuture, CancelHandle, OpState, RcRef, Resource, ResourceId, ToJsBuffer, op2};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::HostState;
use crate::capture::FetchRecord;
use crate::limits::{CircuitOpen, HostLimits, Ticket};
use crate::net::{self, GuardedResolver, NetError, NetPolicy, Route};

/// Limits of outbound HTTP.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub max_response_bytes: u64,
    pub connect_timeout: Duration,
    pub max_redirects: u32,
}

/// The process-wide client: one connection pool per [`Route`], guarded DNS, and limits, the
/// limits of each destination among them.
pub struct HttpClient {
    clients: Mutex<HashMap<Route, reqwest::Client>>,
    policy: Arc<NetPolicy>,
    settings: HttpSettings,
    limits: HostLimits,
}

impl HttpClient {
    /// Builds the client; proxies from the environment are ignored because a proxy would
    /// make the address checks meaningless.
    pub fn new(policy: NetPolicy, settings: HttpSettings, limits: HostLimits) -> Result<Self, reqwest::Error> {
        let http = Self {
            clients: Mutex::default(),
            policy: Arc::new(policy),
            settings,
            limits,
        };
        // Fail at start, not at the first fetch, if no client can be built here.
        http.client(Route {
            named: false,
            guard: None,
        })?;
        Ok(http)
    }

    /// The limits of each destination, and what each host has done lately.
    pub fn limits(&self) -> &HostLimits {
        &self.limits
    }

    /// Notes that eddy listens on `addr`, so handlers reach it only by naming it exactly.
    pub fn own_listener(&self, addr: std::net::SocketAddr) {
        self.policy.listeners().add(addr);
    }

    /// The client of `route`, built on first use. Routes are few (named or not, times the
    /// own listeners' ports), so the pools stay few.
    fn client(&self, route: Route) -> Result<reqwest::Client, reqwest::Error> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&route) {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver::new(self.policy.clone(), route)))
            .no_proxy()
            .connect_timeout(self.settings.connect_timeout)
            .user_agent(concat!("eddy/", env!("CARGO_PKG_VERSION")))
            .build()?;
        clients.insert(route, client.clone());
        Ok(client)
    }
}

/// Failures of `fetch`; all surface as `TypeError`, as in browsers. A refusal by the network
/// policy carries `code: "ERR_NETWORK_POLICY"`: it fails the same way on every retry, so an
/// invocation it ends is not retried (`30_invoke.js`).
#[derive(Debug, thiserror::Error, deno_error::JsError)]
pub enum FetchOpError {
    #[class(type)]
    #[property("code" = "ERR_NETWORK_POLICY")]
    #[error("fetch: {0}")]
    Net(#[from] NetError),
    #[class(type)]
    #[error("fetch: invalid URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[class(type)]
    #[error("fetch: invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[class(type)]
    #[error("fetch to {url} failed: {detail}")]
    Transport { url: String, detail: String },
    #[class(type)]
    #[error("fetch to {url}: response body is larger than {limit} bytes ([net] max_response_bytes)")]
    TooLarge { url: String, limit: u64 },
    #[class(type)]
    #[error("fetch to {url}: redirected, and the request said redirect: \"error\"")]
    RedirectRefused { url: String },
    #[class(type)]
    #[error("fetch to {url}: more than {max} redirects")]
    TooManyRedirects { url: String, max: u32 },
    #[class(type)]
    #[property("code" = "ERR_CIRCUIT_OPEN")]
    #[error("fetch to {url}: {open}")]
    CircuitOpen { url: String, open: CircuitOpen },
    #[class(type)]
    #[error("fetch was aborted")]
    Aborted,
    #[class(type)]
    #[error("fetch was aborted: the invocation that started it has ended")]
    Ended,
}

/// A request as the JS side describes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchArgs {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    has_body: bool,
    redirect: String,
    cancel_rid: Option<ResourceId>,
    invocation: Option<u32>,
}

/// The response handed back to JS, body read whole (bounded by the size cap).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchReply {
    status: u16,
    status_text: String,
    url: String,
    redirected: bool,
    headers: Vec<(String, String)>,
    body: ToJsBuffer,
}

struct FetchCancelHandle(CancelHandle);

impl Resource for FetchCancelHandle {
    fn name(&self) -> Cow<'_, str> {
        "eddyFetchCancelHandle".into()
    }
    fn close(self: Rc<Self>) {
        self.0.cancel();
    }
}

/// A cancel handle for one request; closing its resource aborts the request.
#[op2(fast)]
#[smi]
pub fn op_eddy_fetch_cancel_handle(state: &mut OpState) -> ResourceId {
    state.resource_table.add(FetchCancelHandle(CancelHandle::new()))
}

/// Sends a request, following redirects as asked, and records every hop in the capture.
#[op2]
#[serde]
pub async fn op_eddy_fetch_send(
    state: Rc<RefCell<OpState>>,
    #[serde] args: FetchArgs,
    #[buffer(copy)] body: bytes::Bytes,
) -> Result<FetchReply, FetchOpError> {
    let cancel = args
        .cancel_rid
        .and_then(|rid| state.borrow().resource_table.get::<FetchCancelHandle>(rid).ok());
    // Every fetch ends with the invocation that started it; work left behind by one that
    // already ended cannot start new ones.
    let owner = state
        .borrow()
        .borrow::<HostState>()
        .invocation_cancel(args.invocation.unwrap_or(0))
        .ok_or(FetchOpError::Ended)?;
    let exchange = Exchange::new(&state, args, body)?.run(&state).or_cancel(owner);
    match cancel {
        Some(handle) => exchange
            .or_cancel(RcRef::map(&handle, |h| &h.0))
            .await
            .map_err(|_| FetchOpError::Aborted)?
            .map_err(|_| FetchOpError::Ended)?,
        None => exchange.await.map_err(|_| FetchOpError::Ended)?,
    }
}

/// One fetch call: the request as it stands at the current hop.
struct Exchange {
    http: Arc<HttpClient>,
    allow: net::AllowNet,
    invocation: Option<u32>,
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<bytes::Bytes>,
    redirect: Redirect,
}

#[derive(PartialEq)]
enum Redirect {
    Follow,
    Manual,
    Error,
}

impl Exchange {
    fn new(state: &Rc<RefCell<OpState>>, args: FetchArgs, body: bytes::Bytes) -> Result<Self, FetchOpError> {
        let state = state.borrow();
        let host = state.borrow::<HostState>();
        let url = Url::parse(&args.url).map_err(|e| FetchOpError::Url {
            url: args.url.clone(),
            reason: e.to_string(),
        })?;
        let method = Method::from_bytes(args.method.as_bytes()).map_err(|e| FetchOpError::Invalid {
            what: "method",
            detail: e.to_string(),
        })?;
        let redirect = match args.redirect.as_str() {
            "manual" => Redirect::Manual,
            "error" => Redirect::Error,
            _ => Redirect::Follow,
        };
        Ok(Self {
            http: host.http.clone(),
            allow: host.allow_net.clone(),
            invocation: args.invocation,
            method,
            url,
            headers: header_map(&args.headers)?,
            body: args.has_body.then_some(body),
            redirect,
        })
    }

    async fn run(mut self, state: &Rc<RefCell<OpState>>) -> Result<FetchReply, FetchOpError> {
        let max = self.http.settings.max_redirects;
        let mut hops = 0;
        loop {
            let started = Instant::now();
            let (result, waited) = self.send_once().await;
            self.record(state, started, waited, result.as_ref().map_err(|e| e.to_string()));
            let response = result?;
            let Some(next) = self.next_hop(&response)? else {
                return read_reply(response, hops > 0, self.http.settings.max_response_bytes).await;
            };
            if hops == max {
                return Err(FetchOpError::TooManyRedirects {
                    url: self.url.to_string(),
                    max,
                });
            }
            self.follow(response.status(), next);
            hops += 1;
        }
    }

    /// Sends this hop once its host's limits give it a turn, and tells them how it went;
    /// with the time the turn took.
    async fn send_once(&self) -> (Result<reqwest::Response, FetchOpError>, Duration) {
        let waiting = Instant::now();
        let turn = self.turn().await;
        let waited = waiting.elapsed();
        match turn {
            Ok((ticket, client)) => (self.send(ticket, client).await, waited),
            Err(e) => (Err(e), waited),
        }
    }

    /// The network policy's check of this hop, the client of its route, and its host's turn.
    async fn turn(&self) -> Result<(Ticket, reqwest::Client), FetchOpError> {
        let route = net::check_target(&self.url, &self.allow, &self.http.policy)?;
        let client = self
            .http
            .client(route)
            .map_err(|e| transport_error(self.url.as_str(), &e))?;
        let host = self.url.host_str().unwrap_or_default();
        let port = self.url.port_or_known_default().unwrap_or(0);
        let ticket = self
            .http
            .limits
            .acquire(host, port)
            .await
            .map_err(|open| FetchOpError::CircuitOpen {
                url: self.url.to_string(),
                open,
            })?;
        Ok((ticket, client))
    }

    async fn send(&self, ticket: Ticket, client: reqwest::Client) -> Result<reqwest::Response, FetchOpError> {
        let mut request = client
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone());
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        let sent = request.send().await;
        let limits = &self.http.limits;
        match &sent {
            Ok(response) => {
                let wait = retry_after(response, SystemTime::now()).map(Duration::from_millis);
                limits.finish(ticket, Some(response.status().as_u16()), wait);
            }
            Err(_) => limits.finish(ticket, None, None),
        }
        sent.map_err(|e| transport_error(self.url.as_str(), &e))
    }

    /// The URL to go to next, if this response is a redirect that should be followed.
    fn next_hop(&self, response: &reqwest::Response) -> Result<Option<Url>, FetchOpError> {
        let status = response.status();
        let is_redirect = matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308);
        let location = response.headers().get(header::LOCATION);
        let (true, Some(location)) = (is_redirect, location) else {
            return Ok(None);
        };
        match self.redirect {
            Redirect::Manual => Ok(None),
            Redirect::Error => Err(FetchOpError::RedirectRefused {
                url: self.url.to_string(),
            }),
            Redirect::Follow => {
                let location = location.to_str().unwrap_or_default();
                self.url.join(location).map(Some).map_err(|e| FetchOpError::Url {
                    url: location.to_owned(),
                    reason: e.to_string(),
                })
            }
        }
    }

    /// Applies the fetch standard's redirect rules for method, body and credentials.
    fn follow(&mut self, status: StatusCode, next: Url) {
        let to_get = (status == StatusCode::SEE_OTHER && self.method != Method::HEAD)
            || (matches!(status.as_u16(), 301 | 302) && self.method == Method::POST);
        if to_get {
            self.method = Method::GET;
            self.body = None;
            for name in [
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
                header::CONTENT_ENCODING,
                header::CONTENT_LANGUAGE,
                header::CONTENT_LOCATION,
            ] {
                self.headers.remove(name);
            }
        }
        if next.origin() != self.url.origin() {
            // Credentials meant for one origin must not travel to another.
            self.headers.remove(header::AUTHORIZATION);
            self.headers.remove(header::COOKIE);
            self.headers.remove(header::PROXY_AUTHORIZATION);
        }
        self.url = next;
    }

    fn record(
        &self,
        state: &Rc<RefCell<OpState>>,
        started: Instant,
        waited: Duration,
        outcome: Result<&reqwest::Response, String>,
    ) {
        let Some(invocation) = self.invocation else {
            return;
        };
        let mut state = state.borrow_mut();
        let host = state.borrow_mut::<HostState>();
        let secrets = host.secrets.clone();
        if let Some(capture) = host.captures.get_mut(&invocation) {
            capture.fetch(FetchRecord {
                method: self.method.to_string(),
                url: secrets.redact(self.url.as_str()).into_owned(),
                status: outcome.as_ref().ok().map(|r| r.status().as_u16()),
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                retry_after_ms: outcome.as_ref().ok().and_then(|r| retry_after(r, SystemTime::now())),
                // A turn that came at once is not worth a field in every record.
                waited_ms: (waited >= Duration::from_millis(1)).then_some(waited.as_secs_f64() * 1000.0),
                error: outcome.err().map(|e| secrets.redact(&e).into_owned()),
            });
        }
    }
}

/// The wait a `429` or `503` answer asks for in `Retry-After` (seconds, or an HTTP date
/// measured from `now`), in ms; none for other answers or a header that does not parse.
fn retry_after(response: &reqwest::Response, now: SystemTime) -> Option<u64> {
    if !matches!(response.status().as_u16(), 429 | 503) {
        return None;
    }
    let value = response.headers().get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    match value.parse::<u64>() {
        Ok(seconds) => Some(seconds.saturating_mul(1000)),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            let wait = at.duration_since(now).unwrap_or_default();
            Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX))
        }
    }
}

fn header_map(pairs: &[(String, String)]) -> Result<HeaderMap, FetchOpError> {
    let mut map = HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| FetchOpError::Invalid {
            what: "header name",
            detail: format!("{name:?}: {e}"),
        })?;
        // Header values are byte strings: each char stands for one byte (latin-1).
        let bytes: Option<Vec<u8>> = value.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect();
        let value = bytes
            .and_then(|b| HeaderValue::from_bytes(&b).ok())
            .ok_or_else(|| FetchOpError::Invalid {
                what: "header value",
                detail: format!("{name}: {value:?}"),
            })?;
        map.append(name, value);
    }
    Ok(map)
}

fn transport_error(url: &str, err: &reqwest::Error) -> FetchOpError {
    if let Some(net) = net::find_net_error(err) {
        return FetchOpError::Net(net.clone());
    }
    let mut detail = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    FetchOpError::Transport {
        url: url.to_owned(),
        detail,
    }
}

async fn read_reply(mut response: reqwest::Response, redirected: bool, limit: u64) -> Result<FetchReply, FetchOpError> {
    let url = response.url().to_string();
    let too_large = || FetchOpError::TooLarge {
        url: url.clone(),
        limit,
    };
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(&url, &e))? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.as_bytes().iter().map(|&b| char::from(b)).collect(),
            )
        })
        .collect();
    Ok(FetchReply {
        status: response.status().as_u16(),
        status_text: response.status().canonical_reason().unwrap_or("").to_owned(),
        url: url.clone(),
        redirected,
        headers,
        body: body.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: &str) -> reqwest::Response {
        reqwest::Response::from(
            ::http::Response::builder()
                .status(status)
                .header(header::RETRY_AFTER, retry_after)
                .body(Vec::<u8>::new())
                .unwrap(),
        )
    }

    #[test]
    fn a_429_or_503_says_how_long_to_wait_in_seconds_or_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(retry_after(&answer(429, "3"), now), Some(3000));
        assert_eq!(retry_after(&answer(503, " 0 "), now), Some(0));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(retry_after(&answer(429, &later), now), Some(90_000));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(retry_after(&answer(429, &earlier), now), Some(0));
        assert_eq!(
            retry_after(&answer(500, "3"), now),
            None,
            "only 429 and 503 ask to wait"
        );
        assert_eq!(retry_after(&answer(429, "soon"), now), None);
    }
}
