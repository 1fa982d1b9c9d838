//! What changed between two versions of an event's data, field by field, for its history.

use maud::{Markup, html};
use serde_json::Value;

/// One field that differs.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Added(Value),
    Removed(Value),
    Changed { before: Value, after: Value },
}

/// The fields that differ from `old` to `new`, as paths under `data` (`data.a.b`,
/// `data.items[2]`), in the old data's order, added fields last. Objects are compared key by key and arrays of the
/// same length item by item; anything else that differs is one change.
pub fn changes(old: &Value, new: &Value) -> Vec<(String, Change)> {
    let mut out = Vec::new();
    walk("data", old, new, &mut out);
    out
}

fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<(String, Change)>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, before) in a {
                match b.get(key) {
                    Some(after) => walk(&format!("{path}.{key}"), before, after, out),
                    None => out.push((format!("{path}.{key}"), Change::Removed(before.clone()))),
                }
            }
            for (key, after) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                out.push((format!("{path}.{key}"), Change::Added(after.clone())));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (before, after)) in a.iter().zip(b).enumerate() {
                walk(&format!("{path}[{i}]"), before, after, out);
            }
        }
        (a, b) if a != b => out.push((
            path.to_owned(),
            Change::Changed {
                before: a.clone(),
                after: b.clone(),
            },
        )),
        _ => {}
    }
}

/// The changes as a table of field, before and after.
pub fn table(changes: &[(String, Change)]) -> Markup {
    let compact = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    html! {
        @if changes.is_empty() {
            p.muted { "No field changed." }
        } @else {
            table.diff {
                thead { tr { th { "field" } th { "before" } th { "after" } } }
                tbody {
                    @for (path, change) in changes {
                        tr {
                            td { code { (path) } }
                            @match change {
                                Change::Added(after) => { td.absent { "(none)" } td.added { code { (compact(after)) } } }
                                Change::Removed(before) => { td.removed { code { (compact(before)) } } td.absent { "(none)" } }
                                Change::Changed { before, after } => {
                                    td.removed { code { (compact(before)) } }
                                    td.added { code { (compact(after)) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_added_removed_and_changed_are_named_by_path() {
        let old = json!({"email": "a@x", "plan": {"tier": "free", "seats": 1}, "tags": ["a", "b"], "gone": 1});
        let new = json!({"email": "b@x", "plan": {"tier": "free", "seats": 5}, "tags": ["a", "c"], "new": true});
        let found = changes(&old, &new);
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["data.email", "data.plan.seats", "data.tags[1]", "data.gone", "data.new"]
        );
        assert_eq!(found[3].1, Change::Removed(json!(1)));
        assert_eq!(found[4].1, Change::Added(json!(true)));
        assert!(changes(&old, &old).is_empty());
        // Arrays of another length, or another kind of value, change as a whole.
        let whole = changes(&json!({"t": [1]}), &json!({"t": [1, 2]}));
        assert_eq!(
            whole,
            [(
                "data.t".to_owned(),
                Change::Changed {
                    before: json!([1]),
                    after: json!([1, 2])
                }
            )]
        );
        let html = table(&found).into_string();
        assert!(
            html.contains("data.plan.seats") && html.contains(r#"<td class="added"><code>5</code>"#),
            "{html}"
        );
    }
}
