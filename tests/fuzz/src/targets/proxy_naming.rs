//! The proxy's path naming: which requests become events and what they are called, under
//! arbitrary `[proxy]` rules, for arbitrary methods and paths.
//!
//! Input: two parameter lines, the method and the request path, then rule lines:
//! `include: /api/**`, `exclude: /api/v1/sessions/**`, `strip: /api/v1` and
//! `resource: /orgs/{org}/members/{user} = members`; rules eddy.toml would refuse (a pattern
//! not starting with `/`, a resource name that is not an event type) are left out, as config
//! validation leaves them out of a running proxy. Beyond "no panic": only writes are named,
//! and every name is `<resource>.<method>` and a valid event type.

use crate::Input;
use eddy::config::ProxyConfig;
use eddy::event::validate_type;
use eddy::ingest::proxy::PathRules;

/// One input: returns normally, or panics with what went wrong.
pub fn check(data: &[u8]) {
    let input = Input::parse(data, 2);
    let (Some(method), Some(path)) = (input.param_str(0), input.param_str(1)) else {
        return;
    };
    let rules = PathRules::new(&config(&input));
    let Some(named) = rules.name(method, path) else {
        return;
    };
    let method = method.to_ascii_lowercase();
    assert!(
        matches!(method.as_str(), "post" | "put" | "patch" | "delete"),
        "named a {method}"
    );
    assert!(named.kind.ends_with(&format!(".{method}")), "{:?}", named.kind);
    assert!(
        validate_type(&named.kind).is_ok(),
        "{method} {path:?} is named {:?}, not a valid event type",
        named.kind
    );
    assert!(named.params.values().all(serde_json::Value::is_string));
}

/// The `[proxy]` rules the input's rule lines describe.
fn config(input: &Input) -> ProxyConfig {
    let mut config = ProxyConfig::default();
    for (rule, value) in &input.header_lines {
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        match *rule {
            b"include" if value.starts_with('/') => config.include.push(value.to_owned()),
            b"exclude" if value.starts_with('/') => config.exclude.push(value.to_owned()),
            b"strip" => config.strip_prefix = value.to_owned(),
            b"resource" => {
                if let Some((template, name)) = value.split_once(" = ")
                    && template.starts_with('/')
                    && validate_type(name).is_ok()
                {
                    config.resources.insert(template.to_owned(), name.to_owned());
                }
            }
            _ => {}
        }
    }
    config
}
