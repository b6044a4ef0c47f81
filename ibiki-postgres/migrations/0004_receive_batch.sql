-- A batch of receives in one statement (group commit, see
-- ibiki-postgres/src/receive.rs): called on its own, outside BEGIN/COMMIT,
-- the statement is its transaction, so recording a batch costs one round
-- trip and one WAL flush, and the caller's answer arrives after the commit.
--
-- Locks: as in 0001, in its order: the number locks of the batch's numbers,
-- ascending; then the delivery locks of their owners, ascending by key
-- (hashtext of the client), each once. A batch is the one transaction that
-- holds several delivery locks; they are its last locks, taken in one order,
-- so batches cannot deadlock with each other or with anything else.

-- Routes and records a batch of replies, the arrays being its columns (the
-- same length; NULL message id: never deduplicated; to_number NULL when the
-- recipient did not parse, to_unparsed then set). Returns one row per reply,
-- in order: duplicate = true when its message id was already recorded or
-- appears earlier in the batch; otherwise owner is the client whose inbox it
-- went to, NULL when held.
--
-- If a copy of one of the batch's message ids commits in another
-- transaction after the recorded ids were read, the insert skips that row:
-- the function then raises SQLSTATE IBK01, undoing the whole statement (so
-- no inbox position is left unused), and the caller tries again.
--
-- Every table read here is by key, through an index. A session plans the
-- function's statements once and keeps the plans: planned while `replies`
-- was nearly empty (a new schema, the first batches after a start), the
-- recorded-ids lookup became a sequential scan of the whole table for every
-- batch after, growing with it, until an ANALYZE replaced the plan.
-- enable_seqscan = off keeps the index plans whatever the statistics said
-- when they were made. plan_cache_mode = force_generic_plan plans each
-- statement once per session: the array sizes vary from batch to batch, and
-- the plan cache would otherwise keep planning some statements (the insert
-- among them) anew for every batch.
CREATE FUNCTION receive_batch(
    p_message_ids text[],
    p_to_numbers text[],
    p_to_unparsed text[],
    p_from text[],
    p_bodies text[],
    p_received_at timestamptz[]
)
RETURNS TABLE (duplicate boolean, owner text)
LANGUAGE plpgsql SET search_path FROM CURRENT SET enable_seqscan = off
    SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_size integer := coalesce(cardinality(p_message_ids), 0);
    v_recorded text[];
    -- The ordinals of the rows to insert.
    v_fresh integer[];
    v_numbers text[];
    v_owned text[];
    v_owners text[];
    v_inserted bigint;
