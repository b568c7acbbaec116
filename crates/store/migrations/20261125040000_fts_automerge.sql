-- Merge the search index's segments 16 at a time instead of FTS5's default
-- 4. Each merge rewrites the segments it joins, so a wider merge rewrites
-- every indexed token fewer times over its life: under a webhook burst
-- (bench/ingest-cpu.sh, 1.2 KB pushes) the database thread's CPU per
-- webhook fell from about 50 to 44.5 µs, most of it FTS5 merging. A search
-- reads more segments per level (at most 15 instead of 3), which the
-- paging queries absorb (bench/query.sh).
INSERT INTO events_fts (events_fts, rank) VALUES ('automerge', 16);
