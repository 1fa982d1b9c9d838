//! Which proxied requests become events, and what they are called: `PATCH /accounts/1`
//! is `accounts.patch` with `params: { id: "1" }`.
//!
//! Without a template, path segments alternate between collection and id (`/accounts/1/
//! members/7` is `accounts.members`, params `{ accounts_id: "1", id: "7" }`). Templates in
//! `[proxy.resources]` name anything else; include/exclude patterns choose the paths.

use serde_json::{Map, Value};

use crate::config::ProxyConfig;
use crate::event::validate_type;

/// A request the proxy records.
#[derive(Debug, PartialEq)]
pub struct Named {
    /// The event type, `<resource>.<method>`.
    pub kind: String,
    pub params: Map<String, Value>,
}

/// The compiled `[proxy]` path rules.
#[derive(Debug, Clone)]
pub struct PathRules {
    include: Vec<Vec<String>>,
    exclude: Vec<Vec<String>>,
    strip_prefix: Vec<String>,
    resources: Vec<(Vec<String>, String)>,
}

fn segments(path: &str) -> Vec<String> {
    path.split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

impl PathRules {
    pub fn new(config: &ProxyConfig) -> Self {
        let mut resources: Vec<(Vec<String>, String)> = config
            .resources
            .iter()
            .map(|(template, name)| (segments(template), name.clone()))
            .collect();
        // More literal segments first, so "/accounts/me" beats "/accounts/{id}".
        resources.sort_by_key(|(t, _)| std::cmp::Reverse(t.iter().filter(|s| !is_capture(s)).count()));
        Self {
            include: config.include.iter().map(|p| segments(p)).collect(),
            exclude: config.exclude.iter().map(|p| segments(p)).collect(),
            strip_prefix: segments(&config.strip_prefix),
            resources,
        }
    }

    /// The event for a write request to `path`, or `None` when it is not recorded.
    pub fn name(&self, method: &str, path: &str) -> Option<Named> {
        let method = method.to_ascii_lowercase();
        if !matches!(method.as_str(), "post" | "put" | "patch" | "delete") {
            return None;
        }
        let all = segments(path);
        let included = self.include.is_empty() || self.include.iter().any(|p| glob(p, &all));
        if !included || self.exclude.iter().any(|p| glob(p, &all)) {
            return None;
        }
        let rest = all.strip_prefix(self.strip_prefix.as_slice())?;
        let (resource, params) = self
            .resources
            .iter()
            .find_map(|(template, name)| capture(template, rest).map(|params| (name.clone(), params)))
            .or_else(|| alternating(rest))?;
        let kind = format!("{resource}.{method}");
        // Every part is a valid segment, but together they can pass the type's length limit;
        // such a write is forwarded unrecorded, like any other path that cannot be named.
        validate_type(&kind).ok()?;
        Some(Named { kind, params })
    }
}

fn is_capture(segment: &str) -> bool {
    segment.len() > 2 && segment.starts_with('{') && segment.ends_with('}')
}

/// `*` matches one segment, `**` any number (none included).
///
/// Only the latest `**` is ever retried: whatever an earlier one could have absorbed, the
/// latest can too. Retrying every `**` at every length instead costs path length to the
/// power of their number, and the path is the client's to choose.
fn glob(pattern: &[String], path: &[String]) -> bool {
    let (mut p, mut s) = (0, 0);
    // After the latest `**`: the pattern index that follows it, and the path index it
    // currently stops at.
    let mut retry: Option<(usize, usize)> = None;
    while s < path.len() {
        match pattern.get(p) {
            Some(segment) if segment == "**" => {
                retry = Some((p + 1, s));
                p += 1;
            }
            Some(segment) if segment == "*" || *segment == path[s] => {
                p += 1;
                s += 1;
            }
            _ => match retry {
                Some((after, stop)) => {
                    retry = Some((after, stop + 1));
                    (p, s) = (after, stop + 1);
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|segment| segment == "**")
}

fn capture(template: &[String], path: &[String]) -> Option<Map<String, Value>> {
    if template.len() != path.len() {
        return None;
    }
    let mut params = Map::new();
    for (t, p) in template.iter().zip(path) {
        if is_capture(t) {
            params.insert(t[1..t.len() - 1].to_owned(), decoded(p));
        } else if t != p {
            return None;
        }
    }
    Some(params)
}

fn alternating(path: &[String]) -> Option<(String, Map<String, Value>)> {
    let mut names = Vec::new();
    let mut params = Map::new();
    for pair in path.chunks(2) {
        let collection = type_segment(&pair[0])?;
        if let Some(id) = pair.get(1) {
            params.insert(format!("{collection}_id"), decoded(id));
        }
        names.push(collection);
    }
    // The id of the resource acted on is plain `id`.
    if path.len().is_multiple_of(2)
        && let Some(last) = names.last()
        && let Some(id) = params.remove(&format!("{last}_id"))
    {
        params.insert("id".into(), id);
    }
    (!names.is_empty()).then(|| (names.join("."), params))
}

/// Ids as the API sees them: `/users/a%40b` has id `a@b`.
fn decoded(segment: &str) -> Value {
    Value::String(
        percent_encoding::percent_decode_str(segment)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// A path segment as an event type segment: letters, digits, `_` and `-`, lower case.
fn type_segment(segment: &str) -> Option<String> {
    let ok = !segment.is_empty()
        && segment.len() <= 64
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then(|| segment.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(toml: &str) -> PathRules {
        let config: ProxyConfig = toml::from_str(&format!("upstream = \"http://127.0.0.1:1\"\n{toml}")).unwrap();
        PathRules::new(&config)
    }

    fn named(rules: &PathRules, method: &str, path: &str) -> Option<(String, Value)> {
        rules.name(method, path).map(|n| (n.kind, Value::Object(n.params)))
    }

    #[test]
    fn collections_and_ids_alternate() {
        let r = rules("");
        assert_eq!(
            named(&r, "PATCH", "/accounts/1"),
            Some(("accounts.patch".into(), json!({"id": "1"})))
        );
        assert_eq!(
            named(&r, "POST", "/accounts"),
            Some(("accounts.post".into(), json!({})))
        );
        assert_eq!(
            named(&r, "DELETE", "/accounts/1/members/7"),
            Some(("accounts.members.delete".into(), json!({"accounts_id": "1", "id": "7"})))
        );
        assert_eq!(
            named(&r, "POST", "/accounts/1/Archive"),
            Some(("accounts.archive.post".into(), json!({"accounts_id": "1"})))
        );
    }

    #[test]
    fn reads_and_unnameable_paths_are_not_recorded() {
        let r = rules("");
        assert_eq!(named(&r, "GET", "/accounts/1"), None);
        assert_eq!(named(&r, "OPTIONS", "/accounts"), None);
        assert_eq!(named(&r, "POST", "/"), None);
        assert_eq!(named(&r, "POST", "/a%20b/1"), None);
        assert_eq!(named(&r, "PUT", "/users/a%40b").unwrap().1, json!({"id": "a@b"}));
    }

    #[test]
    fn include_exclude_and_prefix() {
        let r = rules("include = [\"/api/**\"]\nexclude = [\"/api/v1/sessions/**\"]\nstrip_prefix = \"/api/v1\"");
        assert_eq!(named(&r, "PUT", "/api/v1/users/u1").unwrap().0, "users.put");
        assert_eq!(named(&r, "POST", "/api/v1/sessions"), None);
        assert_eq!(named(&r, "POST", "/api/v1/sessions/x/refresh"), None);
        assert_eq!(named(&r, "POST", "/health"), None);
        assert_eq!(named(&r, "POST", "/api/v2/users"), None, "outside the prefix");
    }

    #[test]
    fn templates_name_what_alternation_cannot() {
        let r =
            rules("[resources]\n\"/orgs/{org}/members/{user}\" = \"members\"\n\"/orgs/{org}/members/me\" = \"self\"");
        assert_eq!(
            named(&r, "PATCH", "/orgs/acme/members/u9"),
            Some(("members.patch".into(), json!({"org": "acme", "user": "u9"})))
        );
        assert_eq!(named(&r, "PATCH", "/orgs/acme/members/me").unwrap().0, "self.patch");
        assert_eq!(named(&r, "PATCH", "/orgs/acme").unwrap().0, "orgs.patch");
    }

    #[test]
    fn names_longer_than_an_event_type_are_not_recorded() {
        let r = rules("");
        // Found by fuzzing (tests/fuzz, target proxy_naming): every collection is a valid
        // segment, but their joined name ran past the 200 characters of an event type.
        let found = "/o--------felflfflfelflflflfs/e/member---------Lelf-s---------Lelf-elflfelflfflfelflfs/e/\
                     member---------Lelf-s-------Lelf--Leflfelflfflfelflflflfs/e/member---------Lelf-s-------\
                     Lelf--Lelflfelflfflfelflf";
        assert_eq!(named(&r, "PATCH", found), None);
        let segment = "a".repeat(48);
        let path = |last: usize| format!("/{segment}/1/{segment}/2/{segment}/3/{}", "d".repeat(last));
        assert_eq!(named(&r, "POST", &path(48)).unwrap().0.len(), 200);
        assert_eq!(named(&r, "POST", &path(49)), None);
        let long_name = rules(&format!("[resources]\n\"/x\" = \"{}\"", "a".repeat(196)));
        assert_eq!(named(&long_name, "PUT", "/x").unwrap().0.len(), 200);
        assert_eq!(named(&long_name, "POST", "/x"), None);
    }

    #[test]
    fn glob_rules() {
        let s = |p: &str| segments(p);
        assert!(glob(&s("/**"), &s("/")));
        assert!(glob(&s("/a/*/c"), &s("/a/b/c")));
        assert!(!glob(&s("/a/*/c"), &s("/a/c")));
        assert!(glob(&s("/a/**/c"), &s("/a/c")));
        assert!(glob(&s("/a/**/c"), &s("/a/x/y/c")));
        assert!(glob(&s("/a/**/c/**/c"), &s("/a/c/x/c/c")));
        assert!(!glob(&s("/a/**/c/*"), &s("/a/c")));
        assert!(glob(&s("/**/*/**"), &s("/a")));
        assert!(!glob(&s("/a/**"), &s("/b/a")));
        assert!(!glob(&s("/a/b"), &s("/a/b/c")));
    }

    #[test]
    fn glob_time_follows_the_path_not_a_power_of_it() {
        let s = |p: &str| segments(p);
        // Retrying every `**` took over a minute for these six against 80 segments.
        let pattern = s(&format!("{}/z", "/**".repeat(6)));
        let path = "/a".repeat(2000);
        assert!(!glob(&pattern, &s(&path)));
        assert!(glob(&pattern, &s(&format!("{path}/z"))));
    }

    #[test]
    fn collections_are_letters_digits_underscores_and_hyphens_up_to_64() {
        assert_eq!(type_segment("Line_Items-2"), Some("line_items-2".to_owned()));
        assert_eq!(type_segment(&"a".repeat(64)), Some("a".repeat(64)));
        for bad in ["", "a b", "a.b", "a%20b", "\u{fc}", &"a".repeat(65)] {
            assert_eq!(type_segment(bad), None, "{bad:?}");
        }
        let r = rules("");
        assert_eq!(
            named(&r, "POST", "/line_items/1/sub-items").unwrap().0,
            "line_items.sub-items.post"
        );
        assert_eq!(named(&r, "POST", &format!("/{}", "a".repeat(65))), None);
    }

    #[test]
    fn a_capture_is_a_whole_braced_segment_with_a_name() {
        let r = rules("[resources]\n\"/a/{}\" = \"empty\"\n\"/b/c}\" = \"open\"\n\"/c/{d\" = \"close\"");
        // None of these templates captures: each matches its odd segment literally.
        for (path, kind) in [
            ("/a/1", "a.put"),
            ("/b/1", "b.put"),
            ("/c/1", "c.put"),
            ("/a/{}", "empty.put"),
            ("/b/c}", "open.put"),
            ("/c/{d", "close.put"),
        ] {
            assert_eq!(named(&r, "PUT", path).map(|n| n.0), Some(kind.to_owned()), "{path}");
        }
    }
}
