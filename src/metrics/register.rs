//! Every metric put in the registry that `GET /metrics` renders, with its name and help.

use prometheus_client::registry::Registry;

impl super::Metrics {
    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "eddy_events_ingested",
            "Events accepted (duplicates excluded)",
            self.events_ingested.clone(),
        );
        r.register(
            "eddy_ingest_duration_seconds",
            "Time from a request's events routed to their commit (the flush included when durable)",
            self.ingest_seconds.clone(),
        );
        r.register(
            "eddy_attempts",
            "Delivery attempts by handler and outcome",
            self.attempts.clone(),
        );
        r.register(
            "eddy_attempt_duration_seconds",
            "Duration of delivery attempts by handler",
            self.attempt_seconds.clone(),
        );
        r.register(
            "eddy_deliveries",
            "Deliveries by handler and status (pending includes those due later)",
            self.deliveries.clone(),
        );
        r.register(
            "eddy_host_in_flight",
            "Fetches to a destination host waiting for its answer",
            self.host_in_flight.clone(),
        );
        r.register(
            "eddy_host_waiting",
            "Fetches waiting for their turn under a destination host's limits or pause",
            self.host_waiting.clone(),
        );
        r.register(
            "eddy_host_paused",
            "1 while a destination host's Retry-After pause holds new fetches",
            self.host_paused.clone(),
        );
        r.register(
            "eddy_host_circuit_open",
            "1 while a destination host's circuit is open (or probing)",
            self.host_circuit_open.clone(),
        );
        r.register(
            "eddy_queue_depth",
            "Deliveries waiting in the queue",
            self.queue_depth.clone(),
        );
        r.register("eddy_live_isolates", "V8 isolates alive", self.live_isolates.clone());
        r.register(
            "eddy_webhooks",
            "Webhook requests by source and outcome",
            self.webhooks.clone(),
        );
        r.register(
            "eddy_webhook_rejections",
            "Webhook requests refused, by source and reason",
            self.webhook_rejections.clone(),
        );
        r.register(
            "eddy_fetches",
            "Handler fetches by host and status class (from attempts' fetch records)",
            self.fetches.clone(),
        );
        r.register(
            "eddy_proxy_requests",
            "Requests through the proxy by outcome",
            self.proxy_requests.clone(),
        );
        r.register(
            "eddy_proxy_events",
            "Events the proxy recorded, or failed to",
            self.proxy_events.clone(),
        );
        r.register(
            "eddy_retention_removed",
            "Records removed by retention",
            self.retention_removed.clone(),
        );
    }
}
