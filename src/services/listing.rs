//! How listings are asked for, as people and scripts write it (the API's query, the
//! dashboard's forms, the CLI's flags): an order, a time window whose bounds are RFC 3339
//! times or durations back from now (`1h`), and for events a type pattern (`crm.*`).

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Page, ServiceError, Services};
use crate::router::Pattern;
use crate::store::{DeliveryFilter, DeliveryStatus, EventFilter, EventRecord};

/// Events read per look at the store while searching their data.
const SEARCH_PAGE: usize = 200;

/// The order and time window of a listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    pub newest_first: bool,
}

impl Window {
    /// From the texts of `order` (`newest`, the default, or `oldest`), `since` and `until`.
    pub fn parse(order: Option<&str>, since: Option<&str>, until: Option<&str>) -> Result<Self, ServiceError> {
        let newest_first = match order.map(str::trim) {
            None | Some("" | "newest") => true,
            Some("oldest") => false,
            Some(other) => return Err(query(format!("order must be newest or oldest, not {other:?}"))),
        };
        let bound = |name, text: Option<&str>| {
            text.map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| time_bound(name, t))
                .transpose()
        };
        let window = Self {
            since_ms: bound("since", since)?,
            until_ms: bound("until", until)?,
            newest_first,
        };
        if let (Some(since), Some(until)) = (window.since_ms, window.until_ms)
            && since >= until
        {
            return Err(query("since must be before until".into()));
        }
        Ok(window)
    }
}

/// Milliseconds since the epoch of `text`: an RFC 3339 time, or a duration back from now like
/// `6h` or `30m`. A duration reaching before the epoch is the epoch.
pub fn time_bound(name: &str, text: &str) -> Result<u64, ServiceError> {
    let at = humantime::parse_rfc3339_weak(text)
        .or_else(|_| {
            humantime::parse_duration(text).map(|ago| SystemTime::now().checked_sub(ago).unwrap_or(UNIX_EPOCH))
        })
        .map_err(|_| {
            query(format!(
                "{name} must be an RFC 3339 time (2026-01-31T12:00:00Z) or a duration back from now (1h), not {text:?}"
            ))
        })?;
    Ok(crate::clock::ms_since_epoch(at))
}

fn query(detail: String) -> ServiceError {
    ServiceError::Query(detail)
}

/// A listing of events as a face was asked for it: the texts as written, where an empty one
/// counts as absent (as a form leaves the fields it did not fill).
#[derive(Debug, Clone, Copy, Default)]
pub struct EventsAsked<'a> {
    /// A type, or a pattern of types.
    pub types: Option<&'a str>,
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    pub order: Option<&'a str>,
    /// The previous page's `next`.
    pub cursor: Option<&'a str>,
    pub unrouted: bool,
    pub limit: usize,
}

/// A listing of deliveries as a face was asked for it (empty texts count as absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct DeliveriesAsked<'a> {
    pub status: Option<&'a str>,
    pub handler: Option<&'a str>,
    pub event_type: Option<&'a str>,
    /// Text the last error contains.
    pub error: Option<&'a str>,
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    pub order: Option<&'a str>,
    pub cursor: Option<&'a str>,
    pub limit: usize,
}

/// `text` unless it is empty once trimmed.
fn given(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}

/// A delivery status as the API names it (`pending`, `running`, `succeeded`, `dead`).
pub fn delivery_status(text: Option<&str>) -> Result<Option<DeliveryStatus>, ServiceError> {
    given(text)
        .map(|s| {
            DeliveryStatus::parse(s)
                .ok_or_else(|| query("status must be pending, blocked, running, succeeded or dead".into()))
        })
        .transpose()
}

/// The filter `asked` describes.
pub fn delivery_filter(asked: &DeliveriesAsked<'_>) -> Result<DeliveryFilter, ServiceError> {
    let window = Window::parse(given(asked.order), given(asked.since), given(asked.until))?;
    let owned = |text: Option<&str>| given(text).map(str::to_owned);
    Ok(DeliveryFilter {
        status: delivery_status(asked.status)?,
        handler: owned(asked.handler),
        event_type: owned(asked.event_type),
        error: owned(asked.error),
        since_ms: window.since_ms,
        until_ms: window.until_ms,
        newest_first: window.newest_first,
        after_id: owned(asked.cursor),
        limit: asked.limit,
    })
}

