//! Membership: each node's heartbeat in Redis, and the live nodes as any node sees them.
//!
//! Two keys per cluster: `{cluster}:nodes`, a sorted set of node ids scored by their last
//! heartbeat (Unix ms), and `{cluster}:urls`, a hash of node id → base URL. A node beats every
//! TTL/3; a node whose last beat is older than the TTL is not live (and is swept from both keys
//! by whoever beats next). Leaving cleanly removes the node at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use actors::Millis;
use actors::clock::now_ms;
use redis::aio::ConnectionManager;
use serde::Serialize;

/// A live node as `GET /api/v1/cluster` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeView {
    pub id: String,
    pub url: String,
    /// RFC 3339, the node's last heartbeat.
    pub last_seen: String,
    /// Deals it owns (0 until deal ownership lands).
    pub deals_owned: u64,
}

pub struct Membership {
    redis: ConnectionManager,
    cluster: String,
    node_id: String,
    url: String,
    ttl: Duration,
    /// When this node's last heartbeat was acknowledged by Redis (Unix ms; 0: never).
    last_beat_ms: AtomicI64,
    /// Set when the node leaves: the heartbeat stops, so it does not announce itself again.
    left: AtomicBool,
}

impl Membership {
    pub fn new(
        redis: ConnectionManager,
        cluster: String,
        node_id: String,
        url: String,
        ttl: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            redis,
            cluster,
            node_id,
            url,
            ttl,
            last_beat_ms: AtomicI64::new(0),
            left: AtomicBool::new(false),
        })
    }

    fn nodes_key(&self) -> String {
        format!("{}:nodes", self.cluster)
    }

    fn urls_key(&self) -> String {
        format!("{}:urls", self.cluster)
    }

    fn ttl_ms(&self) -> Millis {
        Millis::try_from(self.ttl.as_millis()).unwrap_or(Millis::MAX)
    }

    /// One heartbeat: this node's score and URL, and the sweep of nodes gone quiet.
    pub async fn beat(&self) -> Result<(), redis::RedisError> {
        let now = now_ms();
        let stale_before = now - self.ttl_ms();
        let mut redis = self.redis.clone();
        let stale: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.nodes_key())
            .arg("-inf")
            .arg(format!("({stale_before}"))
            .query_async(&mut redis)
            .await?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .zadd(self.nodes_key(), &self.node_id, now)
            .ignore()
            .hset(self.urls_key(), &self.node_id, &self.url)
            .ignore();
        let gone: Vec<&String> = stale.iter().filter(|id| **id != self.node_id).collect();
        if !gone.is_empty() {
            // By score: a node that beat since it was read as stale keeps its place (and puts
            // its URL back with its next beat).
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(self.nodes_key())
                .arg("-inf")
                .arg(format!("({stale_before}"))
                .ignore()
                .hdel(self.urls_key(), gone)
                .ignore();
        }
        pipe.query_async::<()>(&mut redis).await?;
        self.last_beat_ms.store(now, Ordering::Release);
        Ok(())
    }

    /// Whether Redis acknowledged a heartbeat within the TTL.
    pub fn is_alive(&self) -> bool {
        now_ms() - self.last_beat_ms.load(Ordering::Acquire) < self.ttl_ms()
    }

    /// Beats every TTL/3 until the process ends; a failed beat is logged and retried.
    pub fn spawn_heartbeat(self: &Arc<Self>) {
        let membership = self.clone();
        actix_web::rt::spawn(async move {
            let every = membership.ttl / 3;
            let mut failing = false;
            while !membership.has_left() {
                match membership.beat().await {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!(node = %membership.node_id, "heartbeat to Redis restored");
                    }
                    Ok(()) => {}
                    Err(error) if !failing => {
                        failing = true;
                        metrics::counter!("topkart_cluster_heartbeat_failures_total").increment(1);
                        tracing::error!(node = %membership.node_id, %error, "heartbeat to Redis failed");
                    }
                    Err(_) => {
                        metrics::counter!("topkart_cluster_heartbeat_failures_total").increment(1);
                    }
                }
                actix_web::rt::time::sleep(every).await;
            }
        });
    }

    /// The live nodes, by id.
    pub async fn live_nodes(&self) -> Result<Vec<NodeView>, redis::RedisError> {
        let since = now_ms() - self.ttl_ms();
        let mut redis = self.redis.clone();
        let scored: Vec<(String, i64)> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.nodes_key())
            .arg(since)
            .arg("+inf")
            .arg("WITHSCORES")
            .query_async(&mut redis)
            .await?;
        if scored.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&String> = scored.iter().map(|(id, _)| id).collect();
        let urls: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.urls_key())
            .arg(&ids)
            .query_async(&mut redis)
            .await?;
        let mut nodes: Vec<NodeView> = scored
            .iter()
            .zip(urls)
            .map(|((id, last_seen), url)| NodeView {
                id: id.clone(),
                url: url.unwrap_or_default(),
                last_seen: crate::wire::rfc3339(*last_seen),
                deals_owned: 0,
            })
            .collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(nodes)
    }

    /// Whether the node left the cluster (it is shutting down).
    pub fn has_left(&self) -> bool {
        self.left.load(Ordering::Acquire)
    }

    /// Leaves the cluster at once (a clean shutdown), instead of after the TTL: the others stop
    /// counting this node and take its deals over in their next round.
    pub async fn leave(&self) {
        if self.left.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut redis = self.redis.clone();
        let left: Result<(), _> = redis::pipe()
            .atomic()
            .zrem(self.nodes_key(), &self.node_id)
            .ignore()
            .hdel(self.urls_key(), &self.node_id)
            .ignore()
            .query_async(&mut redis)
            .await;
        match left {
            Ok(()) => tracing::info!(node = %self.node_id, "left the cluster"),
            Err(error) => {
                tracing::warn!(node = %self.node_id, %error, "could not leave the cluster; the others will see the heartbeat lapse")
            }
        }
    }

    /// A node's base URL, if it is known.
    pub async fn url_of(&self, node_id: &str) -> Result<Option<String>, redis::RedisError> {
        let mut redis = self.redis.clone();
        redis::cmd("HGET")
            .arg(self.urls_key())
            .arg(node_id)
            .query_async(&mut redis)
            .await
    }

    /// Redis answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), redis::RedisError> {
        let mut redis = self.redis.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut redis)
            .await
            .map(|_| ())
    }
}
