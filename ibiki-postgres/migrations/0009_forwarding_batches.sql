-- Forwarding at the rate of receiving: a claim reads the due forwards a
-- window at a time, in one statement per window (0008 read and leased them
-- one row at a time), and the outcomes of many attempts are recorded by one
-- statement (`finish_forwards`, replacing src/sql.rs's one-forward `finish`).
--
-- Both commit without waiting for the WAL flush (synchronous_commit off, for
-- their transaction only). A crash of PostgreSQL may then forget the last
-- fraction of a second of leases and outcomes, never a forward: a forgotten
-- lease or outcome leaves the forward pending, and it is attempted again,
-- with the same webhook-id, as after any lost outcome. Forwards themselves
-- are still created, durably, by the statement that records their reply.
--
-- Plans: the forwards table swings from empty to a burst's backlog and back,
-- faster than statistics follow, and a session keeps a function's plans
-- until they are invalidated. A plan made while the table was nearly empty
-- (a sequential scan) would then read the whole backlog for every claim and
-- every batch of outcomes. So these functions, and 0008's triggers, keep
-- index plans (enable_seqscan off), as receive_batch does (0004), and a
-- claim reads the due forwards in index order, never gathering and sorting
-- all of them to take a few (enable_bitmapscan off: the plan chosen with
-- statistics of an empty table, seen to read a 100,000 forward backlog for
-- every claim). Their statements are small: never compiled (jit off; the
-- planner's penalty for a disabled plan could otherwise set it off).
--
-- Locks: as in 0008. `finish_forwards` locks its forwards in id order, then
-- their endpoints in client order, so two batches never wait for each other
-- in a cycle, and keeps 0008's order of a forward before its endpoint.

DROP FUNCTION claim_forwards(bigint, float8, bigint, text[], bigint[]);

-- Leases up to p_limit claimable forwards (pending, due, not leased or
-- their lease over, the endpoint enabled), oldest due first, at most
-- p_per_endpoint of one client counting its p_busy forwards already in the
-- worker's hands (p_clients and p_busy: two arrays of one length): each an
-- attempt more, leased until now + p_lease_secs. Returns what was claimed.
--
-- The due forwards are read in order (forwards_due_idx), a window at a time,
-- until enough are taken: a client at its cap is passed over, so its
-- backlog delays the others' only by the time it takes to read past it.
-- Each window locks its rows skipping those another claim holds (claims
-- never wait for each other, and two concurrent claims take different
-- forwards); the rows of a client at its cap stay locked, untaken, until
-- this claim commits. A client's cap only fills during a claim, so a row
-- passed over is never wanted later in it.
CREATE FUNCTION claim_forwards(
    p_limit bigint,
    p_lease_secs float8,
    p_per_endpoint bigint,
    p_clients text[],
    p_busy bigint[]
)
RETURNS TABLE (forward_id bigint, reply_id bigint, client_id text, attempt integer,
    next_attempt_at timestamptz)
LANGUAGE plpgsql SET search_path FROM CURRENT SET enable_seqscan = off
    SET enable_bitmapscan = off SET jit = off AS $$
DECLARE
    v_clients text[] := coalesce(p_clients, '{}');
    v_busy bigint[] := coalesce(p_busy, '{}');
    v_after_at timestamptz := '-infinity';
    v_after_id bigint := 0;
    v_taken bigint := 0;
    v_window bigint;
    v_ids bigint[];
    v_owners text[];
    v_dues timestamptz[];
    v_picked bigint[];
    v_read integer;
BEGIN
    PERFORM require_read_committed();
    PERFORM set_config('synchronous_commit', 'off', true);
    LOOP
        EXIT WHEN v_taken >= p_limit;
        -- Twice what is still wanted: room for a few rows of capped clients.
        v_window := greatest(2 * (p_limit - v_taken), 32);
        SELECT coalesce(array_agg(w.id ORDER BY w.next_attempt_at, w.id), '{}'),
            coalesce(array_agg(w.client_id ORDER BY w.next_attempt_at, w.id), '{}'),
            coalesce(array_agg(w.next_attempt_at ORDER BY w.next_attempt_at, w.id), '{}')
        INTO v_ids, v_owners, v_dues
        FROM (
            SELECT f.id, f.client_id, f.next_attempt_at
            FROM forwards AS f JOIN endpoints AS e ON e.client_id = f.client_id
            WHERE f.status = 'pending' AND f.next_attempt_at <= now()
                AND (f.next_attempt_at, f.id) > (v_after_at, v_after_id)
                AND (f.leased_until IS NULL OR f.leased_until < now()) AND e.enabled
            ORDER BY f.next_attempt_at, f.id
            LIMIT v_window
            FOR UPDATE OF f SKIP LOCKED
        ) AS w;
        v_read := cardinality(v_ids);
        EXIT WHEN v_read = 0;
        -- The window's forwards within their client's room, in due order,
        -- as many as are still wanted.
        v_picked := ARRAY(
            SELECT c.id
            FROM (
                SELECT u.id, u.client_id, u.n,
                    row_number() OVER (PARTITION BY u.client_id ORDER BY u.n) AS rank
                FROM unnest(v_ids, v_owners) WITH ORDINALITY AS u(id, client_id, n)
            ) AS c
            LEFT JOIN unnest(v_clients, v_busy) AS b(client_id, busy)
                ON b.client_id = c.client_id
            WHERE c.rank + coalesce(b.busy, 0) <= p_per_endpoint
            ORDER BY c.n
            LIMIT p_limit - v_taken);
        IF cardinality(v_picked) > 0 THEN
            RETURN QUERY
            UPDATE forwards AS f
            SET attempts = f.attempts + 1,
                leased_until = now() + make_interval(secs => p_lease_secs)
            WHERE f.id = ANY (v_picked)
            RETURNING f.id, f.reply_id, f.client_id, f.attempts, f.next_attempt_at;
            v_taken := v_taken + cardinality(v_picked);
            -- The clients' counts, with what this window took.
            SELECT coalesce(array_agg(t.client_id), '{}'), coalesce(array_agg(t.busy), '{}')
            INTO v_clients, v_busy
            FROM (
                SELECT a.client_id, sum(a.busy)::bigint AS busy
                FROM (
                    SELECT * FROM unnest(v_clients, v_busy) AS b(client_id, busy)
                    UNION ALL
                    SELECT o.client_id, 1
                    FROM unnest(v_ids, v_owners) AS o(id, client_id)
                    WHERE o.id = ANY (v_picked)
                ) AS a
                GROUP BY a.client_id
            ) AS t;
        END IF;
        -- A short window: nothing claimable is left.
        EXIT WHEN v_read < v_window;
        v_after_at := v_dues[v_read];
        v_after_id := v_ids[v_read];
    END LOOP;
END $$;

-- Records the outcomes of attempts, the n-th of each array describing one:
-- p_ids the forward, p_attempts its lease's attempt, p_delivered whether it
-- was delivered, p_statuses the HTTP status (NULL: none), p_errors the error,
-- p_retry_secs the wait before the next attempt (NULL: none, the forward
-- failed). Only under the lease that holds it: the attempt is the last
-- claim's, the forward pending and leased (an outcome clears the lease, so a
-- second outcome of one lease, in this batch or later, is refused). Each
-- endpoint records its last delivery, and when it started failing: the
-- state its last outcome in the batch leaves, as if recorded one by one.
-- Returns the ordinals (from 1) of the outcomes recorded.
CREATE FUNCTION finish_forwards(
    p_ids bigint[],
    p_attempts integer[],
    p_delivered boolean[],
    p_statuses integer[],
    p_errors text[],
    p_retry_secs float8[]
)
RETURNS SETOF integer
LANGUAGE plpgsql SET search_path FROM CURRENT SET enable_seqscan = off SET jit = off AS $$
BEGIN
    PERFORM require_read_committed();
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM 1 FROM forwards AS f WHERE f.id = ANY (p_ids) ORDER BY f.id FOR UPDATE;
    PERFORM 1 FROM endpoints AS e
    WHERE e.client_id IN (SELECT f.client_id FROM forwards AS f WHERE f.id = ANY (p_ids))
    ORDER BY e.client_id
    FOR UPDATE;
    RETURN QUERY
    WITH o AS (
        -- The first outcome of each lease; a later one is refused. (Of a
        -- forward's leases, only its last claim's can match below.)
        SELECT DISTINCT ON (u.id, u.attempt) u.*
        FROM unnest(p_ids, p_attempts, p_delivered, p_statuses, p_errors, p_retry_secs)
            WITH ORDINALITY AS u(id, attempt, delivered, status, error, retry_secs, n)
        ORDER BY u.id, u.attempt, u.n
    ), done AS (
        UPDATE forwards AS f SET
            status = CASE WHEN o.delivered THEN 'delivered' WHEN o.retry_secs IS NULL THEN 'failed'
                ELSE 'pending' END,
            next_attempt_at = CASE WHEN o.delivered OR o.retry_secs IS NULL THEN NULL
                ELSE now() + make_interval(secs => o.retry_secs) END,
            leased_until = NULL, last_attempt_at = now(),
            last_status = o.status, last_error = o.error
        FROM o
        WHERE f.id = o.id AND f.attempts = o.attempt AND f.status = 'pending'
            AND f.leased_until IS NOT NULL
        RETURNING f.client_id, o.n, o.delivered
    ), by_client AS (
        SELECT d.client_id, bool_or(d.delivered) AS any_delivered,
            (array_agg(d.delivered ORDER BY d.n DESC))[1] AS last_delivered
        FROM done AS d
        GROUP BY d.client_id
    ), endpoint AS (
        -- A failure after the batch's last delivery starts a failing spell
        -- now; failures alone keep the one under way.
        UPDATE endpoints AS e SET
            last_delivered_at = CASE WHEN c.any_delivered THEN now() ELSE e.last_delivered_at END,
            failing_since = CASE WHEN c.last_delivered THEN NULL
                WHEN c.any_delivered THEN now()
                ELSE coalesce(e.failing_since, now()) END
        FROM by_client AS c
        WHERE e.client_id = c.client_id AND (c.any_delivered OR e.failing_since IS NULL)
    )
    SELECT d.n::integer FROM done AS d ORDER BY d.n;
END $$;

ALTER FUNCTION notify_forwards() SET enable_seqscan = off SET jit = off;
ALTER FUNCTION notify_endpoints_enabled() SET enable_seqscan = off SET jit = off;
