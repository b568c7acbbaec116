-- Events list filters that combine a source with a minimum importance
-- (github + critical) walk one keyset per (source, importance level), newest
-- first, stopping after one page (crates/store/src/query.rs). Before this
-- index such a page either walked `events_source` and skipped every event of
-- that source below the level (most of them for critical), or sorted every
-- match. The rowid is the index's implicit last column, so each walk is in
-- id order.
CREATE INDEX events_source_importance ON events (source_name, importance);
