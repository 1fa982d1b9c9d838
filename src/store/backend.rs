//! The store interface: everything the delivery engine, the services, the intake and the
//! runtime ask of a store, and nothing more. The sled [`Store`] implements it; a backend for
//! several nodes would implement the same methods over a stream engine. Opening, sealing,
//! compacting and upgrading a folder are sled's own business and stay off it: only the
//! composition root and the CLI, which know the backend they built, call those.
//!
//! Every method that reads or writes records returns a future ([`Pending`]), so a backend
//! that asks a server over the network waits without holding a thread; sled's answers are
//! computed in the call and ready at once. `failure` and `queue_depth` are gauges a backend
//! keeps in memory.
//!
//! The contract each backend keeps (the sled one's tests check it):
//! - writes are visible to reads at once and durable after the next [`Backend::commit`];
//! - a failed disk makes every later write fail with [`StoreError::Unavailable`];
//! - ingest is idempotent by event id, and a claimed delivery is claimed by one caller only.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use super::{
    AttemptRecord, AuditRecord, DeliveryFilter, DeliveryRecord, Edited, EventFilter, EventRecord, EventVersion,
    Expired, HandlerCount, HandlerState, Ingested, NewEvent, NextStep, Replayed, Retention, Skipped, StateEntry,
    StateQuota, Store, StoreError,
};
use crate::event::KeyPath;

/// The store as every part of eddy above it holds it.
pub type SharedStore = Arc<dyn Backend>;

/// What the runtime asks of a store: each handler's `ctx.state`. Every [`Backend`] is one; so
/// is a store that opens on first use ([`super::OpenOnUse`], for `eddy run`).
pub trait StateSource: Send + Sync + 'static {
    /// One handler's `ctx.state`, held to `quota`.
    fn handler_state(&self, handler: &str, quota: StateQuota) -> Box<dyn StateStore>;
}

/// What a [`Backend`] method returns: boxed, so the trait can be a trait object.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A store of events, deliveries, attempts, audit entries and handler state.
pub trait Backend: StateSource {
    /// Why the store refuses writes, once a write has failed.
    fn failure(&self) -> Option<String>;
    /// Makes every write before the call durable (shared by concurrent callers).
    fn commit(&self) -> Pending<'_, ()>;

    /// Accepts a batch of events, each with a queued delivery per handler; duplicates by id
    /// write nothing.
    fn ingest(&self, batch: Vec<NewEvent>, now_ms: u64) -> Pending<'_, Vec<Ingested>>;
    fn event<'a>(&'a self, id: &'a str) -> Pending<'a, Option<EventRecord>>;
    /// Previous versions of an event's data, oldest first.
    fn event_history<'a>(&'a self, id: &'a str) -> Pending<'a, Vec<EventVersion>>;
    /// Events in ingest order, or newest first.
    fn list_events<'a>(&'a self, filter: &'a EventFilter) -> Pending<'a, Vec<EventRecord>>;
    /// The distinct types of stored events that start with `prefix`, in byte order.
    fn event_types<'a>(&'a self, prefix: &'a str) -> Pending<'a, Vec<String>>;
    fn delivery<'a>(&'a self, id: &'a str) -> Pending<'a, Option<DeliveryRecord>>;
    /// A delivery's attempts, first first.
    fn attempts<'a>(&'a self, id: &'a str) -> Pending<'a, Vec<AttemptRecord>>;
    /// Deliveries in creation order.
    fn list_deliveries<'a>(&'a self, filter: &'a DeliveryFilter) -> Pending<'a, Vec<DeliveryRecord>>;

