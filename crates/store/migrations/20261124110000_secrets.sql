-- Secret *metadata*. Values live in the OS keychain (service "kitedesk",
-- account = name; a rotated-out value under "<name>#previous" while its grace
-- window lasts) and never in this file.
CREATE TABLE secrets (
    name                 TEXT    PRIMARY KEY,         -- e.g. 'webhook/github'
    kind                 TEXT    NOT NULL CHECK (kind IN ('webhook', 'relay_token', 'api_token')),
    source               TEXT,                        -- the source a webhook secret signs
    created_ms           INTEGER NOT NULL,
    rotated_ms           INTEGER,
    last_used_ms         INTEGER,
    fingerprint          TEXT    NOT NULL,            -- first 8 hex of sha256(value)
    previous_fingerprint TEXT,
    previous_valid_until_ms INTEGER                   -- end of the rotation grace window
) STRICT;
