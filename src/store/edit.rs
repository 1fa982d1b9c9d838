//! Editing events: a JSON merge patch (RFC 7386) on `data`, keeping each previous version in
//! the event's history.

use serde_json::Value;

use super::records::{EventRecord, EventVersion};
use super::{Store, StoreError, codec, keys};

/// An event after an edit, and whether the edit changed its data (and made a version).
#[derive(Debug, Clone, PartialEq)]
pub struct Edited {
    pub record: EventRecord,
    pub changed: bool,
}

impl Store {
    /// Applies `patch` to the data of event `id`; the previous data is kept as a history
    /// version. A patch that changes nothing writes nothing and makes no version. None if
    /// there is no such event.
    pub fn edit_event(&self, id: &str, patch: &Value, now_ms: u64) -> Result<Option<Edited>, StoreError> {
        self.write(|| {
            loop {
                let Some(raw) = self.trees.events.get(id.as_bytes())? else {
                    return Ok(None);
                };
                let mut record: EventRecord = codec::decode(keys::EVENT_RECORD_V1, &raw)?;
                let previous = EventVersion {
                    version: record.version,
                    replaced_ms: now_ms,
                    data: record.event.data.clone(),
                };
                merge_patch(&mut record.event.data, patch);
                if record.event.data == previous.data {
                    return Ok(Some(Edited { record, changed: false }));
                }
                record.version += 1;
                let updated = codec::encode(keys::EVENT_RECORD_V1, &record)?;
                let history = codec::encode(keys::EVENT_VERSION_V1, &previous)?;
                self.trees
                    .history
                    .insert(keys::history_key(id, previous.version), history)?;
                let swapped = self
                    .trees
                    .events
                    .compare_and_swap(id.as_bytes(), Some(raw), Some(updated))?;
                if swapped.is_ok() {
                    return Ok(Some(Edited { record, changed: true }));
                }
                // Edited concurrently: that edit wrote this version's history; look again.
            }
        })
    }

    /// Previous versions of event `id`, oldest first.
    pub fn event_history(&self, id: &str) -> Result<Vec<EventVersion>, StoreError> {
        keys::numbered(&self.trees.history, id)
            .map(|item| codec::decode(keys::EVENT_VERSION_V1, &item?.1))
            .collect()
    }
}

/// RFC 7386: objects merge recursively, `null` removes a member, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::store::NewEvent;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (json!({"a": [1]}), json!({"a": [2, 3]}), json!({"a": [2, 3]})),
            (json!([1]), json!({"a": 1}), json!({"a": 1})),
            (json!({"a": 1}), json!("text"), json!("text")),
        ];
        for (mut target, patch, expected) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, expected, "patch {patch}");
        }
    }

    #[test]
    fn edits_keep_history() {
        let store = Store::temporary().unwrap();
        let event = Event::from_value(json!({"id": "e", "type": "t", "data": {"email": "a@x", "n": 1}}), "t").unwrap();
        store
            .ingest(
                vec![NewEvent {
                    event,
                    handlers: vec![],
                }],
                1,
            )
            .unwrap();
        let edited = store.edit_event("e", &json!({"email": "b@x"}), 5).unwrap().unwrap();
        assert_eq!(
            (edited.changed, edited.record.version, &edited.record.event.data),
            (true, 2, &json!({"email": "b@x", "n": 1}))
        );
        // A patch that changes nothing makes no version.
        for same in [json!({"email": "b@x"}), json!({}), json!({"gone": null})] {
            let unchanged = store.edit_event("e", &same, 6).unwrap().unwrap();
            assert_eq!((unchanged.changed, unchanged.record.version), (false, 2), "{same}");
        }
        assert_eq!(store.event_history("e").unwrap().len(), 1);
        store.edit_event("e", &json!({"n": null}), 6).unwrap();
        let history = store.event_history("e").unwrap();
        assert_eq!(history.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(history[0].data["email"], "a@x");
        assert_eq!(store.event("e").unwrap().unwrap().event.data, json!({"email": "b@x"}));
        assert!(store.edit_event("nope", &json!({}), 1).unwrap().is_none());
    }

    #[test]
    fn one_events_history_and_delete_never_reach_an_event_whose_id_extends_it() {
        // Ingest refuses such ids today; the key layout must hold for any stored before.
        let store = Store::temporary().unwrap();
        for id in ["victim", "victim\0other", "victim\0\0\0\0\0"] {
            let event = Event::from_value(json!({"id": "placeholder", "type": "t", "data": {"n": 0}}), "t").unwrap();
            let event = Event { id: id.into(), ..event };
            let new = NewEvent {
                event,
                handlers: vec![],
            };
            store.ingest(vec![new], 1).unwrap();
            store.edit_event(id, &json!({"n": 1}), 2).unwrap().unwrap();
        }
        assert_eq!(store.event_history("victim").unwrap().len(), 1);
        assert!(store.delete_event("victim").unwrap());
        for other in ["victim\0other", "victim\0\0\0\0\0"] {
            let history = store.event_history(other).unwrap();
            assert_eq!(history.len(), 1, "{other:?} kept its history");
            assert_eq!(history[0].data, json!({"n": 0}));
        }
    }
}
