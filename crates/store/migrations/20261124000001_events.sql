-- The event history. One row per (ce_source, ce_id): redeliveries dedup.
CREATE TABLE events (
    -- AUTOINCREMENT: ids are never reused after deletes, so cursors, the live
    -- feed's Last-Event-ID and fts_state.indexed_upto stay meaningful.
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
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
-- table (no second copy of the text). Rows are indexed by the writer, in
-- the same transaction as their insert when it is idle and in larger
-- batches under load (each FTS5 transaction flushes a segment, so many tiny
-- transactions mean constant segment merging); `fts_state.indexed_upto` is
-- the highest event id in the index, committed with the index itself.
CREATE VIRTUAL TABLE events_fts USING fts5(
    summary, payload,
    content = 'events', content_rowid = 'id',
    tokenize = 'unicode61'
);

CREATE TABLE fts_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_upto INTEGER NOT NULL
);
INSERT INTO fts_state (id, indexed_upto) VALUES (1, 0);

-- Deleting an external-content row must remove exactly what was indexed;
-- rows not indexed yet have nothing to remove.
CREATE TRIGGER events_fts_delete AFTER DELETE ON events
WHEN old.id <= (SELECT indexed_upto FROM fts_state)
BEGIN
    INSERT INTO events_fts (events_fts, rowid, summary, payload)
    VALUES ('delete', old.id, old.summary, old.payload);
END;
