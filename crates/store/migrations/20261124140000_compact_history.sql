-- A smaller history (issue 6's budget: at most 1.5× the raw payload bytes
-- on disk) and a cheaper writer:
--
-- * New rows keep `events.payload` and `events.headers` as zstd frames
--   (BLOBs: SQLite columns hold any type, and TEXT affinity never converts a
--   BLOB). Rows written before this migration keep their TEXT. Readers tell them apart by the zstd
--   magic bytes 28 B5 2F FD, which no UTF-8 text can start with (B5 is a
--   continuation byte).
-- * The search index becomes contentless (it cannot read a compressed
--   column back): the writer hands it the text it already has in memory, and
--   `contentless_delete` lets a deleted event leave the index by its rowid.
--   The index is rebuilt from the events table after this migration
--   (indexed_upto = 0): the store indexes pending rows on open.
DROP TRIGGER events_fts_delete;
DROP TABLE events_fts;

CREATE VIRTUAL TABLE events_fts USING fts5(
    summary, payload,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61'
);

UPDATE fts_state SET indexed_upto = 0 WHERE id = 1;

CREATE TRIGGER events_fts_delete AFTER DELETE ON events
WHEN old.id <= (SELECT indexed_upto FROM fts_state)
BEGIN
    DELETE FROM events_fts WHERE rowid = old.id;
END;
