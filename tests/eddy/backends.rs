//! The store interface with a backend other than sled as it comes: one whose answers are not
//! ready when asked (as a store over the network), built over the sled store.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use eddy::config::Config;
use eddy::event::{Event, KeyPath, new_id};
use eddy::runtime::{InvocationRequest, Runtime};
use eddy::store::{
    AttemptRecord, AuditRecord, Backend, DeliveryFilter, DeliveryRecord, Edited, EventFilter, EventRecord,
    EventVersion, Expired, HandlerCount, Ingested, NewEvent, NextStep, Pending, Replayed, Retention, Skipped,
    StateEntry, StateQuota, StateSource, StateStore, Store,
};
use serde_json::{Value, json};

use crate::support::{LOOPBACK_CONFIG, assert_ok, fixtures, logs};

/// Lets the caller's task yield this many times before each answer.
const YIELDS: usize = 3;

async fn later<T>(answer: Pending<'_, T>) -> Result<T, eddy::store::StoreError> {
    for _ in 0..YIELDS {
        tokio::task::yield_now().await;
    }
    answer.await
}

/// sled behind answers that come later; counts commits.
struct Later {
    inner: Store,
    commits: AtomicUsize,
}

struct LaterState(Box<dyn StateStore>);

impl StateStore for LaterState {
    fn get<'a>(&'a self, key: &'a str) -> Pending<'a, Option<Value>> {
        Box::pin(later(self.0.get(key)))
    }
    fn set<'a>(&'a self, key: &'a str, value: &'a Value) -> Pending<'a, ()> {
        Box::pin(later(self.0.set(key, value)))
    }
    fn delete<'a>(&'a self, key: &'a str) -> Pending<'a, bool> {
        Box::pin(later(self.0.delete(key)))
    }
    fn list<'a>(&'a self, prefix: &'a str, limit: usize) -> Pending<'a, Vec<StateEntry>> {
        Box::pin(later(self.0.list(prefix, limit)))
    }
}

