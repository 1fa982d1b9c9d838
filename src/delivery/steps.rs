//! Durable steps: the results a delivery's attempts recorded with `ctx.step`, handed back to
//! its next attempt so those steps do not run again. They live in the attempt records (each
//! report lists its steps, a step that ran with its result), so they are redacted, expired and
//! deleted with them. A step is recalled only by an attempt on the event version it was
//! recorded on, and only from the delivery's `steps_since` attempt on (a fresh replay clears it).

use std::collections::HashMap;

use crate::runtime::InvocationReport;
use crate::store::{AttemptRecord, DeliveryRecord, SharedStore};

/// The step results `delivery`'s attempts recorded for version `version` of its event, by
/// step name, as JSON text; a later attempt's result for a name replaces an earlier one's.
/// When the attempts cannot be read, none: the steps run again, as a first attempt's would
/// (at least once holds).
pub async fn recall(store: &SharedStore, delivery: &DeliveryRecord, version: u32) -> HashMap<String, String> {
    let Some(since) = delivery.steps_since else {
        return HashMap::new();
    };
    match store.attempts(&delivery.id).await {
        Ok(attempts) => recorded_in(&attempts, since, version),
        Err(e) => {
            let id = &delivery.id;
            tracing::warn!(delivery_id = %id, "cannot read the steps of delivery {id}: {e}");
            HashMap::new()
        }
    }
}

fn recorded_in(attempts: &[AttemptRecord], since: u32, version: u32) -> HashMap<String, String> {
    let mut results = HashMap::new();
    let current = attempts
        .iter()
        .filter(|a| a.n >= since && a.recorded_steps && a.event_version == Some(version));
    for attempt in current {
        let steps = attempt.report.get("steps").and_then(|s| s.as_array());
        for step in steps.into_iter().flatten() {
            if let (Some(name), Some("ran"), Some(result)) =
                (step["name"].as_str(), step["status"].as_str(), step.get("result"))
            {
                results.insert(name.to_owned(), result.to_string());
            }
        }
    }
    results
}

/// Whether `report` holds the result of a step that ran.
pub fn any_ran(report: &InvocationReport) -> bool {
    report.capture.steps.iter().any(|s| s.result.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attempt(n: u32, version: u32, steps: serde_json::Value) -> AttemptRecord {
        AttemptRecord {
            n,
            started_ms: 0,
            duration_ms: 1.0,
            succeeded: false,
            report: json!({ "steps": steps }),
            replay: false,
            event_version: Some(version),
            recorded_steps: true,
        }
    }

    #[test]
    fn only_steps_that_ran_on_this_version_since_the_mark_are_recalled() {
        let attempts = [
            attempt(1, 1, json!([{"name": "old", "status": "ran", "result": 1}])),
            attempt(2, 1, json!([{"name": "a", "status": "ran", "result": {"id": 7}}])),
            attempt(
                3,
                1,
                json!([
                    {"name": "a", "status": "recalled"},
                    {"name": "b", "status": "failed", "error": "Error: no"},
                    {"name": "c", "status": "ran", "result": null}
                ]),
            ),
            attempt(4, 2, json!([{"name": "d", "status": "ran", "result": "v2"}])),
        ];
        let recalled = recorded_in(&attempts, 2, 1);
        assert_eq!(recalled.len(), 2, "{recalled:?}");
        assert_eq!(recalled["a"], r#"{"id":7}"#);
        assert_eq!(recalled["c"], "null");
        let edited = recorded_in(&attempts, 2, 2);
        assert_eq!(
            edited.keys().collect::<Vec<_>>(),
            ["d"],
            "another version recalls only its own"
        );
        assert!(recorded_in(&attempts, 5, 1).is_empty());
    }
}
