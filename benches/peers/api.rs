//! The fake API of the peers benchmark: the handler posts each event to it, so it counts
//! completed handler runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;

/// An in-process HTTP API on 127.0.0.1 that answers every `POST /orders` with 200 at once.
pub struct FakeApi {
    hits: Arc<AtomicU64>,
    /// Where handlers post: `http://127.0.0.1:PORT/orders`.
    pub url: String,
}

impl FakeApi {
    /// Binds 127.0.0.1 on a port the system picks and serves until the process ends.
    pub async fn start() -> FakeApi {
        let hits = Arc::new(AtomicU64::new(0));
        let app = axum::Router::new()
            .route("/orders", post(order))
            .with_state(hits.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake API");
        let url = format!("http://{}/orders", listener.local_addr().expect("fake API address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeApi { hits, url }
    }

    /// Requests received so far: each is one handler run that reached its `fetch`.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

async fn order(State(hits): State<Arc<AtomicU64>>, _body: Bytes) -> Json<serde_json::Value> {
    hits.fetch_add(1, Ordering::Relaxed);
    Json(serde_json::json!({ "ok": true }))
}
