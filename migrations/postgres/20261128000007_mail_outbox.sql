-- E-mail (issue 12): what is owed, written in the transaction of what caused it (an order
-- batch's confirmations, a served waitlist entry, a payment) and taken by the mailer in the
-- background. `order_ids` is a JSON array; `sent_count` says how many of its messages were
-- delivered, so a retry resends none of them; `lease_until` keeps a second mailer (another
-- node) off a row being sent.
CREATE TABLE mail_outbox (
    id              BIGSERIAL PRIMARY KEY,
    kind            TEXT   NOT NULL CHECK (kind IN ('ORDER_CONFIRMED', 'WAITLIST_SERVED', 'PAYMENT_RECEIPT')),
    order_ids       TEXT   NOT NULL,
    sent_count      BIGINT NOT NULL DEFAULT 0,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    sent_at         BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX mail_outbox_owed ON mail_outbox (next_attempt_at, id) WHERE sent_at IS NULL;
