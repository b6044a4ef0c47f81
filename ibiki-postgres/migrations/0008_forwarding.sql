-- Forwarding (ibiki_core::ForwardStore): each client's own endpoint, and one
-- forward per reply that reaches the inbox of a client with an endpoint,
-- created in the same statement that puts the reply there. Workers lease due
-- forwards (`claim_forwards`), make the HTTP request, and record the outcome
-- under their lease (src/sql.rs, `finish`).
--
-- Locks: as in 0001, in its order; one rule added. Every statement that
-- creates forwards holds the client's delivery lock (kind 3) and reads the
-- endpoint without locking its row: the receives, batches, releases and
-- re-routes already hold it, and `replay` takes it. The functions that create
-- or delete an endpoint take it too, and no other lock of ibiki's, before
-- they write: so a delivery either committed before the endpoint existed (no
-- forward) or sees it (a forward), and a deleted endpoint leaves no forward
-- behind (one created by a delivery that read the endpoint just before it
-- was deleted). Row locks: `claim_forwards` locks the forwards it hands out,
-- skipping locked ones (it never waits); `finish` locks one forward, then its
-- endpoint; `delete_endpoint` deletes the forwards, then the endpoint, in
-- that order too, so neither waits for the other in a cycle.

-- One endpoint per client: where its replies are forwarded. The secret is
-- kept as text: each request is signed with it (HMAC), so it cannot be a
-- digest. A rotated-out secret signs beside the new one until
-- previous_until.
CREATE TABLE endpoints (
    client_id text COLLATE "C" PRIMARY KEY CHECK (client_id <> ''),
    url text NOT NULL,
    -- false: forwards are created and wait as pending; none is claimed.
    enabled boolean NOT NULL,
    secret text NOT NULL,
    previous_secret text,
    previous_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_delivered_at timestamptz,
    -- The first failed attempt since the last delivered one; NULL while the
    -- endpoint is not failing.
    failing_since timestamptz,
    CONSTRAINT endpoints_previous_secret_expires
        CHECK ((previous_secret IS NULL) = (previous_until IS NULL))
);

-- One forward per reply (`reply_id` unique), deleted with its reply (retention)
-- or its endpoint (`delete_endpoint`). Not a foreign key to `endpoints`: the
-- check would lock the endpoint's row for every forward of every receive
-- batch; the delivery lock keeps the two in step instead (see above).
CREATE TABLE forwards (
    -- Creation order; the cursor of a client's forwards.
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reply_id bigint NOT NULL UNIQUE REFERENCES replies (id) ON DELETE CASCADE,
    client_id text COLLATE "C" NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CONSTRAINT forwards_status CHECK (status IN ('pending', 'delivered', 'failed')),
    -- Claims so far: each claim is an attempt, and its number is the lease's.
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- When a pending forward may next be claimed; NULL once delivered or
    -- failed.
    next_attempt_at timestamptz,
    -- Set by a claim, cleared by the outcome; past it, another claim may
    -- take the forward (its worker is presumed dead).
    leased_until timestamptz,
    last_attempt_at timestamptz,
    last_status integer,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT forwards_pending_is_scheduled
        CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);

