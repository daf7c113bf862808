//! The mirror feed (cluster mode): every owner publishes the deals it sells on one Redis
//! channel, `{cluster}:deals`, and every node takes them in, so any node answers `GET /deals`
//! from memory and refuses a doomed order (sold out, closed, expired, not started) without a
//! hop. The feed is also each node's directory of who sells which deal, and where that node
//! is, so forwarding needs no Redis round trip.
//!
//! Pub/sub delivers at most once: a message lost while a subscriber reconnects is made good
//! by the owners' full refresh every [`FULL_REFRESH_EVERY`]. Messages carry the deal's
//! fencing epoch; one from an owner older than the last seen is ignored, so a deal that moved
//! is never shown as its former owner last saw it.
//!
//! This module is the Redis side (the wire, the channel, the directory); which deals to
//! publish and what to do with them is `service::feed`.

use std::sync::Arc;
use std::time::Duration;

use actors::DealId;
use dashmap::DashMap;
use futures_util::StreamExt as _;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

/// How often an owner publishes what changed in its deals: the feed's staleness bound, plus
/// Redis's delivery.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(50);
/// How often an owner publishes all its deals, changed or not.
pub const FULL_REFRESH_EVERY: Duration = Duration::from_secs(2);
/// Deals per message: a full refresh of many deals goes out in pieces of this size.
const DEALS_PER_MESSAGE: usize = 256;
/// Wait before subscribing again after the subscription broke.
const RESUBSCRIBE_AFTER: Duration = Duration::from_millis(250);

/// A deal as its owner publishes it: flat, as stored.
pub type FeedDeal = crate::store::DealRow;

/// One message on the channel: deals as the node that sells them sees them.
#[derive(Debug, Serialize, Deserialize)]
pub struct FeedMessage {
    pub node: String,
    pub deals: Vec<FeedDeal>,
}

/// Who sells a deal, as the feed last said.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seller {
    node: String,
    epoch: i64,
}

pub struct Feed {
    redis: ConnectionManager,
    client: redis::Client,
    channel: String,
    node_id: String,
    sellers: DashMap<DealId, Seller>,
    /// Live nodes' base URLs by id (from the cluster rounds).
    urls: DashMap<String, String>,
}

impl Feed {
    pub fn new(
        redis: ConnectionManager,
        client: redis::Client,
        cluster: &str,
        node_id: String,
    ) -> Arc<Self> {
        Arc::new(Self {
            redis,
            client,
            channel: format!("{cluster}:deals"),
            node_id,
            sellers: DashMap::new(),
            urls: DashMap::new(),
        })
    }

    /// Publishes `deals` as this node's, in messages of at most [`DEALS_PER_MESSAGE`].
    pub async fn publish(&self, deals: Vec<FeedDeal>) -> Result<(), redis::RedisError> {
        let mut redis = self.redis.clone();
        for chunk in deals.chunks(DEALS_PER_MESSAGE) {
            let message = FeedMessage {
                node: self.node_id.clone(),
                deals: chunk.to_vec(),
            };
            let payload = serde_json::to_vec(&message).unwrap_or_default();
            redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(payload)
                .query_async::<i64>(&mut redis)
                .await?;
        }
        Ok(())
    }

    /// Subscribes to the channel for as long as the process runs, subscribing again after a
    /// break, and hands every other node's message to `take`.
    pub fn spawn_subscriber(self: &Arc<Self>, take: impl Fn(FeedMessage) + 'static) {
        let feed = self.clone();
        actix_web::rt::spawn(async move {
            loop {
                match feed.client.get_async_pubsub().await {
                    Ok(mut pubsub) => match pubsub.subscribe(&feed.channel).await {
                        Ok(()) => {
                            let mut messages = pubsub.on_message();
                            while let Some(message) = messages.next().await {
                                let Ok(payload) = message.get_payload::<Vec<u8>>() else {
                                    continue;
                                };
                                match serde_json::from_slice::<FeedMessage>(&payload) {
                                    Ok(message) if message.node != feed.node_id => take(message),
                                    Ok(_) => {}
                                    Err(error) => {
                                        tracing::warn!(%error, "an unreadable mirror feed message was skipped")
                                    }
                                }
                            }
                            tracing::warn!(
                                "the mirror feed's subscription ended; subscribing again"
                            );
                        }
                        Err(error) => {
                            tracing::warn!(%error, "could not subscribe to the mirror feed")
                        }
                    },
                    Err(error) => {
                        tracing::warn!(%error, "could not connect for the mirror feed")
                    }
                }
                actix_web::rt::time::sleep(RESUBSCRIBE_AFTER).await;
            }
        });
    }

    /// Notes that `node` sells `deal_id` under `epoch`. False when the feed already saw a
    /// later epoch for the deal: the message is older than what this node knows.
    pub fn note_seller(&self, deal_id: DealId, node: &str, epoch: i64) -> bool {
        let mut entry = self.sellers.entry(deal_id).or_insert_with(|| Seller {
            node: node.to_owned(),
            epoch,
        });
        if entry.epoch > epoch {
            return false;
        }
        if entry.node != node || entry.epoch != epoch {
            *entry = Seller {
                node: node.to_owned(),
                epoch,
            };
        }
        true
    }

    /// The node that sells `deal_id` as the feed last said, and its URL, if that node is live.
    pub fn seller_of(&self, deal_id: DealId) -> Option<(String, String)> {
        let node = self.sellers.get(&deal_id)?.node.clone();
        let url = self.urls.get(&node)?.clone();
        Some((node, url))
    }

    /// The live nodes (id, URL), from a cluster round: a node gone from the list is nobody's
    /// seller any more (`seller_of` needs its URL), while its epochs stay known.
    pub fn set_live_nodes(&self, nodes: &[(String, String)]) {
        self.urls
            .retain(|id, _| nodes.iter().any(|(live, _)| live == id));
        for (id, url) in nodes {
            if self.urls.get(id).is_none_or(|known| *known != *url) {
                self.urls.insert(id.clone(), url.clone());
            }
        }
    }
}
