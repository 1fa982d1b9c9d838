//! The web dashboard at `/ui`: server-rendered HTML over the same services as the API, with
//! its assets embedded in the binary. Every page reads without JavaScript; the vendored htmx
//! and a small script of eddy's own add live progress, local times and the JSON editor's
//! checks. Actions follow the API's rules (they call the same services, audited as `ui`).
//!
//! One file per section: `overview.rs` (with `charts.rs`), `events.rs` (with `edits.rs` and
//! `diff.rs`), `deliveries.rs`, `replays.rs`, `handlers.rs`; `auth.rs` signs people in and
//! checks every action's CSRF token; `layout.rs` is the page shell; `assets.rs` the files.

mod assets;
mod auth;
mod charts;
mod deliveries;
mod diff;
mod edits;
mod events;
mod handlers;
mod layout;
mod overview;
mod replays;

use axum::response::{IntoResponse, Response};

pub use assets::asset;
pub use auth::{admit, login, login_form, logout};
pub use deliveries::{deliveries, delivery, replay_one, skip_one};
pub use edits::{delete, delete_form, edit, edit_form, redact};
pub use events::{event, events};
pub use handlers::handlers;
pub use overview::overview;
pub use replays::{cancel_job, job, preview_replay, start_replay};

use crate::http::ApiError;
use crate::services::ServiceError;

/// The actor the audit log names for actions taken in the dashboard.
const ACTOR: &str = "ui";

/// What the dashboard keeps between requests: the token people sign in with, and the
/// sessions of those who did.
pub struct Ui {
    token: Option<String>,
    sessions: auth::Sessions,
}

impl Ui {
    /// A dashboard guarded by `token` (none: served to loopback names without signing in).
    pub fn new(token: Option<String>) -> Self {
        Self {
            token,
            sessions: auth::Sessions::default(),
        }
    }
}

/// A failed page or action, answered as an error page with the API's status for it.
#[derive(Debug)]
pub struct PageError(ApiError);

impl From<ServiceError> for PageError {
    fn from(e: ServiceError) -> Self {
        Self(e.into())
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<axum::extract::rejection::FormRejection> for PageError {
    fn from(e: axum::extract::rejection::FormRejection) -> Self {
        Self(ApiError::new(e.status(), "invalid_form", e.body_text()))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        layout::error_page(self.0.status, &self.0.detail)
    }
}

/// The `done=` key an action redirects with, naming the notice to show.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// Characters escaped in an id put into a URL path segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `id` as one path segment.
fn segment(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, SEGMENT).to_string()
}

/// `path` with the given query fields (those with a value).
fn link(path: &str, fields: &[(&str, Option<&str>)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    let query = query.finish();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

/// A query value, or `None` when empty (as a form leaves fields it did not fill).
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}
