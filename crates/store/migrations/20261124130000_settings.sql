-- Small key/value settings owned by the daemon (notification settings, the
-- notifier's watermark, …). Values are JSON text.
CREATE TABLE settings (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL CHECK (json_valid(value)),
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
