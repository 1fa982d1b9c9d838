//! Bulk repairs by filter: which events a [`Selection`] takes, and deleting or redacting them
//! all with one audit entry and one commit.

use serde_json::{Map, Value};

use super::repair::{Redaction, is_data_path};
use super::{ServiceError, Services};
use crate::clock::now_ms;
use crate::store::{EventFilter, EventRecord, event_ids};

/// Events listed per read of the store while selecting.
const PAGE: usize = 1000;

/// Which events a bulk repair takes: of a type, and/or whose data paths equal given values,
/// received in a time window. Never every event: a type or a `where` is required.
#[derive(Debug, Clone)]
pub struct Selection {
    event_type: Option<String>,
    /// `{"data.user_id": "u1"}`: every path must equal its JSON value.
    matches: Map<String, Value>,
    since_ms: Option<u64>,
    until_ms: Option<u64>,
}

impl Selection {
    /// A selection over all time, refused without a filter or with a `where` path outside
    /// `data`.
    pub fn new(event_type: Option<String>, matches: Map<String, Value>) -> Result<Self, ServiceError> {
        if matches.is_empty() && event_type.is_none() {
            return Err(ServiceError::NoFilter);
        }
        if let Some(bad) = matches.keys().find(|k| !is_data_path(k)) {
            return Err(ServiceError::Where(bad.clone()));
        }
        Ok(Self {
            event_type,
            matches,
            since_ms: None,
            until_ms: None,
        })
    }

    /// Only events received at or after `since_ms` and before `until_ms` (ms since the epoch).
    pub fn received(self, since_ms: Option<u64>, until_ms: Option<u64>) -> Self {
        Self {
            since_ms,
            until_ms,
            ..self
        }
    }

    fn takes(&self, record: &EventRecord) -> bool {
        self.until_ms.is_none_or(|u| record.received_ms < u)
            && self.matches.iter().all(|(path, expected)| {
                let found = path
                    .split('.')
                    .skip(1)
                    .try_fold(&record.event.data, |node, key| node.get(key));
                found == Some(expected)
            })
    }

    /// What the audit log keeps of it: the filter, not the values, which may be what is
    /// being erased.
    fn audited(&self, redaction: Option<&Redaction>, count: usize) -> Value {
        let fields = redaction.and_then(Redaction::fields).unwrap_or_default();
        serde_json::json!({
            "type": self.event_type, "where": self.matches.keys().collect::<Vec<_>>(),
            "fields": fields, "payload": redaction == Some(&Redaction::Payload), "count": count,
        })
    }
}

impl Services {
    /// Ids of the events `selection` takes, in the order they were received.
    pub async fn select(&self, selection: &Selection) -> Result<Vec<String>, ServiceError> {
        let filter = EventFilter {
            types: selection.event_type.clone().map(|kind| vec![kind]),
            since_ms: selection.since_ms,
            limit: PAGE,
            ..Default::default()
        };
        Ok(event_ids(self.store.as_ref(), filter, |e| selection.takes(e)).await?)
    }

    /// Deletes every event `selection` takes; one audit entry by `actor`, one commit.
    /// Returns their ids.
    pub async fn delete_all(&self, selection: &Selection, actor: &str) -> Result<Vec<String>, ServiceError> {
        let ids = self.select(selection).await?;
        for id in &ids {
            self.store.delete_event(id).await?;
        }
        let detail = selection.audited(None, ids.len());
        self.audited(actor, "bulk_delete", "events", detail).await?;
        Ok(ids)
    }

    /// Redacts every event `selection` takes as `redaction` says; one audit entry by
    /// `actor`, one commit. Returns their ids.
    pub async fn redact_all(
        &self,
        selection: &Selection,
        redaction: &Redaction,
        actor: &str,
    ) -> Result<Vec<String>, ServiceError> {
        let ids = self.select(selection).await?;
        for id in &ids {
            self.store.redact_event(id, redaction.fields(), now_ms()).await?;
        }
        let detail = selection.audited(Some(redaction), ids.len());
        self.audited(actor, "bulk_redact", "events", detail).await?;
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_needs_a_filter_and_paths_under_data() {
        assert!(matches!(Selection::new(None, Map::new()), Err(ServiceError::NoFilter)));
        assert!(Selection::new(Some("t".into()), Map::new()).is_ok());
        let mut matches = Map::new();
        matches.insert("user_id".into(), "u1".into());
        let refused = Selection::new(None, matches);
        assert!(matches!(refused, Err(ServiceError::Where(p)) if p == "user_id"));
    }

    #[test]
    fn the_audit_keeps_the_filter_and_never_the_values() {
        let mut matches = Map::new();
        matches.insert("data.email".into(), "ada@example.com".into());
        let selection = Selection::new(Some("t".into()), matches).unwrap();
        let redaction = Redaction::new(vec!["data.email".into()], false).unwrap();
        let detail = selection.audited(Some(&redaction), 2);
        assert_eq!(
            detail,
            serde_json::json!({"type": "t", "where": ["data.email"], "fields": ["data.email"], "payload": false, "count": 2})
        );
        assert!(!detail.to_string().contains("ada@"));
        assert_eq!(selection.audited(Some(&Redaction::Payload), 1)["payload"], true);
    }
}
