//! Cluster mode: several nodes sharing one Postgres and one Redis under one cluster name
//! (DESIGN.md decision 8, API.md "Cluster mode").
//!
//! The pieces: the settings and their checks at start; membership (each node's heartbeat in
//! Redis: `membership.rs`); deal ownership (rendezvous placement, Redis leases, the Postgres
//! fencing epoch, hand-off on shutdown: `ownership.rs`); the mirror feed (every deal as its
//! seller publishes it, over Redis pub/sub: `feed.rs`). The rounds and the feed's use of the
//! engine are `service::{cluster, feed}`; forwarding is `routes::forward`; the writer's fence
//! is `store/orders.rs`.

pub mod feed;
pub mod membership;
pub mod ownership;

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use feed::Feed;
pub use membership::{Membership, NodeView};
pub use ownership::Ownership;

/// Cluster mode's settings (`REDIS_URL` unset: a single node).
#[derive(Debug, Clone, Args)]
pub struct ClusterSettings {
    /// redis://… — set: cluster mode (needs a postgres:// DATABASE_URL and TOPKART_JWT_SECRET).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// The cluster's name, and the prefix of every Redis key it uses.
    #[arg(long, env = "TOPKART_CLUSTER", default_value = "topkart")]
    pub cluster: String,
    /// This node's id, unique in the cluster (default: generated at start and logged).
    #[arg(long, env = "TOPKART_NODE_ID")]
    pub node_id: Option<String>,
    /// The base URL at which the other nodes reach this one (default: http:// + the bound address).
    #[arg(long, env = "TOPKART_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// How long a node's heartbeat (and, next, a deal's lease) lasts without renewal, in ms.
    #[arg(long, env = "TOPKART_LEASE_TTL_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(300..=600_000))]
    pub lease_ttl_ms: u64,
}

impl ClusterSettings {
    /// Why these settings cannot run, if they cannot: cluster mode shares one Postgres (SQLite
    /// is one machine's file) and needs one JWT secret (every node accepts every node's tokens).
    pub fn refusal(&self, database_url: &str, jwt_secret_set: bool) -> Option<String> {
        self.redis_url.as_ref()?;
        if !database_url.starts_with("postgres:") && !database_url.starts_with("postgresql:") {
            return Some(
                "cluster mode (REDIS_URL set) needs a postgres:// DATABASE_URL: the nodes share one store, and SQLite is one machine's file".into(),
            );
        }
        if !jwt_secret_set {
            return Some(
                "cluster mode (REDIS_URL set) needs TOPKART_JWT_SECRET: every node must accept the tokens every other node issues".into(),
            );
        }
        if !valid_name(&self.cluster) {
            return Some("TOPKART_CLUSTER must be 1–64 letters, digits, '-' or '_'".into());
        }
        if self.node_id.as_deref().is_some_and(|id| !valid_name(id)) {
            return Some("TOPKART_NODE_ID must be 1–64 letters, digits, '-' or '_'".into());
        }
        None
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Which mode the node runs in, and who it is.
#[derive(Clone)]
pub struct ClusterState {
    pub node_id: String,
    /// This node's base URL, as the other nodes reach it.
    pub url: String,
    /// `None` on a single node.
    pub membership: Option<Arc<Membership>>,
    /// Which deals this node sells; `None` on a single node (it sells every deal).
    pub ownership: Option<Arc<Ownership>>,
    /// Every deal as its seller published it, and who sells it; `None` on a single node.
    pub feed: Option<Arc<Feed>>,
}

impl ClusterState {
    pub fn single(node_id: String, url: String) -> Self {
        Self {
            node_id,
            url,
            membership: None,
            ownership: None,
            feed: None,
        }
    }

    pub fn is_cluster(&self) -> bool {
        self.membership.is_some()
    }
}

/// One multiplexed Redis connection that reconnects by itself. Every command is bounded: a
/// node must learn quickly that Redis is gone (its leases will not be renewed), never hang on
/// it. A timed-out command may still have run on the server (redis-rs), which every use here
/// tolerates: heartbeats and removals are idempotent.
pub async fn connect(
    redis_url: &str,
    ttl: Duration,
) -> Result<ConnectionManager, redis::RedisError> {
    let client = redis::Client::open(redis_url)?;
    let bound = (ttl / 3).clamp(Duration::from_millis(100), Duration::from_secs(2));
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(bound))
        .set_connection_timeout(Some(bound))
        .set_number_of_retries(1);
    ConnectionManager::new_with_config(client, config).await
}
