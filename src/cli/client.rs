//! Talking to a running server: `--server`, the token from `EDDY_API_TOKEN`, and errors
//! that say what the server answered.

use anyhow::anyhow;
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

/// Why a request did not reach the server at `base`, said once: its innermost cause (the
/// client library's own layers repeat the URL and add nothing).
fn unreachable(base: &str, e: &reqwest::Error) -> anyhow::Error {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let hint = match e.is_connect() {
        true => " (is eddy running there? --server or EDDY_SERVER names another address)",
        false => "",
    };
    anyhow!("cannot reach the eddy server at {base}: {cause}{hint}")
}

/// The base URL of a server given as `http(s)://host:port[/prefix]` or as `host:port`
/// (http is meant then), without its trailing slash.
fn server_base(text: &str) -> Result<String, String> {
    let text = text.trim();
    let with_scheme = match text.contains("://") {
        true => text.to_owned(),
        false => format!("http://{text}"),
    };
    let url = url::Url::parse(&with_scheme).map_err(|e| format!("{e} (write e.g. http://127.0.0.1:8787)"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("the scheme must be http or https, not {}", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) || url.query().is_some() || url.fragment().is_some() {
        return Err("it needs a host, and no query or fragment (write e.g. http://127.0.0.1:8787)".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// A client for one server.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(args: &ServerArgs) -> anyhow::Result<Self> {
        let (from, text) = match (
            &args.server,
            std::env::var("EDDY_SERVER").ok().filter(|s| !s.is_empty()),
        ) {
            (Some(server), _) => ("--server", server.clone()),
            (None, Some(server)) => ("EDDY_SERVER", server),
            (None, None) => ("the default", "http://127.0.0.1:8787".to_owned()),
        };
        let base = server_base(&text).map_err(|why| anyhow!("{from} {text:?} is not a server address: {why}"))?;
        Ok(Self {
            base,
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
        let response = request.send().await.map_err(|e| unreachable(&self.base, &e))?;
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
    say!("{}", table(headers, rows).trim_end_matches('\n'));
}

/// `rows` under `headers`, each column as wide as its widest cell, one line each.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_is_a_url_or_a_host_and_port() {
        for (given, base) in [
            ("localhost:8787", "http://localhost:8787"),
            ("127.0.0.1:9000/", "http://127.0.0.1:9000"),
            ("http://127.0.0.1:8787", "http://127.0.0.1:8787"),
            (" https://eddy.example.com/base/ ", "https://eddy.example.com/base"),
        ] {
            assert_eq!(server_base(given).as_deref(), Ok(base), "{given}");
        }
        for bad in ["ftp://host", "http://", "localhost:notaport", "http://h/?q=1"] {
            assert!(server_base(bad).is_err(), "{bad}");
        }
    }
}
