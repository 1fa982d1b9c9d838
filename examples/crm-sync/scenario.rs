//! The crm-sync example end to end: an accounts API standing in for "your own API", eddy
//! in-process with this folder's own eddy.toml and handlers (copied to a temporary folder)
//! and its proxy in front of the API, and a fake CRM that rate-limits its first requests.
//! Shared by `main.rs` and the integration tests.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use eddy::config::Config;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::fakes::{AccountsApi, ApiExchange, CrmRequest, FakeCrm, local_client};

const CRM_TOKEN: &str = "crm-demo-token-8d2f41";
/// What the handler reads from `.env`; set in the environment, they would win over it.
const SECRET_NAMES: [&str; 2] = ["CRM_API_URL", "CRM_TOKEN"];
/// The CRM answers this many requests with 429 first.
const THROTTLED: u32 = 2;
/// Longest wait for one step; the slowest step waits out one 1 s Retry-After.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// What happened, as the API, the proxy, the CRM and eddy saw it.
pub struct Outcome {
    /// The proxy's answers, in the shape the accounts API records its own.
    pub proxied: Vec<ApiExchange>,
    /// What the accounts API answered.
    pub upstream: Vec<ApiExchange>,
    /// The CRM's contacts once both accounts were created, once one was updated, and at the end.
    pub after_create: Vec<Value>,
    pub after_update: Vec<Value>,
    pub contacts: Vec<Value>,
    pub crm_requests: Vec<CrmRequest>,
    /// eddy's deliveries (`GET /deliveries`) at the end.
    pub deliveries: Vec<Value>,
}

impl Outcome {
    /// Everything that differs from what the example promises; empty when all is well.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let statuses: Vec<u16> = self.proxied.iter().map(|e| e.status).collect();
        if self.proxied != self.upstream || statuses != [201, 201, 200, 204] {
            problems.push(format!(
                "the proxy answered {statuses:?}, not exactly what the accounts API answered"
            ));
        }
        let expect = |step: &str, contacts: &[Value], id: &str, want: Value, problems: &mut Vec<String>| {
            let contact = contacts
                .iter()
                .find(|c| c["external_id"] == id)
                .cloned()
                .unwrap_or_default();
            let wanted = want.as_object().into_iter().flatten();
            if contacts.len() != 2 || wanted.clone().any(|(k, v)| contact[k] != *v) {
                problems.push(format!(
                    "{step}: contact {id} is {contact}, expected {want} among 2 contacts"
                ));
            }
        };
        let ada = json!({ "name": "Ada Lovelace", "email": "ada@example.com", "plan": "free", "status": "active" });
        expect("after the creates", &self.after_create, "1", ada, &mut problems);
        let upgraded = json!({ "name": "Ada Lovelace", "email": "ada@analytical.example", "plan": "pro" });
        expect(
            "after the update",
            &self.after_update,
            "1",
            upgraded.clone(),
            &mut problems,
        );
        expect("at the end", &self.contacts, "1", upgraded, &mut problems);
        let deleted = json!({ "name": "Grace Hopper", "plan": "team", "status": "deleted" });
        expect("at the end", &self.contacts, "2", deleted, &mut problems);
        if self.retried_after_429().is_empty() {
            problems.push("no CRM request was answered 429 and then retried successfully".into());
        }
        let succeeded = self.deliveries.iter().filter(|d| d["status"] == "succeeded").count();
        if self.deliveries.len() != 4 || succeeded != 4 {
            problems.push(format!(
                "{succeeded} of {} deliveries succeeded, expected 4 of 4",
                self.deliveries.len()
            ));
        }
        problems
    }

    /// Idempotency keys the CRM answered 429 and later 2xx: deliveries that waited and retried.
    pub fn retried_after_429(&self) -> Vec<String> {
        let answered = |key: &str, wanted: fn(u16) -> bool| {
            let requests = self.crm_requests.iter();
            requests
                .filter(|r| wanted(r.status))
                .any(|r| r.idempotency_key.as_deref() == Some(key))
        };
        let mut keys: Vec<String> = self
            .crm_requests
            .iter()
            .filter_map(|r| r.idempotency_key.clone())
            .collect();
        keys.sort();
        keys.dedup();
        keys.retain(|key| answered(key, |s| s == 429) && answered(key, |s| (200..300).contains(&s)));
        keys
    }
}

