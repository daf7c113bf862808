//! What can go wrong in the store, as the layers above need to tell it apart.

use actors::DealId;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; `fields` names the columns already taken.
    #[error("{} already taken", fields.join(" and "))]
    Conflict { fields: Vec<&'static str> },
    #[error("unsupported database URL {0:?}: use sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// SQLite's order writer (its own connection and thread) failed: nothing of the batch
    /// was stored.
    #[error("SQLite order writer: {0}")]
    Writer(String),
    #[error("could not prepare the SQLite file: {0}")]
    Io(#[from] std::io::Error),
    /// A write the store refused because it would leave a value out of its range (or the deal
    /// is gone): nothing was changed.
    #[error("deal {deal_id}: {what} would leave its units out of range; nothing was changed")]
    OutOfRange { deal_id: DealId, what: String },
    /// A batch's fencing epoch is not the store's for one of its deals: another node owns the
    /// deal now. Nothing was stored.
    #[error("ownership lost: the store holds another fencing epoch for a deal of the batch")]
    OwnershipLost { deal_ids: Vec<DealId> },
    /// A write was sent and its answer lost (the connection dropped after the commit was sent,
    /// an I/O error at commit): it may or may not have committed. For an order batch,
    /// `batch_key` is the key it wrote (`Store::settle_batch` finds out what became of it).
    #[error("the commit's outcome is unknown: {cause}")]
    OutcomeUnknown {
        batch_key: Option<i64>,
        cause: String,
    },
    /// A stored deal the engine cannot take: the column and what is wrong with it.
    #[error("deal {deal_id}: column {column}: {problem}")]
    Malformed {
        deal_id: DealId,
        column: String,
        problem: String,
    },
}

impl StoreError {
    /// The error of a write that was sent to the store, as what it says of the write: a
    /// refusal the server answered with (a constraint, a raised exception: the transaction
    /// rolled back, nothing was stored) stays a database error; anything else — the connection
    /// lost before the answer, the server shutting down or crashing while the write ran, an
    /// I/O error — leaves the write's outcome unknown: it may have committed.
    pub(super) fn after_send(error: sqlx::Error, batch_key: Option<i64>) -> Self {
        if let sqlx::Error::Database(refusal) = &error {
            // 08: connection exception; 57: operator intervention (shutdown, crash of
            // another backend); 58: system error (I/O); XX: internal error. The others are the
            // statement's own failure, answered before any commit.
            let class = refusal
                .code()
                .map(|code| code[..2.min(code.len())].to_owned());
            if !matches!(class.as_deref(), Some("08" | "57" | "58" | "XX")) {
                return Self::Database(error);
            }
        }
        Self::OutcomeUnknown {
            batch_key,
            cause: crate::telemetry::error_chain(&error),
        }
    }
}

/// The error of a transaction's step: a statement before `COMMIT` (the transaction rolled
/// back, nothing was stored), or `COMMIT` itself (the outcome may be unknown: see
/// [`StoreError::after_send`]).
#[derive(Debug)]
pub(super) enum TxError {
    Before(sqlx::Error),
    AtCommit(sqlx::Error),
}

impl From<sqlx::Error> for TxError {
    fn from(error: sqlx::Error) -> Self {
        Self::Before(error)
    }
}

impl From<TxError> for StoreError {
    fn from(error: TxError) -> Self {
        match error {
            TxError::Before(error) => Self::Database(error),
            TxError::AtCommit(error) => Self::after_send(error, None),
        }
    }
}
