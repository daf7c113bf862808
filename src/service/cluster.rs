//! Cluster rounds (DESIGN.md decision 8): every TTL/3 (at most 250 ms) each node renews the
//! leases it holds that are due (once per TTL/3),
//! hands over the deals another live node now wins (rendezvous placement), and takes over the
//! deals it wins that nobody holds — the lease in Redis first, then the deal's fencing epoch in
//! Postgres (incremented and read back), then the deal reloaded from the store into its actor
//! (the orders are the facts). A renewal that fails or times out stops the deal at once. On a
//! clean shutdown every deal is handed over, so the others take them without waiting for the
//! TTL.

use std::sync::Arc;

use actors::DealId;
use actors::deal::LoseOwnership;

use crate::cluster::ownership::winner;
use crate::cluster::{Membership, Ownership};
use crate::state::{AppState, State};
use crate::telemetry::error_chain;

/// One round, as described above.
pub async fn tick(state: &AppState, ownership: &Ownership, membership: &Membership) {
    let nodes: Vec<String> = match membership.live_nodes().await {
        Ok(nodes) => {
            if let Some(feed) = &state.cluster.feed {
                let live: Vec<(String, String)> = nodes
                    .iter()
                    .map(|node| (node.id.clone(), node.url.clone()))
                    .collect();
                feed.set_live_nodes(&live);
            }
            nodes.into_iter().map(|node| node.id).collect()
        }
        Err(error) => {
            tracing::warn!(%error, "cluster round: Redis does not answer; leases will lapse");
            Vec::new()
        }
    };
    for deal_id in ownership.held_ids() {
        if ownership.renewal_due(deal_id) && !ownership.renew(deal_id).await {
            metrics::counter!("topkart_cluster_leases_lost_total").increment(1);
            stop_selling(state, deal_id).await;
        }
    }
    // Every node runs an actor for every deal (it serves reads from memory) and sells those it
    // owns: deals created on other nodes since the last round are loaded here.
    let deal_ids: Vec<DealId> = match state.store.deal_epochs().await {
        Ok(epochs) => epochs.into_keys().collect(),
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "cluster round: the store does not answer");
            return;
        }
    };
    for &deal_id in &deal_ids {
        if state.engine.registry().get(deal_id).is_none() {
            if let Ok(Some(loaded)) = state.store.load_deal(deal_id).await {
                // Unless the feed brought it in meanwhile.
                if state.engine.registry().get(deal_id).is_none() {
                    state.engine.follow(loaded.record);
                }
            }
        }
    }
    if membership.has_left() {
        // Shutting down: hand over, never take over.
        return;
    }
    for deal_id in deal_ids {
        let wins = winner(&nodes, deal_id).is_some_and(|node| node == ownership.node_id());
        let holds = ownership.holds(deal_id);
        if holds && !wins && !nodes.is_empty() {
            hand_over(state, ownership, deal_id).await;
        } else if !holds && wins {
            take_over(state, ownership, deal_id).await;
        }
    }
}

/// The deal's actor refuses every order from now on (and lends nothing).
async fn stop_selling(state: &AppState, deal_id: DealId) {
    if let Some(handle) = state.engine.registry().get(deal_id) {
        let _ = handle.addr.send(LoseOwnership).await;
    }
}

async fn take_over(state: &AppState, ownership: &Ownership, deal_id: DealId) {
    let Some((token, sent)) = ownership.try_lease(deal_id).await else {
        return;
    };
    let epoch = match state.store.take_deal(deal_id).await {
        Ok(epoch) => epoch,
        Err(error) => {
            tracing::warn!(deal_id, error = %error_chain(&error), "could not take the deal's epoch; releasing its lease");
            ownership.release_lease(deal_id, &token).await;
            return;
        }
    };
    // The store's deal, after the epoch moved on: every order of an earlier owner that
    // committed is counted, and none can commit any more.
    if super::reload(state, deal_id, "a takeover", true)
        .await
        .is_none()
    {
        ownership.release_lease(deal_id, &token).await;
        return;
    }
    ownership.hold(deal_id, token, epoch, sent);
    metrics::counter!("topkart_cluster_leases_acquired_total").increment(1);
    tracing::info!(deal_id, epoch, node = %ownership.node_id(), "took the deal over");
}

/// Hands a deal over: stop selling, wait for its orders in the writer, free the lease.
async fn hand_over(state: &AppState, ownership: &Ownership, deal_id: DealId) {
    let Some(token) = ownership.forget(deal_id) else {
        return;
    };
    stop_selling(state, deal_id).await;
    state.engine.drain().await;
    ownership.release_lease(deal_id, &token).await;
    metrics::counter!("topkart_cluster_handoffs_total").increment(1);
    tracing::info!(deal_id, node = %ownership.node_id(), "handed the deal over");
}

/// Leaves the cluster and hands every deal over (a clean shutdown, first thing on SIGTERM):
/// the others take the deals in their next round instead of after the TTL, while this node's
/// in-flight requests finish (orders for its former deals answer 503 `DEAL_UNAVAILABLE`).
pub async fn leave(state: &AppState) {
    let (Some(ownership), Some(membership)) = (&state.cluster.ownership, &state.cluster.membership)
    else {
        return;
    };
    membership.leave().await;
    hand_over_all(state, ownership).await;
}

/// Hands every deal over: the others take them at once.
pub async fn hand_over_all(state: &AppState, ownership: &Ownership) {
    for deal_id in ownership.held_ids() {
        hand_over(state, ownership, deal_id).await;
    }
}

/// Runs a round every `Ownership::round_every` until the process ends.
pub fn spawn_rounds(state: State, ownership: Arc<Ownership>, membership: Arc<Membership>) {
    actix_web::rt::spawn(async move {
        loop {
            tick(&state, &ownership, &membership).await;
            actix_web::rt::time::sleep(ownership.round_every()).await;
        }
    });
}