    /// Each handler with queued deliveries, with when its earliest is due.
    fn queue_heads(&self) -> Pending<'_, Vec<(String, u64)>>;
    /// Up to `limit` of `handler`'s queued deliveries due by `now_ms`, as (due ms, id),
    /// earliest first.
    fn due<'a>(&'a self, handler: &'a str, now_ms: u64, limit: usize) -> Pending<'a, Vec<(u64, String)>>;
    /// Deliveries in the queue.
    fn queue_depth(&self) -> usize;
    /// Takes `handler`'s queued delivery for an attempt (status `running` until it is
    /// finished or postponed); `None` if another caller took it or it is no longer queued at
    /// `due_ms`.
    fn claim<'a>(
        &'a self,
        handler: &'a str,
        due_ms: u64,
        id: &'a str,
        now_ms: u64,
    ) -> Pending<'a, Option<DeliveryRecord>>;
    /// Records an attempt and what follows it; updates `delivery` to what was stored.
    fn finish_attempt<'a>(
        &'a self,
        delivery: &'a mut DeliveryRecord,
        attempt: &'a AttemptRecord,
        next: NextStep,
        now_ms: u64,
    ) -> Pending<'a, ()>;
    /// Queues the next delivery of `handler`'s line for `key`, after one left it (see
    /// `lines.rs`).
    fn advance_line<'a>(&'a self, handler: &'a str, key: &'a str, now_ms: u64) -> Pending<'a, ()>;
    /// Puts a running delivery back in the queue at `due_ms` without counting an attempt.
    fn postpone<'a>(&'a self, id: &'a str, due_ms: u64, now_ms: u64) -> Pending<'a, bool>;
    /// Queues again the deliveries claimed and not finished, and those an earlier process
    /// left running (the engine calls it as it starts); returns how many.
    fn requeue_running(&self, now_ms: u64) -> Pending<'_, usize>;
    /// Removes a delivery whose event is gone.
    fn forget_delivery<'a>(&'a self, id: &'a str) -> Pending<'a, ()>;

    /// Applies a JSON merge patch to an event's data, keeping the previous version.
    fn edit_event<'a>(&'a self, id: &'a str, patch: &'a Value, now_ms: u64) -> Pending<'a, Option<Edited>>;
    /// Removes `fields` (or, with `None`, the whole payload) from the event and every record
    /// that captured them.
    fn redact_event<'a>(&'a self, id: &'a str, fields: Option<&'a [String]>, now_ms: u64) -> Pending<'a, bool>;
    /// Removes an event with all its deliveries, attempts and history.
    fn delete_event<'a>(&'a self, id: &'a str) -> Pending<'a, bool>;
    /// Queues a finished delivery again; with `fresh`, it forgets the results its steps
    /// recorded.
    fn replay_delivery<'a>(&'a self, id: &'a str, now_ms: u64, fresh: bool) -> Pending<'a, Replayed>;
    /// Adds a delivery of a stored event to `handler` (a backfill); `None` if the event is
    /// gone or already has one.
    fn add_delivery<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        order_by: Option<&'a KeyPath>,
        now_ms: u64,
    ) -> Pending<'a, Option<String>>;
    /// Takes a dead delivery that holds its key's line out of it, so the next one runs.
    fn skip_delivery<'a>(&'a self, id: &'a str, now_ms: u64) -> Pending<'a, Skipped>;
    /// The delivery a blocked delivery waits for (the front of its key's line).
    fn blocked_by<'a>(&'a self, delivery: &'a DeliveryRecord) -> Pending<'a, Option<String>>;
    fn audit<'a>(&'a self, record: &'a AuditRecord) -> Pending<'a, ()>;
    /// The newest audit entries first.
    fn audit_log(&self, limit: usize) -> Pending<'_, Vec<AuditRecord>>;
    /// Removes what is older than the retention allows.
    fn expire<'a>(&'a self, retention: &'a Retention, now_ms: u64) -> Pending<'a, Expired>;
    /// Pending, blocked, running and dead deliveries per handler, for the metrics' gauges. Walks every
    /// pending, blocked and dead delivery's index entry, so it runs on a blocking thread.
    fn delivery_counts(&self) -> Pending<'_, Vec<HandlerCount>>;
}

/// Ids of the events `filter` lists that `keep` takes, in ingest order, over every page from
/// `filter`'s cursor on (`filter.limit` is the page size).
pub async fn event_ids(
    store: &dyn Backend,
    mut filter: EventFilter,
    keep: impl Fn(&EventRecord) -> bool,
) -> Result<Vec<String>, StoreError> {
    let mut ids = Vec::new();
    loop {
        let events = store.list_events(&filter).await?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(ids);
        };
        ids.extend(events.into_iter().filter(|e| keep(e)).map(|e| e.event.id));
        filter.after_seq = Some(last);
    }
}

/// One handler's key/value namespace, asynchronous like [`Backend`].
pub trait StateStore: Send + Sync {
    fn get<'a>(&'a self, key: &'a str) -> Pending<'a, Option<Value>>;
    fn set<'a>(&'a self, key: &'a str, value: &'a Value) -> Pending<'a, ()>;
    fn delete<'a>(&'a self, key: &'a str) -> Pending<'a, bool>;
    /// Entries whose key starts with `prefix`, in key order.
    fn list<'a>(&'a self, prefix: &'a str, limit: usize) -> Pending<'a, Vec<StateEntry>>;
}

impl StateStore for HandlerState {
    fn get<'a>(&'a self, key: &'a str) -> Pending<'a, Option<Value>> {
        ready(HandlerState::get(self, key))
    }
    fn set<'a>(&'a self, key: &'a str, value: &'a Value) -> Pending<'a, ()> {
        ready(HandlerState::set(self, key, value))
    }
    fn delete<'a>(&'a self, key: &'a str) -> Pending<'a, bool> {
        ready(HandlerState::delete(self, key))
    }
    fn list<'a>(&'a self, prefix: &'a str, limit: usize) -> Pending<'a, Vec<StateEntry>> {
        ready(HandlerState::list(self, prefix, limit))
    }
}

