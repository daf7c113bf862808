-- Each order batch's receipt, written in the batch's own transaction under a key the writer
-- chose. When a commit's answer is lost (the connection dropped after the commit was sent) the
-- writer asks by that key what became of the batch: a row with its order ids means it
-- committed; otherwise the writer writes the key itself with no ids (void), and a transaction
-- of the batch still under way on the server then fails on the key: it can never commit
-- afterwards (docs/RELIABILITY.md). Rows are needed only until that answer; purged after a day.
CREATE TABLE order_batches (
    batch_key  INTEGER PRIMARY KEY,
    -- The batch's order ids as a JSON array, in the batch's order; NULL: the batch is void.
    order_ids  TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX order_batches_created ON order_batches (created_at);
