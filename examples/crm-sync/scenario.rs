//! The crm-sync example end to end: an accounts API standing in for "your own API", eddy
//! in-process with this folder's own eddy.toml and handlers (copied to a temporary folder)
//! and its proxy in front of the API, and a fake CRM that rate-limits its first requests.
//! Shared by `main.rs` and the integration tests.

use anyhow::Context;
use serde_json::{Value, json};

use super::fakes::{AccountsApi, ApiExchange, CrmRequest, FakeCrm, local_client};
use super::launcher::Eddy;

const CRM_TOKEN: &str = "crm-demo-token-8d2f41";
/// The CRM answers this many requests with 429 first.
const THROTTLED: u32 = 2;

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
    let say = |line: String| {
        if verbose {
            println!("{line}");
        }
    };
    let api = AccountsApi::start().await?;
    let crm = FakeCrm::start(CRM_TOKEN, THROTTLED).await?;
    // What the handler reads from `.env`.
    let env = [("CRM_API_URL", crm.url.clone()), ("CRM_TOKEN", CRM_TOKEN.to_owned())];
    let eddy = Eddy::start("crm-sync", &env, Some(&api.url)).await?;
    let proxy_url = eddy.proxy_url().context("eddy started without its proxy")?.to_owned();
    say("crm-sync: writes to your own API, seen by eddy's proxy, kept in step in a CRM".into());
    say(format!("  accounts API  {}  (your own API)", api.url));
    say(format!("  eddy proxy    {proxy_url}  -> the accounts API"));
    say(format!(
        "  fake CRM      {}  (answers its first {THROTTLED} requests 429, Retry-After: 1)\n",
        crm.url
    ));
    let result = exchange(&eddy, &proxy_url, &crm, &say).await;
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
async fn exchange(eddy: &Eddy, proxy_url: &str, crm: &FakeCrm, say: &impl Fn(String)) -> anyhow::Result<Steps> {
    let mut client = Client {
        url: proxy_url.to_owned(),
        answers: Vec::new(),
    };
    say("client -> eddy proxy -> accounts API".into());
    let ada = json!({ "name": "Ada Lovelace", "email": "ada@example.com", "plan": "free" });
    say(client.call("POST", "/accounts", Some(ada)).await?);
    let grace = json!({ "name": "Grace Hopper", "email": "grace@example.com", "plan": "team" });
    say(client.call("POST", "/accounts", Some(grace)).await?);
    let has = |id: &str, key: &str, value: &str| crm.contact(id).is_some_and(|c| c[key] == value);
    eddy.wait_until("the CRM has both contacts", || {
        has("1", "plan", "free") && has("2", "plan", "team")
    })
    .await?;
    say("  ... the CRM has contacts for accounts 1 and 2".into());
    let after_create = crm.contacts();
    let upgrade = json!({ "plan": "pro", "email": "ada@analytical.example" });
    say(client.call("PATCH", "/accounts/1", Some(upgrade)).await?);
    eddy.wait_until("the CRM shows the upgrade", || has("1", "plan", "pro"))
        .await?;
    say("  ... the CRM shows account 1 on plan pro".into());
    let after_update = crm.contacts();
    say(client.call("DELETE", "/accounts/2", None).await?);
    eddy.wait_until("the CRM shows the deletion", || has("2", "status", "deleted"))
        .await?;
    say("  ... the CRM marks account 2 deleted\n".into());
    Ok((client.answers, after_create, after_update))
}

/// A client of the accounts API through eddy's proxy that keeps every answer.
struct Client {
    url: String,
    answers: Vec<ApiExchange>,
}

impl Client {
    /// Sends one request, records its answer, returns a transcript line.
    async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<String> {
        let method: reqwest::Method = method.parse()?;
        let mut request = local_client().request(method.clone(), format!("{}{path}", self.url));
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
        self.answers.push(ApiExchange {
            method: method.to_string(),
            path: path.to_owned(),
            status,
            body: text,
        });
        Ok(line)
    }
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
