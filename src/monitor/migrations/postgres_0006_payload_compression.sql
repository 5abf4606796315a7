-- Payloads compressed with lz4 rather than pglz, where the server has it (PostgreSQL 14 or
-- later, built with lz4): pglz was about a tenth of the server's time per message under load
-- (BENCHMARKS.md, "The monitor and De/Para stores on PostgreSQL"). Values already stored keep the
-- method they were written with. Run through EXECUTE so that a server without lz4, or one that
-- does not know the clause, keeps pglz instead of failing the migration.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE monitor_payloads ALTER COLUMN raw_payload SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE monitor_payloads ALTER COLUMN canonical_json SET COMPRESSION lz4';
EXCEPTION
    WHEN feature_not_supported OR syntax_error OR undefined_object THEN
        RAISE NOTICE 'lz4 is not available on this server: payloads stay compressed with pglz';
END
$$;
