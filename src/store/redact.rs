//! Redaction: removing fields (or the whole payload) of an event, from its current data, its
//! history, and every copy eddy captured of them (attempt logs, fetch records, errors), in
//! the forms a handler writes them in: as written, percent-encoded (a fetch URL) and
//! JSON-escaped (a logged `JSON.stringify`), found as secrets are ([`ValueForms`]).

use eddy_runtime_js::ValueForms;
use serde_json::Value;

use super::records::{AttemptRecord, EventVersion};
use super::{Store, StoreError, codec, keys};

/// What replaces a removed value wherever eddy captured a copy of it.
pub const REDACTED: &str = "[redacted]";

/// Shortest removed text scrubbed from captured output; shorter values would shred ordinary
/// text (they are still removed from the event and its history).
const MIN_SCRUB_LEN: usize = 3;

impl Store {
    /// Removes `fields` (`data.a.b` paths), or the whole payload when `fields` is None, from
    /// event `id`. False if there is no such event.
    pub fn redact_event(&self, id: &str, fields: Option<&[String]>, now_ms: u64) -> Result<bool, StoreError> {
        self.write(|| {
            let Some(mut record) = self.event(id)? else {
                return Ok(false);
            };
            let mut removed = Vec::new();
            remove(&mut record.event.data, fields, &mut removed);
            for item in keys::numbered(&self.trees.history, id) {
                let (key, raw) = item?;
                let mut version: EventVersion = codec::decode(keys::EVENT_VERSION_V1, &raw)?;
                remove(&mut version.data, fields, &mut removed);
                self.trees
                    .history
                    .insert(key, codec::encode(keys::EVENT_VERSION_V1, &version)?)?;
            }
            let texts = scrub_texts(&removed);
            let texts = ValueForms::new(&texts.iter().map(String::as_str).collect::<Vec<_>>());
            for delivery_id in &record.deliveries {
                self.scrub_delivery(delivery_id, &texts)?;
            }
            record
                .redacted
                .extend(fields.map_or_else(|| vec!["data".to_owned()], <[String]>::to_vec));
            record.redacted_ms = Some(now_ms);
            self.trees
                .events
                .insert(id.as_bytes(), codec::encode(keys::EVENT_RECORD_V1, &record)?)?;
            Ok(true)
        })
    }

    fn scrub_delivery(&self, id: &str, texts: &ValueForms) -> Result<(), StoreError> {
        for item in keys::numbered(&self.trees.attempts, id) {
            let (key, raw) = item?;
            let mut attempt: AttemptRecord = codec::decode(keys::ATTEMPT_RECORD_V1, &raw)?;
            scrub(&mut attempt.report, texts);
            self.trees
                .attempts
                .insert(key, codec::encode(keys::ATTEMPT_RECORD_V1, &attempt)?)?;
        }
        self.update_delivery(id, |delivery| {
            Ok(delivery.last_error.as_mut().map(|error| {
                *error = scrub_text(error, texts);
            }))
        })?;
        Ok(())
    }
}

/// Removes the paths (or everything) from `data`, collecting what was removed.
fn remove(data: &mut Value, fields: Option<&[String]>, removed: &mut Vec<Value>) {
    let Some(fields) = fields else {
        removed.push(std::mem::take(data));
        return;
    };
    for field in fields {
        let keys: Vec<&str> = field.split('.').skip(1).collect();
        if let Some(value) = remove_path(data, &keys) {
            removed.push(value);
        }
    }
}

/// Removes the value at `keys` (object members) from `node`.
fn remove_path(node: &mut Value, keys: &[&str]) -> Option<Value> {
    match keys {
        [] => None,
        [last] => node.as_object_mut()?.remove(*last),
        [first, rest @ ..] => remove_path(node.get_mut(*first)?, rest),
    }
}

