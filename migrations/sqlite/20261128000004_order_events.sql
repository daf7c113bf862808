-- Tracking (issue 12): what happened to an order after it was placed, as admins record it
-- (shipped, at the depot, delivered …), oldest first.
CREATE TABLE order_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id    BIGINT NOT NULL REFERENCES orders (id),
    status      TEXT   NOT NULL,
    location    TEXT,
    description TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX order_events_order ON order_events (order_id, id);
