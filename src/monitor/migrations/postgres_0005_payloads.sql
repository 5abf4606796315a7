-- A message's payloads apart from its state, written once while the state changes (see the
-- SQLite migration of the same number).
CREATE TABLE IF NOT EXISTS monitor_payloads (
    message_uuid   TEXT PRIMARY KEY REFERENCES monitor_messages (uuid) ON DELETE CASCADE,
    raw_payload    BYTEA NOT NULL,
    canonical_json TEXT
);
INSERT INTO monitor_payloads (message_uuid, raw_payload, canonical_json)
    SELECT uuid, raw_payload, canonical_json FROM monitor_messages;
ALTER TABLE monitor_messages DROP COLUMN raw_payload;
ALTER TABLE monitor_messages DROP COLUMN canonical_json;
