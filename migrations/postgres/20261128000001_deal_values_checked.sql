-- A deal's numbers within the ranges the engine accepts (actors/src/limits.rs); Postgres
-- already refuses a BIGINT overflow, these refuse what no valid request can produce. NOT VALID:
-- enforced for every write from now on without failing the migration over a row that is
-- already out of range (the engine sets such a row aside at start and names it).
ALTER TABLE deals ADD CONSTRAINT deals_actual_price_max CHECK (actual_price <= 100000000000) NOT VALID;
ALTER TABLE deals ADD CONSTRAINT deals_total_units_max CHECK (total_units <= 1000000000) NOT VALID;
ALTER TABLE deals ADD CONSTRAINT deals_per_customer_limit_max
    CHECK (per_customer_limit IS NULL OR per_customer_limit <= 1000000000) NOT VALID;
ALTER TABLE deals ADD CONSTRAINT deals_round_min CHECK (round >= 1) NOT VALID;
ALTER TABLE deals ADD CONSTRAINT deals_window_max CHECK (expires_at - starts_at <= 43200000) NOT VALID;
