-- A payment's Idempotency-Key, kept with its debit: a retry with the key answers as the
-- payment did.
ALTER TABLE wallet_entries ADD COLUMN idempotency_key TEXT;
