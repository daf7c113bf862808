//! Configuration: every knob is a flag and an environment variable, with one doc line each,
//! grouped by what it configures so each command (`cli.rs`) takes only the groups it uses.
//! Out-of-range values are refused at start, never clamped. Secrets are redacted wherever the
//! configuration is printed.

use std::path::PathBuf;
use std::str::FromStr;

use actors::engine::EngineConfig;
use actors::order_writer::WriterConfig;
use clap::Args;
use clap::builder::{RangedU64ValueParser, TypedValueParser as _};

use crate::rate_limit::LimitSetting;

/// A count that must be at least 1 (queues, workers, batches): 0 is refused, not clamped.
fn at_least_one() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(1..)
}

/// Where the store is: every command that opens it takes these.
#[derive(Debug, Clone, Args)]
pub struct StoreSettings {
    /// sqlite://path (embedded, the default) or postgres://… (production).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://data/topkart.db")]
    pub database_url: String,
}

/// How passwords are hashed: the server and `admin create` take these.
#[derive(Debug, Clone, Args)]
pub struct PasswordSettings {
    /// argon2id memory cost in KiB (OWASP minimum: 19456).
    #[arg(long, env = "TOPKART_ARGON2_MEMORY_KIB", default_value_t = 19_456, value_parser = clap::value_parser!(u32).range(8..))]
    pub argon2_memory_kib: u32,
    /// argon2id iterations (OWASP minimum with 19 MiB: 2).
    #[arg(long, env = "TOPKART_ARGON2_ITERATIONS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub argon2_iterations: u32,
}

/// A secret string: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Secret(text.to_owned()))
    }
}

/// E-mail: the server's mailer takes these.
#[derive(Debug, Clone, Args)]
pub struct MailSettings {
    /// The SMTP server e-mail goes through, e.g. smtp://127.0.0.1:2525 (unset: nothing is
    /// sent; what would be is logged).
    #[arg(long, env = "TOPKART_SMTP_URL")]
    pub smtp_url: Option<Secret>,
    /// The sender of every message.
    #[arg(
        long,
        env = "TOPKART_MAIL_FROM",
        default_value = "Topkart <orders@topkart.example>"
    )]
    pub mail_from: String,
}