-- The claim: pending forwards in due order. Every pending forward is in it,
-- due or not (a retry's wait), none of the delivered or failed ones, which
-- are most rows. `leased_until` is left out, so a claim's update of it can
-- stay a HOT update.
CREATE INDEX forwards_due_idx ON forwards (next_attempt_at, id) WHERE status = 'pending';
-- A client's forwards, oldest first, and those of one status; the counts of
-- an endpoint's pending and failed forwards; `delete_endpoint`.
CREATE INDEX forwards_client_idx ON forwards (client_id, id);
CREATE INDEX forwards_client_status_idx ON forwards (client_id, status, id);

-- Creates p_client's endpoint (with p_secret) or changes its URL and state,
-- keeping its secret. created: whether this call created it. Holding the
-- client's delivery lock, which every creation and deletion takes, the
-- existence check cannot be overtaken.
CREATE FUNCTION put_endpoint(
    p_client text,
    p_url text,
    p_enabled boolean,
    p_secret text,
    OUT created boolean,
    OUT created_at timestamptz
)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM require_read_committed();
    PERFORM lock_client_deliveries(p_client);
    created := NOT EXISTS (SELECT 1 FROM endpoints AS e WHERE e.client_id = p_client);
    INSERT INTO endpoints AS e (client_id, url, enabled, secret)
    VALUES (p_client, p_url, p_enabled, p_secret)
    ON CONFLICT (client_id) DO UPDATE SET url = excluded.url, enabled = excluded.enabled
    RETURNING e.created_at INTO created_at;
END $$;

-- Deletes p_client's endpoint and its forwards (the replies stay); whether
-- it had one. The forwards go first: a `finish` locks a forward, then its
-- endpoint, and this follows the same order.
CREATE FUNCTION delete_endpoint(p_client text) RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM require_read_committed();
    PERFORM lock_client_deliveries(p_client);
    DELETE FROM forwards AS f WHERE f.client_id = p_client;
    DELETE FROM endpoints AS e WHERE e.client_id = p_client;
    RETURN FOUND;
END $$;

-- Makes every reply that reached p_client's inbox at or after p_since due
-- now: a new forward where it has none, its forward again (pending, due now,
-- its attempts and any lease kept) where it has one. How many; NULL when
-- the client has no endpoint. Under the client's delivery lock, like every
-- creation of forwards: its receives wait for it meanwhile.
CREATE FUNCTION replay(p_client text, p_since timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_count bigint;
BEGIN
    PERFORM require_read_committed();
    PERFORM lock_client_deliveries(p_client);
    IF NOT EXISTS (SELECT 1 FROM endpoints AS e WHERE e.client_id = p_client) THEN
        RETURN NULL;
    END IF;
    INSERT INTO forwards AS f (reply_id, client_id, next_attempt_at)
    SELECT r.id, r.client_id, now()
    FROM replies AS r
    WHERE r.client_id = p_client AND coalesce(r.delivered_at, r.received_at) >= p_since
    ORDER BY r.id
    ON CONFLICT (reply_id) DO UPDATE SET status = 'pending', next_attempt_at = now();
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END $$;

-- Leases up to p_limit claimable forwards (pending, due, not leased or
-- their lease over, the endpoint enabled), oldest due first, at most
-- p_per_endpoint of one client counting its p_busy forwards already in the
-- worker's hands (p_clients and p_busy: two arrays of one length): each an
-- attempt more, leased until now + p_lease_secs. Returns what was claimed.
--
-- The due forwards are read in order (forwards_due_idx), lazily, until
-- enough are taken: a client at its cap is passed over, so its backlog
-- delays the others' only by the time it takes to read past it. Each forward
-- is locked on its own, skipping one another claim holds (claims never wait
-- for each other, and two concurrent claims take different forwards instead
-- of the same first ones), and checked again once locked: a claim that
-- committed meanwhile has leased it.
CREATE FUNCTION claim_forwards(
    p_limit bigint,
    p_lease_secs float8,
    p_per_endpoint bigint,
    p_clients text[],
    p_busy bigint[]
)
RETURNS TABLE (forward_id bigint, reply_id bigint, client_id text, attempt integer,
    next_attempt_at timestamptz)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_due record;
    v_clients text[] := coalesce(p_clients, '{}');
    v_busy bigint[] := coalesce(p_busy, '{}');
    v_i integer;
    v_taken bigint := 0;
    v_id bigint;
BEGIN
    PERFORM require_read_committed();
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    FOR v_due IN
        SELECT f.id, f.client_id
        FROM forwards AS f JOIN endpoints AS e ON e.client_id = f.client_id
        WHERE f.status = 'pending' AND f.next_attempt_at <= now()
            AND (f.leased_until IS NULL OR f.leased_until < now()) AND e.enabled
        ORDER BY f.next_attempt_at, f.id
    LOOP
        v_i := array_position(v_clients, v_due.client_id);
        IF v_i IS NULL THEN
            v_clients := v_clients || v_due.client_id;
            v_busy := v_busy || 0::bigint;
            v_i := cardinality(v_clients);
        END IF;
        CONTINUE WHEN v_busy[v_i] >= p_per_endpoint;
        SELECT f.id INTO v_id FROM forwards AS f
        WHERE f.id = v_due.id AND f.status = 'pending' AND f.next_attempt_at <= now()
            AND (f.leased_until IS NULL OR f.leased_until < now())
        FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        RETURN QUERY
        UPDATE forwards AS f
        SET attempts = f.attempts + 1, leased_until = now() + make_interval(secs => p_lease_secs)
        WHERE f.id = v_id
        RETURNING f.id, f.reply_id, f.client_id, f.attempts, f.next_attempt_at;
        v_busy[v_i] := v_busy[v_i] + 1;
        v_taken := v_taken + 1;
        EXIT WHEN v_taken >= p_limit;
    END LOOP;
END $$;

-- The four ways into an inbox, restated whole from 0007 (receive,
-- receive_batch) and 0002 (release_held_at, deliver_held), changed only
-- where they write the reply: that statement now also inserts the forwards
-- of the replies it put into the inbox of a client with an endpoint (a
-- data-modifying WITH, so the reply and its forward commit together and
-- cost no extra statement), due at once.

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
    -- The reply, and its forward if its owner has an endpoint (read after
    -- the delivery lock, not locked).
    WITH recorded AS (
        INSERT INTO replies AS r
            (message_id, to_number, to_unparsed, from_address, body, received_at, client_id,
             delivery_seq, delivery, delivered_at)
        VALUES
            (p_message_id, p_to_number, p_to_unparsed, p_from, p_body, p_received_at, owner,
             v_position,
             CASE WHEN owner IS NOT NULL THEN 'routed' WHEN p_to_unparsed IS NOT NULL
                 THEN 'unparsed' ELSE 'held' END,
             v_now)
        ON CONFLICT (message_id) DO NOTHING
        RETURNING r.id, r.client_id
    ), forwarded AS (
        INSERT INTO forwards (reply_id, client_id, next_attempt_at)
        SELECT rec.id, rec.client_id, now()
        FROM recorded AS rec JOIN endpoints AS e ON e.client_id = rec.client_id
    )
    SELECT rec.id INTO v_id FROM recorded AS rec;
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
    -- cycle. The same statement inserts the forwards of the routed replies
    -- whose owner has an endpoint (read after the delivery locks, by key,
    -- not locked).
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
        ), recorded AS (
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
            ON CONFLICT (message_id) DO NOTHING
            RETURNING r.id, r.client_id
        ), forwarded AS (
            INSERT INTO forwards (reply_id, client_id, next_attempt_at)
            SELECT rec.id, rec.client_id, now()
            FROM recorded AS rec JOIN endpoints AS e ON e.client_id = rec.client_id
            ORDER BY rec.id
        )
        SELECT count(*) INTO v_inserted FROM recorded;
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

-- Moves the replies held for p_numbers to the end of the client's inbox,
-- oldest first, released at p_at (the assignment's instant), with their
-- forwards if the client has an endpoint. The caller holds the number locks,
-- so no reply for these numbers can be held meanwhile. Returns how many
-- moved.
CREATE OR REPLACE FUNCTION release_held_at(p_client text, p_numbers text[], p_at timestamptz)
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
    WITH released AS (
        UPDATE replies AS r
        SET client_id = p_client, delivery_seq = v_last + h.n,
            delivery = 'released', delivered_at = p_at
        FROM (
            SELECT held.id, row_number() OVER (ORDER BY held.id) AS n
            FROM replies AS held
            WHERE held.client_id IS NULL AND held.to_number = ANY (p_numbers)
        ) AS h
        WHERE r.id = h.id
        RETURNING r.id, r.client_id
    ), forwarded AS (
        INSERT INTO forwards (reply_id, client_id, next_attempt_at)
        SELECT rel.id, rel.client_id, now()
        FROM released AS rel JOIN endpoints AS e ON e.client_id = rel.client_id
        ORDER BY rel.id
    )
    SELECT count(*) INTO v_released FROM released;
    RETURN v_released;
END $$;

-- An operator moves held reply p_id to the end of an inbox: p_client's, or
-- (p_client NULL) the current owner's of p_number. outcome: 'delivered'
-- (owner is the client), 'not_found', 'not_held' or 'unowned', the last
-- three changing nothing. Locks in the usual order: the number locks of the
-- reply's number (so no assignment releases it meanwhile) and of p_number,
-- ascending; then the reply's row; then the client's delivery lock. No
-- ownership changes: the reply's delivery ('rerouted', now) records it. The
-- statement that moves it creates its forward if the owner has an endpoint.
CREATE OR REPLACE FUNCTION deliver_held(
    p_id bigint,
    p_client text,
    p_number text,
    OUT outcome text,
    OUT owner text
)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_to text;
    v_moved bigint;
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
    WITH moved AS (
        UPDATE replies AS r
        SET client_id = owner, delivery_seq = last_position(owner) + 1,
            delivery = 'rerouted', delivered_at = clock_timestamp()
        WHERE r.id = p_id AND r.client_id IS NULL
        RETURNING r.id, r.client_id
    ), forwarded AS (
        INSERT INTO forwards (reply_id, client_id, next_attempt_at)
        SELECT m.id, m.client_id, now()
        FROM moved AS m JOIN endpoints AS e ON e.client_id = m.client_id
    )
    SELECT count(*) INTO v_moved FROM moved;
    outcome := CASE WHEN v_moved > 0 THEN 'delivered' ELSE 'not_held' END;
END $$;

-- Forwarding workers woken by the database, like the inbox readers of 0006:
-- statement triggers send a NOTIFY, delivered at commit, whenever a
-- statement makes a forward due now, whatever function or process wrote:
-- forwards created (by the four ways into an inbox, or a replay), made
-- pending and due again (a retry, a replay, an outcome retried at once),
-- and endpoints enabled. The payload is empty: any worker may claim any
-- forward. Forwards that fall due later (a retry's wait, an expired lease)
-- are found by the workers' timer.
--
-- Locks: none of ibiki's (see 0006 on the commit of a notifying transaction).

-- The channel of this schema's forwarding workers: 'ibiki_forward_' and the
-- schema's name, or, for a name too long for a channel (63 bytes),
-- 'ibiki_forward_md5:' and the name's MD5 in hex. The listener
-- (src/listen.rs, `forward_channel`) computes the same name.
CREATE FUNCTION forward_channel() RETURNS text
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT CASE WHEN octet_length(current_schema()) <= 49
        THEN 'ibiki_forward_' || current_schema()
        ELSE 'ibiki_forward_md5:' || md5(current_schema()) END
$$;

-- Wakes the workers when the statement inserted a forward that may be
-- claimed now (`added` holds the new rows), or made one claimable now that
-- was not, or not at that time (`added` and `before_update`: made pending,
-- rescheduled, or its lease ended by an outcome; a claim changes neither its
-- status nor its schedule, and wakes nobody). Claimable: pending, due, not
-- leased, its endpoint enabled. The clock, not now(): a forward due at its
-- transaction's start is due at any instant after.
CREATE FUNCTION notify_forwards() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF EXISTS (
            SELECT 1 FROM added AS n JOIN endpoints AS e ON e.client_id = n.client_id
            WHERE n.status = 'pending' AND n.next_attempt_at <= clock_timestamp()
                AND n.leased_until IS NULL AND e.enabled
        ) THEN
            PERFORM pg_notify(forward_channel(), '');
        END IF;
    ELSIF EXISTS (
        SELECT 1
        FROM added AS n
        JOIN before_update AS o ON o.id = n.id
        JOIN endpoints AS e ON e.client_id = n.client_id
        WHERE n.status = 'pending' AND n.next_attempt_at <= clock_timestamp()
            AND (n.leased_until IS NULL OR n.leased_until < clock_timestamp()) AND e.enabled
            AND (o.status <> 'pending' OR o.next_attempt_at IS DISTINCT FROM n.next_attempt_at
                OR (o.leased_until IS NOT NULL AND n.leased_until IS NULL))
    ) THEN
        PERFORM pg_notify(forward_channel(), '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER forwards_notify_inserted
    AFTER INSERT ON forwards
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION notify_forwards();

CREATE TRIGGER forwards_notify_updated
    AFTER UPDATE ON forwards
    REFERENCING OLD TABLE AS before_update NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION notify_forwards();

-- Wakes the workers when the statement enabled an endpoint that has a
-- pending forward due now.
CREATE FUNCTION notify_endpoints_enabled() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF EXISTS (
        SELECT 1
        FROM enabled AS n
        JOIN before_update AS o ON o.client_id = n.client_id
        WHERE n.enabled AND NOT o.enabled
            AND EXISTS (SELECT 1 FROM forwards AS f
                WHERE f.client_id = n.client_id AND f.status = 'pending'
                    AND f.next_attempt_at <= clock_timestamp())
    ) THEN
        PERFORM pg_notify(forward_channel(), '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER endpoints_notify_enabled
    AFTER UPDATE ON endpoints
    REFERENCING OLD TABLE AS before_update NEW TABLE AS enabled
    FOR EACH STATEMENT EXECUTE FUNCTION notify_endpoints_enabled();
