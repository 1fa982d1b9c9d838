//! `GET /metrics` after real attempts: attempts and their durations per handler, dead
//! deliveries per handler, fetches by host and status class, and ingest latency.

use serde_json::json;

use crate::server_support::{TestServer, pipeline_handlers};
use crate::support::{FakeApi, metric_sum};

#[tokio::test]
async fn attempts_dead_deliveries_and_fetches_are_counted_per_handler_and_host() {
    let api = FakeApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(&pipeline_handlers(), data.path(), "").await;
    // One call fails with 503, then the next succeeds; the other fails all four attempts.
    let recovers =
        json!({"type": "orders.created", "id": "o-recovers", "data": {"base": api.base(), "fail": 1, "status": 503}});
    let dies =
        json!({"type": "orders.created", "id": "o-dies", "data": {"base": api.base(), "fail": 10, "status": 503}});
    server.send(recovers).await;
    server.send(dies).await;
    server
        .wait_for_status("o-recovers", "orders.created", "succeeded")
        .await;
    server.wait_for_status("o-dies", "orders.created", "dead").await;

    let metrics = server.metrics().await;
    let sum = |name: &str, labels: &[(&str, &str)]| metric_sum(&metrics, name, labels);
    let of = |outcome| {
        sum(
            "eddy_attempts_total",
            &[("handler", "orders.created"), ("outcome", outcome)],
        )
    };
    assert_eq!((of("succeeded"), of("retried"), of("dead")), (1, 4, 1), "{metrics}");
    let durations = [("handler", "orders.created")];
    assert_eq!(sum("eddy_attempt_duration_seconds_count", &durations), 6, "{metrics}");
    let dead = [("handler", "orders.created"), ("status", "dead")];
    assert_eq!(sum("eddy_deliveries", &dead), 1, "{metrics}");
    let pending = [("handler", "orders.created"), ("status", "pending")];
    assert_eq!(sum("eddy_deliveries", &pending), 0, "{metrics}");
    let host = api.addr.to_string();
    let fetches = |class| sum("eddy_fetches_total", &[("host", host.as_str()), ("class", class)]);
    assert_eq!((fetches("2xx"), fetches("5xx")), (1, 5), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("eddy_ingest_duration_seconds_count ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    server.stop().await;
}