/// Every string and number inside the removed values.
fn scrub_texts(removed: &[Value]) -> Vec<String> {
    fn collect(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Number(n) => out.push(n.to_string()),
            Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            Value::Object(map) => map.values().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    removed.iter().for_each(|v| collect(v, &mut out));
    out.retain(|t| t.len() >= MIN_SCRUB_LEN);
    out
}

fn scrub(value: &mut Value, texts: &ValueForms) {
    match value {
        Value::String(s) => *s = scrub_text(s, texts),
        Value::Array(items) => items.iter_mut().for_each(|v| scrub(v, texts)),
        Value::Object(map) => map.values_mut().for_each(|v| scrub(v, texts)),
        _ => {}
    }
}

fn scrub_text(text: &str, texts: &ValueForms) -> String {
    texts.replace(text, REDACTED).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::store::{NewEvent, NextStep};
    use serde_json::json;

    #[test]
    fn fields_leave_the_event_its_history_and_captured_output() {
        let store = Store::temporary().unwrap();
        let data = json!({"email": "ada@example.com", "phone": "+44 20 1234", "plan": "pro"});
        let event = Event::from_value(json!({"id": "e", "type": "t", "data": data}), "t").unwrap();
        store
            .ingest(
                vec![NewEvent {
                    event,
                    handlers: vec!["h".into()],
                }],
                1,
            )
            .unwrap();
        store.edit_event("e", &json!({"plan": "free"}), 2).unwrap();
        let delivery = store.event("e").unwrap().unwrap().deliveries[0].clone();
        let mut claimed = crate::store::testing::claim(&store, 1, &delivery, 3).unwrap().unwrap();
        let report = json!({"logs": [{"message": "mailing ada@example.com"}], "fetches": [{"url": "https://x/?p=+44 20 1234"}, {"url": "https://x/?e=ada%40example.com&p=%2B44%2020%201234"}],
            "steps": [{"name": "contact", "status": "ran", "result": {"contact": {"email": "ada@example.com"}}}]});
        let attempt = AttemptRecord {
            n: 1,
            started_ms: 3,
            duration_ms: 1.0,
            succeeded: false,
            report,
            replay: false,
            event_version: None,
            recorded_steps: false,
        };
        let next = NextStep::Dead {
            error: "Error: bad ada@example.com".into(),
            holds_key: true,
        };
        store.finish_attempt(&mut claimed, &attempt, next, 4).unwrap();

        let fields = [
            "data.email".to_owned(),
            "data.phone".to_owned(),
            "data.missing.x".to_owned(),
        ];
        assert!(store.redact_event("e", Some(&fields), 5).unwrap());
        let record = store.event("e").unwrap().unwrap();
        assert_eq!(record.event.data, json!({"plan": "free"}));
        assert_eq!(record.redacted, fields);
        assert_eq!(store.event_history("e").unwrap()[0].data, json!({"plan": "pro"}));
        let everything = format!(
            "{:?}{:?}",
            store.attempts(&delivery).unwrap(),
            store.delivery(&delivery).unwrap()
        );
        assert!(
            ![
                "ada@example.com",
                "+44 20 1234",
                "ada%40example.com",
                "%2B44%2020%201234"
            ]
            .iter()
            .any(|form| everything.contains(form)),
            "{everything}"
        );
        assert!(everything.contains("mailing [redacted]"), "{everything}");
        assert!(
            everything.contains("\"email\": String(\"[redacted]\")"),
            "a step's recorded result too: {everything}"
        );
    }

    #[test]
    fn the_whole_payload_can_go() {
        let store = Store::temporary().unwrap();
        let event = Event::from_value(json!({"id": "e", "type": "t", "data": {"secret": "s3cret!"}}), "t").unwrap();
        store
            .ingest(
                vec![NewEvent {
                    event,
                    handlers: vec![],
                }],
                1,
            )
            .unwrap();
        store.edit_event("e", &json!({"more": "m0re!"}), 2).unwrap();
        assert!(store.redact_event("e", None, 3).unwrap());
        let record = store.event("e").unwrap().unwrap();
        assert_eq!(
            (
                record.event.data.clone(),
                record.event.kind.as_str(),
                record.event.id.as_str()
            ),
            (Value::Null, "t", "e")
        );
        assert!(store.event_history("e").unwrap().iter().all(|v| v.data.is_null()));
        assert!(!store.redact_event("nope", None, 3).unwrap());
    }
}