impl Backend for Later {
    fn failure(&self) -> Option<String> {
        self.inner.failure()
    }
    fn commit(&self) -> Pending<'_, ()> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        Box::pin(later(Backend::commit(&self.inner)))
    }
    fn ingest(&self, batch: Vec<NewEvent>, now_ms: u64) -> Pending<'_, Vec<Ingested>> {
        Box::pin(later(Backend::ingest(&self.inner, batch, now_ms)))
    }
    fn event<'a>(&'a self, id: &'a str) -> Pending<'a, Option<EventRecord>> {
        Box::pin(later(Backend::event(&self.inner, id)))
    }
    fn event_history<'a>(&'a self, id: &'a str) -> Pending<'a, Vec<EventVersion>> {
        Box::pin(later(Backend::event_history(&self.inner, id)))
    }
    fn list_events<'a>(&'a self, filter: &'a EventFilter) -> Pending<'a, Vec<EventRecord>> {
        Box::pin(later(Backend::list_events(&self.inner, filter)))
    }
    fn event_types<'a>(&'a self, prefix: &'a str) -> Pending<'a, Vec<String>> {
        Box::pin(later(Backend::event_types(&self.inner, prefix)))
    }
    fn delivery<'a>(&'a self, id: &'a str) -> Pending<'a, Option<DeliveryRecord>> {
        Box::pin(later(Backend::delivery(&self.inner, id)))
    }
    fn attempts<'a>(&'a self, id: &'a str) -> Pending<'a, Vec<AttemptRecord>> {
        Box::pin(later(Backend::attempts(&self.inner, id)))
    }
    fn list_deliveries<'a>(&'a self, filter: &'a DeliveryFilter) -> Pending<'a, Vec<DeliveryRecord>> {
        Box::pin(later(Backend::list_deliveries(&self.inner, filter)))
    }
    fn queue_heads(&self) -> Pending<'_, Vec<(String, u64)>> {
        Box::pin(later(Backend::queue_heads(&self.inner)))
    }
    fn due<'a>(&'a self, handler: &'a str, now_ms: u64, limit: usize) -> Pending<'a, Vec<(u64, String)>> {
        Box::pin(later(Backend::due(&self.inner, handler, now_ms, limit)))
    }
    fn queue_depth(&self) -> usize {
        self.inner.queue_depth()
    }
    fn claim<'a>(
        &'a self,
        handler: &'a str,
        due_ms: u64,
        id: &'a str,
        now_ms: u64,
    ) -> Pending<'a, Option<DeliveryRecord>> {
        Box::pin(later(Backend::claim(&self.inner, handler, due_ms, id, now_ms)))
    }
    fn finish_attempt<'a>(
        &'a self,
        delivery: &'a mut DeliveryRecord,
        attempt: &'a AttemptRecord,
        next: NextStep,
        now_ms: u64,
    ) -> Pending<'a, ()> {
        Box::pin(later(Backend::finish_attempt(
            &self.inner,
            delivery,
            attempt,
            next,
            now_ms,
        )))
    }
    fn postpone<'a>(&'a self, id: &'a str, due_ms: u64, now_ms: u64) -> Pending<'a, bool> {
        Box::pin(later(Backend::postpone(&self.inner, id, due_ms, now_ms)))
    }
    fn requeue_running(&self, now_ms: u64) -> Pending<'_, usize> {
        Box::pin(later(Backend::requeue_running(&self.inner, now_ms)))
    }
    fn forget_delivery<'a>(&'a self, id: &'a str) -> Pending<'a, ()> {
        Box::pin(later(Backend::forget_delivery(&self.inner, id)))
    }
    fn edit_event<'a>(&'a self, id: &'a str, patch: &'a Value, now_ms: u64) -> Pending<'a, Option<Edited>> {
        Box::pin(later(Backend::edit_event(&self.inner, id, patch, now_ms)))
    }
    fn redact_event<'a>(&'a self, id: &'a str, fields: Option<&'a [String]>, now_ms: u64) -> Pending<'a, bool> {
        Box::pin(later(Backend::redact_event(&self.inner, id, fields, now_ms)))
    }
    fn delete_event<'a>(&'a self, id: &'a str) -> Pending<'a, bool> {
        Box::pin(later(Backend::delete_event(&self.inner, id)))
    }
    fn replay_delivery<'a>(&'a self, id: &'a str, now_ms: u64, fresh: bool) -> Pending<'a, Replayed> {
        Box::pin(later(Backend::replay_delivery(&self.inner, id, now_ms, fresh)))
    }
    fn add_delivery<'a>(
        &'a self,
        event_id: &'a str,
        handler: &'a str,
        order_by: Option<&'a KeyPath>,
        now_ms: u64,
    ) -> Pending<'a, Option<String>> {
        Box::pin(later(Backend::add_delivery(
            &self.inner,
            event_id,
            handler,
            order_by,
            now_ms,
        )))
    }
    fn skip_delivery<'a>(&'a self, id: &'a str, now_ms: u64) -> Pending<'a, Skipped> {
        Box::pin(later(Backend::skip_delivery(&self.inner, id, now_ms)))
    }
    fn advance_line<'a>(&'a self, handler: &'a str, key: &'a str, now_ms: u64) -> Pending<'a, ()> {
        Box::pin(later(Backend::advance_line(&self.inner, handler, key, now_ms)))
    }
    fn blocked_by<'a>(&'a self, delivery: &'a DeliveryRecord) -> Pending<'a, Option<String>> {
        Box::pin(later(Backend::blocked_by(&self.inner, delivery)))
    }
    fn audit<'a>(&'a self, record: &'a AuditRecord) -> Pending<'a, ()> {
        Box::pin(later(Backend::audit(&self.inner, record)))
    }
    fn audit_log(&self, limit: usize) -> Pending<'_, Vec<AuditRecord>> {
        Box::pin(later(Backend::audit_log(&self.inner, limit)))
    }
    fn expire<'a>(&'a self, retention: &'a Retention, now_ms: u64) -> Pending<'a, Expired> {
        Box::pin(later(Backend::expire(&self.inner, retention, now_ms)))
    }
    fn delivery_counts(&self) -> Pending<'_, Vec<HandlerCount>> {
        Box::pin(later(Backend::delivery_counts(&self.inner)))
    }
}

impl StateSource for Later {
    fn handler_state(&self, handler: &str, quota: StateQuota) -> Box<dyn StateStore> {
        Box::new(LaterState(StateSource::handler_state(&self.inner, handler, quota)))
    }
}

fn request() -> InvocationRequest {
    let event = Event::from_value(json!({ "type": "test.event", "data": {} }), "tests").expect("event");
    InvocationRequest {
        idempotency_key: event.id.clone(),
        event_version: 1,
        recalled_steps: Default::default(),
        event,
        delivery_id: new_id(),
        attempt: 1,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn handler_state_works_over_a_store_that_answers_later() {
    let backend = Arc::new(Later {
        inner: Store::temporary().expect("store"),
        commits: AtomicUsize::new(0),
    });
    let config = Config::parse(LOOPBACK_CONFIG, Path::new("eddy.toml")).expect("config");
    let rt = Runtime::new(&config, &fixtures(), backend.clone()).expect("runtime");
    let state = rt.prepare("state", &fixtures().join("state.js")).await.expect("loads");
    let stored = backend.inner.handler_state("state", StateQuota::UNLIMITED);
    for run in 1..=2 {
        let report = rt.run(&state, request()).await;
        assert_ok(&report);
        assert!(logs(&report).contains(&format!("runs {run}")), "{}", logs(&report));
        // Every write of a run is in the store when its report comes back, so the attempt's
        // record, written after it, reaches the disk with it or not at all.
        assert_eq!(
            stored.get("runs").expect("read"),
            Some(json!(run)),
            "run {run}'s writes are in the store before its report"
        );
    }
    assert_eq!(stored.get("user:1").expect("read"), Some(json!({ "name": "Ada" })));
    assert_eq!(
        backend.commits.load(Ordering::SeqCst),
        0,
        "a run leaves the flush to whoever writes after it"
    );
}