impl Services {
    /// The filter `asked` describes, its type pattern resolved to the stored types it matches.
    pub async fn event_filter(&self, asked: &EventsAsked<'_>) -> Result<EventFilter, ServiceError> {
        let window = Window::parse(given(asked.order), given(asked.since), given(asked.until))?;
        let types = match given(asked.types) {
            Some(pattern) => Some(self.event_types_matching(pattern).await?),
            None => None,
        };
        let cursor = given(asked.cursor).map(str::parse::<u64>).transpose();
        Ok(EventFilter {
            types,
            since_ms: window.since_ms,
            until_ms: window.until_ms,
            newest_first: window.newest_first,
            after_seq: cursor.map_err(|_| query("cursor is not valid".into()))?,
            unrouted: asked.unrouted,
            limit: asked.limit,
        })
    }

    /// The stored event types `pattern` matches (`crm.*`, `github.**`, or one type): one seek
    /// per stored type under the pattern's literal start.
    pub async fn event_types_matching(&self, pattern: &str) -> Result<Vec<String>, ServiceError> {
        let pattern = Pattern::parse(pattern.trim()).map_err(|e| query(e.to_string()))?;
        if pattern.is_literal() {
            return Ok(vec![pattern.as_str().to_owned()]);
        }
        let types = self.store.event_types(&pattern.literal_prefix()).await?;
        Ok(types.into_iter().filter(|kind| pattern.matches(kind)).collect())
    }

    /// Events `filter` lists whose data holds `text` (ignoring ASCII case, in the data as
    /// compact JSON), up to `filter.limit` of them, reading at most `scan` events. The page's
    /// cursor is set when there may be more: the page is full, or the scan stopped first.
    pub async fn events_containing(
        &self,
        filter: &EventFilter,
        text: &str,
        scan: usize,
    ) -> Result<Page<EventRecord>, ServiceError> {
        let needle = text.to_ascii_lowercase();
        let mut page = EventFilter {
            limit: SEARCH_PAGE,
            ..filter.clone()
        };
        let (mut found, mut scanned) = (Vec::new(), 0);
        loop {
            let events = self.store.list_events(&page).await?;
            let exhausted = events.len() < SEARCH_PAGE;
            for event in events {
                scanned += 1;
                page.after_seq = Some(event.seq);
                let data = serde_json::to_string(&event.event.data).unwrap_or_default();
                if data.to_ascii_lowercase().contains(&needle) {
                    found.push(event);
                }
                if found.len() >= filter.limit || scanned >= scan {
                    return Ok(Page {
                        items: found,
                        next: page.after_seq.map(|seq| seq.to_string()),
                    });
                }
            }
            if exhausted {
                return Ok(Page {
                    items: found,
                    next: None,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::now_ms;

    #[test]
    fn bounds_take_times_and_durations_without_overflowing() {
        assert_eq!(time_bound("since", "1970-01-01T00:00:01Z").unwrap(), 1000);
        let hour_ago = time_bound("since", "1h").unwrap();
        let now = now_ms();
        assert!(now - hour_ago >= 3_600_000 && now - hour_ago < 3_700_000);
        assert_eq!(
            time_bound("since", "1000000000000h").unwrap(),
            0,
            "before the epoch is the beginning"
        );
        let error = time_bound("until", "soon").unwrap_err().to_string();
        assert!(error.contains("until must be") && error.contains("\"soon\""), "{error}");
    }

    #[test]
    fn a_window_is_newest_first_unless_asked_and_never_empty_by_mistake() {
        assert_eq!(
            Window::parse(None, None, None).unwrap(),
            Window {
                newest_first: true,
                ..Window::default()
            }
        );
        assert!(!Window::parse(Some("oldest"), None, Some("")).unwrap().newest_first);
        let window = Window::parse(
            Some("newest"),
            Some("1970-01-01T00:00:01Z"),
            Some("1970-01-01T00:00:02Z"),
        )
        .unwrap();
        assert_eq!((window.since_ms, window.until_ms), (Some(1000), Some(2000)));
        assert!(
            Window::parse(Some("random"), None, None)
                .unwrap_err()
                .to_string()
                .contains("newest or oldest")
        );
        assert!(
            Window::parse(None, Some("1h"), Some("2h"))
                .unwrap_err()
                .to_string()
                .contains("before until")
        );
    }
}
