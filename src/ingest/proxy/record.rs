//! Turning a proxied exchange into an event, and the task that stores them. The proxied
//! request never waits for this: exchanges are queued with `try_send`, and anything that
//! cannot be queued or stored is logged and counted.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::tee::Captured;
use crate::event::{Event, new_id, now_rfc3339};
use crate::ingest::Intake;

/// The `source` of events recorded by the proxy.
pub const PROXY_SOURCE: &str = "eddy/proxy";

/// Exchanges waiting to be stored; beyond this the proxy drops events rather than memory.
pub const QUEUE: usize = 4096;

/// One request/response pair the proxy decided to record.
pub struct Exchange {
    pub kind: String,
    pub path: String,
    pub params: Map<String, Value>,
    pub query: Option<String>,
    pub request: Captured,
    pub request_type: Option<String>,
    pub status: u16,
    pub response: Captured,
    pub response_type: Option<String>,
}

impl Exchange {
    /// `{ path, params, query, request, response: { status, body } }`.
    pub fn into_event(self) -> Event {
        let mut truncated = Vec::new();
        let request = body_value(&self.request, self.request_type.as_deref(), "request", &mut truncated);
        let response = body_value(
            &self.response,
            self.response_type.as_deref(),
            "response",
            &mut truncated,
        );
        let mut data = json!({
            "path": self.path,
            "params": self.params,
            "query": query_object(self.query.as_deref()),
            "request": request,
            "response": { "status": self.status, "body": response },
        });
        if !truncated.is_empty() {
            data["truncated"] = json!(truncated);
        }
        Event {
            id: new_id(),
            kind: self.kind,
            source: PROXY_SOURCE.into(),
            time: now_rfc3339(),
            subject: None,
            data,
        }
    }
}

/// JSON bodies as JSON, other text as a string, anything else (or cut short) as null.
fn body_value(captured: &Captured, content_type: Option<&str>, which: &'static str, cut: &mut Vec<&str>) -> Value {
    if captured.total == 0 {
        return Value::Null;
    }
    if captured.truncated() || !captured.complete {
        cut.push(which);
        return Value::Null;
    }
    let is_json = content_type.is_some_and(|t| {
        let t = t.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        t == "application/json" || t.ends_with("+json")
    });
    if is_json && let Ok(value) = serde_json::from_slice(&captured.bytes) {
        return value;
    }
    match std::str::from_utf8(&captured.bytes) {
        Ok(text) => Value::String(text.to_owned()),
        Err(_) => Value::Null,
    }
}

/// `a=1&b=2&b=3` as `{ "a": "1", "b": ["2", "3"] }`.
fn query_object(query: Option<&str>) -> Value {
    let mut map = Map::new();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let value = Value::String(value.into_owned());
        match map.get_mut(key.as_ref()) {
            Some(Value::Array(items)) => items.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
            None => {
                map.insert(key.into_owned(), value);
            }
        }
    }
    Value::Object(map)
}

/// Stores queued exchanges in batches until every sender is gone.
pub async fn recorder(intake: Arc<Intake>, mut queue: mpsc::Receiver<Exchange>) {
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, 256).await > 0 {
        let events: Vec<Event> = batch.drain(..).map(Exchange::into_event).collect();
        let count = events.len();
        match crate::ingest::accept(&intake, events).await {
            Ok(_) => intake.services.metrics.proxy_recorded(count),
            Err(e) => {
                intake.services.metrics.proxy_record_failed(count);
                tracing::error!("proxy: {count} event(s) not recorded: {}", e.detail);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(bytes: &[u8]) -> Captured {
        Captured {
            bytes: bytes.to_vec(),
            total: bytes.len() as u64,
            complete: true,
        }
    }

    #[test]
    fn an_exchange_becomes_the_documented_event() {
        let exchange = Exchange {
            kind: "accounts.patch".into(),
            path: "/accounts/1".into(),
            params: [("id".to_owned(), json!("1"))].into_iter().collect(),
            query: Some("notify=yes&tag=a&tag=b%20c".into()),
            request: captured(br#"{"plan":"pro"}"#),
            request_type: Some("application/json; charset=utf-8".into()),
            status: 200,
            response: captured(b"ok"),
            response_type: Some("text/plain".into()),
        };
        let event = exchange.into_event();
        assert_eq!(event.kind, "accounts.patch");
        assert_eq!(event.source, PROXY_SOURCE);
        assert_eq!(
            event.data,
            json!({
                "path": "/accounts/1",
                "params": { "id": "1" },
                "query": { "notify": "yes", "tag": ["a", "b c"] },
                "request": { "plan": "pro" },
                "response": { "status": 200, "body": "ok" },
            })
        );
    }

    #[test]
    fn bodies_cut_short_are_null_and_said_so() {
        let mut cut = Vec::new();
        let long = Captured {
            bytes: b"{\"a\":".to_vec(),
            total: 100,
            complete: true,
        };
        assert_eq!(
            body_value(&long, Some("application/json"), "request", &mut cut),
            Value::Null
        );
        let binary = captured(&[0xff, 0x00]);
        assert_eq!(body_value(&binary, None, "response", &mut cut), Value::Null);
        assert_eq!(body_value(&captured(b""), None, "response", &mut cut), Value::Null);
        assert_eq!(cut, ["request"]);
    }
}
