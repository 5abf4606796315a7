-- Monitor store, SQLite dialect. Times are milliseconds since the Unix epoch; situations are the
-- codes of monitor::Situation, stages the codes of monitor::Stage.
CREATE TABLE IF NOT EXISTS monitor_messages (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid               TEXT    NOT NULL UNIQUE,
    transaction_name   TEXT    NOT NULL,
    version            TEXT    NOT NULL,
    direction          TEXT    NOT NULL,
    source_application TEXT    NOT NULL,
    format             TEXT    NOT NULL,
    origin             TEXT    NOT NULL,
    business_key       TEXT,
    situation          TEXT    NOT NULL,
    stage              TEXT    NOT NULL,
    received_at        INTEGER NOT NULL,
    processed_at       INTEGER,
    attempts           INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    raw_payload        BLOB    NOT NULL,
    canonical_json     TEXT,
    answer             TEXT,
    repeated_failures  INTEGER NOT NULL DEFAULT 0,
    duplicates         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS monitor_messages_by_received ON monitor_messages (received_at, id);
CREATE INDEX IF NOT EXISTS monitor_messages_by_situation ON monitor_messages (situation, received_at);
CREATE INDEX IF NOT EXISTS monitor_messages_by_transaction ON monitor_messages (transaction_name, received_at);
CREATE INDEX IF NOT EXISTS monitor_messages_by_business_key ON monitor_messages (business_key);

CREATE TABLE IF NOT EXISTS monitor_deliveries (
    message_uuid    TEXT    NOT NULL REFERENCES monitor_messages (uuid) ON DELETE CASCADE,
    route           TEXT    NOT NULL,
    situation       TEXT    NOT NULL,
    stage           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at INTEGER,
    delivered_at    INTEGER,
    response        TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (message_uuid, route)
);
CREATE INDEX IF NOT EXISTS monitor_deliveries_by_due ON monitor_deliveries (next_attempt_at);
CREATE INDEX IF NOT EXISTS monitor_deliveries_by_route ON monitor_deliveries (route, message_uuid);

CREATE TABLE IF NOT EXISTS monitor_timeline (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_uuid TEXT    NOT NULL REFERENCES monitor_messages (uuid) ON DELETE CASCADE,
    route        TEXT,
    at           INTEGER NOT NULL,
    stage        TEXT    NOT NULL,
    situation    TEXT    NOT NULL,
    attempt      INTEGER,
    detail       TEXT
);
CREATE INDEX IF NOT EXISTS monitor_timeline_by_message ON monitor_timeline (message_uuid, id);

CREATE TABLE IF NOT EXISTS monitor_learned_depara (
    message_uuid   TEXT    NOT NULL REFERENCES monitor_messages (uuid) ON DELETE CASCADE,
    alias          TEXT    NOT NULL,
    field          TEXT    NOT NULL,
    external_value TEXT    NOT NULL,
    internal_value TEXT    NOT NULL,
    learned_at     INTEGER NOT NULL,
    PRIMARY KEY (message_uuid, alias, field, external_value)
);
