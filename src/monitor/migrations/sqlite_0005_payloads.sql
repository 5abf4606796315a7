-- A message's payloads apart from its state: the row of monitor_messages changes several times
-- in its first second (received, steps, plan, claim, outcome), and SQLite rewrites a whole row,
-- overflow pages included, on every update. Kept here, the raw payload and the canonical JSON
-- are written once.
CREATE TABLE IF NOT EXISTS monitor_payloads (
    message_uuid   TEXT PRIMARY KEY REFERENCES monitor_messages (uuid) ON DELETE CASCADE,
    raw_payload    BLOB NOT NULL,
    canonical_json TEXT
);
INSERT INTO monitor_payloads (message_uuid, raw_payload, canonical_json)
    SELECT uuid, raw_payload, canonical_json FROM monitor_messages;
ALTER TABLE monitor_messages DROP COLUMN raw_payload;
ALTER TABLE monitor_messages DROP COLUMN canonical_json;
