-- The event history. One row per (ce_source, ce_id): redeliveries dedup.
CREATE TABLE events (
    id                INTEGER PRIMARY KEY,          -- local, monotonic: the keyset cursor
    source_name       TEXT    NOT NULL,             -- configured source, e.g. 'github'
    ce_source         TEXT    NOT NULL,             -- CloudEvent source URI
    ce_id             TEXT    NOT NULL,             -- CloudEvent id (delivery id, evt_…, UUIDv7)
    ce_type           TEXT    NOT NULL,
    time_ms           INTEGER NOT NULL,             -- CloudEvent time
    received_ms       INTEGER NOT NULL,             -- when we stored it
    summary           TEXT    NOT NULL,
    importance        INTEGER NOT NULL CHECK (importance BETWEEN 1 AND 4),
    importance_reason TEXT    NOT NULL,
    verified          INTEGER NOT NULL CHECK (verified IN (0, 1)),
    verify_reason     TEXT    NOT NULL,
    relay_seq         INTEGER,                      -- kiteseq when the event came from a relay
    headers           TEXT    NOT NULL,             -- JSON [[name, value], …], credentials removed
    payload           TEXT    NOT NULL              -- the original payload, as received
);

CREATE UNIQUE INDEX events_dedup ON events (ce_source, ce_id);
CREATE INDEX events_source ON events (source_name, id);
CREATE INDEX events_importance ON events (importance, id);
CREATE INDEX events_received ON events (received_ms);

-- Full-text search over the summary and the payload, as an external-content
-- table (no second copy of the text) kept in sync by triggers.
CREATE VIRTUAL TABLE events_fts USING fts5(
    summary, payload,
    content = 'events', content_rowid = 'id',
    tokenize = 'unicode61'
);

CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN
    INSERT INTO events_fts (rowid, summary, payload) VALUES (new.id, new.summary, new.payload);
END;

CREATE TRIGGER events_fts_delete AFTER DELETE ON events BEGIN
    INSERT INTO events_fts (events_fts, rowid, summary, payload)
    VALUES ('delete', old.id, old.summary, old.payload);
END;
