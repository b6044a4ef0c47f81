-- Live inbox readers: every statement that puts replies into inboxes
-- announces the clients whose inboxes they reached, so that readers wait for
-- that instead of reading again on a timer (ibiki-postgres/src/listen.rs).
--
-- A NOTIFY is queued by the statement and delivered when its transaction
-- commits, and only then: a woken reader finds the reply. Statement-level
-- triggers on `replies` cover every way in, whatever function or process
-- writes: a receive (`receive`), a batch (`receive_batch`), a release by an
-- assignment change (`release_held_at`) and a re-route (`deliver_held`); one
-- notification per client a statement delivered to (PostgreSQL also folds
-- identical ones within a transaction). The payload is the client id.
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

-- Announces the clients that statement's rows reached: inserted delivered
-- (`delivered` holds the new rows), or updated from held to delivered
-- (`delivered` and `before_update`, the rows before the update).
CREATE FUNCTION notify_inboxes() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_channel text := inbox_channel();
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify(v_channel, d.client_id)
        FROM (SELECT DISTINCT n.client_id FROM delivered AS n WHERE n.client_id IS NOT NULL) AS d;
    ELSE
        PERFORM pg_notify(v_channel, d.client_id)
        FROM (SELECT DISTINCT n.client_id
            FROM delivered AS n JOIN before_update AS o ON o.id = n.id
            WHERE n.client_id IS NOT NULL AND o.client_id IS DISTINCT FROM n.client_id) AS d;
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
