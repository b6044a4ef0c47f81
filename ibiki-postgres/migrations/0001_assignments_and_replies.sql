-- ibiki's tables and functions. The migration runs with search_path set to
-- the store's schema, so every name below lives there; the functions capture
-- that search_path (SET search_path FROM CURRENT) and work whatever the
-- caller's is.
--
-- Locks: all transaction-scoped advisory locks, always taken in this order,
-- so they cannot deadlock:
--   1. the client's assignment lock  pg_advisory_xact_lock(1768057601, hashtext(client))
--   2. number locks, ascending       pg_advisory_xact_lock(digits of the number)
--   3. the client's delivery lock    pg_advisory_xact_lock(1768057602, hashtext(client))
-- A transaction takes at most one lock of kinds 1 and 3. Canonical numbers
-- have at most 15 digits, so the digits are an exact bigint key; the client
-- locks use PostgreSQL's separate two-int key space, whose first int
-- (0x69626b01, 0x69626b02: "ibk") tells the kinds apart. A hash collision
-- between two clients only makes them wait for each other.

-- One row per assigned number: the primary key is the database's guarantee
-- that a number has one owner.
CREATE TABLE assignments (
    phone_number text COLLATE "C" PRIMARY KEY
        CONSTRAINT assignments_phone_number_canonical
        CHECK (phone_number ~ '^[+][1-9][0-9]{1,14}$'),
    client_id text COLLATE "C" NOT NULL CHECK (client_id <> ''),
    assigned_at timestamptz NOT NULL DEFAULT now()
);

-- A client's numbers: numbers_of, list_clients and every assignment change.
CREATE INDEX assignments_client_idx ON assignments (client_id, phone_number);

-- Every recorded reply, delivered (client_id set) or held (client_id NULL).
CREATE TABLE replies (
    -- Arrival order: the held area's order and its cursor.
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The provider's id; NULL for replies without one, never deduplicated.
    message_id text COLLATE "C" UNIQUE,
    -- The canonical number replied to, or the raw text when it did not parse.
    to_number text COLLATE "C"
        CONSTRAINT replies_to_number_canonical
        CHECK (to_number ~ '^[+][1-9][0-9]{1,14}$'),
    to_unparsed text,
    from_address text NOT NULL,
    body text NOT NULL,
    received_at timestamptz NOT NULL,
    -- The inbox the reply was delivered to; NULL while held.
    client_id text COLLATE "C",
    -- Position in that inbox: 1, 2, 3… in delivery order; the inbox cursor.
    delivery_seq bigint,
    CONSTRAINT replies_one_destination CHECK ((to_number IS NULL) <> (to_unparsed IS NULL)),
    CONSTRAINT replies_delivered_in_order CHECK ((client_id IS NULL) = (delivery_seq IS NULL))
);

-- Inbox pages and the next position; unique, so a delivery that skipped the
-- delivery lock fails instead of reordering an inbox.
CREATE UNIQUE INDEX replies_inbox_idx ON replies (client_id, delivery_seq)
    WHERE client_id IS NOT NULL;
-- The replies held for a number, oldest first: what an assignment releases.
CREATE INDEX replies_held_by_number_idx ON replies (to_number, id)
    WHERE client_id IS NULL;
-- Held area pages.
CREATE INDEX replies_held_idx ON replies (id)
    WHERE client_id IS NULL;

-- The lock on one number (kind 2 above).
CREATE FUNCTION lock_number(p_number text) RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(substr(p_number, 2)::bigint) $$;

