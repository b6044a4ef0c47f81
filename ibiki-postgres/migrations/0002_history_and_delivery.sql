-- Ownership history, and how each reply was delivered.
--
-- Locks: as in 0001; nothing here takes a lock of its own.

-- Every ownership change of every number, append-only: one row per number
-- an assignment change assigns ('assigned') or takes ('unassigned'), written
-- by change_numbers in its own statement, at one instant per change. `seq`
-- orders events of one number at the same instant (two changes within a
-- microsecond): rows of one number are inserted under its number lock, so
-- their seq follow the order of the changes.
CREATE TABLE number_history (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone_number text COLLATE "C" NOT NULL
        CONSTRAINT number_history_phone_number_canonical
        CHECK (phone_number ~ '^[+][1-9][0-9]{1,14}$'),
    at timestamptz NOT NULL,
    client_id text COLLATE "C" NOT NULL CHECK (client_id <> ''),
    change text NOT NULL CHECK (change IN ('assigned', 'unassigned'))
);

-- "Owner of N at T" is the first row of one index-only scan: phone_number =
-- N AND at <= T, ORDER BY at DESC, seq DESC, LIMIT 1. A number's history,
-- oldest first, is the same range read backwards.
CREATE INDEX number_history_owner_at_idx
    ON number_history (phone_number, at DESC, seq DESC) INCLUDE (client_id, change);

-- Assignments made before this migration have no history: one 'assigned'
-- event at assigned_at each, so that owner_at agrees with owner_of.
INSERT INTO number_history (phone_number, at, client_id, change)
SELECT a.phone_number, a.assigned_at, a.client_id, 'assigned'
FROM assignments AS a
ORDER BY a.assigned_at, a.phone_number;

-- The instant of a change of p_numbers, made holding their number locks: the
-- clock (not now(), the transaction's start, which may predate a change that
-- committed while this one waited for the locks), never before an event
-- already recorded for one of them, so each number's history stays in order
-- even if the server's clock steps back.
CREATE FUNCTION change_instant(p_numbers text[]) RETURNS timestamptz
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT greatest(clock_timestamp(), max(h.at))
    FROM number_history AS h
    WHERE h.phone_number = ANY (p_numbers)
$$;

-- Records that p_client lost p_removed and gained p_added at p_at.
CREATE FUNCTION record_history(p_client text, p_added text[], p_removed text[], p_at timestamptz)
RETURNS void
LANGUAGE sql SET search_path FROM CURRENT AS $$
    INSERT INTO number_history (phone_number, at, client_id, change)
    SELECT c.phone_number, p_at, p_client, c.change
    FROM (
        SELECT n AS phone_number, 'unassigned' AS change, 1 AS o FROM unnest(p_removed) AS n
        UNION ALL
        SELECT n, 'assigned', 2 FROM unnest(p_added) AS n
    ) AS c
    ORDER BY c.o, c.phone_number
$$;

