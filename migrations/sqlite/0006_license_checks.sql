-- The last license verification of each kind of process (web, cron, cli) on each host, with the
-- facts it sent: a cron or CLI run whose facts differ from the web server's (another install
-- directory, another configuration) is the troubleshooting row "license key is invalid from a
-- non-web context", and the doctor names the difference from these rows.
CREATE TABLE license_checks (
    context TEXT NOT NULL,
    host TEXT NOT NULL,
    domain TEXT,
    ip TEXT,
    directory TEXT NOT NULL,
    config_fingerprint TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    applied INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (context, host)
);
