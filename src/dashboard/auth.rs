//! Who may see the dashboard, and proof that an action came from its own pages.
//!
//! With an API token set, a person signs in once with it (`/ui/login`) and gets a session
//! cookie (HttpOnly, only for `/ui`, and SameSite=Lax, so a link in a chat message opens the
//! dashboard signed in); a script sends the token as `Authorization: Bearer`, as to the API.
//! Without a token the dashboard is served on
//! loopback names only (the server checks the Host first), and each browser gets a session
//! without signing in.
//!
//! Every POST made with a session cookie must carry that session's CSRF token in its form
//! (`_csrf`), and is refused when the browser says it came from another site. A script with
//! the bearer token needs neither: a browser never adds that header by itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rand::RngCore;

use super::Ui;
use super::layout::{self, Visitor};
use crate::http::{bearer, same_secret};

/// The session cookie's name.
pub const COOKIE: &str = "eddy_ui";
/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";
/// How long a session lasts from sign-in.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; the oldest goes first when a new one would pass it.
const MAX_SESSIONS: usize = 10_000;
/// Largest form the dashboard reads (an event's data in the editor is the largest).
pub const MAX_FORM_BYTES: usize = 4 << 20;

#[derive(Debug, Clone)]
struct Session {
    csrf: String,
    expires: Instant,
}

