//! The mirror feed's use of the engine (cluster mode; the Redis side is `cluster::feed`).
//!
//! Publishing: every [`PUBLISH_EVERY`] the node looks at the deals it holds and publishes
//! those whose definition or stock moved since it last did (two atomic loads a deal), and
//! every [`FULL_REFRESH_EVERY`] all of them. Nothing on the order path waits for it.
//!
//! Taking in: another node's deal goes to this node's actor of the deal as `Follow`; the
//! actor takes it only while this node does not sell the deal, so the owner's own actor is
//! never overwritten by what it published.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use actors::DealId;
use actors::deal::Follow;

use crate::cluster::feed::{FULL_REFRESH_EVERY, FeedDeal, FeedMessage, PUBLISH_EVERY};
use crate::cluster::{Feed, Ownership};
use crate::state::{AppState, State};

/// What was last published of a deal: its definition's version, its stock, its epoch.
type Published = (u64, i64, i64);

/// Starts the feed's subscriber and its publisher.
pub fn spawn(state: State, ownership: Arc<Ownership>, feed: Arc<Feed>) {
    {
        let (state, ownership, taker) = (state.clone(), ownership.clone(), feed.clone());
        feed.spawn_subscriber(move |message| take(&state, &ownership, &taker, message));
    }
    actix_web::rt::spawn(async move {
        let mut sent: HashMap<DealId, Published> = HashMap::new();
        let mut last_full: Option<Instant> = None;
        loop {
            let full = last_full.is_none_or(|at| at.elapsed() >= FULL_REFRESH_EVERY);
            if full {
                last_full = Some(Instant::now());
            }
            let deals = changed(&state, &ownership, &mut sent, full);
            let count = deals.len() as u64;
            if count > 0 {
                match feed.publish(deals).await {
                    Ok(()) => metrics::counter!("topkart_cluster_feed_deals_published_total")
                        .increment(count),
                    Err(error) => {
                        // Published again, whole, once Redis answers.
                        sent.clear();
                        tracing::debug!(%error, "could not publish to the mirror feed");
                    }
                }
            }
            actix_web::rt::time::sleep(PUBLISH_EVERY).await;
        }
    });
}

/// The held deals that moved since they were last published (all of them when `full`).
fn changed(
    state: &AppState,
    ownership: &Ownership,
    sent: &mut HashMap<DealId, Published>,
    full: bool,
) -> Vec<FeedDeal> {
    let held: HashSet<DealId> = ownership.held_ids().into_iter().collect();
    sent.retain(|deal_id, _| held.contains(deal_id));
    let mut deals = Vec::new();
    for deal_id in held {
        state.engine.registry().with(deal_id, |handle| {
            let mirror = &handle.mirror;
            let now = (
                mirror.version(),
                mirror.available_units(),
                mirror.owner_epoch(),
            );
            if full || sent.get(&deal_id) != Some(&now) {
                sent.insert(deal_id, now);
                deals.push(FeedDeal::from(&mirror.snapshot()));
            }
        });
    }
    deals
}

/// Another node's deals, into this node's followers.
fn take(state: &AppState, ownership: &Ownership, feed: &Feed, message: FeedMessage) {
    metrics::counter!("topkart_cluster_feed_deals_received_total")
        .increment(message.deals.len() as u64);
    for deal in message.deals {
        if !feed.note_seller(deal.id, &message.node, deal.owner_epoch) || ownership.holds(deal.id) {
            continue;
        }
        let Ok(record) = deal.into_record() else {
            continue;
        };
        match state.engine.registry().get(record.id) {
            Some(handle) => handle.addr.do_send(Follow(record)),
            // A deal created on another node: followed from now on.
            None => {
                state.engine.follow(record);
            }
        }
    }
}
