//! A fake Slack Web API: `chat.postMessage` and `chat.update`, with Slack's errors and rate limit.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use super::{Shared, bearer, json_response, lock, serve};

/// One message as the fake Slack keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackMessage {
    pub ts: String,
    /// The parent's `ts` for a reply in a thread.
    pub thread_ts: Option<String>,
    pub text: String,
    /// How many times `chat.update` changed it.
    pub edits: u32,
}

/// One Web API call: the method, the HTTP status and the result (`ok`, or the error code).
#[derive(Debug, Clone)]
pub struct SlackCall {
    pub method: String,
    pub status: u16,
    pub result: String,
}

#[derive(Default)]
struct SlackState {
    token: String,
    channels: BTreeMap<String, Vec<SlackMessage>>,
    posted: u64,
    rate_limit_next: u32,
    calls: Vec<SlackCall>,
}

/// The Slack Web API's `chat.postMessage` and `chat.update`, JSON bodies, bot token auth.
/// Errors come as HTTP 200 `{ ok: false, error }`, a rate limit as HTTP 429 with
/// `Retry-After`, as Slack does.
#[derive(Clone)]
pub struct FakeSlack {
    pub url: String,
    state: Shared<SlackState>,
}

impl FakeSlack {
    /// Starts a workspace that knows `channels` and accepts the bot token `token`.
    pub async fn start(token: &str, channels: &[&str]) -> anyhow::Result<Self> {
        let state = Arc::new(Mutex::new(SlackState {
            token: token.to_owned(),
            channels: channels.iter().map(|c| (c.to_string(), Vec::new())).collect(),
            ..SlackState::default()
        }));
        let router = Router::new()
            .route("/api/{method}", post(slack_call))
            .with_state(state.clone());
        Ok(Self {
            url: serve(router).await?,
            state,
        })
    }

    /// Answers the next `calls` calls with 429, as Slack does past a method's rate tier.
    pub fn rate_limit_next(&self, calls: u32) {
        lock(&self.state).rate_limit_next = calls;
    }

    /// Every message of `channel`, roots and replies, in the order they were posted.
    pub fn messages(&self, channel: &str) -> Vec<SlackMessage> {
        lock(&self.state).channels.get(channel).cloned().unwrap_or_default()
    }

    /// The replies in the thread under the message `ts`.
    pub fn thread(&self, channel: &str, ts: &str) -> Vec<SlackMessage> {
        let replies = self.messages(channel).into_iter();
        replies.filter(|m| m.thread_ts.as_deref() == Some(ts)).collect()
    }

    pub fn calls(&self) -> Vec<SlackCall> {
        lock(&self.state).calls.clone()
    }
}

async fn slack_call(
    State(slack): State<Shared<SlackState>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = lock(&slack);
    let (status, answer) = state.answer(&method, &headers, &body);
    let result = match answer["error"].as_str() {
        Some(error) => error.to_owned(),
        None => "ok".to_owned(),
    };
    let call = SlackCall {
        method,
        status: status.as_u16(),
        result,
    };
    state.calls.push(call);
    let mut response = json_response(status, &answer);
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

impl SlackState {
    fn answer(&mut self, method: &str, headers: &HeaderMap, body: &[u8]) -> (StatusCode, Value) {
        let failed = |error: &str| json!({ "ok": false, "error": error });
        if self.rate_limit_next > 0 {
            self.rate_limit_next -= 1;
            return (StatusCode::TOO_MANY_REQUESTS, failed("ratelimited"));
        }
        let result = match bearer(headers) {
            None => Err("not_authed"),
            Some(token) if token != self.token => Err("invalid_auth"),
            Some(_) => match serde_json::from_slice::<Value>(body) {
                Err(_) => Err("invalid_json"),
                Ok(args) if method == "chat.postMessage" => self.post(&args),
                Ok(args) if method == "chat.update" => self.update(&args),
                Ok(_) => return (StatusCode::NOT_FOUND, failed("unknown_method")),
            },
        };
        (StatusCode::OK, result.unwrap_or_else(failed))
    }

    fn channel(&mut self, args: &Value) -> Result<(String, &mut Vec<SlackMessage>), &'static str> {
        let name = args["channel"].as_str().unwrap_or_default();
        let messages = self.channels.get_mut(name).ok_or("channel_not_found")?;
        Ok((name.to_owned(), messages))
    }

    fn post(&mut self, args: &Value) -> Result<Value, &'static str> {
        self.posted += 1;
        // Unique and increasing, shaped like Slack's "<unix seconds>.<microseconds>".
        let ts = format!(
            "{}.{:06}",
            1_700_000_000 + self.posted / 10_000,
            (self.posted % 10_000) * 100
        );
        let (channel, messages) = self.channel(args)?;
        let text = args["text"].as_str().filter(|t| !t.is_empty()).ok_or("no_text")?;
        let thread_ts = args["thread_ts"].as_str().map(str::to_owned);
        // Stricter than Slack, which would post to the channel instead: a wrong parent is a bug.
        if let Some(parent) = &thread_ts
            && !messages.iter().any(|m| &m.ts == parent && m.thread_ts.is_none())
        {
            return Err("thread_not_found");
        }
        let message = SlackMessage {
            ts: ts.clone(),
            thread_ts: thread_ts.clone(),
            text: text.to_owned(),
            edits: 0,
        };
        messages.push(message);
        let message = json!({ "type": "message", "bot_id": "B0FAKE", "text": text, "ts": ts, "thread_ts": thread_ts });
        Ok(json!({ "ok": true, "channel": channel, "ts": ts, "message": message }))
    }

    fn update(&mut self, args: &Value) -> Result<Value, &'static str> {
        let (channel, messages) = self.channel(args)?;
        let ts = args["ts"].as_str().unwrap_or_default();
        let message = messages.iter_mut().find(|m| m.ts == ts).ok_or("message_not_found")?;
        let text = args["text"].as_str().filter(|t| !t.is_empty()).ok_or("no_text")?;
        message.text = text.to_owned();
        message.edits += 1;
        let shown = json!({ "type": "message", "bot_id": "B0FAKE", "text": text, "ts": ts });
        Ok(json!({ "ok": true, "channel": channel, "ts": ts, "text": text, "message": shown }))
    }
}
