-- Topkart's schema (SQLite). Money in integer minor units, instants in Unix milliseconds (UTC),
-- so that both stores hold exactly the same numbers.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL UNIQUE,
    phone_number  TEXT,
    password_hash TEXT    NOT NULL,
    user_type     TEXT    NOT NULL CHECK (user_type IN ('customer', 'admin')),
    created_at    BIGINT  NOT NULL
);

CREATE TABLE refresh_tokens (
    jti        TEXT    PRIMARY KEY,
    user_id    BIGINT  NOT NULL REFERENCES users (id),
    family     TEXT    NOT NULL,
    used       BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

CREATE TABLE deals (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    product_name       TEXT    NOT NULL,
    actual_price       BIGINT  NOT NULL CHECK (actual_price > 0),
    final_price        BIGINT  NOT NULL CHECK (final_price > 0 AND final_price <= actual_price),
    total_units        BIGINT  NOT NULL CHECK (total_units >= 0),
    available_units    BIGINT  NOT NULL CHECK (available_units >= 0 AND available_units <= total_units),
    starts_at          BIGINT  NOT NULL,
    expires_at         BIGINT  NOT NULL CHECK (expires_at > starts_at),
    per_customer_limit BIGINT  CHECK (per_customer_limit IS NULL OR per_customer_limit >= 1),
    closed             BOOLEAN NOT NULL DEFAULT FALSE,
    recurrence         TEXT    NOT NULL DEFAULT 'none' CHECK (recurrence IN ('none', 'daily')),
    round              BIGINT  NOT NULL DEFAULT 1,
    rearmed_day        BIGINT  NOT NULL,
    -- Cluster mode's fencing token: taking ownership of the deal increments it, and every
    -- batch a writer commits is conditional on the epoch it holds.
    owner_epoch        BIGINT  NOT NULL DEFAULT 0,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL
);

CREATE TABLE orders (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    deal_id         BIGINT NOT NULL REFERENCES deals (id),
    round           BIGINT NOT NULL,
    customer_id     BIGINT NOT NULL REFERENCES users (id),
    quantity        BIGINT NOT NULL CHECK (quantity >= 1),
    unit_price      BIGINT NOT NULL CHECK (unit_price > 0),
    total_price     BIGINT NOT NULL,
    status          TEXT   NOT NULL CHECK (status IN ('OPEN', 'APPROVED', 'CANCELLED', 'FULFILLED')),
    idempotency_key TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX orders_deal_round ON orders (deal_id, round, status);
CREATE INDEX orders_customer ON orders (customer_id, id);
CREATE INDEX orders_idempotency ON orders (customer_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
