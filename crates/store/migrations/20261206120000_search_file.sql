-- The search index moves out of the history into a file of its own beside
-- it (`history.search.db`, see `kitedesk_store::search_path`), written by a
-- connection of its own. SQLite takes one writer per file: with the index
-- here, every indexing step held up the inserts queued behind it (under a
-- webhook burst the daemon sat partly idle while its one writer indexed).
-- The new file starts empty and is filled from the events table (the
-- daemon's indexer catches up in the background); deletes reach it from
-- the store's retention instead of a trigger (a trigger cannot reach
-- another file).
DROP TRIGGER IF EXISTS events_fts_delete;
DROP TABLE IF EXISTS events_fts;
DROP TABLE IF EXISTS fts_state;
