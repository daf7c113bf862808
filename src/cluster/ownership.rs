//! Deal ownership's mechanics: the leases in Redis and the table of deals this node holds
//! (DESIGN.md decision 8). The rounds that use them — placement, takeover with the store's
//! epoch, hand-off — are `service::cluster`, since they move the engine and the store too.
//!
//! Placement is rendezvous hashing over the live nodes: every node computes the same winner for
//! a deal from the same node list, a joining node takes over only the deals it now wins, and a
//! leaving node's deals spread over the others. The winner takes the deal's lease in Redis
//! (`SET {cluster}:lease:{deal} {node}:{token} NX PX ttl`), then its fencing epoch in Postgres
//! (incremented and read back), then reloads the deal from the store (the orders are the facts)
//! into its actor under the new epoch. It renews every TTL/3 by compare-and-extend and sells
//! only until its lease's deadline minus a margin, measured on the monotonic clock from the
//! moment the renewal was *sent*; a renewal that fails or times out counts as lost. A node that
//! no longer wins a deal releases it (compare-and-delete) so the winner takes it at once.
//!
//! Liveness comes from Redis; safety does not: a paused or partitioned old owner may still
//! believe in its lease, but its writes carry the old epoch and the store refuses them (the
//! writer's fence, `store/orders.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::DealId;
use dashmap::DashMap;
use redis::aio::ConnectionManager;

/// Stop selling this long before the lease would run out: the renewal's answer may be late.
const LEASE_MARGIN_FRACTION: u32 = 5;

/// A deal this node holds.
#[derive(Debug, Clone)]
pub struct Held {
    /// Proves the lease is ours in compare-and-extend and compare-and-delete.
    pub token: String,
    pub epoch: i64,
    /// Sell until this instant (the lease's end minus the margin).
    pub sell_until: Instant,
}

pub struct Ownership {
    redis: ConnectionManager,
    cluster: String,
    node_id: String,
    ttl: Duration,
    held: DashMap<DealId, Held>,
}

const RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                       return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                         return redis.call('DEL', KEYS[1]) else return 0 end";

