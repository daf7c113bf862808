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
    /// A stored deal the engine cannot take: the column and what is wrong with it.
    #[error("deal {deal_id}: column {column}: {problem}")]
    Malformed {
        deal_id: DealId,
        column: String,
        problem: String,
    },
}
