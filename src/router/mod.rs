//! The router: which handlers an event goes to.
//!
//! Owns handler ids' routing rules (a handler's default route from its path, or the patterns of
//! its `on` export), the [`RoutingTable`] from handler ids to patterns, and handler discovery
//! ([`discover`], the only part that touches the file system). The table and [`pattern`] are pure
//! and do no IO. The router must not load or run handlers, queue deliveries or decide what happens
//! to unrouted events: [`RoutingTable::route`] returns an empty list and the caller decides.

mod discover;
mod pattern;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

pub use discover::{HandlerFile, Stamp, discover, discover_with_skipped, handler_id, helper_stamps, not_loaded_reason};
pub use pattern::Pattern;

use crate::event;

/// Errors of routing patterns, handler ids, `on` exports and handler discovery.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RouterError {
    #[error("invalid pattern {pattern:?}: {reason}")]
    Pattern { pattern: String, reason: &'static str },
    #[error("invalid handler id {id:?}: {reason}")]
    HandlerId { id: String, reason: &'static str },
    #[error("handler {id:?} cannot be routed by its path: {reason}")]
    HandlerPath { id: String, reason: String },
    #[error("handler {0:?} has no patterns")]
    NoPatterns(String),
    #[error("invalid `on` export: {0}")]
    Export(String),
    #[error("handlers folder {} does not exist", .0.display())]
    MissingRoot(PathBuf),
    #[error("handlers folder {} is not a folder", .0.display())]
    NotAFolder(PathBuf),
    #[error("cannot read {}: {detail}", .path.display())]
    Io { path: PathBuf, detail: String },
    #[error("{} has a name that is not valid UTF-8, so it cannot be a handler", .0.display())]
    NotUtf8(PathBuf),
    #[error("{} is nested more than {max} folders deep (a symlink loop?)", .path.display())]
    TooDeep { path: PathBuf, max: usize },
}

/// Where a handler's patterns come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routes {
    /// No `on` export: the handler's path gives its one event type (see [`route_from_path`]).
    FromPath,
    /// The patterns of the handler's `on` export.
    Patterns(Vec<Pattern>),
}

/// The default route of a handler id, from its path: "accounts.patch" -> exactly type "accounts.patch";
/// "accounts.patch/crm" -> exactly "accounts.patch". Errors if the type part is not a valid event type
/// or the id is nested deeper than one folder ("a/b/c"): such handlers must export `on`.
pub fn route_from_path(handler_id: &str) -> Result<Pattern, RouterError> {
    check_id(handler_id)?;
    let bad = |reason: String| RouterError::HandlerPath {
        id: handler_id.to_owned(),
        reason,
    };
    let parts: Vec<&str> = handler_id.split('/').collect();
    if parts.len() > 2 {
        return Err(bad(format!(
            "it is nested {} folders deep; only handlers/<type>.js and handlers/<type>/<name>.js take \
             their event type from their path, others must export `on`",
            parts.len() - 1
        )));
    }
    let kind = parts[0];
    event::validate_type(kind).map_err(|e| {
        bad(format!(
            "{kind:?} is not a valid event type: {}",
            pattern::type_reason(&e)
        ))
    })?;
    Pattern::parse(kind)
}

/// Parses the JSON form of a module's `on` export: absent/null -> [`Routes::FromPath`], a string or
/// a non-empty array of strings -> [`Routes::Patterns`] (in the order given); anything else -> error.
pub fn routes_from_export(on: Option<&Value>) -> Result<Routes, RouterError> {
    let items = match on {
        None | Some(Value::Null) => return Ok(Routes::FromPath),
        Some(Value::String(text)) => return Ok(Routes::Patterns(vec![Pattern::parse(text)?])),
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(RouterError::Export("`on` is an empty array".into()));
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(RouterError::Export(format!(
                "`on` must be a pattern string or an array of them, not {}",
                json_kind(other)
            )));
        }
    };
    let mut patterns = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::String(text) = item else {
            return Err(RouterError::Export(format!(
                "`on[{i}]` must be a pattern string, not {}",
                json_kind(item)
            )));
        };
        patterns.push(Pattern::parse(text)?);
    }
    Ok(Routes::Patterns(patterns))
}

