-- Tracking (issue 12): what happened to an order after it was placed, as admins record it
-- (shipped, at the depot, delivered …), oldest first. The orders table has no foreign keys
-- (20261122000002); the engine checks the order exists before it writes an event.
CREATE TABLE order_events (
    id          BIGSERIAL PRIMARY KEY,
    order_id    BIGINT NOT NULL,
    status      TEXT   NOT NULL,
    location    TEXT,
    description TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX order_events_order ON order_events (order_id, id);