/// The node that wins `deal_id` among `nodes` (rendezvous hashing, FNV-1a: the same answer on
/// every node and every build).
pub fn winner(nodes: &[String], deal_id: DealId) -> Option<&String> {
    nodes.iter().max_by_key(|node| {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in node.bytes().chain(deal_id.to_le_bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        (hash, node.as_str())
    })
}

impl Ownership {
    pub fn new(
        redis: ConnectionManager,
        cluster: String,
        node_id: String,
        ttl: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            redis,
            cluster,
            node_id,
            ttl,
            held: DashMap::new(),
        })
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lease_key(&self, deal_id: DealId) -> String {
        format!("{}:lease:{deal_id}", self.cluster)
    }

    fn margin(&self) -> Duration {
        self.ttl / LEASE_MARGIN_FRACTION
    }

    /// The deal's epoch if this node may sell it right now.
    pub fn selling(&self, deal_id: DealId) -> Option<i64> {
        let held = self.held.get(&deal_id)?;
        (Instant::now() < held.sell_until).then_some(held.epoch)
    }

    /// Whether the deal's lease was last renewed a third of the TTL ago or more.
    pub fn renewal_due(&self, deal_id: DealId) -> bool {
        self.held.get(&deal_id).is_some_and(|held| {
            let fresh_until = held.sell_until - (self.ttl - self.margin()) + self.ttl / 3;
            Instant::now() >= fresh_until
        })
    }

    /// How often the rounds run: often enough that a deal handed over (or a node gone from
    /// the membership) is taken within well under a second whatever the TTL; renewals still
    /// go out once per TTL/3 (`renewal_due`).
    pub fn round_every(&self) -> std::time::Duration {
        (self.ttl / 3).min(std::time::Duration::from_millis(250))
    }

    pub fn holds(&self, deal_id: DealId) -> bool {
        self.held.contains_key(&deal_id)
    }

    pub fn held_ids(&self) -> Vec<DealId> {
        self.held.iter().map(|entry| *entry.key()).collect()
    }

    /// Every deal held, with its epoch and how long its lease still runs (ms).
    pub fn held(&self) -> Vec<(DealId, i64, i64)> {
        let now = Instant::now();
        let mut held: Vec<_> = self
            .held
            .iter()
            .map(|entry| {
                let left = entry.sell_until.saturating_duration_since(now) + self.margin();
                (
                    *entry.key(),
                    entry.epoch,
                    i64::try_from(left.as_millis()).unwrap_or(i64::MAX),
                )
            })
            .collect();
        held.sort_unstable();
        held
    }

    /// Takes the deal's lease if nobody holds it: `SET … NX PX ttl`. Returns the lease's value
    /// and the instant the request was sent (the lease runs from no earlier than that).
    pub async fn try_lease(&self, deal_id: DealId) -> Option<(String, Instant)> {
        let value = format!("{}:{}", self.node_id, crate::auth::random_hex(8));
        let sent = Instant::now();
        let mut redis = self.redis.clone();
        let taken: Result<Option<String>, _> = redis::cmd("SET")
            .arg(self.lease_key(deal_id))
            .arg(&value)
            .arg("NX")
            .arg("PX")
            .arg(self.ttl.as_millis() as u64)
            .query_async(&mut redis)
            .await;
        matches!(taken, Ok(Some(_))).then_some((value, sent))
    }

    /// Records a deal taken over under `epoch`, with its lease from `sent`.
    pub fn hold(&self, deal_id: DealId, token: String, epoch: i64, sent: Instant) {
        self.held.insert(
            deal_id,
            Held {
                token,
                epoch,
                sell_until: sent + self.ttl - self.margin(),
            },
        );
    }

    /// Extends the deal's lease if it is still ours (compare-and-extend). False — the lease is
    /// lost, or the renewal failed or timed out — removes the deal from the held table.
    pub async fn renew(&self, deal_id: DealId) -> bool {
        let Some(token) = self.held.get(&deal_id).map(|held| held.token.clone()) else {
            return false;
        };
        let sent = Instant::now();
        let mut redis = self.redis.clone();
        let renewed: Result<i64, _> = redis::Script::new(RENEW)
            .key(self.lease_key(deal_id))
            .arg(&token)
            .arg(self.ttl.as_millis() as u64)
            .invoke_async(&mut redis)
            .await;
        if matches!(renewed, Ok(1)) {
            if let Some(mut held) = self.held.get_mut(&deal_id) {
                held.sell_until = sent + self.ttl - self.margin();
            }
            return true;
        }
        // Taken: the lease was no longer ours; failed: Redis did not answer in time.
        let reason = if matches!(renewed, Ok(_)) {
            "taken"
        } else {
            "failed"
        };
        metrics::counter!("topkart_cluster_lease_renewal_failures_total", "reason" => reason)
            .increment(1);
        tracing::warn!(deal_id, outcome = ?renewed, "lease renewal failed");
        self.held.remove(&deal_id);
        false
    }

    /// Removes the deal from the held table (selling stops at once) and returns its token.
    pub fn forget(&self, deal_id: DealId) -> Option<String> {
        self.held.remove(&deal_id).map(|(_, held)| held.token)
    }

    /// Frees the lease if it is still `token`'s (compare-and-delete).
    pub async fn release_lease(&self, deal_id: DealId, token: &str) {
        let mut redis = self.redis.clone();
        let _: Result<i64, _> = redis::Script::new(RELEASE)
            .key(self.lease_key(deal_id))
            .arg(token)
            .invoke_async(&mut redis)
            .await;
    }

    /// Who holds each of `deal_ids` according to Redis, and for how much longer (ms).
    pub async fn owners(
        &self,
        deal_ids: &[DealId],
    ) -> Result<Vec<(Option<String>, Option<i64>)>, redis::RedisError> {
        if deal_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for &deal_id in deal_ids {
            pipe.get(self.lease_key(deal_id))
                .cmd("PTTL")
                .arg(self.lease_key(deal_id));
        }
        let mut redis = self.redis.clone();
        let answers: Vec<(Option<String>, i64)> = pipe.query_async(&mut redis).await?;
        Ok(answers
            .into_iter()
            .map(|(value, pttl)| {
                let owner =
                    value.and_then(|value| value.split_once(':').map(|(node, _)| node.to_owned()));
                (owner, (pttl >= 0).then_some(pttl))
            })
            .collect())
    }
}
