//! Talking to a running server: `--server`, the token from `EDDY_API_TOKEN`, and errors
//! that say what the server answered.

use anyhow::{Context, anyhow};
use serde_json::Value;

/// Where the server is and how to authenticate.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The server [default: $EDDY_SERVER, else http://127.0.0.1:8787]
    #[arg(long, value_name = "URL", global = true)]
    server: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A client for one server.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(args: &ServerArgs) -> anyhow::Result<Self> {
        let base = args
            .server
            .clone()
            .or_else(|| std::env::var("EDDY_SERVER").ok())
            .unwrap_or_else(|| "http://127.0.0.1:8787".into());
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token: std::env::var("EDDY_API_TOKEN").ok().filter(|t| !t.is_empty()),
            http: reqwest::Client::builder().build()?,
        })
    }

    /// GET `path` (with query) and return the JSON answer.
    pub async fn get(&self, path: &str, query: &[(&str, Option<String>)]) -> anyhow::Result<Value> {
        let query: Vec<(&str, String)> = query.iter().filter_map(|(k, v)| v.clone().map(|v| (*k, v))).collect();
        self.send(self.http.get(format!("{}{path}", self.base)).query(&query))
            .await
    }

    /// POST `body` as JSON to `path`.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        self.send(request).await
    }

    /// PATCH `path` with a JSON merge patch.
    pub async fn patch(&self, path: &str, patch: &Value) -> anyhow::Result<Value> {
        let request = self
            .http
            .patch(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/merge-patch+json")
            .body(patch.to_string());
        self.send(request).await
    }

    /// DELETE `path`.
    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.delete(format!("{}{path}", self.base))).await
    }

    async fn send(&self, mut request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        // The server's audit log records that the CLI asked.
        request = request.header("x-eddy-actor", "cli");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the eddy server at {}", self.base))?;
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let detail = body["detail"].as_str().unwrap_or("");
        Err(anyhow!("the server answered {status}: {detail}"))
    }
}

/// Prints rows as aligned columns under `headers`.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        say!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
