//! Repairs a person asks for, each one call that checks the request, changes the store,
//! writes the audit entry and commits: the API and the command line only translate.

use super::{ServiceError, Services};
use crate::clock::now_ms;
use crate::store::{AuditRecord, Edited, Replayed, Skipped};

/// What a redaction removes from an event, its history and its captured output.
#[derive(Debug, Clone, PartialEq)]
pub enum Redaction {
    /// These `data.a.b` paths.
    Fields(Vec<String>),
    /// The whole payload (type, id and time stay).
    Payload,
}

impl Redaction {
    /// From a request naming either `fields` or `payload: true`, never both nor neither.
    /// Fields are paths under `data`, which may be left out as in `eddy events edit --set`:
    /// `email` and `data.email` are the same field.
    pub fn new(fields: Vec<String>, payload: bool) -> Result<Self, ServiceError> {
        if payload != fields.is_empty() {
            return Err(ServiceError::Ambiguous);
        }
        if payload {
            return Ok(Self::Payload);
        }
        let fields: Vec<String> = fields.into_iter().map(|f| data_path(f.trim())).collect();
        match fields.iter().find(|f| !is_data_path(f)) {
            Some(bad) => Err(ServiceError::Field(bad.clone())),
            None => Ok(Self::Fields(fields)),
        }
    }

    /// The fields, as the store takes them: `None` for the whole payload.
    pub fn fields(&self) -> Option<&[String]> {
        match self {
            Self::Fields(fields) => Some(fields),
            Self::Payload => None,
        }
    }

    /// What the audit log records: the paths, or `data` for the payload.
    pub fn audited(&self) -> Vec<String> {
        self.fields()
            .map_or_else(|| vec!["data".to_owned()], <[String]>::to_vec)
    }
}

/// `path` as a path under `data`: `email` is `data.email`.
fn data_path(path: &str) -> String {
    match path == "data" || path.starts_with("data.") || path.is_empty() {
        true => path.to_owned(),
        false => format!("data.{path}"),
    }
}

/// `data.a.b`: a path under `data` with no empty segment (redacted fields, bulk filters).
pub fn is_data_path(path: &str) -> bool {
    path.starts_with("data.") && !path.ends_with('.') && !path.contains("..")
}

impl Services {
    /// Redacts event `id` as `redaction` says, audited as done by `actor`, and commits.
    pub async fn redact(&self, id: &str, redaction: &Redaction, actor: &str) -> Result<(), ServiceError> {
        if !self.store.redact_event(id, redaction.fields(), now_ms()).await? {
            return Err(ServiceError::NoEvent(id.to_owned()));
        }
        let detail = serde_json::json!({ "fields": redaction.audited() });
        self.audited(actor, "redact", id, detail).await
    }

    /// Applies the JSON merge patch (RFC 7386) `patch` to event `id`'s data, keeping the
    /// previous data in its history; audited as done by `actor`, and committed. A patch that
    /// changes nothing makes no version and no audit entry.
    pub async fn edit(&self, id: &str, patch: &serde_json::Value, actor: &str) -> Result<Edited, ServiceError> {
        let edited = self
            .store
            .edit_event(id, patch, now_ms())
            .await?
            .ok_or_else(|| ServiceError::NoEvent(id.to_owned()))?;
        if edited.changed {
            let detail = serde_json::json!({ "version": edited.record.version });
            self.audited(actor, "edit", id, detail).await?;
        }
        Ok(edited)
    }

    /// Makes event `id`'s data `data`, as the merge patch from its current data (see
    /// [`Services::edit`]); `version` is the version `data` was edited from, and an edit of
    /// an older one is refused rather than undoing a change made since.
    pub async fn replace_data(
        &self,
        id: &str,
        data: &serde_json::Value,
        version: u32,
        actor: &str,
    ) -> Result<Edited, ServiceError> {
        let current = self
            .store
            .event(id)
            .await?
            .ok_or_else(|| ServiceError::NoEvent(id.to_owned()))?;
        if current.version != version {
            return Err(ServiceError::Stale {
                id: id.to_owned(),
                seen: version,
                current: current.version,
            });
        }
        self.edit(id, &merge_patch_between(&current.event.data, data), actor)
            .await
    }

    /// Removes event `id` with every delivery, attempt, captured log and history version;
    /// audited as done by `actor`, and committed.
    pub async fn delete(&self, id: &str, actor: &str) -> Result<(), ServiceError> {
        if !self.store.delete_event(id).await? {
            return Err(ServiceError::NoEvent(id.to_owned()));
        }
        self.audited(actor, "delete", id, serde_json::Value::Null).await
    }

