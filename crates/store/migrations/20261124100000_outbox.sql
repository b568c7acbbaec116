-- The delivery outbox: one row per (event, destination), and every attempt.
--
-- At-least-once: a row is claimed ('delivering') before its attempt and
-- settled after it in one transaction. A row still 'delivering' at startup
-- was interrupted mid-attempt (crash, kill): the target may or may not have
-- seen it, so it goes back to 'pending' and is sent again. Targets dedup on
-- the x-kite-event-id header (the CloudEvent id), which is the same on
-- every attempt. A row is never sent again once an attempt got a 2xx.
CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Deleting an event (retention) deletes its deliveries.
    event_id         INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    ce_id            TEXT    NOT NULL,
    sink             TEXT    NOT NULL,            -- configured sink name, or 'forward'
    kind             TEXT    NOT NULL CHECK (kind IN ('http', 'exec', 'file', 'socket')),
    target           TEXT    NOT NULL,            -- URL, command or path; never a secret
    -- 'route' (from the manifest's routes) or 'forward' (an explicit forward).
    origin           TEXT    NOT NULL CHECK (origin IN ('route', 'forward')),
    -- Forward to a URL: {"url", "envelope", "resign_scheme"}; the re-signing
    -- secret itself is never stored.
    spec             TEXT,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'delivering', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- Attempts made before the current round: a retry of a dead letter
    -- starts the schedule again from the first delay.
    round_start      INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER,                     -- set while pending
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL
);

-- Routing is idempotent: an event reaches a configured sink at most once.
CREATE UNIQUE INDEX deliveries_routed ON deliveries (event_id, sink) WHERE origin = 'route';
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_ms);
CREATE INDEX deliveries_sink ON deliveries (sink, status, next_attempt_ms);
CREATE INDEX deliveries_event ON deliveries (event_id);

CREATE TABLE delivery_attempts (
    delivery_id    INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    n              INTEGER NOT NULL,              -- 1 for the first attempt
    started_ms     INTEGER NOT NULL,
    status_code    INTEGER,
    latency_ms     INTEGER NOT NULL,
    ok             INTEGER NOT NULL CHECK (ok IN (0, 1)),
    error_code     TEXT,
    error          TEXT,
    response_body  TEXT    NOT NULL DEFAULT '',   -- at most 4 KB
    stderr         TEXT,
    PRIMARY KEY (delivery_id, n)
);

-- How far routing has read the history: every event with id <= routed_upto
-- has its deliveries in the outbox. Advanced in the same transaction as the
-- rows it creates, so a crash loses no event and routes none twice. It
-- starts at the end of the existing history: configuring a sink does not
-- replay the past (use forward for that).
CREATE TABLE outbox_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    routed_upto INTEGER NOT NULL
);
INSERT INTO outbox_state (id, routed_upto) SELECT 1, coalesce(max(id), 0) FROM events;
