//! What a person or a program can look at: events, deliveries with their attempts, the audit
//! log, the handlers, health and metrics. Listings come in pages with the cursor of the next.

use super::{HandlerStatus, ServiceError, Services};
use crate::metrics::{GaugedStatus, Gauges, HostGauge};
use crate::store::{
    AttemptRecord, AuditRecord, DeliveryFilter, DeliveryRecord, DeliveryStatus, EventFilter, EventRecord, EventVersion,
    HandlerCount, StoreError,
};

/// One page of a listing: `next` is the cursor of the following page, set when the page is full.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    fn of(items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> Self {
        let next = (items.len() == limit).then(|| items.last().map(cursor)).flatten();
        Self { items, next }
    }
}

/// An event with its deliveries and the previous versions of its data.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDetail {
    pub event: EventRecord,
    pub deliveries: Vec<DeliveryRecord>,
    pub history: Vec<EventVersion>,
}

/// A delivery with every attempt made so far.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryDetail {
    pub delivery: DeliveryRecord,
    pub attempts: Vec<AttemptRecord>,
    /// A blocked delivery: the one its key waits for.
    pub blocked_by: Option<String>,
}

impl Services {
    /// Events in ingest order; the cursor is the last event's sequence number.
    pub async fn events(&self, filter: &EventFilter) -> Result<Page<EventRecord>, ServiceError> {
        let events = self.store.list_events(filter).await?;
        Ok(Page::of(events, filter.limit, |e| e.seq.to_string()))
    }

    /// Event `id` with its deliveries (those still stored) and its history.
    pub async fn event(&self, id: &str) -> Result<EventDetail, ServiceError> {
        let event = self
            .store
            .event(id)
            .await?
            .ok_or_else(|| ServiceError::NoEvent(id.to_owned()))?;
        let mut deliveries = Vec::with_capacity(event.deliveries.len());
        for delivery in &event.deliveries {
            deliveries.extend(self.store.delivery(delivery).await?);
        }
        let history = self.store.event_history(id).await?;
        Ok(EventDetail {
            event,
            deliveries,
            history,
        })
    }

    /// Deliveries in creation order; the cursor is the last delivery's id.
    pub async fn deliveries(&self, filter: &DeliveryFilter) -> Result<Page<DeliveryRecord>, ServiceError> {
        let deliveries = self.store.list_deliveries(filter).await?;
        Ok(Page::of(deliveries, filter.limit, |d| d.id.clone()))
    }

    /// Delivery `id` with its attempts.
    pub async fn delivery(&self, id: &str) -> Result<DeliveryDetail, ServiceError> {
        let delivery = self
            .store
            .delivery(id)
            .await?
            .ok_or_else(|| ServiceError::NoDelivery(id.to_owned()))?;
        let attempts = self.store.attempts(id).await?;
        let blocked_by = self.store.blocked_by(&delivery).await?;
        Ok(DeliveryDetail {
            delivery,
            attempts,
            blocked_by,
        })
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit_log(&self, limit: usize) -> Result<Vec<AuditRecord>, ServiceError> {
        Ok(self.store.audit_log(limit).await?)
    }

    /// Every handler with its routes and load error, if any.
    pub fn handler_statuses(&self) -> Vec<HandlerStatus> {
        self.handlers.statuses()
    }

    /// Whether the store takes writes: once a write failed, it takes none until a restart.
    pub fn health(&self) -> Result<(), ServiceError> {
        match self.store.failure() {
            None => Ok(()),
            Some(cause) => Err(StoreError::Unavailable { cause }.into()),
        }
    }

    /// Each destination host with a limit or a state to show: its rule, waiting fetches,
    /// pause and circuit.
    pub fn host_limits(&self) -> Vec<crate::runtime::HostStatus> {
        let mut hosts = self.runtime.host_limits();
        hosts.retain(|h| {
            h.rule.is_some()
                || h.in_flight + h.waiting > 0
                || h.paused_until.is_some()
                || h.breaker != "closed"
                || h.consecutive_failures > 0
        });
        hosts
    }

    /// Pending, running and dead deliveries per handler (reads every index entry of them).
    pub async fn delivery_counts(&self) -> Result<Vec<HandlerCount>, ServiceError> {
        Ok(self.store.delivery_counts().await?)
    }

    /// The metrics in Prometheus text format, with the gauges read now.
    pub async fn metrics_text(&self) -> Result<String, ServiceError> {
        let deliveries = self.store.delivery_counts().await?;
        let hosts = self.host_limits().into_iter().map(|h| HostGauge {
            host: h.host,
            in_flight: h.in_flight,
            waiting: h.waiting,
            paused: h.paused_until.is_some(),
            circuit_open: h.breaker != "closed",
        });
        let gauges = Gauges {
            queue_depth: self.store.queue_depth(),
            live_isolates: self.handlers.live_isolates(),
            deliveries: deliveries.into_iter().filter_map(gauged).collect(),
            hosts: hosts.collect(),
        };
        Ok(self.metrics.render(gauges))
    }
}

/// A store count as the metrics label it; the metrics keep no gauge of succeeded deliveries.
fn gauged(count: HandlerCount) -> Option<(String, GaugedStatus, u64)> {
    let status = match count.status {
        DeliveryStatus::Pending => GaugedStatus::Pending,
        DeliveryStatus::Running => GaugedStatus::Running,
        DeliveryStatus::Dead => GaugedStatus::Dead,
        DeliveryStatus::Blocked => GaugedStatus::Blocked,
        DeliveryStatus::Succeeded => return None,
    };
    Some((count.handler, status, count.count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_has_a_cursor_only_when_it_is_full() {
        let full = Page::of(vec![1, 2, 3], 3, |n| n.to_string());
        assert_eq!(full.next.as_deref(), Some("3"));
        let short = Page::of(vec![1, 2], 3, |n| n.to_string());
        assert_eq!(short.next, None);
        let empty: Page<u32> = Page::of(vec![], 3, |n| n.to_string());
        assert_eq!(empty.next, None);
    }
}
