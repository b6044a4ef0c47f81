-- Retention: when each reply reached its inbox, so that delivered replies
-- can be deleted once they are old (ReplyStore::prune_delivered), and an
-- index to find the oldest ones without scanning the table.
--
-- A reply is delivered when it is recorded with an owner, or later when an
-- assignment releases it from the held area. A trigger stamps both cases, so
-- no statement that records or releases replies has to change. Replies
-- delivered before this migration keep NULL and count as delivered when
-- received.
--
-- Adding a nullable column without a default does not rewrite the table;
-- building the index reads it once.

ALTER TABLE replies ADD COLUMN IF NOT EXISTS delivered_at timestamptz;

CREATE FUNCTION stamp_delivery() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.client_id IS NULL THEN
        NEW.delivered_at := NULL;
    ELSIF TG_OP = 'INSERT' THEN
        NEW.delivered_at := coalesce(NEW.delivered_at, now());
    ELSIF OLD.client_id IS DISTINCT FROM NEW.client_id THEN
        NEW.delivered_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER replies_stamp_delivery
    BEFORE INSERT OR UPDATE OF client_id ON replies
    FOR EACH ROW EXECUTE FUNCTION stamp_delivery();

-- The delivered replies, oldest delivery first: what pruning deletes.
CREATE INDEX replies_delivered_at_idx ON replies ((coalesce(delivered_at, received_at)))
    WHERE client_id IS NOT NULL;

-- Deletes up to p_limit delivered replies delivered before p_before, oldest
-- first, and returns how many. Held replies are never deleted. The last
-- reply of each inbox is kept: it carries the inbox's last position, from
-- which the next delivery is numbered, so a client's cursor never points
-- past a position that is handed out again. Rows another transaction has
-- locked are skipped (the next call gets them).
CREATE FUNCTION prune_delivered(p_before timestamptz, p_limit integer) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_deleted bigint;
BEGIN
    DELETE FROM replies AS r
    WHERE r.id IN (
        SELECT old.id FROM replies AS old
        WHERE old.client_id IS NOT NULL
            AND coalesce(old.delivered_at, old.received_at) < p_before
            AND old.delivery_seq < (
                SELECT max(last.delivery_seq) FROM replies AS last
                WHERE last.client_id = old.client_id)
        ORDER BY coalesce(old.delivered_at, old.received_at)
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    );
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;
