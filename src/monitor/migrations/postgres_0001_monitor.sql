-- Monitor store, PostgreSQL dialect. Times are milliseconds since the Unix epoch; situations are the
-- codes of monitor::Situation, stages the codes of monitor::Stage.
CREATE TABLE IF NOT EXISTS monitor_messages (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    received_at        BIGINT  NOT NULL,
    processed_at       BIGINT,
    attempts           BIGINT  NOT NULL DEFAULT 0,
    last_error         TEXT,
    raw_payload        BYTEA   NOT NULL,
    canonical_json     TEXT,
    answer             TEXT,
    repeated_failures  BIGINT  NOT NULL DEFAULT 0,
    duplicates         BIGINT  NOT NULL DEFAULT 0
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
    attempts        BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at BIGINT,
    delivered_at    BIGINT,
    response        TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    PRIMARY KEY (message_uuid, route)
);
CREATE INDEX IF NOT EXISTS monitor_deliveries_by_due ON monitor_deliveries (next_attempt_at);
CREATE INDEX IF NOT EXISTS monitor_deliveries_by_route ON monitor_deliveries (route, message_uuid);

CREATE TABLE IF NOT EXISTS monitor_timeline (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_uuid TEXT    NOT NULL REFERENCES monitor_messages (uuid) ON DELETE CASCADE,
    route        TEXT,
    at           BIGINT  NOT NULL,
    stage        TEXT    NOT NULL,
    situation    TEXT    NOT NULL,
    attempt      BIGINT,
    detail       TEXT
);
CREATE INDEX IF NOT EXISTS monitor_timeline_by_message ON monitor_timeline (message_uuid, id);

CREATE TABLE IF NOT EXISTS monitor_learned_depara (
    message_uuid   TEXT    NOT NULL REFERENCES monitor_messages (uuid) ON DELETE CASCADE,
    alias          TEXT    NOT NULL,
    field          TEXT    NOT NULL,
    external_value TEXT    NOT NULL,
    internal_value TEXT    NOT NULL,
    learned_at     BIGINT  NOT NULL,
    PRIMARY KEY (message_uuid, alias, field, external_value)
);
