//! The fake CRM of the ordering bench: it records each account's changes in the order they
//! arrive, counts calls of one account that overlap, and checks the order afterwards.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

use super::{CRM_DELAY, EVENTS, account_of};

/// One call the CRM received.
#[derive(Clone, Copy)]
pub struct Call {
    pub n: u64,
    /// Whether it came after the kill.
    pub after_kill: bool,
}

/// What the CRM has received.
#[derive(Default)]
pub struct Ledger {
    /// The calls of each account, in the order they arrived.
    pub applied: HashMap<String, Vec<Call>>,
    /// Calls of each account not yet answered.
    in_flight: HashMap<String, usize>,
    /// Which changes arrived at least once, and how many did.
    pub seen: Vec<bool>,
    pub distinct: usize,
}

#[derive(Default)]
pub struct Crm {
    pub ledger: Mutex<Ledger>,
    pub calls: AtomicUsize,
    /// Calls that arrived while another of the same account was in flight.
    pub overlaps: AtomicUsize,
    /// Set once eddy has been killed.
    pub killed: AtomicBool,
}

/// A call in flight; dropped when it is answered or when its connection goes away (as eddy's
/// do at the kill), so the count of its account never keeps a call that is gone.
struct InFlight {
    crm: Arc<Crm>,
    account: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut ledger = self.crm.ledger.lock().unwrap();
        if let Some(n) = ledger.in_flight.get_mut(&self.account) {
            *n = n.saturating_sub(1);
        }
    }
}

async fn apply(State(crm): State<Arc<Crm>>, Json(body): Json<Value>) -> StatusCode {
    let account = body["account"].as_str().unwrap_or_default().to_owned();
    let n = body["n"].as_u64().unwrap_or(u64::MAX);
    crm.calls.fetch_add(1, Ordering::SeqCst);
    let after_kill = crm.killed.load(Ordering::SeqCst);
    let guard = {
        let mut ledger = crm.ledger.lock().unwrap();
        let ledger = &mut *ledger;
        let busy = ledger.in_flight.entry(account.clone()).or_default();
        *busy += 1;
        if *busy > 1 {
            crm.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        ledger
            .applied
            .entry(account.clone())
            .or_default()
            .push(Call { n, after_kill });
        if let Some(seen) = ledger.seen.get_mut(n as usize)
            && !*seen
        {
            *seen = true;
            ledger.distinct += 1;
        }
        InFlight {
            crm: crm.clone(),
            account,
        }
    };
    tokio::time::sleep(CRM_DELAY).await;
    drop(guard);
    StatusCode::OK
}

pub async fn start_crm() -> (Arc<Crm>, String) {
    let crm = Arc::new(Crm::default());
    crm.ledger.lock().unwrap().seen = vec![false; EVENTS];
    let app = Router::new()
        .route("/apply", axum::routing::post(apply))
        .with_state(crm.clone());
    let base = crate::support::serve_loopback(app).await;
    (crm, base)
}

/// The calls of `calls` around index `at` (repeats in a row kept), `|` where the kill was.
fn around(calls: &[Call], at: usize) -> String {
    let from = at.saturating_sub(4);
    let to = (at + 6).min(calls.len());
    let mut text = Vec::new();
    for i in from..to {
        if i > 0 && calls[i].after_kill && !calls[i - 1].after_kill {
            text.push("|".to_owned());
        }
        text.push(calls[i].n.to_string());
    }
    text.join(" ")
}

/// Per account, the changes as they arrived with repeats in a row collapsed: every place
/// where an older change came right after a newer one, and the accounts whose changes are not
/// exactly the ones sent in the order sent, each with the calls around it.
pub fn check_order(applied: &HashMap<String, Vec<Call>>, keys: usize) -> (Vec<String>, Vec<String>) {
    let mut violations = Vec::new();
    let mut wrong_keys = Vec::new();
    let mut accounts: Vec<&String> = applied.keys().collect();
    accounts.sort();
    for account in accounts {
        let calls = &applied[account];
        // Collapsing drops only equal neighbours, so a pair of the collapsed sequence is a
        // pair of neighbours here.
        for (i, pair) in calls.windows(2).enumerate() {
            if pair[1].n < pair[0].n {
                let (older, newer) = (pair[1].n, pair[0].n);
                let context = around(calls, i + 1);
                violations.push(format!(
                    "{account}: {older} after {newer} (calls around it, | at the kill: {context})"
                ));
            }
        }
        let k: Option<usize> = account.strip_prefix("acct").and_then(|k| k.parse().ok());
        let expected: Vec<u64> = match k {
            Some(k) if k < keys => (0..EVENTS)
                .filter(|n| account_of(*n, keys) == k)
                .map(|n| n as u64)
                .collect(),
            _ => Vec::new(),
        };
        let mut collapsed: Vec<u64> = calls.iter().map(|c| c.n).collect();
        collapsed.dedup();
        if collapsed != expected {
            let at = collapsed.iter().zip(&expected).take_while(|(a, b)| a == b).count();
            let first = collapsed.get(at).map_or("nothing".into(), u64::to_string);
            let wanted = expected.get(at).map_or("nothing".into(), u64::to_string);
            wrong_keys.push(format!("{account}: change {} is {first}, sent as {wanted}", at + 1));
        }
    }
    (violations, wrong_keys)
}