/// The routing table: handler id -> patterns. Pure; cheap to rebuild on every reload.
#[derive(Debug, Clone, Default)]
pub struct RoutingTable {
    /// Sorted by id, so [`RoutingTable::route`] comes out sorted without duplicates.
    routes: BTreeMap<String, Vec<Pattern>>,
}

impl RoutingTable {
    /// An empty table: every event is unrouted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or replaces) the routes of handler `id`; `routes` = FromPath uses [`route_from_path`]`(id)`.
    /// On error the table is unchanged (a previous route of `id` stays until [`RoutingTable::remove`]).
    pub fn set(&mut self, id: &str, routes: Routes) -> Result<(), RouterError> {
        self.routes.insert(id.to_owned(), resolve(id, routes)?);
        Ok(())
    }

    /// Removes handler `id`, if present.
    pub fn remove(&mut self, id: &str) {
        self.routes.remove(id);
    }

    /// Ids of every handler matching `event_type`, sorted, no duplicates. Empty when the event is
    /// unrouted.
    pub fn route(&self, event_type: &str) -> Vec<String> {
        self.routes
            .iter()
            .filter(|(_, patterns)| patterns.iter().any(|p| p.matches(event_type)))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The patterns of handler `id`, in the order they were set.
    pub fn patterns(&self, id: &str) -> Option<&[Pattern]> {
        self.routes.get(id).map(Vec::as_slice)
    }

    /// Every handler id in the table, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }
}

/// A table of handlers whose patterns came from [`resolve`], so each id is valid and has some.
impl FromIterator<(String, Vec<Pattern>)> for RoutingTable {
    fn from_iter<I: IntoIterator<Item = (String, Vec<Pattern>)>>(iter: I) -> Self {
        Self {
            routes: iter.into_iter().collect(),
        }
    }
}

/// The patterns handler `id` is routed by: `routes` = FromPath gives [`route_from_path`]`(id)`.
/// Errors on an invalid id, or on no patterns.
pub fn resolve(id: &str, routes: Routes) -> Result<Vec<Pattern>, RouterError> {
    check_id(id)?;
    match routes {
        Routes::FromPath => Ok(vec![route_from_path(id)?]),
        Routes::Patterns(patterns) if patterns.is_empty() => Err(RouterError::NoPatterns(id.to_owned())),
        Routes::Patterns(patterns) => Ok(patterns),
    }
}

/// Checks the shape every handler id has: `/`-separated names, none empty, none a helper's.
fn check_id(id: &str) -> Result<(), RouterError> {
    let bad = |reason| {
        Err(RouterError::HandlerId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("it is empty");
    }
    if id.contains('\\') {
        return bad("it must use '/' as separator");
    }
    for name in id.split('/') {
        if name.is_empty() {
            return bad("it has an empty path segment");
        }
        if name.starts_with('_') || name.starts_with('.') {
            return bad("names starting with '_' or '.' are helpers, not handlers");
        }
    }
    Ok(())
}

/// A JSON value's kind, for error messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text).unwrap()
    }

    fn patterns(texts: &[&str]) -> Routes {
        Routes::Patterns(texts.iter().map(|t| pattern(t)).collect())
    }

    #[test]
    fn route_from_path_takes_the_type_from_the_file_or_folder() {
        for (id, expected) in [
            ("accounts.patch", "accounts.patch"),
            ("accounts.patch/crm", "accounts.patch"),
            ("github.pull_request/notify", "github.pull_request"),
            ("a", "a"),
            ("user-signup/welcome.mail", "user-signup"),
        ] {
            assert_eq!(route_from_path(id), Ok(pattern(expected)), "{id}");
        }
    }

