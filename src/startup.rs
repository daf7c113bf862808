//! `Application`: everything between a configuration and a running server.
//!
//! `build` opens the store, migrates it, creates the bootstrap admin, starts the engine, loads
//! every deal into its actor (the store is the one source of truth for the stock) and binds the
//! listener (port 0 picks a free one, so tests run side by side). `run_until_stopped` serves
//! until SIGTERM/SIGINT or `ShutdownHandle::shutdown`, then shuts down gracefully: `/readyz`
//! turns 503, the listener closes, in-flight requests finish (each waits for its order's
//! commit), the writer drains, and the store closes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, web};
use actors::clock::now_ms;
use actors::engine::Engine;

use crate::auth::{JwtKeys, PasswordHasher, Role};
use crate::config::Settings;
use crate::error::{ApiError, ErrorCode};
use crate::idempotency::IdempotencyCache;
use crate::routes;
use crate::state::{AppState, State};
use crate::store::{NewUser, Store, StoreError, StoreJournal};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot bind {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("the JWT secret file {path}: {source}")]
    Secret {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
}

pub struct Application {
    address: SocketAddr,
    server: Server,
    state: State,
    drain_grace: Duration,
}

/// Stops a running application gracefully, as SIGTERM would.
#[derive(Clone)]
pub struct ShutdownHandle {
    server: ServerHandle,
    state: State,
    /// How long requests are still served after `/readyz` turned 503 (`TOPKART_DRAIN_GRACE_MS`).
    grace: Duration,
}

