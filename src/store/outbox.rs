//! The mail outbox: what e-mail is owed, written in the same transaction as what caused it
//! (an order batch's confirmations, a served waitlist entry, a payment), and taken by the
//! mailer in the background. A row names its orders (a JSON array of ids) and counts the
//! messages of it already delivered, so a retry resends none of those.

use actors::Millis;

use super::error::StoreError;
use super::pool::{Backend, Store, on_pool};

/// Why e-mail is owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// An acknowledged order: its confirmation.
    OrderConfirmed,
    /// A waitlist entry was served: its order's notice.
    WaitlistServed,
    /// An order was paid: its receipt.
    PaymentReceipt,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::OrderConfirmed => "ORDER_CONFIRMED",
            MailKind::WaitlistServed => "WAITLIST_SERVED",
            MailKind::PaymentReceipt => "PAYMENT_RECEIPT",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::OrderConfirmed,
            Self::WaitlistServed,
            Self::PaymentReceipt,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// An outbox row leased to this mailer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OwedMail {
    pub id: i64,
    pub kind: String,
    /// The orders, as a JSON array of ids.
    pub order_ids: String,
    /// Messages of this row delivered already (the first `sent_count` orders).
    pub sent_count: i64,
    pub attempts: i64,
}

impl OwedMail {
    pub fn order_ids(&self) -> Vec<i64> {
        serde_json::from_str(&self.order_ids).unwrap_or_default()
    }
}

/// What a message about one order says.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MailOrder {
    pub order_id: i64,
    pub username: String,
    pub email: String,
    pub product_name: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub total_price: i64,
    pub pay_by: Option<i64>,
}

/// The SQL that writes an outbox row inside another statement's transaction.
pub(super) const INSERT_OUTBOX: &str =
    "INSERT INTO mail_outbox (kind, order_ids, next_attempt_at, created_at) VALUES ($1, $2, 0, $3)";

impl Store {
    /// Leases up to `limit` rows that are due at `now` (unsent, their next attempt come, no
    /// live lease) for `lease_ms`: a second mailer (another node) skips them meanwhile.
    pub async fn lease_mail(
        &self,
        now: Millis,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<OwedMail>, StoreError> {
        const SQL: &str = "UPDATE mail_outbox SET lease_until = $2 \
            WHERE id IN (SELECT id FROM mail_outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 AND lease_until <= $1 ORDER BY id LIMIT $3) \
            AND sent_at IS NULL AND lease_until <= $1 \
            RETURNING id, kind, order_ids, sent_count, attempts";
        let mut rows: Vec<OwedMail> = on_pool!(self, pool => sqlx::query_as(SQL).bind(now).bind(now + lease_ms).bind(limit).fetch_all(pool).await)?;
        rows.sort_by_key(|row| row.id);
        Ok(rows)
    }

    /// The orders a row names, with what their messages say, in id order.
    pub async fn mail_orders(&self, order_ids: &[i64]) -> Result<Vec<MailOrder>, StoreError> {
        const SQL: &str = "SELECT o.id AS order_id, u.username, u.email, d.product_name, o.quantity, o.unit_price, o.total_price, o.pay_by \
            FROM orders o JOIN users u ON u.id = o.customer_id JOIN deals d ON d.id = o.deal_id \
            WHERE o.id BETWEEN $1 AND $2 ORDER BY o.id";
        let (Some(low), Some(high)) = (order_ids.iter().min(), order_ids.iter().max()) else {
            return Ok(Vec::new());
        };
        let rows: Vec<MailOrder> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(low).bind(high).fetch_all(pool).await)?;
        // A range may hold other batches' orders (Postgres interleaves ids): only the named.
        let named: std::collections::HashSet<i64> = order_ids.iter().copied().collect();
        Ok(rows
            .into_iter()
            .filter(|row| named.contains(&row.order_id))
            .collect())
    }

