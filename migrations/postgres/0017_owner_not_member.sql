-- `accounts.integrity` reports the clients whose owner is not one of their members. Finding
-- them meant reading every client (300 ms at a million); this table holds them instead, kept
-- by triggers in the same transaction as each change to a client's owner or to a membership,
-- whoever makes it. Each trigger re-judges the client a change touched: forgets it, then
-- lists it if its owner is not a member. (The deferred foreign key from clients to
-- memberships already refuses such a commit; this catches what went round it.)
CREATE TABLE owner_not_member (client_id BIGINT PRIMARY KEY);

CREATE FUNCTION owner_not_member_judge(touched BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- The client's row is locked first, so two transactions that change the same client (its
    -- owner in one, the owner's membership in the other) judge it one after the other, the
    -- second seeing what the first committed: neither leaves a verdict the other made stale.
    PERFORM 1 FROM clients WHERE id = touched FOR NO KEY UPDATE;
    DELETE FROM owner_not_member WHERE client_id = touched;
    INSERT INTO owner_not_member (client_id)
        SELECT c.id FROM clients c
        WHERE c.id = touched
            AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.client_id = c.id AND m.user_id = c.owner_user_id)
        ON CONFLICT DO NOTHING;
END $$;

-- After a row of clients or memberships changed: the client it was of and the one it is of
-- now are judged. Each trigger names the column that holds its row's client (TG_ARGV[0]).
CREATE FUNCTION owner_not_member_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM owner_not_member_judge((to_jsonb(OLD) ->> TG_ARGV[0])::BIGINT);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM owner_not_member_judge((to_jsonb(NEW) ->> TG_ARGV[0])::BIGINT);
    END IF;
    RETURN NULL;
END $$;

-- TRUNCATE fires no row trigger: every client is judged again.
CREATE FUNCTION owner_not_member_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM owner_not_member;
    INSERT INTO owner_not_member (client_id)
        SELECT c.id FROM clients c
        WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.client_id = c.id AND m.user_id = c.owner_user_id);
    RETURN NULL;
END $$;

-- The functions find their tables in this schema, never in a session's temporary ones (which
-- `search_path` would otherwise search first).
DO $$
DECLARE f TEXT;
BEGIN
    FOREACH f IN ARRAY ARRAY['owner_not_member_judge(BIGINT)', 'owner_not_member_changed()',
                             'owner_not_member_truncated()'] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', f, current_schema());
    END LOOP;
END $$;

INSERT INTO owner_not_member (client_id)
    SELECT c.id FROM clients c
    WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.client_id = c.id AND m.user_id = c.owner_user_id);

CREATE TRIGGER owner_not_member_clients AFTER INSERT OR DELETE OR UPDATE OF id, owner_user_id ON clients
    FOR EACH ROW EXECUTE FUNCTION owner_not_member_changed('id');
CREATE TRIGGER owner_not_member_memberships AFTER INSERT OR DELETE OR UPDATE OF client_id, user_id ON memberships
    FOR EACH ROW EXECUTE FUNCTION owner_not_member_changed('client_id');
CREATE TRIGGER owner_not_member_clients_truncated AFTER TRUNCATE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION owner_not_member_truncated();
CREATE TRIGGER owner_not_member_memberships_truncated AFTER TRUNCATE ON memberships
    FOR EACH STATEMENT EXECUTE FUNCTION owner_not_member_truncated();
