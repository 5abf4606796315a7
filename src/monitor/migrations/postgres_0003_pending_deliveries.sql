-- A route worker's queue is its unsettled deliveries; settled ones pile up without bound, so
-- the queue query must not read them (waiting, running, failed, not delivered).
CREATE INDEX IF NOT EXISTS monitor_deliveries_pending ON monitor_deliveries (route, situation)
    WHERE situation IN ('0', '1', '3', '5');
