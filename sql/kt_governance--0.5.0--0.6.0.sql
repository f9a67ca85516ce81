-- kt_governance 0.5.0 -> 0.6.0: rollup deltas. The row trigger sums inserted events per
-- transaction (with exact latency histograms) into kt_rollup_deltas / kt_latency_deltas; the
-- refresh merges an insert-only hour's deltas instead of reading its rows. Rollup rows written
-- before 0.6.0 have no histogram: their hours are recomputed from raw rows when they change.
-- Frozen once released: later changes go into a new upgrade script.
\echo Use "ALTER EXTENSION kt_governance UPDATE TO '0.6.0'" to load this file. \quit

-- Rust functions (src/deltas.rs, src/sketch.rs)
-- kt_governance::deltas::kt_settle_pending_deltas
CREATE  FUNCTION "kt_settle_pending_deltas"() RETURNS bigint /* i64 */
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'kt_settle_pending_deltas_wrapper';
-- kt_governance::sketch::kt_latency_rollup
CREATE  FUNCTION "kt_latency_rollup"(
	"latencies" INT[] /* Vec < Option < i32 > > */
) RETURNS TABLE (
	"p50" double precision,  /* Option < f64 > */
	"p99" double precision,  /* Option < f64 > */
	"sketch" bytea,  /* :: std :: option :: Option < Vec < u8 > > */
	"histogram" bytea  /* :: std :: option :: Option < Vec < u8 > > */
)
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'kt_latency_rollup_wrapper';
-- kt_governance::sketch::kt_histogram_rollup
CREATE  FUNCTION "kt_histogram_rollup"(
	"a" bytea, /* Option < & [u8] > */
	"b" bytea /* Option < & [u8] > */
) RETURNS TABLE (
	"p50" double precision,  /* Option < f64 > */
	"p99" double precision,  /* Option < f64 > */
	"sketch" bytea,  /* :: std :: option :: Option < Vec < u8 > > */
	"histogram" bytea  /* :: std :: option :: Option < Vec < u8 > > */
)
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'kt_histogram_rollup_wrapper';
-- kt_governance::sketch::kt_histogram_merge
CREATE  FUNCTION "kt_histogram_merge"(
	"a" bytea, /* Option < & [u8] > */
	"b" bytea /* Option < & [u8] > */
) RETURNS bytea /* :: std :: option :: Option < Vec < u8 > > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'kt_histogram_merge_wrapper';
-- kt_governance::sketch::kt_histogram_quantile
CREATE  FUNCTION "kt_histogram_quantile"(
	"histogram" bytea, /* & [u8] */
	"q" double precision /* f64 */
) RETURNS double precision /* Option < f64 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'kt_histogram_quantile_wrapper';

ALTER TABLE kt_dirty_hours ADD COLUMN recompute boolean NOT NULL DEFAULT true;
ALTER TABLE kt_rollup_metrics_hourly ADD COLUMN latency_histogram bytea;
COMMENT ON COLUMN kt_dirty_hours.recompute IS 'True when the hour must be recomputed from raw rows (an UPDATE or DELETE, or inserts whose deltas were not kept); false when its changes are inserts summed in kt_rollup_deltas, which the refresh merges without reading the rows.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.latency_histogram IS 'Exact latency histogram (count of every distinct latency_ms): merging a batch''s histogram keeps p50/p99 exact; kt_histogram_quantile(kt_histogram_merge_agg(latency_histogram), q) is the exact PERCENTILE_CONT over many hours. NULL for rows written before 0.6.0 (their hours are recomputed from raw rows when they next change).';
COMMENT ON FUNCTION kt_mark_dirty_hours() IS 'Row trigger: notes the UTC hour of every inserted, updated or deleted event in backend memory (written by kt_flush_dirty_hours at statement end, or just before commit), sums inserted events into the transaction''s rollup deltas (appended to kt_rollup_deltas just before commit), and counts the event in kt_row_counts.';

-- Inserted events summed per writing transaction by the row trigger (src/deltas.rs) and
-- appended at its commit: the refresh merges an insert-only hour's deltas into the rollups
-- instead of reading the hour's rows. No key: concurrent writers append without waiting.
-- Not dumped: a restore's COPY of the events writes them again.
CREATE TABLE kt_rollup_deltas (
    bucket              timestamptz NOT NULL,
    gateway_id          text        NOT NULL,
    model               text        NOT NULL,
    team_id             text,
    decision            text        NOT NULL,
    event_count         bigint      NOT NULL,
    total_cost          numeric,
    total_input_tokens  bigint      NOT NULL,
    total_output_tokens bigint      NOT NULL,
    latency_sum         bigint,
    latency_count       bigint      NOT NULL
);
CREATE INDEX kt_rollup_deltas_bucket_idx ON kt_rollup_deltas (bucket);
COMMENT ON TABLE kt_rollup_deltas IS 'Events inserted since the last kt_refresh_metrics(), summed per writing transaction at the finest grain the rollups need (UTC hour, gateway_id, model, team_id, decision); kt_refresh_metrics() merges and deletes them. Hours with kt_dirty_hours.recompute are recomputed from raw rows instead and their deltas discarded.';
COMMENT ON COLUMN kt_rollup_deltas.bucket IS 'Start of the UTC hour.';
COMMENT ON COLUMN kt_rollup_deltas.gateway_id IS 'Gateway.';
COMMENT ON COLUMN kt_rollup_deltas.model IS 'Model.';
COMMENT ON COLUMN kt_rollup_deltas.team_id IS 'Team (NULL kept as NULL).';
COMMENT ON COLUMN kt_rollup_deltas.decision IS 'Decision.';
COMMENT ON COLUMN kt_rollup_deltas.event_count IS 'Events inserted.';
COMMENT ON COLUMN kt_rollup_deltas.total_cost IS 'SUM(cost_usd); NULL when every cost was NULL.';
COMMENT ON COLUMN kt_rollup_deltas.total_input_tokens IS 'SUM(input_tokens).';
COMMENT ON COLUMN kt_rollup_deltas.total_output_tokens IS 'SUM(output_tokens).';
COMMENT ON COLUMN kt_rollup_deltas.latency_sum IS 'SUM(latency_ms); NULL when no latency was known.';
COMMENT ON COLUMN kt_rollup_deltas.latency_count IS 'COUNT(latency_ms).';

CREATE TABLE kt_latency_deltas (
    bucket            timestamptz NOT NULL,
    gateway_id        text        NOT NULL,
    model             text        NOT NULL,
    latency_histogram bytea       NOT NULL
);
CREATE INDEX kt_latency_deltas_bucket_idx ON kt_latency_deltas (bucket);
COMMENT ON TABLE kt_latency_deltas IS 'Exact latency histograms of the events in kt_rollup_deltas, per writing transaction and (UTC hour, gateway_id, model); merged into kt_rollup_metrics_hourly.latency_histogram by kt_refresh_metrics().';
COMMENT ON COLUMN kt_latency_deltas.bucket IS 'Start of the UTC hour.';
COMMENT ON COLUMN kt_latency_deltas.gateway_id IS 'Gateway.';
COMMENT ON COLUMN kt_latency_deltas.model IS 'Model.';
COMMENT ON COLUMN kt_latency_deltas.latency_histogram IS 'Exact histogram of the inserted events'' latency_ms (kt_histogram_*).';


-- Rollup rows written by anything but the refresh (which runs with track_changes off), such as
-- a pg_restore of the rollups next to the events its COPY re-sums into kt_rollup_deltas: the
-- hours are recomputed from raw rows, so no delta is ever added on top of rows that hold it.
CREATE FUNCTION kt_recompute_written_hours()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
BEGIN
    INSERT INTO kt_dirty_hours (bucket, recompute) SELECT DISTINCT bucket, true FROM written_rows;
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION kt_recompute_written_hours() IS 'Statement trigger on the hourly rollups: rows written there from outside kt_refresh_metrics() (a restore, a manual fix) mark their hours for a recompute from raw rows.';
CREATE TRIGGER kt_recompute_written_hours AFTER INSERT ON kt_rollup_metrics_hourly
    REFERENCING NEW TABLE AS written_rows FOR EACH STATEMENT
    WHEN (current_setting('kt_governance.track_changes', true) IS DISTINCT FROM 'off')
    EXECUTE FUNCTION kt_recompute_written_hours();
CREATE TRIGGER kt_recompute_written_hours AFTER INSERT ON kt_rollup_decisions_hourly
    REFERENCING NEW TABLE AS written_rows FOR EACH STATEMENT
    WHEN (current_setting('kt_governance.track_changes', true) IS DISTINCT FROM 'off')
    EXECUTE FUNCTION kt_recompute_written_hours();
CREATE TRIGGER kt_recompute_written_hours AFTER INSERT ON kt_rollup_spend_hourly
    REFERENCING NEW TABLE AS written_rows FOR EACH STATEMENT
    WHEN (current_setting('kt_governance.track_changes', true) IS DISTINCT FROM 'off')
    EXECUTE FUNCTION kt_recompute_written_hours();

CREATE AGGREGATE kt_histogram_merge_agg(bytea) (SFUNC = kt_histogram_merge, STYPE = bytea);
COMMENT ON AGGREGATE kt_histogram_merge_agg(bytea) IS 'Adds exact latency histograms (e.g. kt_rollup_metrics_hourly.latency_histogram over a day) into one; read it with kt_histogram_quantile().';
COMMENT ON FUNCTION kt_histogram_merge(bytea, bytea) IS 'Adds two exact latency histograms (transition function of kt_histogram_merge_agg).';
COMMENT ON FUNCTION kt_histogram_quantile(bytea, double precision) IS 'Exact PERCENTILE_CONT(q), q in [0, 1], of the latencies an exact histogram counts; NULL for an empty histogram.';
COMMENT ON FUNCTION kt_latency_rollup(integer[]) IS 'Exact p50 and p99 (PERCENTILE_CONT, same float8 results), the sketch and the exact histogram of an array of latencies (NULLs ignored; all NULL for no latency): what the refresh stores per (hour, gateway, model) it recomputes.';
COMMENT ON FUNCTION kt_histogram_rollup(bytea, bytea) IS 'The same from the sum of two exact histograms (either may be NULL): what the refresh stores when it merges a batch into an hour.';
COMMENT ON FUNCTION kt_settle_pending_deltas() IS 'Internal: gives up the current transaction''s not yet written rollup deltas and marks their hours for a recompute now (kt_refresh_metrics() calls it first); returns the hours marked.';


-- The given hours of every rollup recomputed from raw rows. Their deltas are deleted in the
-- same statement that reads the rows: both come from one snapshot, so a writer's rows and its
-- deltas are either both taken or both left for the next refresh.
CREATE FUNCTION kt_recompute_hours(hours timestamptz[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
SET jit = off
SET enable_sort = off
SET kt_governance.track_changes = off
AS $fn$
DECLARE
    written bigint;
BEGIN
    DELETE FROM kt_rollup_metrics_hourly WHERE bucket = ANY (hours);
    DELETE FROM kt_rollup_decisions_hourly WHERE bucket = ANY (hours);
    DELETE FROM kt_rollup_spend_hourly WHERE bucket = ANY (hours);

    -- One read of the hours' rows, aggregated by hashing (no sort of every row): sums at the
    -- finest grain the rollups need, which the three rollups are summed from, and each
    -- (hour, gateway, model)'s latencies, whose exact percentiles, sketch and histogram come
    -- from kt_latency_rollup. Group keys compare in "C": equality is byte equality in every
    -- deterministic collation, so the groups are the same and hashing them is cheaper.
    WITH dropped_deltas AS (
        DELETE FROM kt_rollup_deltas WHERE bucket = ANY (hours)
    ), dropped_histograms AS (
        DELETE FROM kt_latency_deltas WHERE bucket = ANY (hours)
    ), raw AS MATERIALIZED (
        SELECT h AS bucket, e.gateway_id COLLATE "C" AS gateway_id, e.model COLLATE "C" AS model,
               e.team_id COLLATE "C" AS team_id, e.decision COLLATE "C" AS decision, e.cost_usd,
               e.input_tokens, e.output_tokens, e.latency_ms
        FROM unnest(hours) h
        JOIN ai_decision_events e ON e."timestamp" >= h AND e."timestamp" < h + interval '1 hour'
    ), fine AS MATERIALIZED (
        SELECT r.bucket, r.gateway_id, r.model, r.team_id, r.decision, count(*) AS n, sum(r.cost_usd) AS cost,
               sum(r.input_tokens) AS tin, sum(r.output_tokens) AS tout,
               sum(r.latency_ms) AS lat_sum, count(r.latency_ms) AS lat_n
        FROM raw r GROUP BY 1, 2, 3, 4, 5
    ), latencies AS (
        SELECT r.bucket, r.gateway_id, r.model, array_agg(r.latency_ms) AS lats
        FROM raw r GROUP BY 1, 2, 3
    ), by_model AS (
        -- (the same sums as in kt_merge_deltas)
        SELECT f.bucket, f.gateway_id, f.model, sum(f.n)::bigint AS n,
               coalesce(sum(f.n) FILTER (WHERE f.decision = 'allowed'), 0)::bigint AS allowed,
               coalesce(sum(f.n) FILTER (WHERE f.decision = 'blocked'), 0)::bigint AS blocked,
               coalesce(sum(f.n) FILTER (WHERE f.decision = 'escalated'), 0)::bigint AS escalated,
               coalesce(sum(f.n) FILTER (WHERE f.decision = 'redacted'), 0)::bigint AS redacted,
               sum(f.cost) AS cost, sum(f.tin)::bigint AS tin, sum(f.tout)::bigint AS tout,
               sum(f.lat_sum)::bigint AS lat_sum, sum(f.lat_n)::bigint AS lat_n
        FROM fine f GROUP BY 1, 2, 3
    ), metrics AS (
        INSERT INTO kt_rollup_metrics_hourly
        SELECT m.bucket, m.gateway_id, m.model, m.n, m.allowed, m.blocked, m.escalated, m.redacted,
               m.cost, m.tin, m.tout, m.lat_sum, m.lat_n, s.p50, s.p99, s.sketch, s.histogram
        FROM by_model m
        JOIN latencies l USING (bucket, gateway_id, model)
        LEFT JOIN LATERAL kt_latency_rollup(l.lats) s ON true
        RETURNING 1
    ), decisions AS (
        INSERT INTO kt_rollup_decisions_hourly
        SELECT f.bucket, f.decision, sum(f.n)::bigint, sum(f.cost), sum(f.tin + f.tout)::bigint,
               sum(f.lat_sum)::bigint, sum(f.lat_n)::bigint
        FROM fine f GROUP BY 1, 2
    ), spend AS (
        INSERT INTO kt_rollup_spend_hourly
        SELECT f.bucket, f.team_id, f.model, f.decision, sum(f.n)::bigint, sum(f.tin)::bigint,
               sum(f.tout)::bigint, sum(f.cost)
        FROM fine f GROUP BY 1, 2, 3, 4
    )
    SELECT count(*) INTO written FROM metrics;

    PERFORM kt_rebuild_spend_days(hours);
    RETURN written;
END
$fn$;
COMMENT ON FUNCTION kt_recompute_hours(timestamptz[]) IS 'Internal (kt_refresh_metrics): recomputes the given UTC hours of every rollup from raw rows and discards their deltas; returns the kt_rollup_metrics_hourly rows written.';
REVOKE ALL ON FUNCTION kt_recompute_hours(timestamptz[]) FROM PUBLIC;

-- NULL-aware addition of two sums, as SUM() over both: NULL only when both are NULL.
CREATE FUNCTION kt_add_sums(a numeric, b numeric)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
    SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE a + b END
$fn$;
COMMENT ON FUNCTION kt_add_sums(numeric, numeric) IS 'Internal: a + b where NULL means "no value summed yet" (the result is NULL only when both are).';

-- The deltas of the given insert-only hours added into every rollup, and deleted, in one
-- statement (one snapshot: a delta is merged exactly once).
CREATE FUNCTION kt_merge_deltas(hours timestamptz[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
SET jit = off
SET kt_governance.track_changes = off
AS $fn$
DECLARE
    written bigint;
BEGIN
    WITH taken AS (
        DELETE FROM kt_rollup_deltas WHERE bucket = ANY (hours) RETURNING *
    ), fine AS MATERIALIZED (
        SELECT t.bucket, t.gateway_id COLLATE "C" AS gateway_id, t.model COLLATE "C" AS model,
               t.team_id COLLATE "C" AS team_id, t.decision COLLATE "C" AS decision,
               sum(t.event_count) AS n, sum(t.total_cost) AS cost, sum(t.total_input_tokens) AS tin,
               sum(t.total_output_tokens) AS tout, sum(t.latency_sum) AS lat_sum, sum(t.latency_count) AS lat_n
        FROM taken t GROUP BY 1, 2, 3, 4, 5
    ), taken_histograms AS (
        DELETE FROM kt_latency_deltas WHERE bucket = ANY (hours) RETURNING *
    ), latencies AS (
        SELECT t.bucket, t.gateway_id COLLATE "C" AS gateway_id, t.model COLLATE "C" AS model,
               kt_histogram_merge_agg(t.latency_histogram) AS histogram
        FROM taken_histograms t GROUP BY 1, 2, 3
    ), by_model AS (
        -- (the same sums as in kt_recompute_hours)
        SELECT f.bucket, f.gateway_id, f.model, sum(f.n)::bigint AS n,
               coalesce(sum(f.n) FILTER (WHERE f.decision = 'allowed'), 0)::bigint AS allowed,
               coalesce(sum(f.n) FILTER (WHERE f.decision = 'blocked'), 0)::bigint AS blocked,
               coalesce(sum(f.n) FILTER (WHERE f.decision = 'escalated'), 0)::bigint AS escalated,
               coalesce(sum(f.n) FILTER (WHERE f.decision = 'redacted'), 0)::bigint AS redacted,
               sum(f.cost) AS cost, sum(f.tin)::bigint AS tin, sum(f.tout)::bigint AS tout,
               sum(f.lat_sum)::bigint AS lat_sum, sum(f.lat_n)::bigint AS lat_n
        FROM fine f GROUP BY 1, 2, 3
    ), metrics AS (
        INSERT INTO kt_rollup_metrics_hourly AS r
        SELECT m.bucket, m.gateway_id, m.model, m.n, m.allowed, m.blocked, m.escalated, m.redacted,
               m.cost, m.tin, m.tout, m.lat_sum, m.lat_n, s.p50, s.p99, s.sketch, s.histogram
        FROM by_model m
        LEFT JOIN latencies l USING (bucket, gateway_id, model)
        LEFT JOIN LATERAL kt_histogram_rollup(l.histogram, NULL) s ON true
        ON CONFLICT (bucket, gateway_id, model) DO UPDATE SET
            total_requests = r.total_requests + excluded.total_requests,
            allowed = r.allowed + excluded.allowed,
            blocked = r.blocked + excluded.blocked,
            escalated = r.escalated + excluded.escalated,
            redacted = r.redacted + excluded.redacted,
            total_cost = kt_add_sums(r.total_cost, excluded.total_cost),
            total_input_tokens = r.total_input_tokens + excluded.total_input_tokens,
            total_output_tokens = r.total_output_tokens + excluded.total_output_tokens,
            latency_sum = kt_add_sums(r.latency_sum, excluded.latency_sum)::bigint,
            latency_count = r.latency_count + excluded.latency_count,
            (p50_latency, p99_latency, latency_sketch, latency_histogram) =
                (SELECT x.p50, x.p99, x.sketch, x.histogram
                 FROM kt_histogram_rollup(r.latency_histogram, excluded.latency_histogram) x)
        RETURNING 1
    ), decisions AS (
        INSERT INTO kt_rollup_decisions_hourly AS r
        SELECT f.bucket, f.decision, sum(f.n)::bigint, sum(f.cost), sum(f.tin + f.tout)::bigint,
               sum(f.lat_sum)::bigint, sum(f.lat_n)::bigint
        FROM fine f GROUP BY 1, 2
        ON CONFLICT (bucket, decision) DO UPDATE SET
            event_count = r.event_count + excluded.event_count,
            total_cost = kt_add_sums(r.total_cost, excluded.total_cost),
            total_tokens = r.total_tokens + excluded.total_tokens,
            latency_sum = kt_add_sums(r.latency_sum, excluded.latency_sum)::bigint,
            latency_count = r.latency_count + excluded.latency_count
    ), spend AS (
        INSERT INTO kt_rollup_spend_hourly AS r
        SELECT f.bucket, f.team_id, f.model, f.decision, sum(f.n)::bigint, sum(f.tin)::bigint,
               sum(f.tout)::bigint, sum(f.cost)
        FROM fine f GROUP BY 1, 2, 3, 4
        ON CONFLICT ON CONSTRAINT kt_rollup_spend_hourly_key DO UPDATE SET
            request_count = r.request_count + excluded.request_count,
            total_input_tokens = r.total_input_tokens + excluded.total_input_tokens,
            total_output_tokens = r.total_output_tokens + excluded.total_output_tokens,
            total_cost = kt_add_sums(r.total_cost, excluded.total_cost)
    ), spend_days AS (
        INSERT INTO kt_rollup_spend_daily AS r
        SELECT date_trunc('day', f.bucket, 'UTC'), f.team_id, f.model, f.decision, sum(f.n)::bigint,
               sum(f.tin)::bigint, sum(f.tout)::bigint, sum(f.cost)
        FROM fine f GROUP BY 1, 2, 3, 4
        ON CONFLICT ON CONSTRAINT kt_rollup_spend_daily_key DO UPDATE SET
            request_count = r.request_count + excluded.request_count,
            total_input_tokens = r.total_input_tokens + excluded.total_input_tokens,
            total_output_tokens = r.total_output_tokens + excluded.total_output_tokens,
            total_cost = kt_add_sums(r.total_cost, excluded.total_cost)
    )
    SELECT count(*) INTO written FROM metrics;
    RETURN written;
END
$fn$;
COMMENT ON FUNCTION kt_merge_deltas(timestamptz[]) IS 'Internal (kt_refresh_metrics): adds the kt_rollup_deltas and kt_latency_deltas of the given insert-only UTC hours into every rollup (exact histograms keep p50/p99 exact) and deletes them; returns the kt_rollup_metrics_hourly rows written.';
REVOKE ALL ON FUNCTION kt_merge_deltas(timestamptz[]) FROM PUBLIC;


-- kt_refresh_metrics() also returns hours_merged
DROP FUNCTION kt_refresh_metrics(timestamptz);
CREATE FUNCTION kt_refresh_metrics(up_to timestamptz DEFAULT 'infinity')
RETURNS TABLE (hours_refreshed bigint, metric_rows bigint, oldest_hour timestamptz, newest_hour timestamptz,
              hours_merged bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
-- a refresh reads a few hours of rows: compiling its plans with JIT (which the row estimates
-- trigger at 100k+ rows) costs more than running them
SET jit = off
-- the planner overestimates the groups (hundreds per hour, not the tens of thousands it
-- guesses) and would sort every row to aggregate the latency arrays; hashing is 3x faster
SET enable_sort = off
-- the rollup rows written here are the refresh's own, not outside writes to recompute
-- (kt_recompute_written_hours)
SET kt_governance.track_changes = off
AS $fn$
DECLARE
    hours timestamptz[];
    raw_hours timestamptz[];
    merge_hours timestamptz[];
    recomputed bigint := 0;
    merged bigint := 0;
BEGIN
    IF up_to IS NULL THEN
        RAISE EXCEPTION 'up_to must not be NULL (the default, infinity, refreshes every dirty hour)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- one refresh at a time; a second caller waits, then finds little or nothing left to do
    PERFORM pg_advisory_xact_lock(hashtext('kt_governance.refresh_metrics'));
    -- this transaction's own inserts are summed in memory until its commit: recompute their
    -- hours instead
    PERFORM kt_settle_pending_deltas();
    -- Hours before frozen_before lost raw rows to retention: their marks and deltas are
    -- dropped, never applied. An hour is merged from its deltas when every change to it was a
    -- summed insert and its rollup rows carry exact histograms; otherwise recomputed.
    WITH taken AS (DELETE FROM kt_dirty_hours WHERE bucket < up_to RETURNING bucket, recompute),
    live AS (
        SELECT t.bucket, bool_or(t.recompute)
                   -- rows written before 0.6.0 have no exact histogram to merge into
                   OR EXISTS (SELECT FROM kt_rollup_metrics_hourly r WHERE r.bucket = t.bucket
                              AND r.latency_histogram IS NULL AND r.latency_count > 0) AS recompute
        FROM taken t WHERE t.bucket >= kt_frozen_before() GROUP BY t.bucket
    )
    SELECT array_agg(bucket ORDER BY bucket),
           coalesce(array_agg(bucket ORDER BY bucket) FILTER (WHERE recompute), '{}'),
           coalesce(array_agg(bucket ORDER BY bucket) FILTER (WHERE NOT recompute), '{}')
    INTO hours, raw_hours, merge_hours FROM live;
    DELETE FROM kt_rollup_deltas WHERE bucket < kt_frozen_before();
    DELETE FROM kt_latency_deltas WHERE bucket < kt_frozen_before();
    hours_refreshed := coalesce(cardinality(hours), 0);
    hours_merged := cardinality(merge_hours);
    oldest_hour := hours[1];
    newest_hour := hours[hours_refreshed];
    IF cardinality(raw_hours) > 0 THEN
        recomputed := kt_recompute_hours(raw_hours);
    END IF;
    IF cardinality(merge_hours) > 0 THEN
        merged := kt_merge_deltas(merge_hours);
    END IF;
    metric_rows := recomputed + merged;
    RETURN NEXT;
END
$fn$;

COMMENT ON FUNCTION kt_refresh_metrics(timestamptz) IS 'Brings every dirty hour (kt_dirty_hours) of every rollup up to date, exactly, in the caller''s transaction: hours changed only by summed inserts get their kt_rollup_deltas merged in; the others are recomputed from raw rows. A concurrent refresh waits for it. up_to: only hours starting before it (retention refreshes up to its cutoff). Returns how many hours were refreshed (hours_merged of them from deltas), the rollup rows written and the hours'' span. The worker runs it every kt_governance.refresh_interval.';
REVOKE ALL ON FUNCTION kt_refresh_metrics(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_refresh_metrics(timestamptz) TO kt_governance_admin;
-- the refresh job reports the merged hours
CREATE OR REPLACE FUNCTION kt_execute_job(job_name text, OUT message text, OUT rows_touched bigint, OUT again boolean,
                               OUT failed boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
DECLARE
    r record;
BEGIN
    again := false;
    failed := false;
    CASE job_name
    WHEN 'export' THEN
        SELECT * INTO r FROM kt_export_job();
        message := r.message; rows_touched := r.rows_touched; again := r.again; failed := r.failed;
    WHEN 'refresh_metrics' THEN
        SELECT * INTO r FROM kt_refresh_metrics();
        rows_touched := r.hours_refreshed;
        message := format('%s hours refreshed, %s of them merged from deltas', r.hours_refreshed, r.hours_merged);
    WHEN 'retention' THEN
        SELECT * INTO r FROM kt_retention_job();
        rows_touched := r.events_removed;
        message := r.message;
        again := r.again;
    WHEN 'maintenance' THEN
        SELECT * INTO r FROM kt_run_maintenance();
        rows_touched := r.rows_moved;
        message := format('%s partitions created, %s rows moved, %s rows left in default, %s row-count rows folded, %s removed partitions reclaimed',
                          r.partitions_created, r.rows_moved, r.rows_left_in_default, kt_compact_row_counts(),
                          (SELECT tables_dropped FROM kt_reclaim_space()));
    END CASE;
END
$fn$;
COMMENT ON FUNCTION kt_execute_job(text) IS 'Internal: the body of each job.';

-- kt_anomalies reads a partial edge hour as its clean rollup minus the rows outside the window
-- True when an hour's rollup rows equal its raw rows: no dirty mark, and not before
-- frozen_before (where raw rows may be gone).
CREATE FUNCTION kt_hour_is_clean(hour timestamptz, frozen timestamptz DEFAULT kt_frozen_before())
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $fn$
    SELECT hour >= frozen AND NOT EXISTS (SELECT FROM kt_dirty_hours d WHERE d.bucket = hour)
$fn$;
COMMENT ON FUNCTION kt_hour_is_clean(timestamptz, timestamptz) IS 'Internal: whether the rollups of a UTC hour equal its raw rows (no dirty mark, and at or after frozen, which defaults to kt_frozen_before()).';

CREATE OR REPLACE FUNCTION kt_anomalies(
    lookback interval DEFAULT '48 hours',
    sigma double precision DEFAULT 2,
    min_requests bigint DEFAULT 0,
    exclude_self boolean DEFAULT false,
    dimension text DEFAULT NULL,
    start_time timestamptz DEFAULT NULL,
    end_time timestamptz DEFAULT NULL)
RETURNS TABLE (hour timestamptz, series text, total bigint, blocked bigint, block_rate numeric,
               baseline_mean double precision, baseline_stddev double precision,
               z_score double precision, status text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
-- reports read rollup rows and a few raw hours; the planner's row estimates for the raw ranges
-- would trigger JIT compilation, which costs more than the query (measured: 40 ms of 46 ms)
SET jit = off
AS $fn$
DECLARE
    -- read once: a call in the dirty-hour checks would run per rollup row (not inlinable)
    frozen timestamptz := kt_frozen_before();
    w record := kt_report_window(lookback, start_time, end_time);
    whole record := kt_rollup_hours(w.window_start, w.window_end);
    -- the metrics rollup has gateway and model but not team; hours must be whole in this zone
    use_rollups boolean := coalesce(dimension, '') <> 'team_id'
        AND kt_zone_has_whole_hours(current_setting('TimeZone'), w.window_start, w.window_end);
    -- A partial edge hour is read either as its rows inside the window, or as the hour's rollup
    -- rows minus its rows outside the window, whichever reads fewer rows. For the usual window
    -- ending now, the last hour's rows outside it are in the future: none to read.
    head_flip boolean := use_rollups AND whole.first_hour < whole.end_hour AND w.window_start < whole.first_hour
        AND whole.first_hour - w.window_start > w.window_start - (whole.first_hour - interval '1 hour')
        AND kt_hour_is_clean(whole.first_hour - interval '1 hour', frozen);
    tail_flip boolean := use_rollups AND whole.first_hour < whole.end_hour AND whole.end_hour < w.window_end
        AND (w.window_end - whole.end_hour > whole.end_hour + interval '1 hour' - w.window_end OR w.window_end >= now())
        AND kt_hour_is_clean(whole.end_hour, frozen);
BEGIN
    IF dimension IS NOT NULL AND dimension NOT IN ('gateway_id', 'model', 'team_id') THEN
        RAISE EXCEPTION 'unknown dimension "%"', dimension
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use gateway_id, model, team_id or NULL.';
    END IF;
    IF sigma IS NULL OR sigma < 0 OR sigma IN ('NaN', 'Infinity') OR min_requests IS NULL OR min_requests < 0
       OR exclude_self IS NULL THEN
        RAISE EXCEPTION 'sigma must be finite and >= 0, min_requests >= 0 and exclude_self not NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH flipped AS (
        -- (edge hour, the part of it outside the window)
        SELECT f.hour, f.out_start, f.out_end
        FROM (VALUES (head_flip, whole.first_hour - interval '1 hour', whole.first_hour - interval '1 hour', w.window_start),
                     (tail_flip, whole.end_hour, w.window_end, whole.end_hour + interval '1 hour')) f(used, hour, out_start, out_end)
        WHERE f.used
    ), parts AS (
        SELECT r.bucket AS ts,
               CASE dimension WHEN 'gateway_id' THEN r.gateway_id WHEN 'model' THEN r.model END AS series,
               r.total_requests AS n, r.blocked AS b
        FROM kt_rollup_metrics_hourly r
        WHERE use_rollups AND r.bucket >= whole.first_hour AND r.bucket < whole.end_hour
          AND NOT EXISTS (SELECT FROM kt_dirty_hours d WHERE d.bucket = r.bucket
                          AND d.bucket >= frozen)
        UNION ALL
        -- flipped edge hours: the whole hour from the rollup (a separate branch, so each scan
        -- stays an index range scan)
        SELECT r.bucket,
               CASE dimension WHEN 'gateway_id' THEN r.gateway_id WHEN 'model' THEN r.model END,
               r.total_requests, r.blocked
        FROM flipped f
        JOIN kt_rollup_metrics_hourly r ON r.bucket = f.hour
        UNION ALL
        SELECT e."timestamp",
               CASE dimension WHEN 'gateway_id' THEN e.gateway_id
                              WHEN 'model' THEN e.model
                              WHEN 'team_id' THEN coalesce(e.team_id, 'unassigned') END,
               1::bigint, (e.decision = 'blocked')::int::bigint
        FROM kt_live_ranges(w.window_start, w.window_end, use_rollups) live
        CROSS JOIN LATERAL (SELECT * FROM ai_decision_events x
                            WHERE x."timestamp" >= live.range_start AND x."timestamp" < live.range_end) e
        -- the edge ranges of flipped hours are read the other way round below
        WHERE NOT (head_flip AND live.range_start = w.window_start)
          AND NOT (tail_flip AND live.range_end = w.window_end)
        UNION ALL
        SELECT e."timestamp",
               CASE dimension WHEN 'gateway_id' THEN e.gateway_id WHEN 'model' THEN e.model END,
               -1::bigint, -(e.decision = 'blocked')::int::bigint
        FROM flipped f
        CROSS JOIN LATERAL (SELECT * FROM ai_decision_events x
                            WHERE x."timestamp" >= f.out_start AND x."timestamp" < f.out_end) e
    ), hourly AS (
        SELECT date_trunc('hour', p.ts) AS hour, p.series, sum(p.n)::bigint AS total, sum(p.b)::bigint AS blocked
        FROM parts p
        GROUP BY 1, 2
        -- a series whose rows in a flipped hour all lie outside the window nets to nothing
        HAVING sum(p.n) > 0
    ), rated AS (
        SELECT h.*, h.blocked::float8 / nullif(h.total, 0) AS rate,
               h.total >= min_requests AS counted
        FROM hourly h
    ), judged AS (
        SELECT r.*,
               -- sums over the hours that count, per series; self-exclusion subtracts the hour
               count(*) FILTER (WHERE r.counted) OVER s AS n,
               avg(r.rate) FILTER (WHERE r.counted) OVER s AS mean_all,
               stddev(r.rate) FILTER (WHERE r.counted) OVER s AS stddev_all,
               sum(r.rate) FILTER (WHERE r.counted) OVER s AS s1,
               sum(r.rate * r.rate) FILTER (WHERE r.counted) OVER s AS s2
        FROM rated r
        -- summed in hour order: float sums depend on their order, and the plan's order varies
        WINDOW s AS (PARTITION BY r.series ORDER BY r.hour ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    ), baselined AS (
        SELECT j.*,
               CASE WHEN NOT exclude_self OR NOT j.counted THEN j.mean_all
                    WHEN j.n > 1 THEN (j.s1 - j.rate) / (j.n - 1) END AS mean_b,
               CASE WHEN NOT exclude_self OR NOT j.counted THEN j.stddev_all
                    WHEN j.n > 2 THEN sqrt(greatest(0,
                        ((j.s2 - j.rate * j.rate) - (j.s1 - j.rate) ^ 2 / (j.n - 1)) / (j.n - 2))) END AS stddev_b
        FROM judged j
    )
    SELECT b.hour, b.series, b.total, b.blocked, round(b.rate::numeric, 4), b.mean_b, b.stddev_b,
           CASE WHEN b.stddev_b > 0 THEN (b.rate - b.mean_b) / b.stddev_b END,
           CASE WHEN b.counted AND b.rate > b.mean_b + sigma * b.stddev_b THEN 'ANOMALY' ELSE 'normal' END
    FROM baselined b
    ORDER BY b.hour DESC, b.series;
END
$fn$;


UPDATE kt_jobs SET description = 'kt_refresh_metrics(): bring dirty rollup hours up to date' WHERE job_name = 'refresh_metrics';
GRANT SELECT ON kt_rollup_deltas, kt_latency_deltas TO kt_governance_reader;
GRANT INSERT ON kt_rollup_deltas, kt_latency_deltas TO kt_governance_writer;