    #[test]
    fn route_from_path_rejects_deep_or_invalid_paths() {
        let err = route_from_path("a/b/c").unwrap_err();
        assert!(matches!(err, RouterError::HandlerPath { ref id, .. } if id == "a/b/c"));
        let text = err.to_string();
        assert!(
            text.contains("nested 2 folders deep") && text.contains("export `on`"),
            "{text}"
        );

        let err = route_from_path("user signup").unwrap_err().to_string();
        assert!(err.contains("\"user signup\" is not a valid event type"), "{err}");
        assert!(route_from_path("a..b/x").is_err());
        assert!(route_from_path(&"a".repeat(201)).is_err());
        assert!(route_from_path("github.*").is_err(), "a path never holds a wildcard");

        for bad in ["", "a/", "/a", "a//b", "_lib/x", "a/_helper", ".hidden", "a\\b"] {
            assert!(
                matches!(route_from_path(bad), Err(RouterError::HandlerId { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn routes_from_export_accepts_absent_strings_and_arrays() {
        assert_eq!(routes_from_export(None), Ok(Routes::FromPath));
        assert_eq!(routes_from_export(Some(&json!(null))), Ok(Routes::FromPath));
        assert_eq!(
            routes_from_export(Some(&json!("github.pull_request.*"))),
            Ok(patterns(&["github.pull_request.*"]))
        );
        assert_eq!(
            routes_from_export(Some(&json!(["a.**", "b"]))),
            Ok(patterns(&["a.**", "b"]))
        );
    }

    #[test]
    fn routes_from_export_rejects_other_shapes() {
        for (value, message) in [
            (json!([]), "invalid `on` export: `on` is an empty array"),
            (
                json!(3),
                "invalid `on` export: `on` must be a pattern string or an array of them, not a number",
            ),
            (
                json!({"type": "a"}),
                "invalid `on` export: `on` must be a pattern string or an array of them, not an object",
            ),
            (
                json!(["a", 1]),
                "invalid `on` export: `on[1]` must be a pattern string, not a number",
            ),
            (
                json!(["a", null]),
                "invalid `on` export: `on[1]` must be a pattern string, not null",
            ),
            (json!("a..b"), "invalid pattern \"a..b\": it has an empty segment"),
            (
                json!(["a", "b*"]),
                "invalid pattern \"b*\": '*' and '**' must be a whole segment, not part of one",
            ),
        ] {
            let err = routes_from_export(Some(&value)).unwrap_err();
            assert_eq!(err.to_string(), message, "{value}");
        }
    }

    #[test]
    fn several_handlers_on_one_type_each_get_the_event() {
        let mut table = RoutingTable::new();
        table.set("accounts.patch", Routes::FromPath).unwrap();
        table.set("accounts.patch/crm", Routes::FromPath).unwrap();
        table.set("audit", patterns(&["**"])).unwrap();
        table.set("other", patterns(&["accounts.*.x"])).unwrap();
        assert_eq!(
            table.route("accounts.patch"),
            ["accounts.patch", "accounts.patch/crm", "audit"]
        );
        assert_eq!(table.route("nothing.here"), ["audit"]);
        table.remove("audit");
        assert!(table.route("nothing.here").is_empty(), "unrouted");
        assert_eq!(
            table.ids().collect::<Vec<_>>(),
            ["accounts.patch", "accounts.patch/crm", "other"]
        );
    }

    #[test]
    fn a_handler_matching_by_several_patterns_is_routed_once() {
        let mut table = RoutingTable::new();
        table
            .set(
                "gh/notify",
                patterns(&[
                    "github.*.opened",
                    "github.pull_request.**",
                    "github.pull_request.opened",
                ]),
            )
            .unwrap();
        assert_eq!(table.route("github.pull_request.opened"), ["gh/notify"]);
        assert_eq!(table.patterns("gh/notify").map(<[Pattern]>::len), Some(3));
    }

    #[test]
    fn set_replaces_and_errors_leave_the_table_unchanged() {
        let mut table = RoutingTable::new();
        table.set("h", patterns(&["a"])).unwrap();
        table.set("h", patterns(&["b"])).unwrap();
        assert!(table.route("a").is_empty());
        assert_eq!(table.route("b"), ["h"]);
        assert_eq!(table.patterns("h"), Some(&[pattern("b")][..]));

        assert_eq!(
            table.set("h", Routes::Patterns(vec![])),
            Err(RouterError::NoPatterns("h".into()))
        );
        assert!(table.set("x/y/z", Routes::FromPath).is_err());
        assert!(table.set("_lib/x", patterns(&["a"])).is_err());
        assert_eq!(table.route("b"), ["h"]);
        assert_eq!(table.ids().collect::<Vec<_>>(), ["h"]);
        assert_eq!(table.patterns("x/y/z"), None);

        table.set("x/y/z", patterns(&["c"])).unwrap();
        assert_eq!(table.route("c"), ["x/y/z"], "deep handlers route by their `on` export");
        table.remove("missing");
        table.remove("h");
        assert_eq!(table.patterns("h"), None);
    }
}
