-- `accounts.integrity` reports the clients whose owner is not one of their members. Finding
-- them meant reading every client (300 ms at a million); this table holds them instead, kept
-- by triggers in the same transaction as each change to a client's owner or to a membership,
-- whoever makes it. Each trigger re-judges the clients a change touched: forgets them, then
-- lists those whose owner is not a member. (The deferred foreign key from clients to
-- memberships already refuses such a commit; this catches what bypassed it.)
CREATE TABLE owner_not_member (client_id BIGINT PRIMARY KEY);

INSERT INTO owner_not_member (client_id)
    SELECT c.id FROM clients c
    WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.client_id = c.id AND m.user_id = c.owner_user_id);

CREATE FUNCTION owner_not_member_judge(touched BIGINT) RETURNS void LANGUAGE sql
SET search_path FROM CURRENT AS $$
    DELETE FROM owner_not_member WHERE client_id = touched;
    INSERT INTO owner_not_member (client_id)
        SELECT c.id FROM clients c
        WHERE c.id = touched
            AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.client_id = c.id AND m.user_id = c.owner_user_id)
        ON CONFLICT DO NOTHING;
$$;

CREATE FUNCTION owner_not_member_client_changed() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM owner_not_member_judge(OLD.id); END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN PERFORM owner_not_member_judge(NEW.id); END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION owner_not_member_membership_changed() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM owner_not_member_judge(OLD.client_id); END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN PERFORM owner_not_member_judge(NEW.client_id); END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER owner_not_member_clients AFTER INSERT OR DELETE OR UPDATE OF id, owner_user_id ON clients
    FOR EACH ROW EXECUTE FUNCTION owner_not_member_client_changed();
CREATE TRIGGER owner_not_member_memberships AFTER INSERT OR DELETE OR UPDATE OF client_id, user_id ON memberships
    FOR EACH ROW EXECUTE FUNCTION owner_not_member_membership_changed();
