//! E-mail (issue 12): a confirmation for every acknowledged order, a notice when a waitlist
//! entry is served, a receipt for every payment. What is owed is a row of the store's outbox,
//! written in the transaction of what caused it; the mailer here takes the rows in the
//! background and sends them over SMTP (`TOPKART_SMTP_URL`), retrying with back-off while the
//! server is down. It never touches the order path: an order waits for no e-mail, and a mailer
//! that is behind only makes the outbox longer. With no `TOPKART_SMTP_URL` nothing is sent: each
//! row is logged and marked done.

mod message;

use std::sync::Arc;
use std::time::Duration;

use actors::clock::now_ms;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::MailSettings;
use crate::store::{MailKind, OwedMail, Store};
pub use message::compose;

/// How long a leased row is this mailer's before another may take it; renewed while its
/// messages go out, so a mailer that died (SIGKILL) holds its rows no longer than this.
const LEASE_MS: i64 = 15_000;
/// Rows leased at a time.
const ROWS_PER_LEASE: i64 = 20;
/// How often an idle mailer looks for owed mail.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Delivered rows are kept this long (for an operator's look), then purged.
const KEEP_SENT_MS: i64 = 24 * 3_600_000;
/// How often delivered rows are purged.
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// How often the outbox's depth is read for the metrics.
const OBSERVE_EVERY: Duration = Duration::from_secs(5);

/// How often, with e-mail off, the owed rows are logged and settled.
const LOG_SWEEP: Duration = Duration::from_secs(1);
/// Back-off after a failure: doubles per attempt from this, up to `RETRY_MAX_MS`.
const RETRY_FIRST_MS: i64 = 250;
const RETRY_MAX_MS: i64 = 30_000;

/// The transport for `smtp://[user:password@]host[:port]` (port 25 by default). Plain SMTP
/// only: the engine carries no TLS stack, so it hands mail to a relay it trusts (a local MTA),
/// which sends it on.
fn smtp_transport(url: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let refuse = |why: &str| {
        format!("TOPKART_SMTP_URL: {why} (expected smtp://[user:password@]host[:port])")
    };
    let rest = url
        .strip_prefix("smtp://")
        .ok_or_else(|| refuse("only smtp:// is supported: relay through a local MTA for TLS"))?;
    let rest = rest.trim_end_matches('/');
    let (credentials, address) = match rest.rsplit_once('@') {
        Some((credentials, address)) => (Some(credentials), address),
        None => (None, rest),
    };
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| refuse("the port is not a number from 1 to 65535"))?,
        ),
        None => (address, 25),
    };
    if host.is_empty() || port == 0 {
        return Err(refuse("the host or port is missing"));
    }
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .timeout(Some(Duration::from_secs(10)));
    if let Some(credentials) = credentials {
        let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
        builder = builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
            user.to_owned(),
            password.to_owned(),
        ));
    }
    Ok(builder.build())
}

/// Where the mailer sends.
enum Outlet {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// No SMTP server configured: rows are logged, not sent.
    Log,
}

/// The mailer, ready to run.
pub struct Mailer {
    store: Arc<Store>,
    outlet: Outlet,
    from: lettre::message::Mailbox,
    alone: bool,
}

impl Mailer {
    /// Checks the settings (a bad URL or sender stops the start, with why). `alone`: no other
    /// node mails from this store (single-node mode), so leases left by a crash are released
    /// at once.
    pub fn new(store: Arc<Store>, settings: &MailSettings, alone: bool) -> Result<Self, String> {
        let from = settings
            .mail_from
            .parse()
            .map_err(|error| format!("TOPKART_MAIL_FROM {:?}: {error}", settings.mail_from))?;
        let outlet = match &settings.smtp_url {
            Some(url) => Outlet::Smtp(smtp_transport(&url.0)?),
            None => Outlet::Log,
        };
        Ok(Self {
            store,
            outlet,
            from,
            alone,
        })
    }

    /// Runs for the life of the process, on the current runtime.
    pub fn spawn(self) {
        if matches!(self.outlet, Outlet::Log) {
            tracing::info!(
                "e-mail is off (TOPKART_SMTP_URL unset): owed messages are logged, not sent"
            );
        }
        actix_web::rt::spawn(async move { self.run().await });
    }

    /// Exports the outbox's depth and its oldest owed row's age, once an `OBSERVE_EVERY`
    /// (`last`: when it last did); the send rate is `topkart_mail_sent_total`'s.
    async fn observe(&self, last: &mut std::time::Instant) {
        if last.elapsed() < OBSERVE_EVERY {
            return;
        }
        *last = std::time::Instant::now();
        match self.store.outbox_depth().await {
            Ok((rows, oldest)) => {
                metrics::gauge!("topkart_mail_outbox_rows").set(rows as f64);
                let age_ms = oldest.map_or(0, |written| (now_ms() - written).max(0));
                metrics::gauge!("topkart_mail_outbox_oldest_age_seconds")
                    .set(age_ms as f64 / 1_000.0);
            }
            Err(error) => tracing::debug!(%error, "the mail outbox's depth could not be read"),
        }
    }