/// Runs the whole scenario; `verbose` prints a transcript as it goes.
pub async fn run(verbose: bool) -> anyhow::Result<Outcome> {
    if let Some(name) = SECRET_NAMES.iter().find(|name| std::env::var_os(name).is_some()) {
        bail!("{name} is set in the environment and would override the demo's settings; unset it to run the demo");
    }
    let say = |line: String| {
        if verbose {
            println!("{line}");
        }
    };
    let api = AccountsApi::start().await?;
    let crm = FakeCrm::start(CRM_TOKEN, THROTTLED).await?;
    let dir = tempfile::tempdir()?;
    let env = format!("CRM_API_URL={}\nCRM_TOKEN={CRM_TOKEN}\n", crm.url);
    let eddy = Eddy::start(dir.path(), &env, &api.url).await?;
    say("crm-sync: writes to your own API, seen by eddy's proxy, kept in step in a CRM".into());
    say(format!("  accounts API  {}  (your own API)", api.url));
    say(format!("  eddy proxy    {}  -> the accounts API", eddy.proxy_url));
    say(format!(
        "  fake CRM      {}  (answers its first {THROTTLED} requests 429, Retry-After: 1)\n",
        crm.url
    ));
    let result = exchange(&eddy, &crm, &say).await;
    let deliveries = match &result {
        Ok(_) => eddy.settled_deliveries().await,
        Err(_) => Ok(Vec::new()),
    };
    eddy.stop().await;
    let (proxied, after_create, after_update) = result?;
    let outcome = Outcome {
        proxied,
        upstream: api.exchanges(),
        after_create,
        after_update,
        contacts: crm.contacts(),
        crm_requests: crm.requests(),
        deliveries: deliveries?,
    };
    say(transcript(&outcome));
    Ok(outcome)
}

type Steps = (Vec<ApiExchange>, Vec<Value>, Vec<Value>);

/// Creates, updates and deletes accounts through the proxy, waiting for the CRM after each.
async fn exchange(eddy: &Eddy, crm: &FakeCrm, say: &impl Fn(String)) -> anyhow::Result<Steps> {
    let mut proxied = Vec::new();
    say("client -> eddy proxy -> accounts API".into());
    let ada = json!({ "name": "Ada Lovelace", "email": "ada@example.com", "plan": "free" });
    say(eddy.call(&mut proxied, "POST", "/accounts", Some(ada)).await?);
    let grace = json!({ "name": "Grace Hopper", "email": "grace@example.com", "plan": "team" });
    say(eddy.call(&mut proxied, "POST", "/accounts", Some(grace)).await?);
    let has = |id: &str, key: &str, value: &str| crm.contact(id).is_some_and(|c| c[key] == value);
    eddy.wait_until("the CRM has both contacts", || {
        has("1", "plan", "free") && has("2", "plan", "team")
    })
    .await?;
    say("  ... the CRM has contacts for accounts 1 and 2".into());
    let after_create = crm.contacts();
    let upgrade = json!({ "plan": "pro", "email": "ada@analytical.example" });
    say(eddy.call(&mut proxied, "PATCH", "/accounts/1", Some(upgrade)).await?);
    eddy.wait_until("the CRM shows the upgrade", || has("1", "plan", "pro"))
        .await?;
    say("  ... the CRM shows account 1 on plan pro".into());
    let after_update = crm.contacts();
    say(eddy.call(&mut proxied, "DELETE", "/accounts/2", None).await?);
    eddy.wait_until("the CRM shows the deletion", || has("2", "status", "deleted"))
        .await?;
    say("  ... the CRM marks account 2 deleted\n".into());
    Ok((proxied, after_create, after_update))
}

fn transcript(outcome: &Outcome) -> String {
    let same = if outcome.proxied == outcome.upstream {
        "yes"
    } else {
        "NO"
    };
    let mut lines = vec![format!("every proxy answer identical to the accounts API's: {same}\n")];
    lines.push("CRM requests (Idempotency-Key is eddy's ctx.idempotencyKey)".into());
    for r in &outcome.crm_requests {
        let key = r.idempotency_key.as_deref().unwrap_or("-");
        let replayed = if r.replayed { " replayed" } else { "" };
        lines.push(format!(
            "  {} {:<14} {}{replayed}  key {key}",
            r.method, r.path, r.status
        ));
    }
    lines.push("\neddy deliveries".into());
    for d in &outcome.deliveries {
        lines.push(format!(
            "  {:<16} {:<10} attempts {}",
            d["event_type"].as_str().unwrap_or("?"),
            d["status"].as_str().unwrap_or("?"),
            d["attempts"]
        ));
    }
    lines.push("\nCRM contacts at the end".into());
    for c in &outcome.contacts {
        let text = |key: &str| c[key].as_str().unwrap_or("-").to_owned();
        let (id, account, name, email) = (text("id"), text("external_id"), text("name"), text("email"));
        let (plan, status, revision) = (text("plan"), text("status"), &c["revision"]);
        lines.push(format!(
            "  {id}  account {account}  {name} <{email}>  plan {plan}  {status}  (revision {revision})"
        ));
    }
    lines.join("\n")
}

/// eddy in-process over a copy of this example, its API and its proxy on 127.0.0.1:0.
struct Eddy {
    url: String,
    proxy_url: String,
    stop: watch::Sender<bool>,
    server: JoinHandle<Result<(), eddy::server::ServerError>>,
    proxy: JoinHandle<std::io::Result<()>>,
}

