-- A deal's numbers are integers within the ranges the engine accepts (actors/src/limits.rs).
-- SQLite stores whatever it is given: an overflowing `total_units + $2` became a REAL
-- (9.223372036854776e18) that the CHECK constraints let through, and the engine then could not
-- start (issue 8). The table keeps its layout (rebuilding it STRICT would fail on a store that
-- already holds such a row, and the engine sets those aside at start instead); these triggers
-- refuse every insert or update that would leave a value of the wrong type or out of range.
-- Orders need none: every value of an order is bound from an `i64` the engine checked, and no
-- statement does arithmetic on an order's columns.
CREATE TRIGGER deals_values_checked_on_insert BEFORE INSERT ON deals
WHEN typeof(NEW.actual_price) <> 'integer' OR typeof(NEW.final_price) <> 'integer'
  OR typeof(NEW.total_units) <> 'integer' OR typeof(NEW.available_units) <> 'integer'
  OR typeof(NEW.starts_at) <> 'integer' OR typeof(NEW.expires_at) <> 'integer'
  OR typeof(NEW.per_customer_limit) NOT IN ('integer', 'null') OR typeof(NEW.round) <> 'integer'
  OR typeof(NEW.rearmed_day) <> 'integer' OR typeof(NEW.owner_epoch) <> 'integer'
  OR typeof(NEW.created_at) <> 'integer' OR typeof(NEW.updated_at) <> 'integer'
  OR NEW.closed NOT IN (0, 1)
  OR NEW.actual_price > 100000000000 OR NEW.total_units > 1000000000
  OR NEW.per_customer_limit > 1000000000 OR NEW.round < 1
  OR NEW.expires_at - NEW.starts_at > 43200000
BEGIN
  SELECT RAISE(ABORT, 'deals: a value of the wrong type or out of range');
END;

CREATE TRIGGER deals_values_checked_on_update BEFORE UPDATE ON deals
WHEN typeof(NEW.actual_price) <> 'integer' OR typeof(NEW.final_price) <> 'integer'
  OR typeof(NEW.total_units) <> 'integer' OR typeof(NEW.available_units) <> 'integer'
  OR typeof(NEW.starts_at) <> 'integer' OR typeof(NEW.expires_at) <> 'integer'
  OR typeof(NEW.per_customer_limit) NOT IN ('integer', 'null') OR typeof(NEW.round) <> 'integer'
  OR typeof(NEW.rearmed_day) <> 'integer' OR typeof(NEW.owner_epoch) <> 'integer'
  OR typeof(NEW.created_at) <> 'integer' OR typeof(NEW.updated_at) <> 'integer'
  OR NEW.closed NOT IN (0, 1)
  OR NEW.actual_price > 100000000000 OR NEW.total_units > 1000000000
  OR NEW.per_customer_limit > 1000000000 OR NEW.round < 1
  OR NEW.expires_at - NEW.starts_at > 43200000
BEGIN
  SELECT RAISE(ABORT, 'deals: a value of the wrong type or out of range');
END;
