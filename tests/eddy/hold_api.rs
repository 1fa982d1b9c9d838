//! A fake third-party API whose calls wait at a gate the test opens: it counts the calls in
//! flight, the most ever in flight at once, and which calls arrived and finished.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::post;
use tokio::sync::watch;

#[derive(Default)]
struct Held {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    arrived: Mutex<Vec<String>>,
    finished: Mutex<Vec<String>>,
}

/// The fake API; `POST /hold/{key}` answers 200 once the gate is open.
pub struct HoldApi {
    pub addr: SocketAddr,
    held: Arc<Held>,
    gate: watch::Sender<bool>,
}

/// Takes a call out of the in-flight count however it ends (eddy may drop the connection).
struct InFlight(Arc<Held>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl HoldApi {
    /// Starts with the gate closed.
    pub async fn start() -> Self {
        let held = Arc::new(Held::default());
        let (gate, opened) = watch::channel(false);
        let app = Router::new()
            .route("/hold/{key}", post(hold))
            .with_state((held.clone(), opened));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, held, gate }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Lets every waiting and future call through.
    pub fn open(&self) {
        self.gate.send_replace(true);
    }

    /// The keys of the calls that arrived, in order.
    pub fn arrived(&self) -> Vec<String> {
        self.held.arrived.lock().unwrap().clone()
    }

    /// The keys of the calls answered 200.
    pub fn finished(&self) -> Vec<String> {
        self.held.finished.lock().unwrap().clone()
    }

    pub fn in_flight(&self) -> usize {
        self.held.in_flight.load(Ordering::SeqCst)
    }

    pub fn max_in_flight(&self) -> usize {
        self.held.max_in_flight.load(Ordering::SeqCst)
    }

    /// Waits (at most 60 s) until `n` calls are waiting at the gate at once.
    pub async fn wait_in_flight(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.in_flight() < n {
            assert!(
                Instant::now() < deadline,
                "{} calls in flight, never {n}; arrived {:?}",
                self.in_flight(),
                self.arrived()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn hold(
    State((held, mut opened)): State<(Arc<Held>, watch::Receiver<bool>)>,
    Path(key): Path<String>,
) -> &'static str {
    held.arrived.lock().unwrap().push(key.clone());
    let now = held.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    held.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let counted = InFlight(held.clone());
    let _ = opened.wait_for(|open| *open).await;
    drop(counted);
    held.finished.lock().unwrap().push(key);
    "ok"
}