impl Eddy {
    /// Copies eddy.toml and handlers/ into `dir`, writes `env` to `dir/.env`, and starts
    /// eddy with its proxy in front of `upstream`.
    async fn start(dir: &Path, env: &str, upstream: &str) -> anyhow::Result<Self> {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/crm-sync");
        std::fs::copy(example.join("eddy.toml"), dir.join("eddy.toml"))?;
        copy_dir(&example.join("handlers"), &dir.join("handlers"))?;
        std::fs::write(dir.join(".env"), env)?;
        let config_path = dir.join("eddy.toml");
        let config = Config::parse(&std::fs::read_to_string(&config_path)?, &config_path)?;
        let mut proxy_config = config.proxy.clone().context("eddy.toml has no [proxy]")?;
        proxy_config.upstream = upstream.to_owned();
        let store = eddy::store::Store::open(&config.data)?;
        let app = eddy::server::app(&config, &config_path, store)?;
        let proxy = eddy::ingest::proxy::Proxy::start(&proxy_config, app.clone())?;
        let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let proxy_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", api_listener.local_addr()?);
        let proxy_url = format!("http://{}", proxy_listener.local_addr()?);
        let (stop, stopped) = watch::channel(false);
        let proxy = tokio::spawn(eddy::ingest::proxy::serve(proxy, proxy_listener, stopped.clone()));
        let server = tokio::spawn(eddy::server::run(app, api_listener, stopped));
        let eddy = Self {
            url,
            proxy_url,
            stop,
            server,
            proxy,
        };
        eddy.ready().await?;
        Ok(eddy)
    }

    /// Waits until eddy answers; fails with the load error when a handler does not load,
    /// rather than timing out later.
    async fn ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let answer = loop {
            match self.get("/handlers").await {
                Ok(answer) => break answer,
                Err(e) if Instant::now() > deadline => return Err(e.context("eddy did not start")),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let handlers = answer["handlers"].as_array().cloned().unwrap_or_default();
        if let Some(broken) = handlers.iter().find(|h| !h["error"].is_null() || h["loaded"] != true) {
            bail!("handler {} does not load: {}", broken["id"], broken["error"]);
        }
        if handlers.is_empty() {
            bail!("no handlers were found");
        }
        Ok(())
    }

    /// Sends one request through the proxy, records its answer, returns a transcript line.
    async fn call(
        &self,
        log: &mut Vec<ApiExchange>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<String> {
        let method: reqwest::Method = method.parse()?;
        let mut request = local_client().request(method.clone(), format!("{}{path}", self.proxy_url));
        if let Some(body) = &body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let line = format!(
            "  {method} {path} {}  ->  {status} {text}",
            body.map(|b| b.to_string()).unwrap_or_default()
        );
        log.push(ApiExchange {
            method: method.to_string(),
            path: path.to_owned(),
            status,
            body: text,
        });
        Ok(line)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let mut request = local_client().get(format!("{}{path}", self.url));
        if let Ok(token) = std::env::var("EDDY_API_TOKEN") {
            request = request.bearer_auth(token);
        }
        let body = request.send().await?.error_for_status()?.bytes().await?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// The deliveries once none is pending or running: the CRM can show a change before
    /// eddy has recorded the attempt that made it.
    async fn settled_deliveries(&self) -> anyhow::Result<Vec<Value>> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let answer = self.get("/deliveries").await?;
            let deliveries = answer["deliveries"].as_array().cloned().unwrap_or_default();
            let busy = deliveries
                .iter()
                .any(|d| d["status"] == "pending" || d["status"] == "running");
            if !busy || Instant::now() > deadline {
                return Ok(deliveries);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `done` until it holds. Fails at once when a delivery is dead (no retry will
    /// come), and on time-out with eddy's deliveries, so the error says what went wrong.
    async fn wait_until(&self, what: &str, done: impl Fn() -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        for round in 0.. {
            if done() {
                return Ok(());
            }
            if Instant::now() > deadline {
                break;
            }
            if round % 5 == 4 {
                let dead = self.get("/deliveries?status=dead").await?;
                if let Some(first) = dead["deliveries"].as_array().and_then(|all| all.first()) {
                    bail!(
                        "while waiting until {what}: a delivery is dead: {}",
                        first["last_error"]
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let deliveries = self.get("/deliveries").await.unwrap_or_default();
        bail!(
            "timed out waiting until {what}; eddy's deliveries: {:#}",
            deliveries["deliveries"]
        )
    }

    /// Stops intake and waits (bounded) for attempts in flight.
    async fn stop(self) {
        let _ = self.stop.send(true);
        let both = async { (self.server.await, self.proxy.await) };
        match tokio::time::timeout(STEP_TIMEOUT, both).await {
            Ok((Ok(Ok(())), Ok(Ok(())))) => {}
            Ok(result) => eprintln!("eddy did not stop cleanly: {result:?}"),
            Err(_) => eprintln!("eddy did not stop within {STEP_TIMEOUT:?}"),
        }
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
