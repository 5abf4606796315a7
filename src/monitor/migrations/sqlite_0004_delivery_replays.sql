-- Replays of settled deliveries (a window of a topic sent again to a route): one row per replay,
-- with the state the delivery was in, so the delivery's new attempt cycle never hides the old one.
CREATE TABLE IF NOT EXISTS monitor_delivery_replays (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    message_uuid          TEXT    NOT NULL REFERENCES monitor_messages (uuid) ON DELETE CASCADE,
    route                 TEXT    NOT NULL,
    at                    INTEGER NOT NULL,
    previous_situation    TEXT    NOT NULL,
    previous_attempts     INTEGER NOT NULL,
    previous_delivered_at INTEGER,
    reason                TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS monitor_delivery_replays_by_delivery
    ON monitor_delivery_replays (message_uuid, route, id);
