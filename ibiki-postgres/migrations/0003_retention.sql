-- Retention: delete delivered replies once they are old
-- (ReplyStore::prune_delivered), found through an index on the delivery
-- time instead of a scan of the table.
--
-- When a reply reached its inbox is `replies.delivered_at`, which
-- 0002_history_and_delivery.sql added and which every statement that
-- records, releases or re-routes a reply writes: the reception for a routed
-- reply, the assignment's instant for a released one, the re-route's instant
-- for a re-routed one. Held rows (client_id IS NULL) are never candidates.
-- Replies delivered before 0002 have no delivered_at and count from their
-- arrival.
--
-- Building the index reads the table once.

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