/// Everything `topkart serve` takes.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub store: StoreSettings,
    #[command(flatten)]
    pub passwords: PasswordSettings,
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterSettings,
    #[command(flatten)]
    pub mail: MailSettings,
    /// Connections in the store's pool at most.
    #[arg(long, env = "TOPKART_DB_MAX_CONNECTIONS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub db_max_connections: u32,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "TOPKART_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// HS256 secret for tokens; when unset one is generated once and kept in the data folder.
    #[arg(long, env = "TOPKART_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
    /// Folder for the generated JWT secret (and the SQLite file by default).
    #[arg(long, env = "TOPKART_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Bootstrap admin's username, created at start when the password is set and it is missing.
    #[arg(long, env = "TOPKART_ADMIN_USERNAME", default_value = "admin")]
    pub admin_username: String,
    /// Bootstrap admin's email.
    #[arg(
        long,
        env = "TOPKART_ADMIN_EMAIL",
        default_value = "admin@topkart.local"
    )]
    pub admin_email: String,
    /// Bootstrap admin's password; no bootstrap admin when unset.
    #[arg(long, env = "TOPKART_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,
    /// HTTP worker threads.
    #[arg(long, env = "TOPKART_WORKERS", default_value_t = 2, value_parser = at_least_one())]
    pub workers: usize,
    /// Lifetime of an access token, in seconds.
    #[arg(long, env = "TOPKART_ACCESS_TOKEN_TTL_SECS", default_value_t = 900, value_parser = clap::value_parser!(i64).range(1..=86_400))]
    pub access_token_ttl_secs: i64,
    /// Lifetime of a refresh token, in seconds.
    #[arg(long, env = "TOPKART_REFRESH_TOKEN_TTL_SECS", default_value_t = 14 * 86_400, value_parser = clap::value_parser!(i64).range(1..=366 * 86_400))]
    pub refresh_token_ttl_secs: i64,
    /// Orders in one group commit at most.
    #[arg(long, env = "TOPKART_WRITER_BATCH_MAX", default_value_t = WriterConfig::BATCH_MAX_DEFAULT, value_parser = at_least_one())]
    pub writer_batch_max: usize,
    /// Order batches committing at once at most, each on a connection of its own (1–4).
    #[arg(long, env = "TOPKART_WRITER_COMMITS", default_value_t = WriterConfig::COMMITS_IN_FLIGHT_DEFAULT, value_parser = clap::value_parser!(u8).range(1..=crate::store::WRITER_CONNECTIONS_MAX as i64).map(usize::from))]
    pub writer_commits: usize,
    /// Orders waiting for the writer at most; beyond it orders get 503 OVERLOADED.
    #[arg(long, env = "TOPKART_WRITER_QUEUE_MAX", default_value_t = WriterConfig::QUEUE_MAX_DEFAULT, value_parser = at_least_one())]
    pub writer_queue_max: usize,
    /// How long, in milliseconds, an order whose commit's outcome is unknown (the store's
    /// connection dropped after the commit was sent) waits for the store to say what became of
    /// it before it is answered 504 OUTCOME_UNKNOWN.
    #[arg(long, env = "TOPKART_OUTCOME_WAIT_MS", default_value_t = WriterConfig::OUTCOME_WAIT_DEFAULT.as_millis() as u64, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub outcome_wait_ms: u64,
    /// Requests queued for one deal's actor at most; beyond it orders get 503 OVERLOADED.
    #[arg(long, env = "TOPKART_DEAL_MAILBOX_CAPACITY", default_value_t = EngineConfig::DEAL_MAILBOX_CAPACITY_DEFAULT, value_parser = at_least_one())]
    pub deal_mailbox_capacity: usize,
    /// Remembered idempotency keys at most.
    #[arg(long, env = "TOPKART_IDEMPOTENCY_KEYS_MAX", default_value_t = 200_000, value_parser = at_least_one())]
    pub idempotency_keys_max: usize,
    /// Live stock listeners (`GET /deals/{id}/events`) this node holds at most (then 503).
    #[arg(long, env = "TOPKART_EVENT_LISTENERS_MAX", default_value_t = 10_000, value_parser = at_least_one())]
    pub event_listeners_max: usize,
    /// How long one live stock stream lasts at most, in seconds; the client reconnects after
    /// the stream's `retry` hint (2 s), so no connection is held for ever.
    #[arg(long, env = "TOPKART_EVENT_STREAM_MAX_SECS", default_value_t = crate::live::STREAM_MAX_SECS_DEFAULT, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub event_stream_max_secs: u64,
    /// Customers one deal's waitlist holds at most (then 409 `WAITLIST_FULL`).
    #[arg(long, env = "TOPKART_WAITLIST_MAX", default_value_t = crate::state::WAITLIST_MAX_DEFAULT, value_parser = at_least_one())]
    pub waitlist_max: usize,
    /// Live stock event writes a second the node makes at most (all listeners together);
    /// beyond it each listener is sent less often than ten times a second.
    #[arg(long, env = "TOPKART_EVENT_WRITES_PER_SEC", default_value_t = 20_000, value_parser = at_least_one())]
    pub event_writes_per_sec: usize,
    /// `off` turns every rate limit off (load tests on loopback); `on` applies the limits below.
    #[arg(long, env = "TOPKART_RATE_LIMITS", default_value = "on", value_parser = ["on", "off"])]
    pub rate_limits: String,
    /// Failed logins per account (then 429 until the window ends): N/window or off.
    #[arg(
        long,
        env = "TOPKART_RATE_LIMIT_FAILED_LOGINS_PER_ACCOUNT",
        default_value = "10/15m"
    )]
    pub rate_limit_failed_logins_per_account: LimitSetting,
    /// Failed logins per client address.
    #[arg(
        long,
        env = "TOPKART_RATE_LIMIT_FAILED_LOGINS_PER_ADDRESS",
        default_value = "100/15m"
    )]
    pub rate_limit_failed_logins_per_address: LimitSetting,
    /// Successful logins per client address (generous: many buyers share a carrier NAT).
    #[arg(
        long,
        env = "TOPKART_RATE_LIMIT_LOGINS_PER_ADDRESS",
        default_value = "600/1m"
    )]
    pub rate_limit_logins_per_address: LimitSetting,
    /// Registrations per client address.
    #[arg(
        long,
        env = "TOPKART_RATE_LIMIT_REGISTRATIONS_PER_ADDRESS",
        default_value = "600/1m"
    )]
    pub rate_limit_registrations_per_address: LimitSetting,
    /// Order attempts per customer (anti-bot; generous).
    #[arg(
        long,
        env = "TOPKART_RATE_LIMIT_ORDERS_PER_CUSTOMER",
        default_value = "1200/1m"
    )]
    pub rate_limit_orders_per_customer: LimitSetting,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "TOPKART_BODY_LIMIT_BYTES", default_value_t = 64 * 1024, value_parser = at_least_one())]
    pub body_limit_bytes: usize,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(long, env = "TOPKART_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
    /// Milliseconds between SIGTERM/SIGINT and closing the listener. Requests are still served
    /// meanwhile, but `/readyz` answers 503 from the first instant, so a load balancer polling
    /// it stops sending traffic before the node goes away. 0: close at once.
    #[arg(long, env = "TOPKART_DRAIN_GRACE_MS", default_value_t = 0)]
    pub drain_grace_ms: u64,
}

impl Settings {
    /// The rate limits these settings describe.
    pub fn rate_limits(&self) -> crate::rate_limit::RateLimits {
        use crate::rate_limit::Kind;
        crate::rate_limit::RateLimits::new(
            self.rate_limits != "off",
            [
                (
                    Kind::FailedLoginPerAccount,
                    self.rate_limit_failed_logins_per_account,
                ),
                (
                    Kind::FailedLoginPerAddress,
                    self.rate_limit_failed_logins_per_address,
                ),
                (Kind::LoginPerAddress, self.rate_limit_logins_per_address),
                (
                    Kind::RegistrationPerAddress,
                    self.rate_limit_registrations_per_address,
                ),
                (Kind::OrderPerCustomer, self.rate_limit_orders_per_customer),
            ],
        )
    }

    /// The engine's sizing these settings describe.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            writer: WriterConfig {
                batch_max: self.writer_batch_max,
                queue_max: self.writer_queue_max,
                commits_in_flight: self.writer_commits,
                outcome_wait: std::time::Duration::from_millis(self.outcome_wait_ms),
            },
            deal_mailbox_capacity: self.deal_mailbox_capacity,
        }
    }
}