    /// Queues delivery `id` again unless it is pending or running; audited as done by
    /// `actor`, committed, and the engine woken.
    /// With `fresh`, the delivery forgets the results its steps recorded, so every step runs.
    pub async fn replay(&self, id: &str, fresh: bool, actor: &str) -> Result<Replayed, ServiceError> {
        let replayed = self.store.replay_delivery(id, now_ms(), fresh).await?;
        let result = match replayed {
            Replayed::NotFound => return Err(ServiceError::NoDelivery(id.to_owned())),
            Replayed::AlreadyQueued => "already_queued",
            Replayed::Queued => "queued",
        };
        self.audited(
            actor,
            "replay",
            id,
            serde_json::json!({ "result": result, "fresh": fresh }),
        )
        .await?;
        self.engine.wake();
        Ok(replayed)
    }

    /// Takes a dead delivery its key waits for out of its key's line (the delivery stays
    /// dead), so the key's next delivery runs.
    pub async fn skip(&self, id: &str, actor: &str) -> Result<(), ServiceError> {
        match self.store.skip_delivery(id, now_ms()).await? {
            Skipped::NotFound => return Err(ServiceError::NoDelivery(id.to_owned())),
            Skipped::NotHolding => return Err(ServiceError::NotHolding(id.to_owned())),
            Skipped::Released => {}
        }
        self.audited(actor, "skip", id, serde_json::json!({})).await?;
        self.engine.wake();
        Ok(())
    }

    /// Writes the audit entry of a change to `target` and commits both.
    pub(super) async fn audited(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<(), ServiceError> {
        let audit = AuditRecord {
            at_ms: now_ms(),
            actor: actor.into(),
            action: action.into(),
            target: target.to_owned(),
            detail,
        };
        self.store.audit(&audit).await?;
        self.store.commit().await?;
        Ok(())
    }
}

/// The JSON merge patch (RFC 7386) that turns `old` into `new`. A `null` inside `new`'s
/// objects cannot be told from a removal in a merge patch, so it removes the field.
pub fn merge_patch_between(old: &serde_json::Value, new: &serde_json::Value) -> serde_json::Value {
    use serde_json::{Map, Value};
    let (Value::Object(old), Value::Object(new)) = (old, new) else {
        return new.clone();
    };
    let mut patch = Map::new();
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        patch.insert(key.clone(), Value::Null);
    }
    for (key, value) in new {
        match old.get(key) {
            Some(before) if before == value => {}
            Some(before) => {
                patch.insert(key.clone(), merge_patch_between(before, value));
            }
            None => {
                patch.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(patch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redaction_names_fields_under_data_or_the_payload() {
        let fields = Redaction::new(vec!["data.email".into(), "data.a.b".into()], false).unwrap();
        assert_eq!(fields.fields().map(<[String]>::len), Some(2));
        assert_eq!(Redaction::new(vec![], true).unwrap(), Redaction::Payload);
        assert_eq!(Redaction::Payload.audited(), ["data"]);
        for (fields, payload) in [(vec![], false), (vec!["data.x".to_owned()], true)] {
            assert!(matches!(Redaction::new(fields, payload), Err(ServiceError::Ambiguous)));
        }
        for bad in ["data.", "data..x", "data", "", "a..b"] {
            let refused = Redaction::new(vec![bad.into()], false);
            assert!(matches!(refused, Err(ServiceError::Field(_))), "{bad}");
        }
        // As in `eddy events edit --set`, `data.` may be left out.
        let short = Redaction::new(vec!["email".into(), " card.number".into()], false).unwrap();
        assert_eq!(short.fields().unwrap(), ["data.email", "data.card.number"]);
    }

    #[test]
    fn a_merge_patch_between_two_values_round_trips() {
        use serde_json::json;
        let old = json!({"a": 1, "b": {"c": 2, "d": 3}, "gone": true});
        let new = json!({"a": 1, "b": {"c": 5}, "added": [1]});
        let patch = merge_patch_between(&old, &new);
        assert_eq!(patch, json!({"b": {"c": 5, "d": null}, "gone": null, "added": [1]}));
        let mut patched = old.clone();
        crate::store::merge_patch(&mut patched, &patch);
        assert_eq!(patched, new);
        assert_eq!(merge_patch_between(&old, &old), json!({}));
    }
}
