-- Two instants on every reply: `received_at`, the gateway's time when it
-- sends one (else the arrival), and `delivered_at`, when ibiki put the reply
-- in an inbox or held it, by the database's clock. Until now a receive
-- recorded `received_at` as both, so a gateway's clock decided the delivery
-- instant, and `owner at delivered_at` could name another client than the
-- one the reply went to. Releases and re-routes already used the
-- database's clock.
--
-- Both receive functions are restated whole, changed only where they set
-- `delivered_at`: after the number locks, `clock_timestamp()`, and never
-- before the last ownership change of the reply's number (one index-only
-- read of number_history_owner_at_idx per number). Replies recorded before
-- this migration keep their instants.

CREATE OR REPLACE FUNCTION receive(
    p_message_id text,
    p_to_number text,
    p_to_unparsed text,
    p_from text,
    p_body text,
    p_received_at timestamptz,
    OUT duplicate boolean,
    OUT owner text
)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_position bigint;
    v_id bigint;
    v_now timestamptz;
BEGIN
    PERFORM require_read_committed();
    -- Retries are common: answer them without taking any lock.
    IF p_message_id IS NOT NULL
        AND EXISTS (SELECT 1 FROM replies AS r WHERE r.message_id = p_message_id) THEN
        duplicate := true;
        RETURN;
    END IF;
    IF p_to_number IS NOT NULL THEN
        -- An assignment of this number holds the lock until it commits; the
        -- lookup below starts after that, so it sees the new owner. Or the
        -- assignment waits for this receive, then releases what it held.
        PERFORM lock_number(p_to_number);
        SELECT a.client_id INTO owner FROM assignments AS a WHERE a.phone_number = p_to_number;
    END IF;
    IF owner IS NOT NULL THEN
        PERFORM lock_client_deliveries(owner);
        v_position := last_position(owner) + 1;
    END IF;
    -- Delivered (or held) now, by the database's clock, read after the
    -- number's lock, and never before the number's last ownership change
    -- (whose instant may have been moved past a clock that stepped back):
    -- the owner at this instant is the one the reply went to.
    v_now := greatest(clock_timestamp(),
        (SELECT max(h.at) FROM number_history AS h WHERE h.phone_number = p_to_number));
    INSERT INTO replies AS r
        (message_id, to_number, to_unparsed, from_address, body, received_at, client_id, delivery_seq,
         delivery, delivered_at)
    VALUES
        (p_message_id, p_to_number, p_to_unparsed, p_from, p_body, p_received_at, owner, v_position,
         CASE WHEN owner IS NOT NULL THEN 'routed' WHEN p_to_unparsed IS NOT NULL THEN 'unparsed'
             ELSE 'held' END,
         v_now)
    ON CONFLICT (message_id) DO NOTHING
    RETURNING r.id INTO v_id;
    -- A concurrent copy of the same message won the insert.
    duplicate := v_id IS NULL;
    IF duplicate THEN
        owner := NULL;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION receive_batch(
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
    v_now timestamptz;
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
    -- The batch's instant, by the database's clock, after the locks and
    -- never before the last ownership change of one of its numbers (as for
    -- one receive).
    v_now := greatest(clock_timestamp(),
        (SELECT max(h.at) FROM number_history AS h WHERE h.phone_number = ANY (v_numbers)));
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
            v_now
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
