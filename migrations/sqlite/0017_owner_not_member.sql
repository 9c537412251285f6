-- `accounts.integrity` reports the clients whose owner is not one of their members. Finding
-- them meant reading every client (300 ms at a million); this table holds them instead, kept
-- by triggers in the same transaction as each change to a client's owner or to a membership —
-- whoever makes it, gatehouse or an operator's `sqlite3` with foreign keys off. Each trigger
-- re-judges the clients a change touched: forgets them, then lists those whose owner is not a
-- member.
CREATE TABLE owner_not_member (client_id INTEGER PRIMARY KEY);

INSERT INTO owner_not_member (client_id)
    SELECT c.id FROM clients c
    WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.client_id = c.id AND m.user_id = c.owner_user_id);

CREATE TRIGGER owner_not_member_client_added AFTER INSERT ON clients BEGIN
    -- `INSERT OR REPLACE` puts a client in place of one that may have been listed.
    DELETE FROM owner_not_member WHERE client_id = NEW.id;
    INSERT OR IGNORE INTO owner_not_member (client_id) SELECT NEW.id
    WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.client_id = NEW.id AND m.user_id = NEW.owner_user_id);
END;

CREATE TRIGGER owner_not_member_owner_changed AFTER UPDATE OF id, owner_user_id ON clients BEGIN
    DELETE FROM owner_not_member WHERE client_id IN (OLD.id, NEW.id);
    INSERT OR IGNORE INTO owner_not_member (client_id) SELECT NEW.id
    WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.client_id = NEW.id AND m.user_id = NEW.owner_user_id);
END;

CREATE TRIGGER owner_not_member_client_removed AFTER DELETE ON clients BEGIN
    DELETE FROM owner_not_member WHERE client_id = OLD.id;
END;

CREATE TRIGGER owner_not_member_membership_added AFTER INSERT ON memberships BEGIN
    DELETE FROM owner_not_member WHERE client_id = NEW.client_id
        AND EXISTS (SELECT 1 FROM clients c WHERE c.id = NEW.client_id AND c.owner_user_id = NEW.user_id);
END;

CREATE TRIGGER owner_not_member_membership_removed AFTER DELETE ON memberships BEGIN
    INSERT OR IGNORE INTO owner_not_member (client_id) SELECT c.id FROM clients c
    WHERE c.id = OLD.client_id AND c.owner_user_id = OLD.user_id
        AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.client_id = c.id AND m.user_id = c.owner_user_id);
END;

CREATE TRIGGER owner_not_member_membership_moved AFTER UPDATE OF client_id, user_id ON memberships BEGIN
    DELETE FROM owner_not_member WHERE client_id IN (OLD.client_id, NEW.client_id);
    INSERT OR IGNORE INTO owner_not_member (client_id) SELECT c.id FROM clients c
    WHERE c.id IN (OLD.client_id, NEW.client_id)
        AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.client_id = c.id AND m.user_id = c.owner_user_id);
END;
