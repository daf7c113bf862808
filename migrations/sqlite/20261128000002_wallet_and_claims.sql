-- The order lifecycle (issue 12), first part: wallets and payment windows.
--
-- A user's balance, in integer minor units like every amount. The engine checks every credit
-- against BALANCE_MAX (actors/src/limits.rs) before the arithmetic; the CHECK refuses anything
-- else, a REAL from an overflow included (issue 8's lesson).
ALTER TABLE users ADD COLUMN balance BIGINT NOT NULL DEFAULT 0
  CHECK (typeof(balance) = 'integer' AND balance >= 0 AND balance <= 10000000000000);

-- A deal may give its orders a payment window: an order is then a claim, UNPAID until paid,
-- cancelled by the deal's actor at `pay_by` if it is not.
ALTER TABLE deals ADD COLUMN payment_window_secs BIGINT
  CHECK (payment_window_secs IS NULL OR (typeof(payment_window_secs) = 'integer' AND payment_window_secs BETWEEN 1 AND 86400));

ALTER TABLE orders ADD COLUMN payment_status TEXT NOT NULL DEFAULT 'NOT_REQUIRED'
  CHECK (payment_status IN ('NOT_REQUIRED', 'UNPAID', 'PAID', 'REFUNDED'));
ALTER TABLE orders ADD COLUMN pay_by BIGINT;
ALTER TABLE orders ADD COLUMN paid_at BIGINT;
-- The deal's actor reloads its open claims at start and takeover.
CREATE INDEX orders_unpaid ON orders (deal_id, pay_by) WHERE payment_status = 'UNPAID';

-- Every movement of money, with what caused it. An order is debited at most once and refunded
-- at most once, whatever retries or races happen: the unique index says so, in the store.
CREATE TABLE wallet_entries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    BIGINT NOT NULL REFERENCES users (id),
    order_id   BIGINT,
    kind       TEXT   NOT NULL CHECK (kind IN ('CREDIT', 'DEBIT', 'REFUND')),
    amount     BIGINT NOT NULL CHECK (typeof(amount) = 'integer' AND amount > 0),
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX wallet_entries_once_per_order ON wallet_entries (order_id, kind) WHERE order_id IS NOT NULL;
CREATE INDEX wallet_entries_user ON wallet_entries (user_id, id);