-- How each reply was delivered: 'routed' on receipt, 'held' (or 'unparsed')
-- while held, 'released' by an assignment, 'rerouted' by an operator; and
-- when it got that kind (its reception, the assignment's instant, the
-- re-route's). Written by the INSERT of a receive and by the UPDATE that
-- delivers a held reply: no statement of its own. NULL for replies recorded
-- before this migration (read as held, or as delivered without saying how):
-- adding nullable columns rewrites nothing.
ALTER TABLE replies
    ADD COLUMN delivery text CONSTRAINT replies_delivery_kind
        CHECK (delivery IN ('routed', 'released', 'held', 'unparsed', 'rerouted')),
    ADD COLUMN delivered_at timestamptz;

-- Routes and records one reply, in one statement. Returns duplicate = true
-- when its message id was already recorded; otherwise owner is the client
-- whose inbox it went to, NULL when held.
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
        (message_id, to_number, to_unparsed, from_address, body, received_at, client_id, delivery_seq,
         delivery, delivered_at)
    VALUES
        (p_message_id, p_to_number, p_to_unparsed, p_from, p_body, p_received_at, owner, v_position,
         CASE WHEN owner IS NOT NULL THEN 'routed' WHEN p_to_unparsed IS NOT NULL THEN 'unparsed'
             ELSE 'held' END,
         p_received_at)
    ON CONFLICT (message_id) DO NOTHING
    RETURNING r.id INTO v_id;
    -- A concurrent copy of the same message won the insert.
    duplicate := v_id IS NULL;
    IF duplicate THEN
        owner := NULL;
    END IF;
END $$;

-- Moves the replies held for p_numbers to the end of the client's inbox,
-- oldest first, released at p_at (the assignment's instant). The caller holds the number locks, so no reply for these
-- numbers can be held meanwhile. Returns how many moved.
CREATE FUNCTION release_held_at(p_client text, p_numbers text[], p_at timestamptz)
RETURNS bigint
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
    SET client_id = p_client, delivery_seq = v_last + h.n,
        delivery = 'released', delivered_at = p_at
    FROM (
        SELECT held.id, row_number() OVER (ORDER BY held.id) AS n
        FROM replies AS held
        WHERE held.client_id IS NULL AND held.to_number = ANY (p_numbers)
    ) AS h
    WHERE r.id = h.id;
    GET DIAGNOSTICS v_released = ROW_COUNT;
    RETURN v_released;
END $$;

-- release_held_at replaces it: change_numbers was its only caller.
DROP FUNCTION release_held(text, text[]);

-- One assignment change (p_mode: replace, add or remove), in one statement.
-- On conflict, conflict_numbers/conflict_owners list every number another
-- client owns and nothing changes; otherwise the other columns say what did.
CREATE OR REPLACE FUNCTION change_numbers(
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
    v_at timestamptz;
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
    v_at := change_instant(added || removed);
    BEGIN
        DELETE FROM assignments AS a WHERE a.client_id = p_client AND a.phone_number = ANY (removed);
        INSERT INTO assignments (phone_number, client_id, assigned_at)
            SELECT unnest(added), p_client, v_at;
    EXCEPTION WHEN unique_violation THEN
        -- A writer that bypassed the number locks (by hand, say) took one of
        -- the numbers: undo and report it like any other conflict.
        SELECT o.numbers, o.owners INTO conflict_numbers, conflict_owners FROM owners_of(added) AS o;
        IF cardinality(conflict_numbers) = 0 THEN
            RAISE;
        END IF;
        RETURN;
    END;
    PERFORM record_history(p_client, added, removed, v_at);
    released := release_held_at(p_client, added, v_at);
    numbers := ARRAY(SELECT a.phone_number FROM assignments AS a WHERE a.client_id = p_client);
END $$;

-- An operator moves held reply p_id to the end of an inbox: p_client's, or
-- (p_client NULL) the current owner's of p_number. outcome: 'delivered'
-- (owner is the client), 'not_found', 'not_held' or 'unowned', the last
-- three changing nothing. Locks in the usual order: the number locks of the
-- reply's number (so no assignment releases it meanwhile) and of p_number,
-- ascending; then the reply's row; then the client's delivery lock. No
-- ownership changes: the reply's delivery ('rerouted', now) records it.
CREATE FUNCTION deliver_held(
    p_id bigint,
    p_client text,
    p_number text,
    OUT outcome text,
    OUT owner text
)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_to text;
BEGIN
    PERFORM require_read_committed();
    SELECT r.to_number INTO v_to FROM replies AS r WHERE r.id = p_id;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    PERFORM lock_numbers(array_remove(ARRAY[v_to, p_number], NULL));
    IF EXISTS (SELECT 1 FROM replies AS r WHERE r.id = p_id AND r.client_id IS NOT NULL) THEN
        outcome := 'not_held';
        RETURN;
    END IF;
    PERFORM 1 FROM replies AS r WHERE r.id = p_id FOR UPDATE;
    owner := p_client;
    IF p_number IS NOT NULL THEN
        SELECT a.client_id INTO owner FROM assignments AS a WHERE a.phone_number = p_number;
        IF owner IS NULL THEN
            outcome := 'unowned';
            RETURN;
        END IF;
    END IF;
    PERFORM lock_client_deliveries(owner);
    -- A concurrent re-route of the same reply committed while this one waited.
    UPDATE replies AS r
    SET client_id = owner, delivery_seq = last_position(owner) + 1,
        delivery = 'rerouted', delivered_at = clock_timestamp()
    WHERE r.id = p_id AND r.client_id IS NULL;
    outcome := CASE WHEN FOUND THEN 'delivered' ELSE 'not_held' END;
END $$;
