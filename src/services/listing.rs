//! How listings are asked for, as people and scripts write it (the API's query, the
//! dashboard's forms, the CLI's flags): an order, a time window whose bounds are RFC 3339
//! times or durations back from now (`1h`), and for events a type pattern (`crm.*`).

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Page, ServiceError, Services};
use crate::router::Pattern;
use crate::store::{EventFilter, EventRecord};

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

impl Services {
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
}

impl Services {
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