/// Each method is the inherent one of the same name, its answer ready at once.
impl Backend for Store {
    fn failure(&self) -> Option<String> {
        Store::failure(self)
    }
    fn commit(&self) -> Pending<'_, ()> {
        Box::pin(Store::commit(self))
    }
    fn ingest(&self, batch: Vec<NewEvent>, now_ms: u64) -> Pending<'_, Vec<Ingested>> {
        ready(Store::ingest(self, batch, now_ms))
    }
    fn event<'a>(&'a self, id: &'a str) -> Pending<'a, Option<EventRecord>> {
        ready(Store::event(self, id))
    }
    fn event_history<'a>(&'a self, id: &'a str) -> Pending<'a, Vec<EventVersion>> {
        ready(Store::event_history(self, id))
    }
    fn list_events<'a>(&'a self, filter: &'a EventFilter) -> Pending<'a, Vec<EventRecord>> {
        ready(Store::list_events(self, filter))
    }
    fn event_types<'a>(&'a self, prefix: &'a str) -> Pending<'a, Vec<String>> {
        ready(Store::event_types(self, prefix))
    }
    fn delivery<'a>(&'a self, id: &'a str) -> Pending<'a, Option<DeliveryRecord>> {
        ready(Store::delivery(self, id))
    }
    fn attempts<'a>(&'a self, id: &'a str) -> Pending<'a, Vec<AttemptRecord>> {
        ready(Store::attempts(self, id))
    }
    fn list_deliveries<'a>(&'a self, filter: &'a DeliveryFilter) -> Pending<'a, Vec<DeliveryRecord>> {
        ready(Store::list_deliveries(self, filter))
    }
    fn queue_heads(&self) -> Pending<'_, Vec<(String, u64)>> {
        ready(Store::queue_heads(self))
    }
    fn due<'a>(&'a self, handler: &'a str, now_ms: u64, limit: usize) -> Pending<'a, Vec<(u64, String)>> {
        ready(Store::due(self, handler, now_ms, limit))
    }
    fn queue_depth(&self) -> usize {
        Store::queue_depth(self)
    }
    fn claim<'a>(
        &'a self,
        handler: &'a str,
        due_ms: u64,
        id: &'a str,
        now_ms: u64,
    ) -> Pending<'a, Option<DeliveryRecord>> {
        ready(Store::claim(self, handler, due_ms, id, now_ms))
    }
    fn finish_attempt<'a>(
        &'a self,
        delivery: &'a mut DeliveryRecord,
        attempt: &'a AttemptRecord,
        next: NextStep,
        now_ms: u64,
    ) -> Pending<'a, ()> {
        ready(Store::finish_attempt(self, delivery, attempt, next, now_ms))
    }
    fn postpone<'a>(&'a self, id: &'a str, due_ms: u64, now_ms: u64) -> Pending<'a, bool> {
        ready(Store::postpone(self, id, due_ms, now_ms))
    }
    fn requeue_running(&self, now_ms: u64) -> Pending<'_, usize> {
        ready(Store::requeue_running(self, now_ms))
    }
    fn forget_delivery<'a>(&'a self, id: &'a str) -> Pending<'a, ()> {
        ready(Store::forget_delivery(self, id))
    }
    fn edit_event<'a>(&'a self, id: &'a str, patch: &'a Value, now_ms: u64) -> Pending<'a, Option<Edited>> {
        ready(Store::edit_event(self, id, patch, now_ms))
    }
    fn redact_event<'a>(&'a self, id: &'a str, fields: Option<&'a [String]>, now_ms: u64) -> Pending<'a, bool> {
        ready(Store::redact_event(self, id, fields, now_ms))
    }
    fn delete_event<'a>(&'a self, id: &'a str) -> Pending<'a, bool> {
        ready(Store::delete_event(self, id))
    }
    fn replay_delivery<'a>(&'a self, id: &'a str, now_ms: u64, fresh: bool) -> Pending<'a, Replayed> {
        ready(Store::replay_delivery(self, id, now_ms, fresh))
    }
    fn add_delivery<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        order_by: Option<&'a KeyPath>,
        now_ms: u64,
    ) -> Pending<'a, Option<String>> {
        ready(Store::add_delivery(self, event_id, handler, order_by, now_ms))
    }
    fn skip_delivery<'a>(&'a self, id: &'a str, now_ms: u64) -> Pending<'a, Skipped> {
        ready(Store::skip_delivery(self, id, now_ms))
    }
    fn advance_line<'a>(&'a self, handler: &'a str, key: &'a str, now_ms: u64) -> Pending<'a, ()> {
        ready(Store::advance_line(self, handler, key, now_ms))
    }
    fn blocked_by<'a>(&'a self, delivery: &'a DeliveryRecord) -> Pending<'a, Option<String>> {
        ready(Store::blocked_by(self, delivery))
    }
    fn audit<'a>(&'a self, record: &'a AuditRecord) -> Pending<'a, ()> {
        ready(Store::audit(self, record))
    }
    fn audit_log(&self, limit: usize) -> Pending<'_, Vec<AuditRecord>> {
        ready(Store::audit_log(self, limit))
    }
    /// On a blocking thread: expiry can take a while over a large folder.
    fn expire<'a>(&'a self, retention: &'a Retention, now_ms: u64) -> Pending<'a, Expired> {
        let (store, retention) = (self.clone(), *retention);
        Box::pin(async move {
            let expire = tokio::task::spawn_blocking(move || store.expire(&retention, now_ms));
            expire.await.map_err(|e| StoreError::Task(e.to_string()))?
        })
    }
    fn delivery_counts(&self) -> Pending<'_, Vec<HandlerCount>> {
        let store = self.clone();
        Box::pin(async move {
            let counts = tokio::task::spawn_blocking(move || store.delivery_counts());
            counts.await.map_err(|e| StoreError::Task(e.to_string()))?
        })
    }
}

