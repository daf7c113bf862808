-- The waitlist (issue 12): customers waiting for units of a sold-out deal's round, served in
-- the order they joined (the order of their ids) as units come free. An entry is WAITING until
-- it is PROMOTED (its order's id in `order_id`, written in the order's own transaction), LEFT
-- by its customer, or EXPIRED with its round.
CREATE TABLE waitlist_entries (
    id          BIGSERIAL PRIMARY KEY,
    deal_id     BIGINT NOT NULL,
    round       BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    quantity    BIGINT NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    status      TEXT   NOT NULL DEFAULT 'WAITING' CHECK (status IN ('WAITING', 'PROMOTED', 'LEFT', 'EXPIRED')),
    order_id    BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
-- One waiting entry per customer, deal and round: a second join is a conflict.
CREATE UNIQUE INDEX waitlist_one_waiting ON waitlist_entries (deal_id, round, customer_id) WHERE status = 'WAITING';
-- The line, for positions and for the deal's actor at start.
CREATE INDEX waitlist_line ON waitlist_entries (deal_id, round, id) WHERE status = 'WAITING';
CREATE INDEX waitlist_customer ON waitlist_entries (customer_id, deal_id, id);