impl ShutdownHandle {
    pub async fn shutdown(&self) {
        self.state.start_draining();
        // Open event streams would hold the server open until its shutdown timeout.
        self.state.live.close_all();
        // Cluster mode: the deals go to the other nodes now, not when this one has finished.
        crate::service::cluster::leave(&self.state).await;
        if !self.grace.is_zero() {
            actix_web::rt::time::sleep(self.grace).await;
        }
        self.server.stop(true).await;
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        // Before anything is opened: cluster mode on settings that cannot hold it stops here.
        if let Some(refusal) = settings
            .cluster
            .refusal(&settings.store.database_url, settings.jwt_secret.is_some())
        {
            return Err(StartupError::Config(refusal));
        }
        let metrics = crate::telemetry::metrics_handle();
        let store = Arc::new(
            Store::connect(&settings.store.database_url, settings.db_max_connections).await?,
        );
        store.migrate().await?;
        let hasher = PasswordHasher::new(
            settings.passwords.argon2_memory_kib,
            settings.passwords.argon2_iterations,
        )
        .map_err(StartupError::Config)?;
        bootstrap_admin(&store, &hasher, &settings).await?;
        // What a newcomer needs to hear at start: without an admin nothing can be set up
        // (an admin login only answers 401), and with rate limits off nothing is throttled.
        if store.admin_count().await? == 0 {
            tracing::warn!(
                "no admin exists: set TOPKART_ADMIN_PASSWORD (and TOPKART_ADMIN_USERNAME, default admin) and restart, or run `topkart admin create --username … --email … --password …`"
            );
        }
        if settings.rate_limits == "off" {
            tracing::warn!(
                "rate limits are off (TOPKART_RATE_LIMITS=off): for load tests on loopback only"
            );
        }
        let secret = jwt_secret(&settings)?;
        let keys = web::Data::new(JwtKeys::new(
            &secret,
            settings.access_token_ttl_secs,
            settings.refresh_token_ttl_secs,
        ));

        let engine = Engine::start(Arc::new(StoreJournal(store.clone())), settings.engine());
        let loaded_deals = store.load_deals().await?;
        let deal_count = loaded_deals.deals.len();
        for bad in &loaded_deals.malformed {
            tracing::error!(
                deal_id = bad.deal_id,
                column = %bad.column,
                problem = %bad.problem,
                "a stored deal is malformed and was not loaded; its orders are refused until the row is mended and the engine restarted"
            );
        }
        // In cluster mode every deal starts as a follower: this node sells a deal only once it
        // holds its lease and has taken its epoch (the cluster rounds).
        let in_cluster = settings.cluster.redis_url.is_some();
        for loaded in loaded_deals.deals {
            let deal_id = loaded.record.id;
            if in_cluster {
                engine.follow(loaded.record);
                continue;
            }
            let (_, drift) = engine.launch(loaded);
            if drift != 0 {
                metrics::counter!("topkart_stock_drift_units_total")
                    .increment(drift.unsigned_abs());
                tracing::error!(
                    deal_id,
                    drift,
                    "stored available_units disagreed with the orders; re-derived from the orders"
                );
            }
        }
        tracing::info!(
            deals = deal_count,
            store = store.backend_name(),
            "engine started"
        );

        let listener =
            crate::listener::listen(&settings.bind).map_err(|source| StartupError::Bind {
                address: settings.bind.clone(),
                source,
            })?;
        let address = listener.local_addr().map_err(|source| StartupError::Bind {
            address: settings.bind.clone(),
            source,
        })?;
        let cluster = join_cluster(&settings, address).await?;
        let node_id = cluster.node_id.clone();
        let state: State = web::Data::new(
            AppState::new(
                store,
                engine,
                hasher,
                keys.clone(),
                IdempotencyCache::new(settings.idempotency_keys_max),
                metrics,
                settings.rate_limits(),
                loaded_deals.malformed,
                cluster,
                crate::live::LiveStock::new(
                    settings.event_listeners_max,
                    settings.event_writes_per_sec,
                    Duration::from_secs(settings.event_stream_max_secs),
                ),
            )
            .with_waitlist_max(settings.waitlist_max),
        );
        spawn_live_ticker(state.clone());
        crate::mail::Mailer::new(
            state.store.clone(),
            &settings.mail,
            !state.cluster.is_cluster(),
        )
        .map_err(StartupError::Config)?
        .spawn();
        if let (Some(ownership), Some(membership), Some(feed)) = (
            &state.cluster.ownership,
            &state.cluster.membership,
            &state.cluster.feed,
        ) {
            crate::service::cluster::spawn_rounds(
                state.clone(),
                ownership.clone(),
                membership.clone(),
            );
            crate::service::feed::spawn(state.clone(), ownership.clone(), feed.clone());
        }
        let server = {
            let state = state.clone();
            let body_limit = settings.body_limit_bytes;
            actix_web::HttpServer::new(move || {
                App::new()
                    .wrap(actix_web::middleware::from_fn(routes::access::access_log))
                    // Every answer names the node that decided it (API.md, cluster mode).
                    .wrap(
                        actix_web::middleware::DefaultHeaders::new()
                            .add(("X-Topkart-Node", node_id.clone())),
                    )
                    .app_data(state.clone())
                    .app_data(keys.clone())
                    .app_data(web::PayloadConfig::new(body_limit))
                    .app_data(web::QueryConfig::default().error_handler(|error, _| {
                        ApiError::new(
                            ErrorCode::ValidationError,
                            format!("invalid query string: {error}"),
                        )
                        .into()
                    }))
                    .app_data(
                        web::PathConfig::default()
                            .error_handler(|_, _| ApiError::not_found("resource").into()),
                    )
                    .configure(routes::configure)
                    .default_service(web::to(routes::fallback))
            })
            .workers(settings.workers)
            .disable_signals()
            .shutdown_timeout(settings.shutdown_timeout_secs)
            .listen(listener)
            .map_err(|source| StartupError::Bind {
                address: settings.bind.clone(),
                source,
            })?
            .run()
        };
        Ok(Self {
            address,
            server,
            state,
            drain_grace: Duration::from_millis(settings.drain_grace_ms),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn state(&self) -> State {
        self.state.clone()
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            server: self.server.handle(),
            state: self.state.clone(),
            grace: self.drain_grace,
        }
    }

    /// Serves until a signal or a `ShutdownHandle`, then drains and exits cleanly.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let shutdown = self.shutdown_handle();
        let signals = actix_web::rt::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested: draining");
            shutdown.shutdown().await;
        });
        let served = self.server.await;
        signals.abort();
        // Every in-flight request waited for its order's commit, so this is normally instant;
        // it also covers orders whose requester went away.
        self.state.engine.drain().await;
        // Done by the shutdown already; again here for a server that stopped by itself.
        crate::service::cluster::leave(&self.state).await;
        self.state.engine.stop();
        self.state.store.close().await;
        tracing::info!("stopped");
        served
    }
}