impl StateSource for Store {
    fn handler_state(&self, handler: &str, quota: StateQuota) -> Box<dyn StateStore> {
        Box::new(Store::handler_state(self, handler, quota))
    }
}

/// An answer computed in the call.
fn ready<'a, T: Send + 'a>(answer: Result<T, StoreError>) -> Pending<'a, T> {
    Box::pin(std::future::ready(answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn shared() -> SharedStore {
        Arc::new(Store::temporary().unwrap())
    }

    fn event(id: &str) -> NewEvent {
        let event: Event = serde_json::from_value(
            serde_json::json!({ "id": id, "type": "a.b", "source": "t", "time": "2026-01-01T00:00:00Z" }),
        )
        .unwrap();
        NewEvent {
            event,
            handlers: vec!["h".into()],
        }
    }

    #[tokio::test]
    async fn the_pipeline_runs_through_the_interface_alone() {
        let store = shared();
        let accepted = store.ingest(vec![event("e1"), event("e1")], 1_000).await.unwrap();
        assert!(matches!(&accepted[0], Ingested::New { deliveries, .. } if deliveries.len() == 1));
        assert_eq!(accepted[1], Ingested::Duplicate { id: "e1".into() });
        store.commit().await.unwrap();
        assert_eq!(store.queue_depth(), 1);
        assert_eq!(store.queue_heads().await.unwrap(), [("h".to_owned(), 1_000)]);
        let due = store.due("h", 1_000, 10).await.unwrap();
        let (due_ms, id) = due[0].clone();
        let mut claimed = store
            .claim("h", due_ms, &id, 1_001)
            .await
            .unwrap()
            .expect("claimed once");
        assert!(
            store.claim("h", due_ms, &id, 1_001).await.unwrap().is_none(),
            "a second claim gets nothing"
        );
        let attempt = AttemptRecord {
            n: 1,
            started_ms: 1_001,
            duration_ms: 1.0,
            succeeded: true,
            report: Value::Null,
            replay: false,
            event_version: None,
            recorded_steps: false,
        };
        store
            .finish_attempt(&mut claimed, &attempt, NextStep::Succeeded, 1_002)
            .await
            .unwrap();
        assert_eq!(store.attempts(&id).await.unwrap(), vec![attempt]);
        assert_eq!(store.queue_depth(), 0);
        assert_eq!(
            store.replay_delivery(&id, 1_003, false).await.unwrap(),
            Replayed::Queued
        );
        assert_eq!(store.queue_heads().await.unwrap(), [("h".to_owned(), 1_003)]);
    }

    #[tokio::test]
    async fn state_through_the_interface_is_the_handlers_own() {
        let store = shared();
        let quota = StateQuota::UNLIMITED;
        let a = store.handler_state("a", quota);
        let b = store.handler_state("b", quota);
        a.set("k", &serde_json::json!(1)).await.unwrap();
        assert_eq!(a.get("k").await.unwrap(), Some(serde_json::json!(1)));
        assert_eq!(b.get("k").await.unwrap(), None);
        assert_eq!(a.list("", 10).await.unwrap().len(), 1);
        assert!(a.delete("k").await.unwrap());
    }
}
