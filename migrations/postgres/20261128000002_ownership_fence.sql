-- Cluster mode's fence (DESIGN.md decision 8): a batch of orders commits only while the store
-- still holds, for every deal of the batch, the fencing epoch its owner sold under. The writer's
-- one-statement commit counts the deals whose row it updated under their epoch and calls this
-- with the count it needs; a shortfall aborts the whole statement (nothing stored) with SQLSTATE
-- TK409, which the engine reads as "ownership lost".
CREATE FUNCTION topkart_require_owner(held BIGINT, wanted BIGINT) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    IF held <> wanted THEN
        RAISE EXCEPTION USING ERRCODE = 'TK409',
            MESSAGE = format('ownership lost: %s of %s deals still held under the batch''s epoch', held, wanted);
    END IF;
    RETURN TRUE;
END
$$;