/// The signed-in browsers, in memory: a restart signs everyone out.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session: its id (the cookie's value) and its CSRF token.
    fn start(&self) -> (String, String) {
        let (id, csrf) = (random_hex(), random_hex());
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone())
        {
            live.remove(&oldest);
        }
        let session = Session {
            csrf: csrf.clone(),
            expires: now + SESSION_TTL,
        };
        live.insert(id.clone(), session);
        (id, csrf)
    }

    fn find(&self, id: &str) -> Option<Session> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    fn end(&self, id: &str) {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of cookie `name` in `headers`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` value of session `id` (or of its removal); `Secure` when the request
/// came through an HTTPS proxy.
fn session_cookie(id: Option<&str>, headers: &HeaderMap) -> HeaderValue {
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let (value, age) = match id {
        Some(id) => (id, SESSION_TTL.as_secs()),
        None => ("", 0),
    };
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Lax; Max-Age={age}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("eddy_ui=; Max-Age=0"))
}

/// The guard of every dashboard page and action but the sign-in and the assets.
pub async fn admit(State(ui): State<std::sync::Arc<Ui>>, request: Request, next: Next) -> Response {
    if let Some(token) = &ui.token
        && let Some(given) = bearer(request.headers())
    {
        if !same_secret(given.as_bytes(), token.as_bytes()) {
            return layout::error_page(StatusCode::UNAUTHORIZED, "The bearer token is not eddy's API token.");
        }
        return run(request, next, Visitor::script()).await;
    }
    let session = cookie(request.headers(), COOKIE).and_then(|id| Some((id.to_owned(), ui.sessions.find(id)?)));
    match session {
        Some((id, session)) => {
            let visitor = Visitor::person(session.csrf.clone(), ui.token.is_some(), id);
            if request.method() == Method::POST {
                return checked_post(request, next, visitor, &session.csrf).await;
            }
            run(request, next, visitor).await
        }
        None if ui.token.is_none() && request.method() != Method::POST => {
            // No token: a browser gets a session at its first page, for its forms' CSRF token.
            let (id, csrf) = ui.sessions.start();
            let cookie = session_cookie(Some(&id), request.headers());
            let mut response = run(request, next, Visitor::person(csrf, false, id)).await;
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        None if request.method() == Method::POST => layout::error_page(
            StatusCode::FORBIDDEN,
            "This form's session has ended (or it did not come from eddy's dashboard). Reload the page and try again.",
        ),
        None => {
            let target = request.uri().path_and_query().map_or("/ui", |p| p.as_str());
            let next = url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>();
            Redirect::to(&format!("/ui/login?next={next}")).into_response()
        }
    }
}

async fn run(mut request: Request, next: Next, visitor: Visitor) -> Response {
    request.extensions_mut().insert(visitor);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in layout::SECURITY_HEADERS {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    response
}

/// Runs a POST whose form carries `csrf` and that no other site sent.
async fn checked_post(request: Request, next: Next, visitor: Visitor, csrf: &str) -> Response {
    let cross_site = request
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    if cross_site {
        return layout::error_page(StatusCode::FORBIDDEN, "Actions are taken only from eddy's own pages.");
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return layout::error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is larger than 4 MiB.");
    };
    let given = url::form_urlencoded::parse(&bytes).find(|(key, _)| key == CSRF_FIELD);
    if !given.is_some_and(|(_, value)| same_secret(value.as_bytes(), csrf.as_bytes())) {
        return layout::error_page(
            StatusCode::FORBIDDEN,
            "This form did not carry the page's CSRF token. Reload the page and try again.",
        );
    }
    run(Request::from_parts(parts, Body::from(bytes)), next, visitor).await
}

/// `GET /ui/login`: the sign-in form (the dashboard itself when no token is set).
pub async fn login_form(State(ui): State<std::sync::Arc<Ui>>, request: Request) -> Response {
    if ui.token.is_none() {
        return Redirect::to("/ui").into_response();
    }
    let next = next_target(request.uri().query());
    layout::with_security_headers(layout::login(&next, None).into_response())
}

/// `POST /ui/login`: signs in with the API token and goes on to the page asked for.
pub async fn login(State(ui): State<std::sync::Arc<Ui>>, request: Request) -> Response {
    let Some(token) = &ui.token else {
        return Redirect::to("/ui").into_response();
    };
    let headers = request.headers().clone();
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), 64 << 10).await else {
        return layout::error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let form: HashMap<String, String> = url::form_urlencoded::parse(&bytes).into_owned().collect();
    let next = next_target(Some(&format!("next={}", form.get("next").map_or("", String::as_str))));
    let given = form.get("token").map_or("", String::as_str).trim();
    if !same_secret(given.as_bytes(), token.as_bytes()) {
        tracing::warn!(target: "eddy::dashboard", "a sign-in to the dashboard with a wrong token");
        // A wrong guess costs the guesser time.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let page = layout::login(&next, Some("That is not eddy's API token."));
        return layout::with_security_headers((StatusCode::UNAUTHORIZED, page).into_response());
    }
    let (id, _) = ui.sessions.start();
    let mut response = Redirect::to(&next).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, session_cookie(Some(&id), &headers));
    response
}

/// `POST /ui/logout`: ends the session.
pub async fn logout(State(ui): State<std::sync::Arc<Ui>>, request: Request) -> Response {
    if let Some(visitor) = request.extensions().get::<Visitor>()
        && let Some(id) = visitor.session()
    {
        ui.sessions.end(id);
    }
    let mut response = Redirect::to("/ui/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, session_cookie(None, request.headers()));
    response
}

/// Where to go after signing in: a dashboard path from `next=`, else the overview (never
/// another site).
fn next_target(query: Option<&str>) -> String {
    let next = query
        .map(|q| url::form_urlencoded::parse(q.as_bytes()))
        .and_then(|mut pairs| pairs.find(|(k, _)| k == "next").map(|(_, v)| v.into_owned()));
    match next {
        Some(path)
            if (path == "/ui" || path.starts_with("/ui/") || path.starts_with("/ui?"))
                && !path.contains("//")
                && !path.contains('\\') =>
        {
            path
        }
        _ => "/ui".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_found_until_they_end_and_ids_do_not_repeat() {
        let sessions = Sessions::default();
        let (id, csrf) = sessions.start();
        assert_eq!(id.len(), 64);
        assert_ne!(id, csrf);
        assert_eq!(sessions.find(&id).map(|s| s.csrf), Some(csrf));
        assert!(sessions.find("other").is_none());
        let (second, _) = sessions.start();
        assert_ne!(id, second);
        sessions.end(&id);
        assert!(sessions.find(&id).is_none());
        assert!(sessions.find(&second).is_some());
    }

    #[test]
    fn the_cookie_is_read_among_others_and_set_http_only_for_the_dashboard() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; eddy_ui=abc; b=2"));
        assert_eq!(cookie(&headers, COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "eddy"), None);
        let set = session_cookie(Some("abc"), &headers);
        let set = set.to_str().unwrap();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/ui"),
            "{set}"
        );
        assert!(!set.contains("Secure"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(
            session_cookie(None, &headers)
                .to_str()
                .unwrap()
                .ends_with("Max-Age=0; Secure")
        );
    }

    #[test]
    fn sign_in_goes_on_only_to_dashboard_paths() {
        assert_eq!(next_target(Some("next=%2Fui%2Fevents%3Ftype%3Da")), "/ui/events?type=a");
        for away in [
            "next=https://evil.example",
            "next=//evil.example",
            "next=/ui//evil",
            "next=/uix",
            "next=/ui/\\x",
            "",
        ] {
            let target = next_target(Some(away));
            assert_eq!(target, "/ui", "{away}");
        }
        assert_eq!(next_target(None), "/ui");
    }
}