    /// Every message of the row was delivered.
    pub async fn mail_sent(&self, id: i64, sent_count: i64, now: Millis) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE mail_outbox SET sent_at = $2, sent_count = $3, lease_until = 0, last_error = NULL WHERE id = $1";
        on_pool!(self, pool => sqlx::query(SQL).bind(id).bind(now).bind(sent_count).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// A delivery failed after `sent_count` messages: tried again at `next_attempt_at`.
    pub async fn mail_failed(
        &self,
        id: i64,
        sent_count: i64,
        next_attempt_at: Millis,
        error: &str,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE mail_outbox SET sent_count = $2, attempts = attempts + 1, next_attempt_at = $3, lease_until = 0, last_error = $4 WHERE id = $1";
        on_pool!(self, pool => sqlx::query(SQL).bind(id).bind(sent_count).bind(next_attempt_at).bind(error).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Keeps a leased row this mailer's until `lease_until`.
    pub async fn renew_mail_lease(&self, id: i64, lease_until: Millis) -> Result<(), StoreError> {
        const SQL: &str =
            "UPDATE mail_outbox SET lease_until = $2 WHERE id = $1 AND sent_at IS NULL";
        on_pool!(self, pool => sqlx::query(SQL).bind(id).bind(lease_until).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// The rows owed (not yet sent) and when the oldest of them was written, if any: what an
    /// operator watches to see e-mail fall behind.
    pub async fn outbox_depth(&self) -> Result<(i64, Option<Millis>), StoreError> {
        const SQL: &str = "SELECT COUNT(*), MIN(created_at) FROM mail_outbox WHERE sent_at IS NULL";
        let depth: (i64, Option<i64>) =
            on_pool!(self, pool => sqlx::query_as(SQL).fetch_one(pool).await)?;
        Ok(depth)
    }

    /// Ends every lease (a single node's mailer at start: nobody else mails from this store).
    pub async fn release_mail_leases(&self) -> Result<(), StoreError> {
        const SQL: &str =
            "UPDATE mail_outbox SET lease_until = 0 WHERE sent_at IS NULL AND lease_until > 0";
        on_pool!(self, pool => sqlx::query(SQL).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Marks every owed row done at once (e-mail off) and says what they were: per kind, the
    /// rows, the messages and the first and last order named.
    pub async fn settle_owed_mail(
        &self,
        now: Millis,
    ) -> Result<Vec<(String, i64, i64, i64, i64)>, StoreError> {
        const SQL: &str = "UPDATE mail_outbox SET sent_at = $1, lease_until = 0 WHERE sent_at IS NULL RETURNING kind, order_ids";
        let rows: Vec<(String, String)> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(now).fetch_all(pool).await)?;
        let mut by_kind: std::collections::BTreeMap<String, (i64, i64, i64, i64)> =
            Default::default();
        for (kind, ids) in rows {
            let ids: Vec<i64> = serde_json::from_str(&ids).unwrap_or_default();
            let entry = by_kind.entry(kind).or_insert((0, 0, i64::MAX, i64::MIN));
            entry.0 += 1;
            entry.1 += ids.len() as i64;
            entry.2 = ids.iter().copied().fold(entry.2, i64::min);
            entry.3 = ids.iter().copied().fold(entry.3, i64::max);
        }
        Ok(by_kind
            .into_iter()
            .map(|(kind, (rows, messages, first, last))| (kind, rows, messages, first, last))
            .collect())
    }

    /// Forgets rows delivered before `before` (what was sent needs no row): the outbox stays
    /// as long as what is owed, not as long as everything ever sent. Returns how many went.
    pub async fn purge_sent_mail(&self, before: Millis) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM mail_outbox WHERE sent_at IS NOT NULL AND sent_at < $1";
        let purged = on_pool!(self, pool => sqlx::query(SQL).bind(before).execute(pool).await.map(|done| done.rows_affected()))?;
        Ok(purged)
    }

    /// Rows not yet delivered (the backlog), for `/metrics` and tests.
    pub async fn mail_backlog(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL";
        let count: i64 = on_pool!(self, pool => sqlx::query_scalar(SQL).fetch_one(pool).await)?;
        Ok(count)
    }
}
