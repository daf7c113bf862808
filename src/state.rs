//! `AppState`: what every handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::web;
use actors::engine::Engine;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::{JwtKeys, PasswordHasher};
use crate::idempotency::IdempotencyCache;
use crate::store::{MalformedDeal, Store};

pub struct AppState {
    pub store: Arc<Store>,
    pub engine: Engine,
    pub hasher: PasswordHasher,
    pub keys: web::Data<JwtKeys>,
    pub idempotency: IdempotencyCache,
    pub metrics: PrometheusHandle,
    pub limits: crate::rate_limit::RateLimits,
    /// Stored deals left out at start because their rows are malformed; `/readyz` names them.
    pub malformed_deals: Vec<MalformedDeal>,
    /// Who this node is; in cluster mode, its membership.
    pub cluster: crate::cluster::ClusterState,
    /// The live stock streams (`GET /deals/{id}/events`).
    pub live: crate::live::LiveStock,
    /// Set when shutdown begins: `/readyz` answers 503 from then on.
    draining: AtomicBool,
}

impl AppState {
    pub fn new(
        store: Arc<Store>,
        engine: Engine,
        hasher: PasswordHasher,
        keys: web::Data<JwtKeys>,
        idempotency: IdempotencyCache,
        metrics: PrometheusHandle,
        limits: crate::rate_limit::RateLimits,
        malformed_deals: Vec<MalformedDeal>,
        cluster: crate::cluster::ClusterState,
        live: crate::live::LiveStock,
    ) -> Self {
        Self {
            store,
            engine,
            hasher,
            keys,
            idempotency,
            metrics,
            limits,
            malformed_deals,
            cluster,
            live,
            draining: AtomicBool::new(false),
        }
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Hashes a password on the blocking pool, off the async workers.
    pub async fn hash_password(&self, password: String) -> Result<String, crate::error::ApiError> {
        let hasher = self.hasher.clone();
        web::block(move || hasher.hash(&password))
            .await
            .map_err(|error| crate::error::ApiError::internal(&error))
    }

    /// Verifies a password on the blocking pool.
    pub async fn verify_password(
        &self,
        password: String,
        phc: String,
    ) -> Result<bool, crate::error::ApiError> {
        let hasher = self.hasher.clone();
        web::block(move || hasher.verify(&password, &phc))
            .await
            .map_err(|error| crate::error::ApiError::internal(&error))
    }
}

pub type State = web::Data<AppState>;
