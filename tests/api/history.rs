//! The history checker of the fault runs (the fault suite, `tests/faults.rs`, and the cluster
//! fault runs): every request a run made is recorded as the client saw it — ok, a definite
//! failure, or unknown (no answer) — and checked against the store afterwards:
//!
//! - ok orders ≤ units, and the store never holds more units than the deal has;
//! - every ok order exists afterwards;
//! - no order exists for a definite failure (stored ≤ ok + unknown);
//! - conservation for the deal;
//! - no customer holds more units than the deal's per-customer limit.
//!
//! Each check prints its history and its verdict, PASS or FAIL, straight to stderr.

use std::collections::BTreeMap;
use std::io::Write;

use actix_web::http::StatusCode;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;
use topkart::store::{StockCheck, Store};

use crate::engine_process::{Outcome, Unanswered};
use crate::helpers::TestStore;

/// What the clients saw.
#[derive(Debug, Default)]
pub struct History {
    pub ok: Vec<i64>,
    pub definite_failures: usize,
    pub unknown: usize,
    /// Of the unknown: no answer within the client's timeout (a hang).
    pub timed_out: usize,
    /// Definite failures by status and error code, e.g. `503 STORE_UNAVAILABLE`.
    pub failures_by_kind: BTreeMap<String, usize>,
}

impl History {
    pub fn record(&mut self, outcome: Outcome) {
        match outcome {
            Ok((StatusCode::CREATED, body)) => self
                .ok
                .push(body["id"].as_i64().expect("a 201 names its order")),
            // A gateway's 504 (`OUTCOME_UNKNOWN`: a forward whose owner stopped answering)
            // says it does not know the outcome.
            Ok((StatusCode::GATEWAY_TIMEOUT, _)) => self.unknown += 1,
            Ok((status, body)) => {
                self.definite_failures += 1;
                let code = body["code"].as_str().unwrap_or("(no envelope)");
                *self
                    .failures_by_kind
                    .entry(format!("{} {code}", status.as_u16()))
                    .or_default() += 1;
            }
            Err(unanswered) => {
                self.unknown += 1;
                if unanswered == Unanswered::TimedOut {
                    self.timed_out += 1;
                }
            }
        }
    }

    /// An answer the client got: a 201 (naming its order) or a definite failure.
    pub fn record_answer(&mut self, status: StatusCode, body: &Value) {
        self.record(Ok((status, body.clone())));
    }

    /// A request that got no answer (the connection failed or closed): its outcome is unknown.
    pub fn record_unanswered(&mut self) {
        self.record(Err(Unanswered::ConnectionLost));
    }

    pub fn absorb(&mut self, other: History) {
        self.ok.extend(other.ok);
        self.definite_failures += other.definite_failures;
        self.unknown += other.unknown;
        self.timed_out += other.timed_out;
        for (kind, count) in other.failures_by_kind {
            *self.failures_by_kind.entry(kind).or_default() += count;
        }
    }

    pub async fn record_n(&mut self, outcomes: &mut UnboundedReceiver<Outcome>, n: usize) {
        for _ in 0..n {
            match outcomes.recv().await {
                Some(outcome) => self.record(outcome),
                None => return,
            }
        }
    }

    pub async fn record_rest(&mut self, outcomes: &mut UnboundedReceiver<Outcome>) {
        while let Some(outcome) = outcomes.recv().await {
            self.record(outcome);
        }
    }
}

/// Checks the history against the store; prints it and the verdict; panics on a violation.
pub async fn check(
    label: &str,
    store: &TestStore,
    deal_id: i64,
    units: i64,
    history: &History,
) -> StockCheck {
    let db = Store::connect(&store.url, 1).await.expect("store");
    let stock = db.stock_check(deal_id).await.expect("store").expect("deal");
    let deal = db.load_deal(deal_id).await.expect("store").expect("deal");
    let over_limit = deal.record.per_customer_limit.map_or(0, |limit| {
        deal.units_by_customer
            .values()
            .filter(|units| **units > limit)
            .count()
    });
    let mut lost = 0;
    for id in &history.ok {
        if db.order_by_id(*id).await.expect("store").is_none() {
            lost += 1;
        }
    }
    db.close().await;
    let requests = history.ok.len() + history.definite_failures + history.unknown;
    let oversold =
        (stock.units_held - stock.total_units).max(0) + (history.ok.len() as i64 - units).max(0);
    let phantom = (stock.orders_held - (history.ok.len() + history.unknown) as i64).max(0);
    let verdict =
        lost == 0 && oversold == 0 && phantom == 0 && over_limit == 0 && stock.conserved();
    // Straight to stderr, past the test harness's capture: CI's log shows every verdict.
    let _ = writeln!(
        std::io::stderr(),
        "{label}: requests {requests}, ok {}, definite failures {} {:?}, unknown {}, stored {}, \
         units {}, lost {lost}, oversold {oversold}, stored for definite failures {phantom}, \
         customers over their limit {over_limit}, conserved {} → {}",
        history.ok.len(),
        history.definite_failures,
        history.failures_by_kind,
        history.unknown,
        stock.orders_held,
        stock.total_units,
        stock.conserved(),
        if verdict { "PASS" } else { "FAIL" }
    );
    assert!(
        verdict,
        "{label}: the history violates the engine's promises ({stock:?})"
    );
    stock
}
