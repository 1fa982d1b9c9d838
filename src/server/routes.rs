//! Every route of eddy's HTTP API, as data. The router is built from [`ROUTES`] and nothing
//! else, so the list is the whole API: tests walk it to check that every route not meant to
//! be open asks for the token, and a route cannot be added without saying who may call it.

use axum::routing::{MethodFilter, MethodRouter, on};

use super::app::App;
use crate::{api, dashboard, ingest};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health checks, and webhooks (the sender's signature is the credential).
    Open,
    /// The holder of the API token; without a token, requests addressed to a loopback name.
    Token,
    /// The dashboard's pages and actions: the API token as a bearer header, or a session
    /// signed in with it (actions carrying its CSRF token); without a token, requests
    /// addressed to a loopback name.
    Dashboard,
    /// The dashboard's sign-in and its files, which show nothing of the user's: anyone
    /// (without a token, requests addressed to a loopback name).
    SignIn,
}

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Self::Get => MethodFilter::GET,
            Self::Post => MethodFilter::POST,
            Self::Patch => MethodFilter::PATCH,
            Self::Delete => MethodFilter::DELETE,
        }
    }
}

/// One method on one path.
#[derive(Clone, Copy)]
pub struct Route {
    pub verb: Verb,
    /// The axum path, with `{name}` captures.
    pub path: &'static str,
    pub access: Access,
    /// The endpoint, registered for exactly `verb` (the router passes it in).
    endpoint: fn(MethodFilter) -> MethodRouter<App>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({:?})", self.verb.as_str(), self.path, self.access)
    }
}

impl Route {
    /// The endpoint, answering only `verb`.
    pub(super) fn endpoint(&self) -> MethodRouter<App> {
        (self.endpoint)(self.verb.filter())
    }
}

const fn route(
    verb: Verb,
    path: &'static str,
    access: Access,
    endpoint: fn(MethodFilter) -> MethodRouter<App>,
) -> Route {
    Route {
        verb,
        path,
        access,
        endpoint,
    }
}

use Access::{Dashboard, Open, SignIn, Token};
use Verb::{Delete, Get, Patch, Post};

/// Every route the API serves; anything else is answered `404 not_found`.
pub const ROUTES: &[Route] = &[
    route(Get, "/healthz", Open, |m| on(m, api::healthz)),
    route(Post, "/webhooks/{source}", Open, |m| on(m, ingest::post_webhook)),
    route(Post, "/events", Token, |m| on(m, ingest::post_events)),
    route(Get, "/events", Token, |m| on(m, api::events::list)),
    route(Get, "/events/{id}", Token, |m| on(m, api::events::show)),
    route(Patch, "/events/{id}", Token, |m| on(m, api::events::edit)),
    route(Delete, "/events/{id}", Token, |m| on(m, api::events::delete)),
    route(Post, "/events/{id}/redact", Token, |m| on(m, api::events::redact)),
    route(Post, "/events-bulk/delete", Token, |m| on(m, api::bulk::delete)),
    route(Post, "/events-bulk/redact", Token, |m| on(m, api::bulk::redact)),
    route(Get, "/deliveries", Token, |m| on(m, api::deliveries::list)),
    route(Get, "/deliveries/{id}", Token, |m| on(m, api::deliveries::show)),
    route(Post, "/deliveries/{id}/replay", Token, |m| {
        on(m, api::replays::replay_one)
    }),
    route(Post, "/deliveries/{id}/skip", Token, |m| on(m, api::replays::skip)),
    route(Post, "/replays", Token, |m| on(m, api::replays::start)),
    route(Get, "/replays/{id}", Token, |m| on(m, api::replays::show)),
    route(Delete, "/replays/{id}", Token, |m| on(m, api::replays::cancel)),
    route(Get, "/audit", Token, |m| on(m, api::replays::audit)),
    route(Get, "/handlers", Token, |m| on(m, api::handlers)),
    route(Get, "/limits", Token, |m| on(m, api::limits)),
    route(Get, "/metrics", Token, |m| on(m, api::metrics)),
    route(Get, "/ui/login", SignIn, |m| on(m, dashboard::login_form)),
    route(Post, "/ui/login", SignIn, |m| on(m, dashboard::login)),
    route(Get, "/ui/assets/{name}", SignIn, |m| on(m, dashboard::asset)),
    route(Post, "/ui/logout", Dashboard, |m| on(m, dashboard::logout)),
    route(Get, "/ui", Dashboard, |m| on(m, dashboard::overview)),
    route(Get, "/ui/events", Dashboard, |m| on(m, dashboard::events)),
    route(Get, "/ui/events/{id}", Dashboard, |m| on(m, dashboard::event)),
    route(Get, "/ui/events/{id}/edit", Dashboard, |m| on(m, dashboard::edit_form)),
    route(Post, "/ui/events/{id}/edit", Dashboard, |m| on(m, dashboard::edit)),
    route(Post, "/ui/events/{id}/redact", Dashboard, |m| on(m, dashboard::redact)),
    route(Get, "/ui/events/{id}/delete", Dashboard, |m| {
        on(m, dashboard::delete_form)
    }),
    route(Post, "/ui/events/{id}/delete", Dashboard, |m| on(m, dashboard::delete)),
    route(Get, "/ui/deliveries", Dashboard, |m| on(m, dashboard::deliveries)),
    route(Get, "/ui/deliveries/{id}", Dashboard, |m| on(m, dashboard::delivery)),
    route(Post, "/ui/deliveries/{id}/replay", Dashboard, |m| {
        on(m, dashboard::replay_one)
    }),
    route(Post, "/ui/deliveries/{id}/skip", Dashboard, |m| {
        on(m, dashboard::skip_one)
    }),
    route(Get, "/ui/replay", Dashboard, |m| on(m, dashboard::preview_replay)),
    route(Post, "/ui/replay", Dashboard, |m| on(m, dashboard::start_replay)),
    route(Get, "/ui/jobs/{id}", Dashboard, |m| on(m, dashboard::job)),
    route(Post, "/ui/jobs/{id}/cancel", Dashboard, |m| {
        on(m, dashboard::cancel_job)
    }),
    route(Get, "/ui/handlers", Dashboard, |m| on(m, dashboard::handlers)),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_and_path_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for route in ROUTES {
            assert!(seen.insert((route.verb, route.path)), "{route:?} is listed twice");
        }
    }

    #[test]
    fn only_health_checks_and_webhooks_are_open() {
        let open: Vec<&str> = ROUTES.iter().filter(|r| r.access == Open).map(|r| r.path).collect();
        assert_eq!(open, ["/healthz", "/webhooks/{source}"]);
    }
}