    /// Purges delivered rows once a `PURGE_EVERY` (`last`: when it last did).
    async fn purge(&self, last: &mut std::time::Instant) {
        if last.elapsed() < PURGE_EVERY {
            return;
        }
        *last = std::time::Instant::now();
        if let Err(error) = self.store.purge_sent_mail(now_ms() - KEEP_SENT_MS).await {
            tracing::warn!(%error, "delivered mail rows could not be purged");
        }
        // The order batches' receipts ride along: kept as long, needed only minutes.
        if let Err(error) = self
            .store
            .purge_batch_receipts(now_ms() - KEEP_SENT_MS)
            .await
        {
            tracing::warn!(%error, "old order batch receipts could not be purged");
        }
    }

    async fn run(self) {
        if self.alone {
            // Rows this process leased before it was killed would wait out their lease.
            if let Err(error) = self.store.release_mail_leases().await {
                tracing::warn!(%error, "the mail outbox's leases could not be released");
            }
        }
        if let Outlet::Log = self.outlet {
            return self.log_owed().await;
        }
        let mut purged_at = std::time::Instant::now();
        let mut observed_at = std::time::Instant::now() - OBSERVE_EVERY;
        loop {
            self.purge(&mut purged_at).await;
            self.observe(&mut observed_at).await;
            let leased = self
                .store
                .lease_mail(now_ms(), LEASE_MS, ROWS_PER_LEASE)
                .await;
            let rows = match leased {
                Ok(rows) => rows,
                Err(error) => {
                    tracing::warn!(%error, "the mail outbox could not be read; trying again");
                    Vec::new()
                }
            };
            if rows.is_empty() {
                actix_web::rt::time::sleep(IDLE_POLL).await;
                continue;
            }
            for row in rows {
                self.deliver(row).await;
            }
        }
    }

    /// E-mail off: once a second, every owed row is logged (how many messages of each kind, for
    /// which orders) and marked done, in one statement — the outbox costs the store next to
    /// nothing then (a row per row was measured at a sixth of the hot deal's orders/s).
    async fn log_owed(&self) {
        let mut purged_at = std::time::Instant::now();
        let mut observed_at = std::time::Instant::now() - OBSERVE_EVERY;
        loop {
            self.purge(&mut purged_at).await;
            self.observe(&mut observed_at).await;
            actix_web::rt::time::sleep(LOG_SWEEP).await;
            match self.store.settle_owed_mail(now_ms()).await {
                Ok(settled) => {
                    for (kind, rows, messages, first, last) in settled {
                        tracing::info!(
                            kind,
                            rows,
                            messages,
                            first_order = first,
                            last_order = last,
                            "e-mail off (TOPKART_SMTP_URL unset): not sent"
                        );
                    }
                }
                Err(error) => tracing::warn!(%error, "the mail outbox could not be settled"),
            }
        }
    }

    /// Sends a row's messages from the first not yet delivered; records how far it got.
    async fn deliver(&self, row: OwedMail) {
        let Some(kind) = MailKind::parse(&row.kind) else {
            tracing::error!(
                row = row.id,
                kind = row.kind,
                "an outbox row of an unknown kind"
            );
            return;
        };
        let Outlet::Smtp(transport) = &self.outlet else {
            return; // e-mail off: `log_owed` settles the rows instead
        };
        let orders = match self.store.mail_orders(&row.order_ids()).await {
            Ok(orders) => orders,
            Err(error) => return self.failed(&row, row.sent_count, &error.to_string()).await,
        };
        let mut sent = row.sent_count.max(0);
        let mut leased_at = std::time::Instant::now();
        for order in orders.iter().skip(sent as usize) {
            if leased_at.elapsed() > Duration::from_millis(LEASE_MS as u64 / 3) {
                leased_at = std::time::Instant::now();
                if let Err(error) = self
                    .store
                    .renew_mail_lease(row.id, now_ms() + LEASE_MS)
                    .await
                {
                    tracing::warn!(row = row.id, %error, "a mail lease could not be renewed");
                }
            }
            let message = match compose(kind, order, &self.from) {
                Ok(message) => message,
                Err(error) => {
                    // A recipient the builder refuses (a malformed stored address) can
                    // never be sent: skipped, with why.
                    tracing::error!(order_id = order.order_id, %error, "a message could not be written");
                    sent += 1;
                    continue;
                }
            };
            if let Err(error) = transport.send(message).await {
                metrics::counter!("topkart_mail_failures_total").increment(1);
                return self.failed(&row, sent, &error.to_string()).await;
            }
            metrics::counter!("topkart_mail_sent_total").increment(1);
            sent += 1;
        }
        if let Err(error) = self.store.mail_sent(row.id, sent, now_ms()).await {
            // The lease runs out and the row is taken again: its delivered messages are sent
            // again (same Message-ID, so a receiver can tell).
            tracing::warn!(row = row.id, %error, "a delivered outbox row could not be marked");
        }
    }

    async fn failed(&self, row: &OwedMail, sent: i64, error: &str) {
        let backoff = RETRY_FIRST_MS
            .saturating_mul(1_i64 << row.attempts.clamp(0, 16))
            .min(RETRY_MAX_MS);
        tracing::warn!(
            row = row.id,
            attempts = row.attempts + 1,
            retry_in_ms = backoff,
            error,
            "e-mail not delivered; trying again"
        );
        if let Err(error) = self
            .store
            .mail_failed(row.id, sent, now_ms() + backoff, error)
            .await
        {
            tracing::warn!(row = row.id, %error, "a failed delivery could not be recorded");
        }
    }
}
