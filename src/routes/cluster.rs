//! `GET /api/v1/cluster` (admins): the mode, this node, the live nodes, and who owns each deal.

use actix_web::web;
use actors::clock::now_ms;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Admin;
use crate::cluster::NodeView;
use crate::error::{ApiError, ErrorCode};
use crate::state::State;
use crate::wire::rfc3339;

#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterView {
    /// `single` or `cluster`.
    pub mode: &'static str,
    /// The node that answered.
    pub node_id: String,
    pub nodes: Vec<ClusterNode>,
    pub deals: Vec<DealOwner>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterNode {
    pub id: String,
    pub url: String,
    pub deals_owned: u64,
    /// The node's last heartbeat (RFC 3339).
    #[schema(format = DateTime)]
    pub last_seen: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DealOwner {
    pub deal_id: i64,
    /// The owning node's id; null while the deal has no owner.
    pub owner: Option<String>,
    /// The deal's fencing epoch in the store.
    pub epoch: i64,
    /// How long the owner's lease still runs, in ms; null on a single node or without owner.
    pub lease_ms_left: Option<i64>,
}

impl From<NodeView> for ClusterNode {
    fn from(node: NodeView) -> Self {
        Self {
            id: node.id,
            url: node.url,
            deals_owned: node.deals_owned,
            last_seen: node.last_seen,
        }
    }
}

pub async fn view(state: State, _: Admin) -> Result<web::Json<ClusterView>, ApiError> {
    let epochs = state.store.deal_epochs().await?;
    let node_id = state.cluster.node_id.clone();
    let view = match &state.cluster.membership {
        None => ClusterView {
            mode: "single",
            nodes: vec![ClusterNode {
                id: node_id.clone(),
                url: state.cluster.url.clone(),
                deals_owned: state.engine.registry().len() as u64,
                last_seen: rfc3339(now_ms()),
            }],
            deals: state
                .engine
                .registry()
                .mirrors()
                .into_iter()
                .map(|(deal_id, _)| DealOwner {
                    deal_id,
                    owner: Some(node_id.clone()),
                    epoch: epochs.get(&deal_id).copied().unwrap_or(0),
                    lease_ms_left: None,
                })
                .collect(),
            node_id,
        },
        Some(membership) => {
            let nodes = membership.live_nodes().await.map_err(|error| {
                tracing::warn!(%error, "cluster view: Redis does not answer");
                ApiError::new(
                    ErrorCode::StoreUnavailable,
                    "Redis does not answer; retry shortly",
                )
            })?;
            let deal_ids: Vec<i64> = epochs.keys().copied().collect();
            let owners = match &state.cluster.ownership {
                Some(ownership) => ownership.owners(&deal_ids).await.map_err(|error| {
                    tracing::warn!(%error, "cluster view: Redis does not answer");
                    ApiError::new(
                        ErrorCode::StoreUnavailable,
                        "Redis does not answer; retry shortly",
                    )
                })?,
                None => vec![(None, None); deal_ids.len()],
            };
            let deals: Vec<DealOwner> = deal_ids
                .iter()
                .zip(owners)
                .map(|(&deal_id, (owner, lease_ms_left))| DealOwner {
                    deal_id,
                    owner,
                    epoch: epochs[&deal_id],
                    lease_ms_left,
                })
                .collect();
            let nodes = nodes
                .into_iter()
                .map(|node| {
                    let owned = deals
                        .iter()
                        .filter(|deal| deal.owner.as_deref() == Some(node.id.as_str()))
                        .count() as u64;
                    ClusterNode {
                        deals_owned: owned,
                        ..ClusterNode::from(node)
                    }
                })
                .collect();
            ClusterView {
                mode: "cluster",
                nodes,
                deals,
                node_id,
            }
        }
    };
    Ok(web::Json(view))
}
