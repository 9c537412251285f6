-- The doctor's accounts checks answer from indexes instead of reading every client, user and
-- membership row, so `gatehouse doctor` stays fast however many accounts there are.
-- Clients by owner: the owner-is-a-member rule is read from this index alone.
CREATE INDEX clients_owner ON clients (owner_user_id);
-- Users without a password are few: an owner who cannot sign in is found without a scan.
CREATE INDEX users_without_password ON users (id) WHERE password_hash IS NULL;
-- Permission sets are few however many memberships there are.
CREATE INDEX memberships_permissions ON memberships (permissions);