-- Number locks for a set of numbers, ascending, each once.
CREATE FUNCTION lock_numbers(p_numbers text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_key bigint;
BEGIN
    FOR v_key IN
        SELECT DISTINCT substr(n, 2)::bigint FROM unnest(p_numbers) AS n ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(v_key);
    END LOOP;
END $$;

-- The client's assignment lock (kind 1): one assignment change per client at
-- a time, so the set it reads stays the client's set until it commits.
CREATE FUNCTION lock_client_assignments(p_client text) RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(1768057601, hashtext(p_client)) $$;

-- The client's delivery lock (kind 3): deliveries to one inbox commit in
-- position order, so a reader that saw position p has seen every position
-- below p, and no reply appears behind its cursor.
CREATE FUNCTION lock_client_deliveries(p_client text) RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(1768057602, hashtext(p_client)) $$;

-- The last position in the client's inbox (0 when empty). Call it holding
-- the delivery lock: each statement of a READ COMMITTED transaction sees
-- what committed before it started, including the previous lock holder.
CREATE FUNCTION last_position(p_client text) RETURNS bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT coalesce(max(r.delivery_seq), 0) FROM replies AS r WHERE r.client_id = p_client
$$;

-- The locks only order statements that start after the lock was granted when
-- each statement takes a new snapshot: READ COMMITTED. Under REPEATABLE READ
-- a receive would route with a snapshot older than the assignment it waited
-- for, so refuse to run.
CREATE FUNCTION require_read_committed() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'ibiki needs READ COMMITTED transactions, not %',
            upper(current_setting('transaction_isolation'))
            USING HINT = 'set default_transaction_isolation to ''read committed'' '
                'for the connections ibiki uses';
    END IF;
END $$;

-- Routes and records one reply, in one statement. Returns duplicate = true
-- when its message id was already recorded; otherwise owner is the client
-- whose inbox it went to, NULL when held.
CREATE FUNCTION receive(
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
    INSERT INTO replies AS r
        (message_id, to_number, to_unparsed, from_address, body, received_at, client_id, delivery_seq)
    VALUES
        (p_message_id, p_to_number, p_to_unparsed, p_from, p_body, p_received_at, owner, v_position)
    ON CONFLICT (message_id) DO NOTHING
    RETURNING r.id INTO v_id;
    -- A concurrent copy of the same message won the insert.
    duplicate := v_id IS NULL;
    IF duplicate THEN
        owner := NULL;
    END IF;
END $$;

-- Moves the replies held for p_numbers to the end of the client's inbox,
-- oldest first. The caller holds the number locks, so no reply for these
-- numbers can be held meanwhile. Returns how many moved.
CREATE FUNCTION release_held(p_client text, p_numbers text[]) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_last bigint;
    v_released bigint;
BEGIN
    IF cardinality(p_numbers) = 0 THEN
        RETURN 0;
    END IF;
    PERFORM lock_client_deliveries(p_client);
    v_last := last_position(p_client);
    UPDATE replies AS r
    SET client_id = p_client, delivery_seq = v_last + h.n
    FROM (
        SELECT held.id, row_number() OVER (ORDER BY held.id) AS n
        FROM replies AS held
        WHERE held.client_id IS NULL AND held.to_number = ANY (p_numbers)
    ) AS h
    WHERE r.id = h.id;
    GET DIAGNOSTICS v_released = ROW_COUNT;
    RETURN v_released;
END $$;

-- The owners of those of p_numbers that are assigned, by number.
CREATE FUNCTION owners_of(p_numbers text[], OUT numbers text[], OUT owners text[])
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT coalesce(array_agg(a.phone_number ORDER BY a.phone_number), '{}'),
           coalesce(array_agg(a.client_id ORDER BY a.phone_number), '{}')
    FROM assignments AS a
    WHERE a.phone_number = ANY (p_numbers)
$$;

-- One assignment change (p_mode: replace, add or remove), in one statement.
-- On conflict, conflict_numbers/conflict_owners list every number another
-- client owns and nothing changes; otherwise the other columns say what did.
CREATE FUNCTION change_numbers(
    p_client text,
    p_mode text,
    p_numbers text[],
    OUT added text[],
    OUT removed text[],
    OUT numbers text[],
    OUT released bigint,
    OUT conflict_numbers text[],
    OUT conflict_owners text[]
)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_current text[];
BEGIN
    PERFORM require_read_committed();
    IF p_mode NOT IN ('replace', 'add', 'remove') THEN
        RAISE EXCEPTION 'unknown assignment change %', p_mode;
    END IF;
    PERFORM lock_client_assignments(p_client);
    v_current := ARRAY(SELECT a.phone_number FROM assignments AS a WHERE a.client_id = p_client);
    added := CASE WHEN p_mode = 'remove' THEN '{}'::text[]
        ELSE ARRAY(SELECT unnest(p_numbers) EXCEPT SELECT unnest(v_current)) END;
    removed := CASE p_mode
        WHEN 'replace' THEN ARRAY(SELECT unnest(v_current) EXCEPT SELECT unnest(p_numbers))
        WHEN 'remove' THEN ARRAY(SELECT unnest(v_current) INTERSECT SELECT unnest(p_numbers))
        ELSE '{}'::text[] END;
    released := 0;
    PERFORM lock_numbers(added || removed);
    -- Holding the number locks: no other change can assign them until commit.
    SELECT o.numbers, o.owners INTO conflict_numbers, conflict_owners FROM owners_of(added) AS o;
    IF cardinality(conflict_numbers) > 0 THEN
        RETURN;
    END IF;
    BEGIN
        DELETE FROM assignments AS a WHERE a.client_id = p_client AND a.phone_number = ANY (removed);
        INSERT INTO assignments (phone_number, client_id) SELECT unnest(added), p_client;
    EXCEPTION WHEN unique_violation THEN
        -- A writer that bypassed the number locks (by hand, say) took one of
        -- the numbers: undo and report it like any other conflict.
        SELECT o.numbers, o.owners INTO conflict_numbers, conflict_owners FROM owners_of(added) AS o;
        IF cardinality(conflict_numbers) = 0 THEN
            RAISE;
        END IF;
        RETURN;
    END;
    released := release_held(p_client, added);
    numbers := ARRAY(SELECT a.phone_number FROM assignments AS a WHERE a.client_id = p_client);
END $$;