BEGIN
    PERFORM require_read_committed();
    IF coalesce(cardinality(p_to_numbers), 0) <> v_size
        OR coalesce(cardinality(p_to_unparsed), 0) <> v_size
        OR coalesce(cardinality(p_from), 0) <> v_size
        OR coalesce(cardinality(p_bodies), 0) <> v_size
        OR coalesce(cardinality(p_received_at), 0) <> v_size THEN
        RAISE EXCEPTION 'receive_batch needs arrays of one length';
    END IF;
    -- Every statement below takes a new snapshot (READ COMMITTED, a
    -- VOLATILE function): each sees what committed before it started.
    -- The ids already recorded: answered as duplicates, no lock needed.
    v_recorded := ARRAY(
        SELECT r.message_id FROM replies AS r WHERE r.message_id = ANY (p_message_ids));
    -- The rows to record: every reply without an id, and the first copy of
    -- each id not recorded yet (later copies in the batch are duplicates).
    v_fresh := ARRAY(
        SELECT i.n::integer
        FROM (
            SELECT u.message_id, u.n,
                row_number() OVER (PARTITION BY u.message_id ORDER BY u.n) AS copy
            FROM unnest(p_message_ids) WITH ORDINALITY AS u(message_id, n)
        ) AS i
        WHERE i.message_id IS NULL OR (i.copy = 1 AND i.message_id <> ALL (v_recorded))
        ORDER BY i.n);
    -- 1. The number locks of their numbers, ascending. An assignment of one
    -- of them committed before, or waits until this batch commits and then
    -- releases what it held, exactly as for one receive.
    -- (The keys of lock_numbers, in one statement: a subquery with DISTINCT and
    -- ORDER BY is not merged into the outer query, so the locks are taken in
    -- its order.)
    v_numbers := ARRAY(
        SELECT DISTINCT p_to_numbers[f.n] FROM unnest(v_fresh) AS f(n)
        WHERE p_to_numbers[f.n] IS NOT NULL);
    PERFORM pg_advisory_xact_lock(k.key)
    FROM (SELECT DISTINCT substr(n, 2)::bigint AS key FROM unnest(v_numbers) AS n ORDER BY 1) AS k;
    -- 2. The owners, read after the locks, then their delivery locks.
    SELECT coalesce(array_agg(a.phone_number), '{}'), coalesce(array_agg(a.client_id), '{}')
    INTO v_owned, v_owners
    FROM assignments AS a WHERE a.phone_number = ANY (v_numbers);
    PERFORM lock_client_deliveries(o.client_id)
    FROM (SELECT DISTINCT ON (hashtext(c.client_id)) c.client_id
        FROM unnest(v_owners) AS c(client_id)
        ORDER BY hashtext(c.client_id)) AS o;
    -- 3. One insert, numbering each owner's replies after its last position
    -- (read by a subquery: the statement's snapshot, none of its own rows)
    -- in arrival order; rows inserted in message id order, so two batches
    -- holding the same ids wait for each other in one order, never in a
    -- cycle.
    IF cardinality(v_fresh) > 0 THEN
        WITH f AS (
            SELECT f.n, o.client_id
            FROM unnest(v_fresh) AS f(n)
            LEFT JOIN unnest(v_owned, v_owners) AS o(phone_number, client_id)
                ON o.phone_number = p_to_numbers[f.n]
        ), last AS (
            SELECT c.client_id, (SELECT coalesce(max(r.delivery_seq), 0)
                FROM replies AS r WHERE r.client_id = c.client_id) AS position
            FROM (SELECT DISTINCT f.client_id FROM f WHERE f.client_id IS NOT NULL) AS c
        )
        INSERT INTO replies AS r
            (message_id, to_number, to_unparsed, from_address, body, received_at, client_id,
             delivery_seq, delivery, delivered_at)
        SELECT p_message_ids[f.n], p_to_numbers[f.n], p_to_unparsed[f.n], p_from[f.n],
            p_bodies[f.n], p_received_at[f.n], f.client_id,
            CASE WHEN f.client_id IS NOT NULL THEN last.position
                + row_number() OVER (PARTITION BY f.client_id ORDER BY f.n) END,
            CASE WHEN f.client_id IS NOT NULL THEN 'routed'
                WHEN p_to_unparsed[f.n] IS NOT NULL THEN 'unparsed' ELSE 'held' END,
            p_received_at[f.n]
        FROM f LEFT JOIN last ON last.client_id = f.client_id
        ORDER BY p_message_ids[f.n], f.n
        ON CONFLICT (message_id) DO NOTHING;
        GET DIAGNOSTICS v_inserted = ROW_COUNT;
        IF v_inserted <> cardinality(v_fresh) THEN
            RAISE EXCEPTION 'a message of this batch was recorded by another transaction meanwhile'
                USING ERRCODE = 'IBK01';
        END IF;
    END IF;
    RETURN QUERY
    SELECT i.n <> ALL (v_fresh), CASE WHEN i.n = ANY (v_fresh) THEN o.client_id END
    FROM generate_subscripts(p_message_ids, 1) AS i(n)
    LEFT JOIN unnest(v_owned, v_owners) AS o(phone_number, client_id)
        ON o.phone_number = p_to_numbers[i.n]
    ORDER BY i.n;
END $$;
