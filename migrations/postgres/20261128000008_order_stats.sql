-- Order statistics kept exact and fast (issue 12, acceptance 5): orders and revenue by UTC day
-- of placing, status and slot, changed in the same transaction as every change to the orders
-- they count (the writer's batch, a status change, a lapse, a quantity change, a served
-- waitlist entry), so they never drift from the rows; an admin's figures read these few rows
-- instead of scanning every order. `slot` is the deal's id modulo 64: batches of different
-- deals never wait on one row (a deal's own batches wait on its row anyway).
CREATE TABLE order_stats (
    day     BIGINT NOT NULL,
    status  TEXT   NOT NULL,
    slot    BIGINT NOT NULL,
    orders  BIGINT NOT NULL,
    revenue BIGINT NOT NULL,
    PRIMARY KEY (day, status, slot)
);
INSERT INTO order_stats (day, status, slot, orders, revenue)
  SELECT created_at / 86400000, status, deal_id % 64, COUNT(*), SUM(total_price) FROM orders
  GROUP BY created_at / 86400000, status, deal_id % 64;
