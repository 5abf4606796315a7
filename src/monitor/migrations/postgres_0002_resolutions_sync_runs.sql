-- Resolutions and sync runs, PostgreSQL dialect. Added beside the message tables: nothing of
-- migration 1 changes.

-- A message marked resolved by hand. It holds while the message's repeated_failures is still the
-- count it had when resolved: a reprocess raises that count, which lifts the resolution.
CREATE TABLE IF NOT EXISTS monitor_resolutions (
    message_uuid      TEXT    PRIMARY KEY REFERENCES monitor_messages (uuid) ON DELETE CASCADE,
    resolved_by       TEXT    NOT NULL,
    resolved_at       BIGINT  NOT NULL,
    note              TEXT,
    repeated_failures BIGINT  NOT NULL
);

-- One row per delivery run, reprocess, redrive or replay (monitor::SyncRun).
CREATE TABLE IF NOT EXISTS monitor_sync_runs (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        TEXT    NOT NULL,
    started_by  TEXT    NOT NULL,
    actor       TEXT,
    scope       TEXT    NOT NULL,
    started_at  BIGINT  NOT NULL,
    finished_at BIGINT,
    total       BIGINT  NOT NULL DEFAULT 0,
    succeeded   BIGINT  NOT NULL DEFAULT 0,
    failed      BIGINT  NOT NULL DEFAULT 0,
    skipped     BIGINT  NOT NULL DEFAULT 0,
    status      TEXT    NOT NULL,
    detail      TEXT
);
CREATE INDEX IF NOT EXISTS monitor_sync_runs_by_start ON monitor_sync_runs (started_at, id);
