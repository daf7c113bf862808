//! `AppState`: what every handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::web;
use actors::engine::Engine;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::{JwtKeys, PasswordHasher};
use crate::idempotency::IdempotencyCache;
use crate::store::{MalformedDeal, Store};

/// Entries a deal's waitlist holds at most, unless configured otherwise.
pub const WAITLIST_MAX_DEFAULT: usize = 10_000;

pub struct AppState {
    pub store: Arc<Store>,
    pub engine: Engine,
    pub hasher: PasswordHasher,
    /// Where passwords are hashed and verified (a few threads, a bounded queue).
    pub passwords: crate::auth::PasswordPool,
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
    /// Entries a deal's waitlist holds at most (`TOPKART_WAITLIST_MAX`).
    pub waitlist_max: usize,
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
            passwords: crate::auth::PasswordPool::start(
                hasher.clone(),
                std::thread::available_parallelism().map_or(2, |n| n.get()),
                PASSWORD_QUEUE_MAX,
            ),
            hasher,
            keys,
            idempotency,
            metrics,
            limits,
            malformed_deals,
            cluster,
            live,
            waitlist_max: WAITLIST_MAX_DEFAULT,
            draining: AtomicBool::new(false),
        }
    }

    /// The same state with another waitlist bound (set at start from the configuration).
    pub fn with_waitlist_max(mut self, waitlist_max: usize) -> Self {
        self.waitlist_max = waitlist_max;
        self
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Hashes a password on the password pool, off the async workers.
    pub async fn hash_password(&self, password: String) -> Result<String, crate::error::ApiError> {
        self.passwords.hash(password).await.map_err(|_| busy())
    }

    /// Verifies a password on the password pool.
    pub async fn verify_password(
        &self,
        password: String,
        phc: String,
    ) -> Result<bool, crate::error::ApiError> {
        self.passwords
            .verify(password, phc)
            .await
            .map_err(|_| busy())
    }
}

/// The password pool's queue is full: a flood of sign-ins waits its turn.
fn busy() -> crate::error::ApiError {
    crate::error::ApiError::new(
        crate::error::ErrorCode::Overloaded,
        "too many sign-ins and registrations at once; retry shortly",
    )
}

pub type State = web::Data<AppState>;

/// Sign-ins and registrations waiting for a password hashing thread at most (then 503): at
/// ~20 ms a hash on one core, the last of them waits about a second on two.
const PASSWORD_QUEUE_MAX: usize = 128;
