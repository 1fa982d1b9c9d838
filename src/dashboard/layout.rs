//! The page shell every dashboard page shares, and the small pieces pages are made of:
//! times, statuses, JSON, the CSRF field, notices after an action, error pages.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::store::DeliveryStatus;

/// Headers on every dashboard answer: scripts and styles only from the dashboard's own
/// assets, never framed, nothing cached or sent on as a referrer.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

/// Who is looking at a page: a person with a session (whose forms carry its CSRF token) or
/// a script holding the API token.
#[derive(Debug, Clone)]
pub struct Visitor {
    csrf: Option<String>,
    /// Signed in with the token (so there is something to sign out of).
    signed_in: bool,
    session: Option<String>,
}

impl Visitor {
    pub fn script() -> Self {
        Self {
            csrf: None,
            signed_in: false,
            session: None,
        }
    }

    pub fn person(csrf: String, signed_in: bool, session: String) -> Self {
        Self {
            csrf: Some(csrf),
            signed_in,
            session: Some(session),
        }
    }

    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// The hidden field every form of the page carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name=(super::auth::CSRF_FIELD) value=(self.csrf.as_deref().unwrap_or_default()); }
    }
}

/// The dashboard's sections, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Events,
    Deliveries,
    Handlers,
}

/// A whole page: the navigation, `title`, then `body`.
pub fn page(title: &str, visitor: &Visitor, section: Section, body: Markup) -> Markup {
    let link = |href: &str, name: &str, which: Section| {
        html! { a href=(href) aria-current=[(section == which).then_some("page")] { (name) } }
    };
    html! {
        (head(title))
        body {
            header.top {
                nav {
                    a.brand href="/ui" { "eddy" }
                    (link("/ui", "Overview", Section::Overview))
                    (link("/ui/events", "Events", Section::Events))
                    (link("/ui/deliveries", "Deliveries", Section::Deliveries))
                    (link("/ui/handlers", "Handlers", Section::Handlers))
                }
                @if visitor.signed_in {
                    form.signout method="post" action="/ui/logout" {
                        (visitor.csrf_field())
                        button type="submit" { "Sign out" }
                    }
                }
            }
            main { h1 { (title) } (body) }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en";
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}"#;
            title { (title) " · eddy" }
            link rel="stylesheet" href="/ui/assets/eddy.css";
            script src="/ui/assets/htmx.min.js" defer {}
            script src="/ui/assets/eddy.js" defer {}
        }
    }
}

/// The sign-in page, going on to `next`; `error` after a wrong token.
pub fn login(next: &str, error: Option<&str>) -> Markup {
    html! {
        (head("Sign in"))
        body.login {
            main {
                h1 { "eddy" }
                form method="post" action="/ui/login" {
                    @if let Some(error) = error { p.error role="alert" { (error) } }
                    label for="token" { "API token" }
                    input #token type="password" name="token" autocomplete="current-password" required autofocus;
                    input type="hidden" name="next" value=(next);
                    button type="submit" { "Sign in" }
                }
                p.hint { "The token is the one eddy's API takes: EDDY_API_TOKEN, or api_token in eddy.toml." }
            }
        }
    }
}

/// A page saying what went wrong, with `status`.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let page = html! {
        (head(reason))
        body {
            main {
                h1 { (status.as_u16()) " " (reason) }
                p.error role="alert" { (message) }
                p { a href="/ui" { "Back to the overview" } }
            }
        }
    };
    with_security_headers((status, page).into_response())
}

pub fn with_security_headers(mut response: Response) -> Response {
    for (name, value) in SECURITY_HEADERS {
        response.headers_mut().insert(*name, HeaderValue::from_static(value));
    }
    response
}

/// What an action that redirected did, named by its `done=` key (never text from the URL).
pub fn notice(done: Option<&str>) -> Markup {
    let text = match done {
        Some("replayed") => "Queued again: the delivery runs as soon as its handler has room.",
        Some("already") => "That delivery is already waiting to run.",
        Some("edited") => "Saved as a new version. Deliveries that run from now on see the new data.",
        Some("unchanged") => "Nothing changed, so no version was made.",
        Some("redacted") => "Redacted from the event, its history and every captured log.",
        Some("deleted") => "The event and everything of it were deleted.",
        Some("cancelled") => "The job was cancelled; what it queued already stays queued.",
        Some("skipped") => "Skipped: the delivery stays dead, and the next delivery of its key runs.",
        _ => return html! {},
    };
    html! { p.notice role="status" { (text) } }
}

/// A time as `<time>`, in UTC for readers without JavaScript; the page's script shows it
/// in the reader's own time zone.
pub fn time(ms: u64) -> Markup {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    let text = humantime::format_rfc3339_millis(at).to_string();
    html! { time datetime=(text) { (text) } }
}

pub fn maybe_time(ms: Option<u64>) -> Markup {
    match ms {
        Some(ms) => time(ms),
        None => html! { "–" },
    }
}

pub fn status(status: DeliveryStatus) -> Markup {
    let name = status.as_str();
    html! { span class={ "status " (name) } { (name) } }
}

/// `value` as indented JSON.
pub fn json(value: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    html! { pre.json { code { (text) } } }
}

pub fn duration_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.1} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_the_form_carries_the_session_token() {
        let visitor = Visitor::person("t0k".into(), true, "s".into());
        let html = page("<b>x</b>", &visitor, Section::Events, html! { p { "a & b" } }).into_string();
        assert!(
            html.contains("&lt;b&gt;x&lt;/b&gt;") && html.contains("a &amp; b"),
            "{html}"
        );
        assert!(html.contains(r#"name="_csrf" value="t0k""#), "{html}");
        assert!(html.contains(r#"href="/ui/events" aria-current="page""#), "{html}");
        let script = page("x", &Visitor::script(), Section::Overview, html! {}).into_string();
        assert!(!script.contains("Sign out"));
    }

    #[test]
    fn notices_come_only_from_known_keys() {
        assert!(notice(Some("edited")).into_string().contains("new version"));
        assert_eq!(notice(Some("<script>")).into_string(), "");
        assert_eq!(notice(None).into_string(), "");
    }
}