/// This node's identity, and in cluster mode its membership: connected to Redis, announced
/// with a first heartbeat (a node that cannot reach Redis does not start), then beating.
async fn join_cluster(
    settings: &Settings,
    address: SocketAddr,
) -> Result<crate::cluster::ClusterState, StartupError> {
    let node_id = settings
        .cluster
        .node_id
        .clone()
        .unwrap_or_else(|| format!("node-{}", crate::auth::random_hex(4)));
    let url = settings
        .cluster
        .advertise_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let Some(redis_url) = &settings.cluster.redis_url else {
        return Ok(crate::cluster::ClusterState::single(node_id, url));
    };
    let ttl = Duration::from_millis(settings.cluster.lease_ttl_ms);
    let unreachable = |error: redis::RedisError| {
        StartupError::Config(format!("cluster mode: Redis does not answer: {error}"))
    };
    let redis = crate::cluster::connect(redis_url, ttl)
        .await
        .map_err(unreachable)?;
    let redis_clone = redis.clone();
    let feed_redis = redis.clone();
    let membership = crate::cluster::Membership::new(
        redis,
        settings.cluster.cluster.clone(),
        node_id.clone(),
        url.clone(),
        ttl,
    );
    membership.beat().await.map_err(unreachable)?;
    membership.spawn_heartbeat();
    let ownership = crate::cluster::Ownership::new(
        redis_clone,
        settings.cluster.cluster.clone(),
        node_id.clone(),
        ttl,
    );
    tracing::info!(node = %node_id, %url, cluster = %settings.cluster.cluster, "joined the cluster");
    let client = redis::Client::open(redis_url.as_str()).map_err(unreachable)?;
    let feed = crate::cluster::Feed::new(
        feed_redis,
        client,
        &settings.cluster.cluster,
        node_id.clone(),
    );
    Ok(crate::cluster::ClusterState {
        node_id,
        url,
        membership: Some(membership),
        ownership: Some(ownership),
        feed: Some(feed),
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot listen for signals; stop with SIGKILL");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The configured secret, or one generated once and kept in the data folder.
fn jwt_secret(settings: &Settings) -> Result<Vec<u8>, StartupError> {
    if let Some(secret) = &settings.jwt_secret {
        if secret.0.len() < 32 {
            return Err(StartupError::Config(
                "TOPKART_JWT_SECRET must be at least 32 characters".into(),
            ));
        }
        return Ok(secret.0.clone().into_bytes());
    }
    let path = settings.data_dir.join("jwt-secret");
    let secret_error = |source| StartupError::Secret {
        path: path.clone(),
        source,
    };
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if existing.trim().len() >= 32 {
            return Ok(existing.trim().as_bytes().to_vec());
        }
    }
    std::fs::create_dir_all(&settings.data_dir).map_err(secret_error)?;
    let generated = crate::auth::random_hex(32);
    write_private(&path, &generated).map_err(secret_error)?;
    tracing::warn!(path = %path.display(), "TOPKART_JWT_SECRET is not set: generated a secret and kept it in the data folder");
    Ok(generated.into_bytes())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, contents.as_bytes())
}

/// Creates the bootstrap admin when its password is configured and the user is missing.
async fn bootstrap_admin(
    store: &Store,
    hasher: &PasswordHasher,
    settings: &Settings,
) -> Result<(), StartupError> {
    let Some(password) = &settings.admin_password else {
        return Ok(());
    };
    if store
        .user_by_login(&settings.admin_username)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let hash = {
        let (hasher, password) = (hasher.clone(), password.0.clone());
        actix_web::rt::task::spawn_blocking(move || hasher.hash(&password))
            .await
            .map_err(|error| StartupError::Config(format!("hashing the admin password: {error}")))?
    };
    let user = NewUser {
        username: settings.admin_username.clone(),
        email: settings.admin_email.clone(),
        phone_number: None,
        password_hash: hash,
        user_type: Role::Admin.as_str().to_owned(),
    };
    match store.create_user(&user, now_ms()).await {
        Ok(_) => tracing::info!(username = %settings.admin_username, "bootstrap admin created"),
        // Another node created it between our check and our insert.
        Err(StoreError::Conflict { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    Ok(())
}

/// `topkart admin create`: creates an admin in the configured store.
pub async fn create_admin(
    store: &crate::config::StoreSettings,
    passwords: &crate::config::PasswordSettings,
    username: &str,
    email: &str,
    password: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    if password.chars().count() < crate::routes::users::PASSWORD_MIN_CHARS {
        return Err(format!(
            "the password must have at least {} characters",
            crate::routes::users::PASSWORD_MIN_CHARS
        )
        .into());
    }
    let store = Store::connect(&store.database_url, 1).await?;
    store.migrate().await?;
    let hasher = PasswordHasher::new(passwords.argon2_memory_kib, passwords.argon2_iterations)?;
    let user = NewUser {
        username: username.to_owned(),
        email: email.trim().to_lowercase(),
        phone_number: None,
        password_hash: hasher.hash(password),
        user_type: Role::Admin.as_str().to_owned(),
    };
    let created = store.create_user(&user, now_ms()).await?;
    println!("admin {} created with id {}", created.username, created.id);
    store.close().await;
    Ok(())
}

/// Runs the ticker for as long as the server runs.
fn spawn_live_ticker(state: State) {
    actix_web::rt::spawn(async move {
        let mut interval = actix_web::rt::time::interval(crate::live::TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_round = std::time::Instant::now();
        loop {
            interval.tick().await;
            if state.is_draining() {
                state.live.close_all();
                continue;
            }
            // Past the node's write budget, every listener is sent less often (see `live`).
            if last_round.elapsed() < state.live.spacing() {
                continue;
            }
            last_round = std::time::Instant::now();
            let registry = state.engine.registry();
            state
                .live
                .tick(|deal_id| registry.with(deal_id, |handle| handle.mirror.clone()));
        }
    });
}
