//! A real `eddy serve` (the library's server) on 127.0.0.1:0 with a temporary data folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eddy::config::Config;
use eddy::server::{self, Listeners, ServerError, Setup, Stopped};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    /// Where the proxy listens, when the config has a `[proxy]`.
    pub proxy_addr: Option<SocketAddr>,
    pub handlers: PathBuf,
    pub data: PathBuf,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<Stopped, ServerError>>,
    http: reqwest::Client,
    token: Option<String>,
}

/// The fixture handlers of the pipeline tests.
pub fn pipeline_handlers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipeline")
}

impl TestServer {
    /// Starts a server over `handlers` and `data`, with `extra` appended to the config.
    pub async fn start(handlers: &Path, data: &Path, extra: &str) -> Self {
        let text = format!(
            "handlers = {:?}\ndata = {:?}\n{extra}\n[net]\nallow_private = [\"127.0.0.1/32\"]\n",
            handlers.display().to_string(),
            data.display().to_string()
        );
        let config = Config::parse(&text, Path::new("/eddy.toml")).expect("test config parses");
        // A previous server's isolate threads may still hold the store for a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Self::launch(config.clone(), handlers, data).await {
                Ok(server) => return server,
                Err(e) if Instant::now() < deadline && e.contains("in use") => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("server: {e}"),
            }
        }
    }

    /// Binds 127.0.0.1:0 (and the proxy's address), starts `server::run` and waits until it
    /// answers; the error of a start that failed.
    async fn launch(config: Config, handlers: &Path, data: &Path) -> Result<Self, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let proxy = match &config.proxy {
            Some(proxy) => Some(tokio::net::TcpListener::bind(proxy.listen).await.expect("bind proxy")),
            None => None,
        };
        let proxy_addr = proxy.as_ref().map(|l| l.local_addr().expect("proxy address"));
        let listeners = Listeners { api: listener, proxy };
        let token = config.api_token.clone();
        let setup = Setup { config, on_start: None };
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(server::run(setup, listeners, shutdown));
        let server = Self {
            addr,
            proxy_addr,
            handlers: handlers.to_owned(),
            data: data.to_owned(),
            stop,
            task,
            // No idle connections kept: they would hold slots of `max_connections`.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("http client"),
            token,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.try_get("/healthz").await.is_none() {
            if server.task.is_finished() {
                let ended = server.task.await.expect("server task");
                return Err(ended.map_or_else(|e| e.to_string(), |how| format!("stopped at start: {how:?}")));
            }
            assert!(Instant::now() < deadline, "timed out waiting until the server answers");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(server)
    }

    /// Stops this server and starts a new one over the same handlers and data folder.
    pub async fn restart(self, extra: &str) -> Self {
        let (handlers, data) = (self.handlers.clone(), self.data.clone());
        self.stop().await;
        Self::start(&handlers, &data, extra).await
    }

    /// Stops the server (no new events, attempts in flight finish) and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("server task").expect("server stops cleanly");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs `body` with `content_type`; returns status and JSON answer.
    pub async fn post(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("post");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// PATCHes `body` with `content_type`; returns status and JSON answer.
    pub async fn patch(&self, path: &str, content_type: &str, body: String) -> (u16, Value) {
        let mut request = self
            .http
            .patch(self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("patch");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// POSTs one event and returns its id, asserting 202.
    pub async fn send(&self, event: Value) -> String {
        let (status, answer) = self.post("/events", "application/json", event.to_string()).await;
        assert_eq!(status, 202, "{answer}");
        answer["ids"][0].as_str().expect("an id").to_owned()
    }

    /// The `GET /metrics` text.
    pub async fn metrics(&self) -> String {
        let response = reqwest::get(self.url("/metrics")).await.expect("GET /metrics");
        response.text().await.expect("metrics text")
    }

    /// GETs `path` and returns the JSON answer, panicking on an error status.
    pub async fn get(&self, path: &str) -> Value {
        self.try_get(path).await.unwrap_or_else(|| panic!("GET {path} failed"))
    }

    async fn try_get(&self, path: &str) -> Option<Value> {
        let request = || {
            let request = self.http.get(self.url(path));
            match &self.token {
                Some(token) => request.bearer_auth(token),
                None => request,
            }
        };
        // A kept-alive connection the server closes at its header timeout (short in some
        // tests) can be picked just as it closes; a GET is safe to send again.
        let response = match request().send().await {
            Ok(response) => response,
            Err(_) => request().send().await.ok()?,
        };
        if !response.status().is_success() {
            return None;
        }
        serde_json::from_slice(&response.bytes().await.ok()?).ok()
    }

    /// The delivery of `event_id` to `handler`, with its attempts.
    pub async fn delivery(&self, event_id: &str, handler: &str) -> Value {
        let event = self.get(&format!("/events/{event_id}")).await;
        let delivery = event["deliveries"]
            .as_array()
            .and_then(|all| all.iter().find(|d| d["handler"] == handler))
            .unwrap_or_else(|| panic!("no delivery to {handler} in {event}"));
        self.get(&format!("/deliveries/{}", delivery["id"].as_str().unwrap_or_default()))
            .await
    }

    /// Waits (at most 20 s) until the delivery of `event_id` to `handler` has `status`.
    pub async fn wait_for_status(&self, event_id: &str, handler: &str, status: &str) -> Value {
        let mut last = Value::Null;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            last = self.delivery(event_id, handler).await;
            if last["delivery"]["status"] == status {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("delivery to {handler} never became {status}: {last:#}");
    }

    /// Polls `check` (at most 20 s) until it holds.
    pub async fn wait_until<'a, F, Fut>(&'a self, what: &str, check: F)
    where
        F: Fn(&'a Self) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if check(self).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("timed out waiting until {what}");
    }
}
