-- The relay's own database (relay.db in the relay data dir): teams, their
-- tokens, the per-team event log and the per-client cursors.

CREATE TABLE teams (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,            -- unix ms
    -- The last seq handed out. Kept here, not derived from MAX(seq), so a
    -- seq is never reused after retention empties the log.
    last_seq    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,            -- shown by `tokens list`, used by `tokens revoke`
    team_id     TEXT NOT NULL REFERENCES teams(id),
    kind        TEXT NOT NULL CHECK (kind IN ('hook', 'api')),
    -- sha256 of the token: tokens are 32 random bytes, so a fast hash is
    -- enough; the value itself is never stored.
    hash        BLOB NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,               -- first characters, to recognise a token
    scopes      TEXT NOT NULL,               -- JSON array of scope strings
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE events (
    team_id     TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    ce_source   TEXT NOT NULL,
    ce_id       TEXT NOT NULL,
    source_name TEXT NOT NULL,
    ce_type     TEXT NOT NULL,
    received_at INTEGER NOT NULL,            -- unix ms
    event       TEXT NOT NULL,               -- the CloudEvent JSON, kiteseq included
    PRIMARY KEY (team_id, seq)
) WITHOUT ROWID;

-- Dedup: a provider retry (same delivery id) is the same (source, id).
CREATE UNIQUE INDEX events_dedup ON events (team_id, ce_source, ce_id);
CREATE INDEX events_received ON events (received_at);

CREATE TABLE cursors (
    team_id     TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    acked_seq   INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (team_id, client_id)
) WITHOUT ROWID;
