-- A page view reads the session, its user and the user's memberships in client order in one
-- query. With the memberships indexed by user alone, every page view sorted them in a
-- temporary B-tree; by user, then client, the index hands them over in order.
DROP INDEX memberships_user;
CREATE INDEX memberships_user ON memberships (user_id, client_id);
