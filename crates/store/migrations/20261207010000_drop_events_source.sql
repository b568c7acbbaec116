-- Every event wrote one index entry fewer. A list of one source's events
-- now walks `events_source_importance` (source_name, importance, id) once
-- per importance level and merges the walks by id, as a list of several
-- sources with a minimum importance already did (crates/store/src/query.rs).
-- `events_source` (source_name, id) served only that walk, and every
-- commit wrote its last page: 1.2 of the 12.7 WAL frames a commit wrote
-- under a webhook burst (bench/RESULTS.md, Session 10).
DROP INDEX IF EXISTS events_source;
