//! The crm-sync example's "own API": a tiny accounts API kept in memory.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Map, Value, json};

use super::{Shared, json_response, lock, serve};

/// One exchange of the accounts API, with the body exactly as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiExchange {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub body: String,
}

#[derive(Default)]
struct AccountsState {
    accounts: BTreeMap<u64, Value>,
    last_id: u64,
    log: Vec<ApiExchange>,
}

/// A tiny accounts API kept in memory: `POST /accounts` (201), `GET`, `PATCH` (200, merged)
/// and `DELETE` (204) on `/accounts/{id}`. Accounts are `{ id, name, email, plan, version }`;
/// `version` goes up with every change.
#[derive(Clone)]
pub struct AccountsApi {
    pub url: String,
    state: Shared<AccountsState>,
}

impl AccountsApi {
    pub async fn start() -> anyhow::Result<Self> {
        let state = Shared::default();
        let router = Router::new().fallback(any(accounts_call)).with_state(state.clone());
        Ok(Self {
            url: serve(router).await?,
            state,
        })
    }

    /// Everything it answered, in order.
    pub fn exchanges(&self) -> Vec<ApiExchange> {
        lock(&self.state).log.clone()
    }
}

async fn accounts_call(State(api): State<Shared<AccountsState>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let mut state = lock(&api);
    let (status, answer) = state.answer(&method, uri.path(), &body);
    let text = answer.as_ref().map(Value::to_string).unwrap_or_default();
    state.log.push(ApiExchange {
        method: method.to_string(),
        path: uri.path().to_owned(),
        status: status.as_u16(),
        body: text.clone(),
    });
    let Some(answer) = answer else {
        return status.into_response();
    };
    let mut response = json_response(status, &answer);
    if status == StatusCode::CREATED
        && let Ok(location) = format!("/accounts/{}", answer["id"]).parse()
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

impl AccountsState {
    fn answer(&mut self, method: &Method, path: &str, body: &[u8]) -> (StatusCode, Option<Value>) {
        let error = |status, message: &str| (status, Some(json!({ "error": message })));
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (collection, id) = match segments.as_slice() {
            ["accounts"] => (true, None),
            ["accounts", id] => (false, id.parse::<u64>().ok()),
            _ => return error(StatusCode::NOT_FOUND, "no such endpoint"),
        };
        let fields = serde_json::from_slice::<Map<String, Value>>(body).unwrap_or_default();
        if collection {
            return match *method {
                Method::POST => self.create(fields),
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "use POST /accounts"),
            };
        }
        let Some(account) = id.and_then(|id| self.accounts.get_mut(&id)) else {
            return error(StatusCode::NOT_FOUND, "no such account");
        };
        match *method {
            Method::GET => (StatusCode::OK, Some(account.clone())),
            Method::PATCH => {
                for name in ["name", "email", "plan"]
                    .into_iter()
                    .filter(|n| fields.contains_key(*n))
                {
                    account[name] = fields[name].clone();
                }
                account["version"] = json!(account["version"].as_u64().unwrap_or(0) + 1);
                (StatusCode::OK, Some(account.clone()))
            }
            Method::DELETE => {
                id.map(|id| self.accounts.remove(&id));
                (StatusCode::NO_CONTENT, None)
            }
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "use GET, PATCH or DELETE"),
        }
    }

    fn create(&mut self, fields: Map<String, Value>) -> (StatusCode, Option<Value>) {
        let text = |name: &str| fields.get(name).and_then(Value::as_str).filter(|t| !t.is_empty());
        let (Some(name), Some(email)) = (text("name"), text("email")) else {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(json!({ "error": "name and email are required" })),
            );
        };
        self.last_id += 1;
        let plan = text("plan").unwrap_or("free");
        let account = json!({ "id": self.last_id, "name": name, "email": email, "plan": plan, "version": 1 });
        self.accounts.insert(self.last_id, account.clone());
        (StatusCode::CREATED, Some(account))
    }
}
