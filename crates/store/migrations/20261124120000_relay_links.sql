-- Relay links (the stream client inside the daemon): one row per configured
-- link. `client_id` is sent in the Kite `connect` frame so the relay resumes
-- from this client's acked cursor; `last_seq` is the last relay seq whose
-- event was committed to `events` (written after the commit, so it may lag
-- by the few events in flight; redeliveries dedup on (ce_source, ce_id)).
CREATE TABLE relay_links (
    name       TEXT    PRIMARY KEY,
    url        TEXT    NOT NULL,             -- without credentials or query
    team_id    TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    last_seq   INTEGER,
    updated_ms INTEGER NOT NULL
);
