-- Live inbox readers: every statement that puts replies into inboxes
-- announces the clients whose inboxes they reached, so that readers wait for
-- that instead of reading again on a timer (ibiki-postgres/src/listen.rs).
--
-- A NOTIFY is queued by the statement and delivered when its transaction
-- commits, and only then: a woken reader finds the reply. Statement-level
-- triggers on `replies` cover every way in, whatever function or process
-- writes: a receive (`receive`), a batch (`receive_batch`), a release by an
-- assignment change (`release_held_at`) and a re-route (`deliver_held`). The
-- payload is the ids of the clients the statement delivered to, one per
-- line (`notify_clients`).
--
-- Locks: none of ibiki's. PostgreSQL serializes the commits of transactions
-- that notified (a database-wide lock, held through the commit), so that the
-- queue follows commit order: one more reason receives are batched.

-- The channel of this schema's notifications: several schemas may share a
-- database, and a server on one must not wake the readers of another.
-- 'ibiki_inbox_' and the schema's name, or, for a name too long for a
-- channel (63 bytes), 'ibiki_inbox_md5:' and the name's MD5 in hex (':'
-- appears in no schema name, so the two forms never meet). The listener
-- (src/listen.rs, `channel`) computes the same name.
CREATE FUNCTION inbox_channel() RETURNS text
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT CASE WHEN octet_length(current_schema()) <= 51
        THEN 'ibiki_inbox_' || current_schema()
        ELSE 'ibiki_inbox_md5:' || md5(current_schema()) END
$$;

-- Announces that the inboxes of p_clients got replies: their ids joined by
-- newlines (no client id holds a control character), as few notifications
-- as fit PostgreSQL's payload limit (under 8000 bytes), so that a batch
-- costs the queue, and each listener, one notification, not one per client.
CREATE FUNCTION notify_clients(p_clients text[]) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_channel text := inbox_channel();
    v_payload text := '';
    v_client text;
BEGIN
    FOREACH v_client IN ARRAY coalesce(p_clients, '{}') LOOP
        IF v_payload <> '' AND octet_length(v_payload) + 1 + octet_length(v_client) > 7999 THEN
            PERFORM pg_notify(v_channel, v_payload);
            v_payload := '';
        END IF;
        v_payload := CASE WHEN v_payload = '' THEN v_client ELSE v_payload || E'\n' || v_client END;
    END LOOP;
    IF v_payload <> '' THEN
        PERFORM pg_notify(v_channel, v_payload);
    END IF;
END $$;

-- Announces the clients the statement's rows reached: inserted delivered
-- (`delivered` holds the new rows), or updated from held to delivered
-- (`delivered` and `before_update`, the rows before the update).
CREATE FUNCTION notify_inboxes() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM notify_clients(ARRAY(
            SELECT DISTINCT n.client_id FROM delivered AS n WHERE n.client_id IS NOT NULL));
    ELSE
        PERFORM notify_clients(ARRAY(
            SELECT DISTINCT n.client_id
            FROM delivered AS n JOIN before_update AS o ON o.id = n.id
            WHERE n.client_id IS NOT NULL AND o.client_id IS DISTINCT FROM n.client_id));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER replies_notify_inserted
    AFTER INSERT ON replies
    REFERENCING NEW TABLE AS delivered
    FOR EACH STATEMENT EXECUTE FUNCTION notify_inboxes();

CREATE TRIGGER replies_notify_updated
    AFTER UPDATE ON replies
    REFERENCING OLD TABLE AS before_update NEW TABLE AS delivered
    FOR EACH STATEMENT EXECUTE FUNCTION notify_inboxes();
