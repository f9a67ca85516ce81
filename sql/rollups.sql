-- Hourly rollups kept exact incrementally.
--
-- Flow: every row change in ai_decision_events marks its UTC hour dirty (kt_mark_dirty_hours,
-- a Rust AFTER ROW trigger that gathers hours in memory and writes them once per transaction,
-- so multi-row COPY stays multi-row). The same trigger sums inserted events per transaction
-- into kt_rollup_deltas (src/deltas.rs). kt_refresh_metrics() merges the deltas of hours that
-- only had inserts and recomputes the other dirty hours from raw rows; readers combine
-- refreshed hours from the rollups with the dirty hours and the partial edge hours computed
-- live (kt_raw_ranges / kt_raw_events), so answers are exact without waiting.
--
-- Three narrow rollups rather than one keyed by every dimension (which would be nearly as
-- large as the raw data):
--   kt_rollup_metrics_hourly    (hour, gateway_id, model): governance_metrics_hourly, anomalies by gateway/model
--   kt_rollup_decisions_hourly  (hour, decision):          kt_governance_summary, anomalies
--   kt_rollup_spend_hourly      (hour, team_id, model, decision): kt_spend_by_team_model
--   kt_rollup_spend_daily       (UTC day, team_id, model, decision): the same summed per day, so
--                               a 30-day spend report reads ~30 rows per group instead of ~720

-- No unique key on purpose: concurrent writers of one hour each append a mark instead of
-- waiting on each other's uncommitted one. Readers use DISTINCT.
CREATE TABLE kt_governance_internal.kt_dirty_hours (
    bucket    timestamptz NOT NULL,
    marked_at timestamptz NOT NULL DEFAULT now(),
    recompute boolean     NOT NULL DEFAULT true
);
CREATE INDEX kt_dirty_hours_bucket_idx ON kt_dirty_hours (bucket);
COMMENT ON TABLE kt_dirty_hours IS 'UTC hours whose rollup rows are stale: rows of that hour were inserted, updated or deleted since the last kt_refresh_metrics() (one mark per writing transaction and hour). Readers compute these hours live.';
COMMENT ON COLUMN kt_dirty_hours.bucket IS 'Start of the UTC hour.';
COMMENT ON COLUMN kt_dirty_hours.marked_at IS 'When the hour was first marked (transaction start of the writer).';
COMMENT ON COLUMN kt_dirty_hours.recompute IS 'True when the hour must be recomputed from raw rows (an UPDATE or DELETE, or inserts whose deltas were not kept); false when its changes are inserts summed in kt_rollup_deltas, which the refresh merges without reading the rows.';

CREATE TABLE kt_governance_internal.kt_rollup_metrics_hourly (
    bucket              timestamptz NOT NULL,
    gateway_id          text        NOT NULL,
    model               text        NOT NULL,
    total_requests      bigint      NOT NULL,
    allowed             bigint      NOT NULL,
    blocked             bigint      NOT NULL,
    escalated           bigint      NOT NULL,
    redacted            bigint      NOT NULL,
    total_cost          numeric,
    total_input_tokens  bigint      NOT NULL,
    total_output_tokens bigint      NOT NULL,
    latency_sum         bigint,
    latency_count       bigint      NOT NULL,
    p50_latency         double precision,
    p99_latency         double precision,
    latency_sketch      bytea,
    latency_histogram   bytea,
    PRIMARY KEY (bucket, gateway_id, model)
);
-- What governance_metrics_hourly reads of a refreshed hour, in an index: a dashboard's range of
-- hours is an index-only scan instead of heap reads of rows that carry their sketch and
-- histogram (1.7-1.9 ms against 1.0 ms for the document's materialized view on a 24-hour
-- panel at 500k events; with it 1.0-1.3 ms). Index-only scans need the visibility map current:
-- refreshes rewrite the newest hours, so autovacuum visits the table after 2% of it changed.
CREATE INDEX kt_rollup_metrics_hourly_reads ON kt_governance_internal.kt_rollup_metrics_hourly (bucket)
    INCLUDE (gateway_id, model, total_requests, allowed, blocked, escalated, total_cost, p50_latency,
             p99_latency, total_input_tokens, total_output_tokens, redacted);
COMMENT ON INDEX kt_governance_internal.kt_rollup_metrics_hourly_reads IS 'The columns of governance_metrics_hourly a dashboard reads, by hour: index-only scans for ranges of refreshed hours.';
ALTER TABLE kt_governance_internal.kt_rollup_metrics_hourly
    SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02);
COMMENT ON TABLE kt_rollup_metrics_hourly IS 'Hourly rollup per (UTC hour, gateway_id, model): counts per decision, cost, tokens, latency sum/count, exact p50/p99 of the hour and a mergeable latency sketch (kt_sketch_*). Behind governance_metrics_hourly and kt_anomalies().';
COMMENT ON COLUMN kt_rollup_metrics_hourly.bucket IS 'Start of the UTC hour.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.gateway_id IS 'Gateway.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.model IS 'Model.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.total_requests IS 'Events.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.allowed IS 'Allowed events.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.blocked IS 'Blocked events.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.escalated IS 'Escalated events.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.redacted IS 'Redacted events.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.total_cost IS 'SUM(cost_usd); NULL when every cost was NULL.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.total_input_tokens IS 'SUM(input_tokens).';
COMMENT ON COLUMN kt_rollup_metrics_hourly.total_output_tokens IS 'SUM(output_tokens).';
COMMENT ON COLUMN kt_rollup_metrics_hourly.latency_sum IS 'SUM(latency_ms).';
COMMENT ON COLUMN kt_rollup_metrics_hourly.latency_count IS 'COUNT(latency_ms): non-null latencies.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.p50_latency IS 'PERCENTILE_CONT(0.5) of latency_ms in the hour, exact.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.p99_latency IS 'PERCENTILE_CONT(0.99) of latency_ms in the hour, exact.';
COMMENT ON COLUMN kt_rollup_metrics_hourly.latency_histogram IS 'Exact latency histogram (count of every distinct latency_ms): merging a batch''s histogram keeps p50/p99 exact; kt_histogram_quantile(kt_histogram_merge_agg(latency_histogram), q) is the exact PERCENTILE_CONT over many hours. NULL for rows written before 0.6.0 (their hours are recomputed from raw rows when they next change).';
COMMENT ON COLUMN kt_rollup_metrics_hourly.latency_sketch IS 'Mergeable latency sketch: kt_sketch_quantile(kt_sketch_merge_agg(latency_sketch), 0.99) gives p99 over many hours within 1%.';

CREATE TABLE kt_governance_internal.kt_rollup_decisions_hourly (
    bucket        timestamptz NOT NULL,
    decision      text        NOT NULL,
    event_count   bigint      NOT NULL,
    total_cost    numeric,
    total_tokens  bigint      NOT NULL,
    latency_sum   bigint,
    latency_count bigint      NOT NULL,
    PRIMARY KEY (bucket, decision)
);
COMMENT ON TABLE kt_rollup_decisions_hourly IS 'Hourly rollup per (UTC hour, decision), behind kt_governance_summary().';
COMMENT ON COLUMN kt_rollup_decisions_hourly.bucket IS 'Start of the UTC hour.';
COMMENT ON COLUMN kt_rollup_decisions_hourly.decision IS 'Decision.';
COMMENT ON COLUMN kt_rollup_decisions_hourly.event_count IS 'Events.';
COMMENT ON COLUMN kt_rollup_decisions_hourly.total_cost IS 'SUM(cost_usd).';
COMMENT ON COLUMN kt_rollup_decisions_hourly.total_tokens IS 'SUM(input_tokens + output_tokens).';
COMMENT ON COLUMN kt_rollup_decisions_hourly.latency_sum IS 'SUM(latency_ms).';
COMMENT ON COLUMN kt_rollup_decisions_hourly.latency_count IS 'COUNT(latency_ms).';

CREATE TABLE kt_governance_internal.kt_rollup_spend_hourly (
    bucket              timestamptz NOT NULL,
    team_id             text,
    model               text        NOT NULL,
    decision            text        NOT NULL,
    request_count       bigint      NOT NULL,
    total_input_tokens  bigint      NOT NULL,
    total_output_tokens bigint      NOT NULL,
    total_cost          numeric,
    CONSTRAINT kt_rollup_spend_hourly_key UNIQUE NULLS NOT DISTINCT (bucket, team_id, model, decision)
);
COMMENT ON TABLE kt_rollup_spend_hourly IS 'Hourly rollup per (UTC hour, team_id, model, decision), behind kt_spend_by_team_model().';
COMMENT ON COLUMN kt_rollup_spend_hourly.bucket IS 'Start of the UTC hour.';
COMMENT ON COLUMN kt_rollup_spend_hourly.team_id IS 'Team (NULL kept as NULL).';
COMMENT ON COLUMN kt_rollup_spend_hourly.model IS 'Model.';
COMMENT ON COLUMN kt_rollup_spend_hourly.decision IS 'Decision.';
COMMENT ON COLUMN kt_rollup_spend_hourly.request_count IS 'Events.';
COMMENT ON COLUMN kt_rollup_spend_hourly.total_input_tokens IS 'SUM(input_tokens).';
COMMENT ON COLUMN kt_rollup_spend_hourly.total_output_tokens IS 'SUM(output_tokens).';
COMMENT ON COLUMN kt_rollup_spend_hourly.total_cost IS 'SUM(cost_usd).';

-- Always the sum of kt_rollup_spend_hourly over the day (rebuilt from it by
-- kt_rebuild_spend_days whenever an hour of the day changes), never computed from raw rows.
CREATE TABLE kt_governance_internal.kt_rollup_spend_daily (
    bucket              timestamptz NOT NULL,
    team_id             text,
    model               text        NOT NULL,
    decision            text        NOT NULL,
    request_count       bigint      NOT NULL,
    total_input_tokens  bigint      NOT NULL,
    total_output_tokens bigint      NOT NULL,
    total_cost          numeric,
    CONSTRAINT kt_rollup_spend_daily_key UNIQUE NULLS NOT DISTINCT (bucket, team_id, model, decision)
);
COMMENT ON TABLE kt_rollup_spend_daily IS 'Daily rollup per (UTC day, team_id, model, decision): kt_rollup_spend_hourly summed over each UTC day. kt_spend_by_team_model() reads whole clean days from here and the rest of its window from the hourly rollup.';
COMMENT ON COLUMN kt_rollup_spend_daily.bucket IS 'Start of the UTC day.';
COMMENT ON COLUMN kt_rollup_spend_daily.team_id IS 'Team (NULL kept as NULL).';
COMMENT ON COLUMN kt_rollup_spend_daily.model IS 'Model.';
COMMENT ON COLUMN kt_rollup_spend_daily.decision IS 'Decision.';
COMMENT ON COLUMN kt_rollup_spend_daily.request_count IS 'Events.';
COMMENT ON COLUMN kt_rollup_spend_daily.total_input_tokens IS 'SUM(input_tokens).';
COMMENT ON COLUMN kt_rollup_spend_daily.total_output_tokens IS 'SUM(output_tokens).';
COMMENT ON COLUMN kt_rollup_spend_daily.total_cost IS 'SUM(cost_usd).';

-- The finest grain of the events' rollups, every dimension reports filter by: behind the
-- summary's gateway / team / model filters and governance_summary_daily. Its daily table is
-- always the sum of the hourly rows over the UTC day (rebuilt with the spend days).
CREATE TABLE kt_governance_internal.kt_rollup_summary_hourly (
    bucket              timestamptz NOT NULL,
    gateway_id          text        NOT NULL,
    team_id             text,
    model               text        NOT NULL,
    decision            text        NOT NULL,
    event_count         bigint      NOT NULL,
    total_cost          numeric,
    total_input_tokens  bigint      NOT NULL,
    total_output_tokens bigint      NOT NULL,
    latency_sum         bigint,
    latency_count       bigint      NOT NULL,
    CONSTRAINT kt_rollup_summary_hourly_key UNIQUE NULLS NOT DISTINCT (bucket, gateway_id, team_id, model, decision)
);
COMMENT ON TABLE kt_rollup_summary_hourly IS 'Hourly rollup per (UTC hour, gateway_id, team_id, model, decision): every dimension the summary filters by. Behind kt_governance_summary() with gateway_id / team_id / model filters and governance_summary_daily.';
CREATE TABLE kt_governance_internal.kt_rollup_summary_daily (LIKE kt_governance_internal.kt_rollup_summary_hourly,
    CONSTRAINT kt_rollup_summary_daily_key UNIQUE NULLS NOT DISTINCT (bucket, gateway_id, team_id, model, decision));
COMMENT ON TABLE kt_rollup_summary_daily IS 'Daily rollup per (UTC day, gateway_id, team_id, model, decision): kt_rollup_summary_hourly summed over each UTC day, behind governance_summary_daily.';
COMMENT ON COLUMN kt_rollup_summary_hourly.bucket IS 'Start of the UTC hour.';
COMMENT ON COLUMN kt_rollup_summary_hourly.gateway_id IS 'Gateway.';
COMMENT ON COLUMN kt_rollup_summary_hourly.team_id IS 'Team (NULL kept as NULL).';
COMMENT ON COLUMN kt_rollup_summary_hourly.model IS 'Model.';
COMMENT ON COLUMN kt_rollup_summary_hourly.decision IS 'Decision.';
COMMENT ON COLUMN kt_rollup_summary_hourly.event_count IS 'Events.';
COMMENT ON COLUMN kt_rollup_summary_hourly.total_cost IS 'SUM(cost_usd); NULL when every cost was NULL.';
COMMENT ON COLUMN kt_rollup_summary_hourly.total_input_tokens IS 'SUM(input_tokens).';
COMMENT ON COLUMN kt_rollup_summary_hourly.total_output_tokens IS 'SUM(output_tokens).';
COMMENT ON COLUMN kt_rollup_summary_hourly.latency_sum IS 'SUM(latency_ms); NULL when no latency was known.';
COMMENT ON COLUMN kt_rollup_summary_hourly.latency_count IS 'COUNT(latency_ms).';
COMMENT ON COLUMN kt_rollup_summary_daily.bucket IS 'Start of the UTC day.';
COMMENT ON COLUMN kt_rollup_summary_daily.gateway_id IS 'Gateway.';
COMMENT ON COLUMN kt_rollup_summary_daily.team_id IS 'Team (NULL kept as NULL).';
COMMENT ON COLUMN kt_rollup_summary_daily.model IS 'Model.';
COMMENT ON COLUMN kt_rollup_summary_daily.decision IS 'Decision.';
COMMENT ON COLUMN kt_rollup_summary_daily.event_count IS 'Events.';
COMMENT ON COLUMN kt_rollup_summary_daily.total_cost IS 'SUM(cost_usd); NULL when every cost was NULL.';
COMMENT ON COLUMN kt_rollup_summary_daily.total_input_tokens IS 'SUM(input_tokens).';
COMMENT ON COLUMN kt_rollup_summary_daily.total_output_tokens IS 'SUM(output_tokens).';
COMMENT ON COLUMN kt_rollup_summary_daily.latency_sum IS 'SUM(latency_ms); NULL when no latency was known.';
COMMENT ON COLUMN kt_rollup_summary_daily.latency_count IS 'COUNT(latency_ms).';

-- No row until retention first freezes something: a row made by CREATE EXTENSION would collide
-- with the dumped one on restore. kt_frozen_before() reads it.
-- Inserted events summed per writing transaction by the row trigger (src/deltas.rs) and
-- appended at its commit: the refresh merges an insert-only hour's deltas into the rollups
-- instead of reading the hour's rows. No key: concurrent writers append without waiting.
-- Not dumped: a restore's COPY of the events writes them again.
CREATE TABLE kt_governance_internal.kt_rollup_deltas (
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

CREATE TABLE kt_governance_internal.kt_latency_deltas (
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

-- Policy evaluations per hour of their event's time, policy and result: behind
-- kt_policy_effectiveness() and governance_policy_hourly. Evaluations mark the hour of their
-- event_timestamp dirty like events do (one mark table: a dirty hour is stale in every rollup),
-- and inserted evaluations are summed per transaction into kt_policy_deltas.
CREATE TABLE kt_governance_internal.kt_rollup_policy_hourly (
    bucket           timestamptz NOT NULL,
    policy_name      text        NOT NULL,
    result           text        NOT NULL,
    evaluation_count bigint      NOT NULL,
    latency_sum      bigint,
    latency_count    bigint      NOT NULL,
    PRIMARY KEY (bucket, policy_name, result)
);
COMMENT ON TABLE kt_rollup_policy_hourly IS 'Hourly rollup per (UTC hour of event_timestamp, policy_name, result) of policy_evaluations, behind kt_policy_effectiveness() and governance_policy_hourly.';
COMMENT ON COLUMN kt_rollup_policy_hourly.bucket IS 'Start of the UTC hour of the evaluated events'' "timestamp".';
COMMENT ON COLUMN kt_rollup_policy_hourly.policy_name IS 'Policy.';
COMMENT ON COLUMN kt_rollup_policy_hourly.result IS 'Result: pass, block, redact, flag or escalate.';
COMMENT ON COLUMN kt_rollup_policy_hourly.evaluation_count IS 'Evaluations.';
COMMENT ON COLUMN kt_rollup_policy_hourly.latency_sum IS 'SUM(latency_ms); NULL when no latency was known.';
COMMENT ON COLUMN kt_rollup_policy_hourly.latency_count IS 'COUNT(latency_ms).';

-- Inserted evaluations summed per writing transaction (src/deltas.rs), like kt_rollup_deltas.
CREATE TABLE kt_governance_internal.kt_policy_deltas (
    bucket           timestamptz NOT NULL,
    policy_name      text        NOT NULL,
    result           text        NOT NULL,
    evaluation_count bigint      NOT NULL,
    latency_sum      bigint,
    latency_count    bigint      NOT NULL
);
CREATE INDEX kt_policy_deltas_bucket_idx ON kt_policy_deltas (bucket);
COMMENT ON TABLE kt_policy_deltas IS 'Evaluations inserted since the last kt_refresh_metrics(), summed per writing transaction and (UTC hour of event_timestamp, policy_name, result); kt_refresh_metrics() merges them into kt_rollup_policy_hourly and deletes them.';
COMMENT ON COLUMN kt_policy_deltas.bucket IS 'Start of the UTC hour of the evaluated events'' "timestamp".';
COMMENT ON COLUMN kt_policy_deltas.policy_name IS 'Policy.';
COMMENT ON COLUMN kt_policy_deltas.result IS 'Result.';
COMMENT ON COLUMN kt_policy_deltas.evaluation_count IS 'Evaluations inserted.';
COMMENT ON COLUMN kt_policy_deltas.latency_sum IS 'SUM(latency_ms); NULL when no latency was known.';
COMMENT ON COLUMN kt_policy_deltas.latency_count IS 'COUNT(latency_ms).';

CREATE TABLE kt_governance_internal.kt_rollup_state (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    frozen_before timestamptz NOT NULL DEFAULT '-infinity'
);
COMMENT ON TABLE kt_rollup_state IS 'Rollup bookkeeping (at most one row; none means nothing is frozen): hours before frozen_before lost raw rows to retention, so their rollup rows are final and never recomputed.';
COMMENT ON COLUMN kt_rollup_state.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN kt_rollup_state.frozen_before IS 'Start of the first hour whose raw rows are complete.';

CREATE FUNCTION kt_governance_internal.kt_frozen_before()
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
    SELECT coalesce((SELECT frozen_before FROM kt_rollup_state), '-infinity')
$fn$;
COMMENT ON FUNCTION kt_frozen_before() IS 'Start of the first hour whose raw rows are complete (-infinity until retention has removed anything): older hours come from rollups only and are never recomputed.';

-- rollups and dirty marks are data: pg_dump must carry them
SELECT pg_catalog.pg_extension_config_dump('kt_dirty_hours', '');
SELECT pg_catalog.pg_extension_config_dump('kt_rollup_metrics_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('kt_rollup_decisions_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('kt_rollup_spend_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('kt_rollup_spend_daily', '');
SELECT pg_catalog.pg_extension_config_dump('kt_rollup_policy_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('kt_rollup_summary_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('kt_rollup_summary_daily', '');
SELECT pg_catalog.pg_extension_config_dump('kt_rollup_state', '');

-- Row triggers on the parent are cloned onto every partition, including partitions attached
-- later and DML aimed straight at a partition.
-- The Rust trigger functions move to the internal schema, and nobody but the extension owner may
-- attach them (CREATE TRIGGER needs EXECUTE): what they gather is written to bookkeeping as the
-- extension owner (src/owner.rs), so they must only ever see rows of the extension's tables.
ALTER FUNCTION kt_mark_dirty_hours() SET SCHEMA kt_governance_internal;
ALTER FUNCTION kt_flush_dirty_hours() SET SCHEMA kt_governance_internal;
REVOKE ALL ON FUNCTION kt_governance_internal.kt_mark_dirty_hours(), kt_governance_internal.kt_flush_dirty_hours() FROM PUBLIC;
CREATE TRIGGER kt_mark_dirty_hours
    AFTER INSERT OR UPDATE OR DELETE ON ai_decision_events
    FOR EACH ROW EXECUTE FUNCTION kt_mark_dirty_hours();
-- statement triggers are not cloned: this one fires for DML through the parent (COPY and
-- INSERT included) and writes the statement's hours right away
CREATE TRIGGER kt_flush_dirty_hours
    AFTER INSERT OR UPDATE OR DELETE ON ai_decision_events
    FOR EACH STATEMENT EXECUTE FUNCTION kt_flush_dirty_hours();

-- Rollup rows written by anything but the refresh (which runs with track_changes off), such as
-- a pg_restore of the rollups next to the events its COPY re-sums into kt_rollup_deltas: the
-- hours are recomputed from raw rows, so no delta is ever added on top of rows that hold it.
CREATE FUNCTION kt_governance_internal.kt_recompute_written_hours()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
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
CREATE TRIGGER kt_recompute_written_hours AFTER INSERT ON kt_rollup_summary_hourly
    REFERENCING NEW TABLE AS written_rows FOR EACH STATEMENT
    WHEN (current_setting('kt_governance.track_changes', true) IS DISTINCT FROM 'off')
    EXECUTE FUNCTION kt_recompute_written_hours();
CREATE TRIGGER kt_recompute_written_hours AFTER INSERT ON kt_rollup_policy_hourly
    REFERENCING NEW TABLE AS written_rows FOR EACH STATEMENT
    WHEN (current_setting('kt_governance.track_changes', true) IS DISTINCT FROM 'off')
    EXECUTE FUNCTION kt_recompute_written_hours();

CREATE AGGREGATE kt_governance_internal.kt_histogram_merge_agg(bytea) (SFUNC = kt_histogram_merge, STYPE = bytea);
COMMENT ON AGGREGATE kt_histogram_merge_agg(bytea) IS 'Adds exact latency histograms (e.g. kt_rollup_metrics_hourly.latency_histogram over a day) into one; read it with kt_histogram_quantile().';
COMMENT ON FUNCTION kt_histogram_merge(bytea, bytea) IS 'Adds two exact latency histograms (transition function of kt_histogram_merge_agg).';
COMMENT ON FUNCTION kt_histogram_quantile(bytea, double precision) IS 'Exact PERCENTILE_CONT(q), q in [0, 1], of the latencies an exact histogram counts; NULL for an empty histogram.';
COMMENT ON FUNCTION kt_latency_rollup(integer[]) IS 'Exact p50 and p99 (PERCENTILE_CONT, same float8 results), the sketch and the exact histogram of an array of latencies (NULLs ignored; all NULL for no latency): what the refresh stores per (hour, gateway, model) it recomputes.';
COMMENT ON FUNCTION kt_histogram_rollup(bytea, bytea) IS 'The same from the sum of two exact histograms (either may be NULL): what the refresh stores when it merges a batch into an hour.';
COMMENT ON FUNCTION kt_settle_pending_deltas() IS 'Internal: gives up the current transaction''s not yet written rollup deltas and marks their hours for a recompute now (kt_refresh_metrics() calls it first); returns the hours marked.';

CREATE AGGREGATE kt_governance_internal.kt_sketch_merge_agg(bytea) (SFUNC = kt_sketch_merge, STYPE = bytea);
COMMENT ON AGGREGATE kt_sketch_merge_agg(bytea) IS 'Adds latency sketches (e.g. of many hours) into one; read it with kt_sketch_quantile().';
COMMENT ON FUNCTION kt_sketch_merge(bytea, bytea) IS 'Adds two latency sketches (transition function of kt_sketch_merge_agg).';
COMMENT ON FUNCTION kt_sketch_quantile(bytea, double precision) IS 'Quantile q in [0, 1] of the latencies summarized by a sketch, within 1% relative error; NULL for an empty sketch.';
COMMENT ON FUNCTION kt_sketch_count(bytea) IS 'Number of latencies a sketch summarizes.';
COMMENT ON FUNCTION kt_sketch_bucket(double precision) IS 'Logarithmic bucket index of a latency (1% wide); for building sketches with GROUP BY.';
COMMENT ON FUNCTION kt_sketch_build(integer[], bigint[]) IS 'Sketch from bucket indexes and their counts.';
COMMENT ON FUNCTION kt_latency_summary(integer[]) IS 'Exact PERCENTILE_CONT 0.5 and 0.99 (same float8 results as the SQL aggregates) and the latency sketch of an array of latencies (NULLs ignored; all NULL for no latency); the refresh calls it once per (hour, gateway, model).';
COMMENT ON FUNCTION kt_latency_sketch(double precision[]) IS 'Sketch of an array of latencies (NULLs ignored), e.g. kt_latency_sketch(array_agg(latency_ms::float8)).';
COMMENT ON FUNCTION kt_mark_dirty_hours() IS 'Row trigger: notes the UTC hour of every inserted, updated or deleted event in backend memory (written by kt_flush_dirty_hours at statement end, or just before commit), sums inserted events into the transaction''s rollup deltas (appended to kt_rollup_deltas just before commit), and counts the event in kt_row_counts.';
COMMENT ON FUNCTION kt_flush_dirty_hours() IS 'Statement trigger: writes the hours noted by kt_mark_dirty_hours during the statement to kt_dirty_hours.';

-- The whole grains (UTC hours, or UTC days) inside a window. Defined before kt_live_ranges,
-- which builds on it.
CREATE FUNCTION kt_governance_internal.kt_rollup_hours(window_start timestamptz, window_end timestamptz, grain text DEFAULT 'hour',
                                OUT first_hour timestamptz, OUT end_hour timestamptz)
LANGUAGE sql IMMUTABLE
AS $fn$
    -- a grain's length in hours: '1 day' added to a timestamptz is a calendar day of the
    -- session's TimeZone (23 or 25 hours across a DST change), not a UTC day
    SELECT CASE WHEN date_trunc(grain, window_start, 'UTC') = window_start THEN window_start
                ELSE date_trunc(grain, window_start, 'UTC') + CASE WHEN grain = 'day' THEN interval '24 hours' ELSE interval '1 hour' END END,
           CASE WHEN isfinite(window_end) THEN date_trunc(grain, window_end, 'UTC') ELSE window_end END
$fn$;
COMMENT ON FUNCTION kt_rollup_hours(timestamptz, timestamptz, text) IS 'Internal: [first_hour, end_hour) is the span of whole UTC hours (grain ''hour'') or whole UTC days (grain ''day'') inside a window.';

-- The parts of [window_start, window_end) that cannot be read at the given grain: the partial
-- grains at the edges and every grain holding a dirty hour. With grain 'hour' these are the
-- ranges reports compute from raw rows; with grain 'day' (over a span of whole hours) the
-- ranges read from hourly rollups instead of daily ones. With use_rollups = false the whole
-- window is one range.
CREATE FUNCTION kt_governance_internal.kt_live_ranges(window_start timestamptz, window_end timestamptz, use_rollups boolean DEFAULT true,
                               grain text DEFAULT 'hour')
RETURNS TABLE (range_start timestamptz, range_end timestamptz)
LANGUAGE sql STABLE
-- a handful of ranges: the planner must pick index range scans per range, not a full scan
ROWS 4
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
    WITH whole AS (SELECT * FROM kt_rollup_hours(window_start, window_end, grain))
    SELECT window_start, window_end FROM whole
    WHERE NOT use_rollups OR first_hour >= end_hour
    UNION ALL
    SELECT window_start, first_hour FROM whole
    WHERE use_rollups AND first_hour < end_hour AND window_start < first_hour
    UNION ALL
    SELECT end_hour, window_end FROM whole
    WHERE use_rollups AND first_hour < end_hour AND end_hour < window_end
    UNION ALL
    SELECT DISTINCT date_trunc(grain, d.bucket, 'UTC'),
           date_trunc(grain, d.bucket, 'UTC') + CASE WHEN grain = 'day' THEN interval '24 hours' ELSE interval '1 hour' END
    FROM whole, kt_dirty_hours d
    WHERE use_rollups AND first_hour < end_hour AND d.bucket >= first_hour AND d.bucket < end_hour
      AND d.bucket >= kt_frozen_before()
$fn$;
COMMENT ON FUNCTION kt_live_ranges(timestamptz, timestamptz, boolean, text) IS 'Internal: the ranges of [window_start, window_end) not readable at a grain: partial edge grains and grains holding dirty hours. Grain ''hour'': what reports read from raw rows; grain ''day'': what they read from hourly instead of daily rollups.';

-- The raw rows a report reads, as plain bounds: the partial head and tail hours of the window
-- (or the whole window when rollups cannot serve it) and the dirty hours inside it. A report
-- keeps them in PL/pgSQL variables and passes them to kt_raw_events(): there they are constants
-- of the query's plan, so PostgreSQL prunes partitions while planning. Ranges computed inside
-- the query (a join with kt_live_ranges) are pruned only at run time, after every partition has
-- been planned: 37 ms of a 42 ms report with 60 daily partitions. An empty range is NULL.
CREATE FUNCTION kt_governance_internal.kt_raw_ranges(
    window_start timestamptz,
    window_end timestamptz,
    use_rollups boolean DEFAULT true,
    frozen timestamptz DEFAULT kt_frozen_before(),
    OUT head_start timestamptz,
    OUT head_end timestamptz,
    OUT tail_start timestamptz,
    OUT tail_end timestamptz,
    OUT dirty_hours timestamptz[],
    OUT dirty_start timestamptz,
    OUT dirty_end timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
DECLARE
    whole record := kt_rollup_hours(window_start, window_end);
BEGIN
    IF NOT use_rollups OR whole.first_hour >= whole.end_hour THEN
        head_start := window_start;
        head_end := window_end;
        RETURN;
    END IF;
    IF window_start < whole.first_hour THEN
        head_start := window_start;
        head_end := whole.first_hour;
    END IF;
    IF whole.end_hour < window_end THEN
        tail_start := whole.end_hour;
        tail_end := window_end;
    END IF;
    dirty_hours := ARRAY(SELECT DISTINCT d.bucket FROM kt_dirty_hours d
                         WHERE d.bucket >= whole.first_hour AND d.bucket < whole.end_hour
                           AND d.bucket >= frozen
                         ORDER BY 1);
    IF cardinality(dirty_hours) > 0 THEN
        dirty_start := dirty_hours[1];
        dirty_end := dirty_hours[cardinality(dirty_hours)] + interval '1 hour';
    END IF;
END
$fn$;
COMMENT ON FUNCTION kt_raw_ranges(timestamptz, timestamptz, boolean, timestamptz) IS 'Internal: what a report over [window_start, window_end) reads from raw rows: the partial head and tail hours (the whole window when use_rollups is false or it holds no whole hour) and the dirty hours at or after frozen inside it, with their span. Empty ranges are NULL. Pass the values to kt_raw_events().';

-- A set of UTC hours as the runs of consecutive hours they form. Evaluations have no index on
-- event_timestamp (the document's keys only): one range per run reads each partition once,
-- where one range per hour read a daily partition 24 times (a first refresh after a bulk load
-- took 106 s against 5 s at 1M events). Inlined like kt_raw_events.
CREATE FUNCTION kt_governance_internal.kt_hour_runs(hours timestamptz[])
RETURNS TABLE (run_start timestamptz, run_end timestamptz)
LANGUAGE sql IMMUTABLE
AS $fn$
    SELECT min(h), max(h) + interval '1 hour'
    FROM (SELECT h, h - row_number() OVER (ORDER BY h) * interval '1 hour' AS run
          FROM (SELECT DISTINCT h FROM unnest(hours) h) d) x
    GROUP BY run
$fn$;
COMMENT ON FUNCTION kt_hour_runs(timestamptz[]) IS 'Internal: the runs of consecutive UTC hours in a set of hours, as [run_start, run_end) ranges.';

-- Inlined into the calling query (plain SQL, no SET clause), so the bounds it compares with
-- stay constants of the caller's plan. The dirty hours are read one index range each, within
-- their span (the span is what prunes the partitions at planning time).
CREATE FUNCTION kt_governance_internal.kt_raw_events(
    head_start timestamptz,
    head_end timestamptz,
    tail_start timestamptz DEFAULT NULL,
    tail_end timestamptz DEFAULT NULL,
    dirty_hours timestamptz[] DEFAULT NULL,
    dirty_start timestamptz DEFAULT NULL,
    dirty_end timestamptz DEFAULT NULL)
RETURNS SETOF ai_decision_events
LANGUAGE sql STABLE
AS $fn$
    SELECT x.* FROM @extschema@.ai_decision_events x
    WHERE x."timestamp" >= head_start AND x."timestamp" < head_end
    UNION ALL
    SELECT x.* FROM @extschema@.ai_decision_events x
    WHERE x."timestamp" >= tail_start AND x."timestamp" < tail_end
    UNION ALL
    SELECT x.* FROM unnest(dirty_hours) h(hour)
    CROSS JOIN LATERAL (SELECT y.* FROM @extschema@.ai_decision_events y
                        WHERE y."timestamp" >= h.hour AND y."timestamp" < h.hour + interval '1 hour'
                          AND y."timestamp" >= dirty_start AND y."timestamp" < dirty_end
                        -- OFFSET 0: not flattened into a join, which planned every partition
                        -- even with no dirty hour (NULL bounds): 6 ms with 60 partitions
                        OFFSET 0) x
$fn$;
COMMENT ON FUNCTION kt_raw_events(timestamptz, timestamptz, timestamptz, timestamptz, timestamptz[], timestamptz, timestamptz) IS 'Internal: the events in [head_start, head_end), in [tail_start, tail_end) and in the UTC hours listed in dirty_hours (which lie in [dirty_start, dirty_end)), as kt_raw_ranges() returns them; NULL bounds select nothing. Runs with the caller''s rights.';

-- The evaluations of the same ranges, by the hour of their event's time (as kt_raw_events).
-- Evaluations have no index on event_timestamp, so a range inside a partition is a scan of the
-- whole partition (an edge hour of a 7-day report read two daily partitions: 72 ms of it at 1M
-- events). through_events reads them instead through the events of the range (their
-- "timestamp" index) and the evaluations' key (event_id, event_timestamp): exact, since every
-- evaluation has its event (foreign key), but an evaluation hidden by row-level security on
-- the events would be missed, so callers pass it only when no policy applies.
CREATE FUNCTION kt_governance_internal.kt_raw_evaluations(
    head_start timestamptz,
    head_end timestamptz,
    tail_start timestamptz DEFAULT NULL,
    tail_end timestamptz DEFAULT NULL,
    dirty_hours timestamptz[] DEFAULT NULL,
    dirty_start timestamptz DEFAULT NULL,
    dirty_end timestamptz DEFAULT NULL,
    through_events boolean DEFAULT false)
RETURNS SETOF policy_evaluations
LANGUAGE sql STABLE
AS $fn$
    SELECT x.* FROM @extschema@.policy_evaluations x
    WHERE NOT through_events AND x.event_timestamp >= head_start AND x.event_timestamp < head_end
    UNION ALL
    SELECT x.* FROM @extschema@.policy_evaluations x
    WHERE NOT through_events AND x.event_timestamp >= tail_start AND x.event_timestamp < tail_end
    UNION ALL
    -- (one range per run of dirty hours: see kt_hour_runs)
    SELECT x.* FROM kt_governance_internal.kt_hour_runs(dirty_hours) h
    CROSS JOIN LATERAL (SELECT y.* FROM @extschema@.policy_evaluations y
                        WHERE NOT through_events AND y.event_timestamp >= h.run_start AND y.event_timestamp < h.run_end
                          AND y.event_timestamp >= dirty_start AND y.event_timestamp < dirty_end
                        OFFSET 0) x
    UNION ALL
    SELECT x.* FROM kt_governance_internal.kt_raw_events(head_start, head_end, tail_start, tail_end,
                                                         dirty_hours, dirty_start, dirty_end) e
    JOIN @extschema@.policy_evaluations x ON x.event_id = e.id AND x.event_timestamp = e."timestamp"
    WHERE through_events
      -- (the bounds again, so the planner prunes the evaluations' partitions too)
      AND x.event_timestamp >= least(head_start, tail_start, dirty_start)
      AND x.event_timestamp < greatest(head_end, tail_end, dirty_end)
$fn$;
COMMENT ON FUNCTION kt_raw_evaluations(timestamptz, timestamptz, timestamptz, timestamptz, timestamptz[], timestamptz, timestamptz, boolean) IS 'Internal: the policy evaluations whose event_timestamp is in [head_start, head_end), in [tail_start, tail_end) or in the UTC hours listed in dirty_hours, as kt_raw_ranges() returns them; NULL bounds select nothing. through_events: found through their events (index reads; only for callers no row-level security policy limits). Runs with the caller''s rights.';

-- The dirty hours' events summed per hour and decision, for the summary: each hour's rows are
-- read by one index range (as in kt_raw_events) and summed, so a report whose window is mostly
-- dirty (right after a bulk load, before any refresh) dates a few thousand sums instead of
-- every row. Inlined into the caller like kt_raw_events.
CREATE FUNCTION kt_governance_internal.kt_dirty_hour_decisions(
    dirty_hours timestamptz[],
    dirty_start timestamptz,
    dirty_end timestamptz,
    gateway_id text DEFAULT NULL,
    team_id text DEFAULT NULL,
    model text DEFAULT NULL)
RETURNS TABLE (hour timestamptz, decision text, events bigint, cost numeric, tokens bigint,
               latency_sum bigint, latency_count bigint)
LANGUAGE sql STABLE
AS $fn$
    SELECT h.hour, x.decision, count(*), sum(x.cost_usd), sum(x.input_tokens + x.output_tokens)::bigint,
           sum(x.latency_ms)::bigint, count(x.latency_ms)
    FROM unnest(dirty_hours) h(hour)
    CROSS JOIN LATERAL (SELECT y.decision, y.cost_usd, y.input_tokens, y.output_tokens, y.latency_ms
                        FROM @extschema@.ai_decision_events y
                        WHERE y."timestamp" >= h.hour AND y."timestamp" < h.hour + interval '1 hour'
                          AND y."timestamp" >= dirty_start AND y."timestamp" < dirty_end
                          AND (kt_dirty_hour_decisions.gateway_id IS NULL OR y.gateway_id = kt_dirty_hour_decisions.gateway_id)
                          AND (kt_dirty_hour_decisions.team_id IS NULL OR y.team_id = kt_dirty_hour_decisions.team_id)
                          AND (kt_dirty_hour_decisions.model IS NULL OR y.model = kt_dirty_hour_decisions.model)
                        OFFSET 0) x
    GROUP BY h.hour, x.decision
$fn$;
COMMENT ON FUNCTION kt_dirty_hour_decisions(timestamptz[], timestamptz, timestamptz, text, text, text) IS 'Internal: events, cost, tokens and latency sums per (dirty UTC hour, decision) of the events matching the filters given (NULL: any), reading each hour by its own index range; the hours as kt_raw_ranges() returns them. Runs with the caller''s rights.';

-- True when zone's offset from UTC is a whole number of hours at both ends of the window, so
-- UTC hour buckets can be grouped into that zone's days and hours.
CREATE FUNCTION kt_governance_internal.kt_zone_has_whole_hours(zone text, window_start timestamptz, window_end timestamptz)
RETURNS boolean
LANGUAGE sql STABLE
AS $fn$
    SELECT bool_and(extract(minute FROM (t AT TIME ZONE zone) - (t AT TIME ZONE 'UTC')) = 0
                    AND extract(second FROM (t AT TIME ZONE zone) - (t AT TIME ZONE 'UTC')) = 0)
    FROM unnest(ARRAY[window_start, CASE WHEN isfinite(window_end) THEN window_end ELSE now() END]) t
$fn$;
COMMENT ON FUNCTION kt_zone_has_whole_hours(text, timestamptz, timestamptz) IS 'Internal: whether a time zone is a whole number of hours from UTC at both ends of a window (otherwise reports fall back to raw rows).';

-- kt_rollup_spend_daily rows of the UTC days holding the given hours, summed again from
-- kt_rollup_spend_hourly.
CREATE FUNCTION kt_governance_internal.kt_rebuild_spend_days(touched timestamptz[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
SET jit = off
AS $fn$
DECLARE
    days timestamptz[];
    written bigint;
BEGIN
    SELECT array_agg(DISTINCT date_trunc('day', t, 'UTC')) INTO days FROM unnest(touched) t;
    DELETE FROM kt_rollup_spend_daily WHERE bucket = ANY (days);
    INSERT INTO kt_rollup_spend_daily
    SELECT d, r.team_id, r.model, r.decision, sum(r.request_count)::bigint, sum(r.total_input_tokens)::bigint,
           sum(r.total_output_tokens)::bigint, sum(r.total_cost)
    FROM unnest(days) d
    -- 24 hours, not '1 day': that is a calendar day of the session's TimeZone (23 or 25 hours
    -- across a DST change), and the worker's session may be in any zone
    JOIN kt_rollup_spend_hourly r ON r.bucket >= d AND r.bucket < d + interval '24 hours'
    GROUP BY 1, 2, 3, 4;
    GET DIAGNOSTICS written = ROW_COUNT;
    DELETE FROM kt_rollup_summary_daily WHERE bucket = ANY (days);
    INSERT INTO kt_rollup_summary_daily
    SELECT d, r.gateway_id, r.team_id, r.model, r.decision, sum(r.event_count)::bigint, sum(r.total_cost),
           sum(r.total_input_tokens)::bigint, sum(r.total_output_tokens)::bigint, sum(r.latency_sum)::bigint,
           sum(r.latency_count)::bigint
    FROM unnest(days) d
    JOIN kt_rollup_summary_hourly r ON r.bucket >= d AND r.bucket < d + interval '24 hours'
    GROUP BY 1, 2, 3, 4, 5;
    RETURN written;
END
$fn$;
COMMENT ON FUNCTION kt_rebuild_spend_days(timestamptz[]) IS 'Internal: recomputes the kt_rollup_spend_daily and kt_rollup_summary_daily rows of the UTC days containing the given instants from their hourly rollups; returns the spend rows written.';
REVOKE ALL ON FUNCTION kt_rebuild_spend_days(timestamptz[]) FROM PUBLIC;

-- The given hours of every rollup recomputed from raw rows. Their deltas are deleted in the
-- same statement that reads the rows: both come from one snapshot, so a writer's rows and its
-- deltas are either both taken or both left for the next refresh.
CREATE FUNCTION kt_governance_internal.kt_recompute_hours(hours timestamptz[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
SET jit = off
SET enable_sort = off
SET kt_governance.track_changes = off
AS $fn$
DECLARE
    written bigint;
    run record;
BEGIN
    DELETE FROM kt_rollup_metrics_hourly WHERE bucket = ANY (hours);
    DELETE FROM kt_rollup_decisions_hourly WHERE bucket = ANY (hours);
    DELETE FROM kt_rollup_spend_hourly WHERE bucket = ANY (hours);
    DELETE FROM kt_rollup_policy_hourly WHERE bucket = ANY (hours);
    DELETE FROM kt_rollup_summary_hourly WHERE bucket = ANY (hours);

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
        JOIN @extschema@.ai_decision_events e ON e."timestamp" >= h AND e."timestamp" < h + interval '1 hour'
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
    ), summary AS (
        INSERT INTO kt_rollup_summary_hourly
        SELECT f.bucket, f.gateway_id, f.team_id, f.model, f.decision, f.n, f.cost, f.tin, f.tout,
               f.lat_sum, f.lat_n
        FROM fine f
    )
    SELECT count(*) INTO written FROM metrics;

    -- the evaluations of the hours, one run of consecutive hours at a time (evaluations have no
    -- index on event_timestamp: each run is one scan of the partitions it overlaps, planned with
    -- its bounds; one join over every run scanned a whole partition's key index per run). Each
    -- run's deltas are dropped in the statement that reads its rows (one snapshot).
    FOR run IN SELECT * FROM kt_hour_runs(hours) LOOP
        WITH dropped_policy_deltas AS (
            DELETE FROM kt_policy_deltas WHERE bucket >= run.run_start AND bucket < run.run_end
        )
        INSERT INTO kt_rollup_policy_hourly
        SELECT date_trunc('hour', pe.event_timestamp, 'UTC'), pe.policy_name COLLATE "C", pe.result COLLATE "C", count(*),
               sum(pe.latency_ms)::bigint, count(pe.latency_ms)
        FROM @extschema@.policy_evaluations pe
        WHERE pe.event_timestamp >= run.run_start AND pe.event_timestamp < run.run_end
        GROUP BY 1, 2, 3;
    END LOOP;

    PERFORM kt_rebuild_spend_days(hours);
    RETURN written;
END
$fn$;
COMMENT ON FUNCTION kt_recompute_hours(timestamptz[]) IS 'Internal (kt_refresh_metrics): recomputes the given UTC hours of every rollup from raw rows and discards their deltas; returns the kt_rollup_metrics_hourly rows written.';
REVOKE ALL ON FUNCTION kt_recompute_hours(timestamptz[]) FROM PUBLIC;

-- NULL-aware addition of two sums, as SUM() over both: NULL only when both are NULL.
CREATE FUNCTION kt_governance_internal.kt_add_sums(a numeric, b numeric)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
    SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE a + b END
$fn$;
COMMENT ON FUNCTION kt_add_sums(numeric, numeric) IS 'Internal: a + b where NULL means "no value summed yet" (the result is NULL only when both are).';

-- The deltas of the given insert-only hours added into every rollup, and deleted, in one
-- statement (one snapshot: a delta is merged exactly once).
CREATE FUNCTION kt_governance_internal.kt_merge_deltas(hours timestamptz[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, kt_governance_internal, pg_temp
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
    ), summary AS (
        INSERT INTO kt_rollup_summary_hourly AS r
        SELECT f.bucket, f.gateway_id, f.team_id, f.model, f.decision, f.n, f.cost, f.tin, f.tout,
               f.lat_sum, f.lat_n
        FROM fine f
        ON CONFLICT ON CONSTRAINT kt_rollup_summary_hourly_key DO UPDATE SET
            event_count = r.event_count + excluded.event_count,
            total_cost = kt_add_sums(r.total_cost, excluded.total_cost),
            total_input_tokens = r.total_input_tokens + excluded.total_input_tokens,
            total_output_tokens = r.total_output_tokens + excluded.total_output_tokens,
            latency_sum = kt_add_sums(r.latency_sum, excluded.latency_sum)::bigint,
            latency_count = r.latency_count + excluded.latency_count
    ), summary_days AS (
        INSERT INTO kt_rollup_summary_daily AS r
        SELECT date_trunc('day', f.bucket, 'UTC'), f.gateway_id, f.team_id, f.model, f.decision, sum(f.n)::bigint,
               sum(f.cost), sum(f.tin)::bigint, sum(f.tout)::bigint, sum(f.lat_sum)::bigint, sum(f.lat_n)::bigint
        FROM fine f GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT ON CONSTRAINT kt_rollup_summary_daily_key DO UPDATE SET
            event_count = r.event_count + excluded.event_count,
            total_cost = kt_add_sums(r.total_cost, excluded.total_cost),
            total_input_tokens = r.total_input_tokens + excluded.total_input_tokens,
            total_output_tokens = r.total_output_tokens + excluded.total_output_tokens,
            latency_sum = kt_add_sums(r.latency_sum, excluded.latency_sum)::bigint,
            latency_count = r.latency_count + excluded.latency_count
    )
    SELECT count(*) INTO written FROM metrics;

    WITH taken AS (
        DELETE FROM kt_policy_deltas WHERE bucket = ANY (hours) RETURNING *
    )
    INSERT INTO kt_rollup_policy_hourly AS r
    SELECT t.bucket, t.policy_name COLLATE "C", t.result COLLATE "C", sum(t.evaluation_count)::bigint,
           sum(t.latency_sum)::bigint, sum(t.latency_count)::bigint
    FROM taken t GROUP BY 1, 2, 3
    ON CONFLICT (bucket, policy_name, result) DO UPDATE SET
        evaluation_count = r.evaluation_count + excluded.evaluation_count,
        latency_sum = kt_add_sums(r.latency_sum, excluded.latency_sum)::bigint,
        latency_count = r.latency_count + excluded.latency_count;
    RETURN written;
END
$fn$;
COMMENT ON FUNCTION kt_merge_deltas(timestamptz[]) IS 'Internal (kt_refresh_metrics): adds the kt_rollup_deltas, kt_latency_deltas and kt_policy_deltas of the given insert-only UTC hours into every rollup (exact histograms keep p50/p99 exact) and deletes them; returns the kt_rollup_metrics_hourly rows written.';
REVOKE ALL ON FUNCTION kt_merge_deltas(timestamptz[]) FROM PUBLIC;

CREATE FUNCTION kt_refresh_metrics(up_to timestamptz DEFAULT 'infinity')
RETURNS TABLE (hours_refreshed bigint, metric_rows bigint, oldest_hour timestamptz, newest_hour timestamptz,
              hours_merged bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kt_governance_internal, pg_temp
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
    PERFORM kt_take_run_lock('refresh_metrics');
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
    DELETE FROM kt_policy_deltas WHERE bucket < kt_frozen_before();
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

-- Rollups are computed over every row. Where row-level security limits what the caller sees
-- of the documented tables, a report must give exactly what the caller's visible rows give, so
-- reports and views read raw rows only for such a caller (as the caller: the policies apply).
CREATE FUNCTION kt_governance_internal.kt_rls_applies()
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
    SELECT row_security_active('@extschema@.ai_decision_events'::regclass)
        OR row_security_active('@extschema@.policy_evaluations'::regclass)
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_rls_applies() IS 'Internal: whether row-level security limits what the current user sees of ai_decision_events or policy_evaluations; reports then read raw rows only.';

-- The live parts of the views: functions, so that a view's plan holds a function scan where
-- it would otherwise hold every partition of the events table. A parameterised scan of the
-- partitioned table is pruned only at run time, after the planner has planned every partition:
-- with 369 daily partitions that was 96 ms of a 98 ms 24-hour dashboard query, and the plan's
-- cost triggered JIT compilation (42 ms more). Each function runs its statement through EXECUTE
-- ... USING: PL/pgSQL hands the bounds to the planner as constants (never as text, which would
-- depend on DateStyle and TimeZone), so the statement prunes to its partitions while planning.
-- They run with the caller's rights (row-level security applies) and JIT off (their plans are
-- small; compiling them costs more than running them).
CREATE FUNCTION kt_governance_internal.kt_live_metrics(range_start timestamptz, range_end timestamptz)
RETURNS TABLE (hour timestamptz, gateway_id text, model text, total_requests bigint, allowed bigint,
               blocked bigint, escalated bigint, total_cost numeric, p50_latency double precision,
               p99_latency double precision, total_input_tokens bigint, total_output_tokens bigint,
               redacted bigint, p90_latency double precision, p95_latency double precision)
LANGUAGE plpgsql STABLE
ROWS 100
SET search_path = pg_catalog, kt_governance_internal, pg_temp
SET jit = off
AS $fn$
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT date_trunc('hour', e."timestamp", 'UTC'), e.gateway_id, e.model, count(*),
               count(*) FILTER (WHERE e.decision = 'allowed'), count(*) FILTER (WHERE e.decision = 'blocked'),
               count(*) FILTER (WHERE e.decision = 'escalated'), sum(e.cost_usd),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY e.latency_ms),
               percentile_cont(0.99) WITHIN GROUP (ORDER BY e.latency_ms),
               sum(e.input_tokens), sum(e.output_tokens), count(*) FILTER (WHERE e.decision = 'redacted'),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY e.latency_ms),
               percentile_cont(0.95) WITHIN GROUP (ORDER BY e.latency_ms)
        FROM %s e
        WHERE e."timestamp" >= $1 AND e."timestamp" < $2
        GROUP BY 1, 2, 3$q$, '@extschema@.ai_decision_events'::regclass)
    USING range_start, range_end;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_live_metrics(timestamptz, timestamptz) IS 'Internal: governance_metrics_hourly rows computed from the raw rows in [range_start, range_end) (planned with the bounds as constants, so only their partitions are read). Runs with the caller''s rights.';

-- security_invoker: the caller's row-level security policies apply to the raw rows it reads.
-- A filter on hour reaches the rollup's key and the dirty hours' index (the live branch keys
-- its rows by the dirty hour itself, so the filter applies before any hour is computed). Every
-- name is schema-qualified and every literal typed: the view is created with the user's schema
-- (which its owner controls) first on search_path, where a look-alike must not bind.
CREATE VIEW governance_metrics_hourly WITH (security_invoker = true) AS
SELECT r.bucket AS hour, r.gateway_id, r.model, r.total_requests, r.allowed, r.blocked, r.escalated,
       r.total_cost, r.p50_latency, r.p99_latency, r.total_input_tokens, r.total_output_tokens, r.redacted,
       @extschema@.kt_histogram_quantile(r.latency_histogram, 0.9::float8) AS p90_latency,
       @extschema@.kt_histogram_quantile(r.latency_histogram, 0.95::float8) AS p95_latency
FROM kt_governance_internal.kt_rollup_metrics_hourly r
WHERE NOT (SELECT kt_governance_internal.kt_rls_applies())
  AND NOT EXISTS (SELECT FROM kt_governance_internal.kt_dirty_hours d WHERE d.bucket = r.bucket
                  AND d.bucket >= (SELECT kt_governance_internal.kt_frozen_before()))
UNION ALL
-- hours changed since the last refresh, computed live, so the view is always exact
SELECT d.bucket, m.gateway_id, m.model, m.total_requests, m.allowed, m.blocked, m.escalated,
       m.total_cost, m.p50_latency, m.p99_latency, m.total_input_tokens, m.total_output_tokens, m.redacted,
       m.p90_latency, m.p95_latency
FROM (SELECT DISTINCT bucket FROM kt_governance_internal.kt_dirty_hours
      WHERE bucket >= (SELECT kt_governance_internal.kt_frozen_before())
        AND NOT (SELECT kt_governance_internal.kt_rls_applies())) d
CROSS JOIN LATERAL kt_governance_internal.kt_live_metrics(d.bucket, d.bucket + interval '1 hour') m
UNION ALL
-- a caller limited by row-level security: every hour from the rows it may see, in one statement
SELECT v.* FROM kt_governance_internal.kt_live_metrics('-infinity'::timestamptz, 'infinity'::timestamptz) v
WHERE (SELECT kt_governance_internal.kt_rls_applies());
COMMENT ON VIEW governance_metrics_hourly IS 'The document''s hourly metrics (plus redacted, p90 and p95), always exact: refreshed hours from kt_rollup_metrics_hourly, hours changed since the last kt_refresh_metrics() computed live; for a caller limited by row-level security, every hour computed from the rows it may see. Hours are UTC hours (as the document''s view in a UTC session). Filter on hour to use the rollup''s key.';
COMMENT ON COLUMN governance_metrics_hourly.hour IS 'Start of the UTC hour.';
COMMENT ON COLUMN governance_metrics_hourly.gateway_id IS 'Gateway.';
COMMENT ON COLUMN governance_metrics_hourly.model IS 'Model.';
COMMENT ON COLUMN governance_metrics_hourly.total_requests IS 'Events in the hour.';
COMMENT ON COLUMN governance_metrics_hourly.allowed IS 'Allowed events.';
COMMENT ON COLUMN governance_metrics_hourly.blocked IS 'Blocked events.';
COMMENT ON COLUMN governance_metrics_hourly.escalated IS 'Escalated events.';
COMMENT ON COLUMN governance_metrics_hourly.total_cost IS 'SUM(cost_usd).';
COMMENT ON COLUMN governance_metrics_hourly.p50_latency IS 'Median latency_ms (PERCENTILE_CONT 0.5).';
COMMENT ON COLUMN governance_metrics_hourly.p99_latency IS '99th percentile latency_ms (PERCENTILE_CONT 0.99).';
COMMENT ON COLUMN governance_metrics_hourly.total_input_tokens IS 'SUM(input_tokens).';
COMMENT ON COLUMN governance_metrics_hourly.total_output_tokens IS 'SUM(output_tokens).';
COMMENT ON COLUMN governance_metrics_hourly.redacted IS 'Redacted events (not in the document''s view).';
COMMENT ON COLUMN governance_metrics_hourly.p90_latency IS '90th percentile latency_ms (PERCENTILE_CONT 0.9), exact (from the hour''s latency histogram; NULL for rollup rows written before 0.6.0, which have none).';
COMMENT ON COLUMN governance_metrics_hourly.p95_latency IS '95th percentile latency_ms (PERCENTILE_CONT 0.95), exact, as p90_latency.';

-- Spend per UTC day, team, model and decision, live like governance_metrics_hourly: clean days
-- from the daily rollup, days holding a dirty hour summed from their clean hours' rollup rows and
-- their dirty hours' raw rows. A UTC day is 24 hours: '1 day' added to a timestamptz is a
-- calendar day of the session's TimeZone (23 or 25 hours across a DST change).
-- The days holding a dirty hour, per every dimension the summary filters by (behind both daily
-- views: spend sums these rows over gateways): the clean hours from the hourly rollup, the dirty
-- hours from raw rows.
CREATE FUNCTION kt_governance_internal.kt_live_summary_day(day timestamptz)
RETURNS TABLE (gateway_id text, team_id text, model text, decision text, event_count bigint, total_cost numeric,
               total_input_tokens bigint, total_output_tokens bigint, latency_sum bigint, latency_count bigint)
LANGUAGE plpgsql STABLE
ROWS 100
SET search_path = pg_catalog, kt_governance_internal, pg_temp
SET jit = off
AS $fn$
DECLARE
    frozen timestamptz := kt_frozen_before();
    dirty timestamptz[] := ARRAY(SELECT DISTINCT d.bucket FROM kt_dirty_hours d
                                 WHERE d.bucket >= day AND d.bucket < day + interval '24 hours'
                                   AND d.bucket >= frozen);
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT x.gateway_id, x.team_id, x.model, x.decision, sum(x.n)::bigint, sum(x.cost), sum(x.tin)::bigint,
               sum(x.tout)::bigint, sum(x.lat_sum)::bigint, sum(x.lat_n)::bigint
        FROM (SELECT r.gateway_id, r.team_id, r.model, r.decision, r.event_count AS n, r.total_cost AS cost,
                     r.total_input_tokens AS tin, r.total_output_tokens AS tout, r.latency_sum AS lat_sum,
                     r.latency_count AS lat_n
              FROM kt_governance_internal.kt_rollup_summary_hourly r
              WHERE r.bucket >= $1 AND r.bucket < $2 AND r.bucket <> ALL ($3)
              UNION ALL
              SELECT e.gateway_id, e.team_id, e.model, e.decision, 1, e.cost_usd, e.input_tokens, e.output_tokens,
                     e.latency_ms, (e.latency_ms IS NOT NULL)::int
              FROM unnest($3) h(hour)
              JOIN %s e ON e."timestamp" >= h.hour AND e."timestamp" < h.hour + interval '1 hour'
              WHERE e."timestamp" >= $1 AND e."timestamp" < $2) x
        GROUP BY x.gateway_id, x.team_id, x.model, x.decision$q$, '@extschema@.ai_decision_events'::regclass)
    USING day, day + interval '24 hours', dirty;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_live_summary_day(timestamptz) IS 'Internal: summary rows of one UTC day per (gateway_id, team_id, model, decision): its clean hours from kt_rollup_summary_hourly, its dirty hours from raw rows (planned with the day as a constant). Runs with the caller''s rights.';

CREATE FUNCTION kt_governance_internal.kt_visible_summary_daily()
RETURNS TABLE (day timestamptz, gateway_id text, team_id text, model text, decision text, event_count bigint,
               total_cost numeric, total_input_tokens bigint, total_output_tokens bigint, latency_sum bigint,
               latency_count bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, kt_governance_internal, pg_temp
AS $fn$
BEGIN
    RETURN QUERY
    SELECT date_trunc('day', e."timestamp", 'UTC'), e.gateway_id, e.team_id, e.model, e.decision, count(*),
           sum(e.cost_usd), sum(e.input_tokens)::bigint, sum(e.output_tokens)::bigint, sum(e.latency_ms)::bigint,
           count(e.latency_ms)
    FROM @extschema@.ai_decision_events e
    GROUP BY 1, 2, 3, 4, 5;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_visible_summary_daily() IS 'Internal: every governance_summary_daily row computed from the raw rows the caller may see, for a caller limited by row-level security.';

-- (names schema-qualified, literals typed: see governance_metrics_hourly)
CREATE VIEW governance_spend_daily WITH (security_invoker = true) AS
SELECT p.day, coalesce(p.team_id, 'unassigned'::text) AS team, p.model, p.decision,
       sum(p.request_count)::bigint AS request_count, sum(p.total_input_tokens)::bigint AS total_input_tokens,
       sum(p.total_output_tokens)::bigint AS total_output_tokens, sum(p.total_cost) AS total_cost_usd
FROM (
    SELECT r.bucket AS day, r.team_id, r.model, r.decision, r.request_count, r.total_input_tokens,
           r.total_output_tokens, r.total_cost
    FROM kt_governance_internal.kt_rollup_spend_daily r
    WHERE NOT (SELECT kt_governance_internal.kt_rls_applies())
      AND NOT EXISTS (SELECT FROM kt_governance_internal.kt_dirty_hours d
                      WHERE d.bucket >= r.bucket AND d.bucket < r.bucket + interval '24 hours'
                        AND d.bucket >= (SELECT kt_governance_internal.kt_frozen_before()))
    UNION ALL
    -- (the summary's rows of the day, summed over gateways by the GROUP BY below)
    SELECT d.day, s.team_id, s.model, s.decision, s.event_count, s.total_input_tokens,
           s.total_output_tokens, s.total_cost
    FROM (SELECT DISTINCT date_trunc('day'::text, bucket, 'UTC'::text) AS day FROM kt_governance_internal.kt_dirty_hours
          WHERE bucket >= (SELECT kt_governance_internal.kt_frozen_before())
            AND NOT (SELECT kt_governance_internal.kt_rls_applies())) d
    CROSS JOIN LATERAL kt_governance_internal.kt_live_summary_day(d.day) s
    UNION ALL
    SELECT v.day, v.team_id, v.model, v.decision, v.event_count, v.total_input_tokens, v.total_output_tokens, v.total_cost
    FROM kt_governance_internal.kt_visible_summary_daily() v
    WHERE (SELECT kt_governance_internal.kt_rls_applies())
) p
GROUP BY p.day, coalesce(p.team_id, 'unassigned'::text), p.model, p.decision;
COMMENT ON VIEW governance_spend_daily IS 'Spend per UTC day, team, model and decision (the document''s spend query at a daily grain, every decision), always exact: clean days from kt_rollup_spend_daily, days changed since the last refresh from their clean hours'' rollup rows plus their changed hours'' raw rows; for a caller limited by row-level security, from the rows it may see. The document''s 30-day spend is SELECT team, model, sum(request_count), ... WHERE day >= ... AND decision = ''allowed'' GROUP BY team, model. Filter on day to use the rollup''s key.';
COMMENT ON COLUMN governance_spend_daily.day IS 'Start of the UTC day.';
COMMENT ON COLUMN governance_spend_daily.team IS 'team_id, ''unassigned'' when NULL (as the document''s query).';
COMMENT ON COLUMN governance_spend_daily.model IS 'Model.';
COMMENT ON COLUMN governance_spend_daily.decision IS 'Decision: allowed, blocked, escalated or redacted.';
COMMENT ON COLUMN governance_spend_daily.request_count IS 'Events.';
COMMENT ON COLUMN governance_spend_daily.total_input_tokens IS 'SUM(input_tokens).';
COMMENT ON COLUMN governance_spend_daily.total_output_tokens IS 'SUM(output_tokens).';
COMMENT ON COLUMN governance_spend_daily.total_cost_usd IS 'SUM(cost_usd).';

-- The daily summary with every dimension it filters by, live like governance_spend_daily
-- (its live parts, kt_live_summary_day and kt_visible_summary_daily, are defined before it).
-- (names schema-qualified, literals typed: see governance_metrics_hourly)
CREATE VIEW governance_summary_daily WITH (security_invoker = true) AS
SELECT p.day, p.decision, p.gateway_id, p.team_id, p.model,
       sum(p.event_count)::bigint AS event_count, sum(p.total_cost) AS total_cost,
       sum(p.latency_sum) / nullif(sum(p.latency_count), 0::numeric) AS avg_latency_ms,
       (sum(p.total_input_tokens) + sum(p.total_output_tokens))::bigint AS total_tokens,
       sum(p.total_input_tokens)::bigint AS total_input_tokens, sum(p.total_output_tokens)::bigint AS total_output_tokens,
       sum(p.latency_sum)::bigint AS total_latency_ms, sum(p.latency_count)::bigint AS latency_count
FROM (
    SELECT r.bucket AS day, r.gateway_id, r.team_id, r.model, r.decision, r.event_count, r.total_cost,
           r.total_input_tokens, r.total_output_tokens, r.latency_sum, r.latency_count
    FROM kt_governance_internal.kt_rollup_summary_daily r
    WHERE NOT (SELECT kt_governance_internal.kt_rls_applies())
      AND NOT EXISTS (SELECT FROM kt_governance_internal.kt_dirty_hours d
                      WHERE d.bucket >= r.bucket AND d.bucket < r.bucket + interval '24 hours'
                        AND d.bucket >= (SELECT kt_governance_internal.kt_frozen_before()))
    UNION ALL
    SELECT d.day, s.gateway_id, s.team_id, s.model, s.decision, s.event_count, s.total_cost,
           s.total_input_tokens, s.total_output_tokens, s.latency_sum, s.latency_count
    FROM (SELECT DISTINCT date_trunc('day'::text, bucket, 'UTC'::text) AS day FROM kt_governance_internal.kt_dirty_hours
          WHERE bucket >= (SELECT kt_governance_internal.kt_frozen_before())
            AND NOT (SELECT kt_governance_internal.kt_rls_applies())) d
    CROSS JOIN LATERAL kt_governance_internal.kt_live_summary_day(d.day) s
    UNION ALL
    SELECT v.* FROM kt_governance_internal.kt_visible_summary_daily() v
    WHERE (SELECT kt_governance_internal.kt_rls_applies())
) p
GROUP BY p.day, p.decision, p.gateway_id, p.team_id, p.model;
COMMENT ON VIEW governance_summary_daily IS 'Daily governance summary per UTC day, decision, gateway, team and model (the document''s summary with the dimensions it is filtered by), always exact: clean days from kt_rollup_summary_daily, days changed since the last refresh from their clean hours'' rollup rows plus their changed hours'' raw rows; for a caller limited by row-level security, from the rows it may see. The document''s 30-day summary is SELECT day, decision, sum(event_count), sum(total_cost), sum(total_latency_ms) / sum(latency_count), sum(total_tokens) ... WHERE day >= ... GROUP BY day, decision. Filter on day (and on gateway_id, team_id, model) to use the rollup''s key.';
COMMENT ON COLUMN governance_summary_daily.day IS 'Start of the UTC day (kt_governance_summary(tz => ...) cuts days in other zones).';
COMMENT ON COLUMN governance_summary_daily.decision IS 'Decision: allowed, blocked, escalated or redacted.';
COMMENT ON COLUMN governance_summary_daily.gateway_id IS 'Gateway.';
COMMENT ON COLUMN governance_summary_daily.team_id IS 'Team; NULL for events without one (as stored, so that team_id = ... filters as kt_governance_summary(team_id => ...) does).';
COMMENT ON COLUMN governance_summary_daily.model IS 'Model.';
COMMENT ON COLUMN governance_summary_daily.event_count IS 'Events.';
COMMENT ON COLUMN governance_summary_daily.total_cost IS 'SUM(cost_usd); NULL when every cost was NULL.';
COMMENT ON COLUMN governance_summary_daily.avg_latency_ms IS 'AVG(latency_ms) over non-null latencies; across rows use sum(total_latency_ms) / sum(latency_count).';
COMMENT ON COLUMN governance_summary_daily.total_tokens IS 'SUM(input_tokens + output_tokens).';
COMMENT ON COLUMN governance_summary_daily.total_input_tokens IS 'SUM(input_tokens).';
COMMENT ON COLUMN governance_summary_daily.total_output_tokens IS 'SUM(output_tokens).';
COMMENT ON COLUMN governance_summary_daily.total_latency_ms IS 'SUM(latency_ms).';
COMMENT ON COLUMN governance_summary_daily.latency_count IS 'COUNT(latency_ms): events with a known latency.';

-- Policy evaluations per hour, policy and result, live like governance_metrics_hourly.
CREATE FUNCTION kt_governance_internal.kt_live_policy(range_start timestamptz, range_end timestamptz,
                                                       through_events boolean DEFAULT false)
RETURNS TABLE (hour timestamptz, policy_name text, result text, evaluation_count bigint,
               latency_sum bigint, latency_count bigint)
LANGUAGE plpgsql STABLE
ROWS 100
SET search_path = pg_catalog, kt_governance_internal, pg_temp
SET jit = off
AS $fn$
BEGIN
    -- an hour's evaluations through its events' index and their key (see kt_raw_evaluations),
    -- or, for a caller limited by row-level security, every evaluation it may see
    IF through_events THEN
        RETURN QUERY EXECUTE format($q$
            SELECT date_trunc('hour', pe.event_timestamp, 'UTC'), pe.policy_name, pe.result, count(*),
                   sum(pe.latency_ms)::bigint, count(pe.latency_ms)
            FROM %s e
            JOIN %s pe ON pe.event_id = e.id AND pe.event_timestamp = e."timestamp"
            WHERE e."timestamp" >= $1 AND e."timestamp" < $2 AND pe.event_timestamp >= $1 AND pe.event_timestamp < $2
            GROUP BY 1, 2, 3$q$, '@extschema@.ai_decision_events'::regclass, '@extschema@.policy_evaluations'::regclass)
        USING range_start, range_end;
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format($q$
        SELECT date_trunc('hour', pe.event_timestamp, 'UTC'), pe.policy_name, pe.result, count(*),
               sum(pe.latency_ms)::bigint, count(pe.latency_ms)
        FROM %s pe
        WHERE pe.event_timestamp >= $1 AND pe.event_timestamp < $2
        GROUP BY 1, 2, 3$q$, '@extschema@.policy_evaluations'::regclass)
    USING range_start, range_end;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_live_policy(timestamptz, timestamptz, boolean) IS 'Internal: kt_rollup_policy_hourly rows computed from the raw evaluations whose event_timestamp is in [range_start, range_end) (planned with the bounds as constants); through_events finds them through their events'' index (for callers no row-level security limits). Runs with the caller''s rights.';

-- (names schema-qualified, literals typed: see governance_metrics_hourly)
CREATE VIEW governance_policy_hourly WITH (security_invoker = true) AS
SELECT p.hour, p.policy_name, p.result, p.evaluation_count,
       CASE WHEN p.result = 'block'::text THEN p.evaluation_count ELSE 0::bigint END AS block_count,
       p.latency_sum AS total_latency_ms, p.latency_count,
       round(p.latency_sum::numeric / nullif(p.latency_count, 0::bigint), 2) AS avg_latency_ms
FROM (
    SELECT r.bucket AS hour, r.policy_name, r.result, r.evaluation_count, r.latency_sum, r.latency_count
    FROM kt_governance_internal.kt_rollup_policy_hourly r
    WHERE NOT (SELECT kt_governance_internal.kt_rls_applies())
      AND NOT EXISTS (SELECT FROM kt_governance_internal.kt_dirty_hours d WHERE d.bucket = r.bucket
                      AND d.bucket >= (SELECT kt_governance_internal.kt_frozen_before()))
    UNION ALL
    SELECT d.bucket, l.policy_name, l.result, l.evaluation_count, l.latency_sum, l.latency_count
    FROM (SELECT DISTINCT bucket FROM kt_governance_internal.kt_dirty_hours
          WHERE bucket >= (SELECT kt_governance_internal.kt_frozen_before())
            AND NOT (SELECT kt_governance_internal.kt_rls_applies())) d
    CROSS JOIN LATERAL kt_governance_internal.kt_live_policy(d.bucket, d.bucket + interval '1 hour', true) l
    UNION ALL
    SELECT v.* FROM kt_governance_internal.kt_live_policy('-infinity'::timestamptz, 'infinity'::timestamptz) v
    WHERE (SELECT kt_governance_internal.kt_rls_applies())
) p;
COMMENT ON VIEW governance_policy_hourly IS 'Policy effectiveness per UTC hour, policy and result, always exact: refreshed hours from kt_rollup_policy_hourly, hours changed since the last kt_refresh_metrics() computed live; for a caller limited by row-level security, from the rows it may see. The document''s 7-day report is SELECT policy_name, result, sum(evaluation_count), sum(block_count) ... WHERE hour >= ... GROUP BY policy_name, result. Filter on hour to use the rollup''s key.';
COMMENT ON COLUMN governance_policy_hourly.hour IS 'Start of the UTC hour of the evaluated events'' "timestamp" (the document''s report filters on the event''s time).';
COMMENT ON COLUMN governance_policy_hourly.policy_name IS 'Policy.';
COMMENT ON COLUMN governance_policy_hourly.result IS 'Result: pass, block, redact, flag or escalate.';
COMMENT ON COLUMN governance_policy_hourly.evaluation_count IS 'Evaluations.';
COMMENT ON COLUMN governance_policy_hourly.block_count IS 'Evaluations with result block (evaluation_count on block rows, 0 otherwise), so that sum(block_count) / sum(evaluation_count) over a policy''s rows is its block rate.';
COMMENT ON COLUMN governance_policy_hourly.total_latency_ms IS 'SUM(latency_ms); with latency_count, averages over many hours.';
COMMENT ON COLUMN governance_policy_hourly.latency_count IS 'COUNT(latency_ms): evaluations with a known latency.';
COMMENT ON COLUMN governance_policy_hourly.avg_latency_ms IS 'AVG(latency_ms) in the hour, 2 decimals.';

-- Hourly anomaly status: each UTC hour's block rate against the 48 hours before it. The
-- document's query judges the hours of one 48-hour window against that window (a report:
-- kt_anomalies); a view's rows must not change with the time it is read, so here each hour has
-- its own trailing baseline. The hour's counts and the baseline's come from one exact per-hour
-- view of blocked and total events (rollup rows, dirty hours live), read once for the hours a
-- query selects and once per hour for its baseline (48 index-range reads of the decisions
-- rollup): a filter on hour bounds both.
CREATE FUNCTION kt_governance_internal.kt_live_blocks(range_start timestamptz, range_end timestamptz)
RETURNS TABLE (hour timestamptz, total bigint, blocked bigint)
LANGUAGE plpgsql STABLE
-- called once per dirty hour, returning one row: a larger estimate multiplied by the baseline's
-- per-hour cost pushed a whole-view read past jit_above_cost (seconds of JIT for 0.1 s of work)
ROWS 1
SET search_path = pg_catalog, kt_governance_internal, pg_temp
SET jit = off
AS $fn$
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT date_trunc('hour', e."timestamp", 'UTC'), count(*), count(*) FILTER (WHERE e.decision = 'blocked')
        FROM %s e
        WHERE e."timestamp" >= $1 AND e."timestamp" < $2
        GROUP BY 1$q$, '@extschema@.ai_decision_events'::regclass)
    USING range_start, range_end;
END
$fn$;
COMMENT ON FUNCTION kt_governance_internal.kt_live_blocks(timestamptz, timestamptz) IS 'Internal: events and blocked events per UTC hour computed from the raw rows in [range_start, range_end). Runs with the caller''s rights.';

CREATE VIEW kt_governance_internal.kt_blocks_hourly WITH (security_invoker = true) AS
SELECT r.bucket AS hour, sum(r.event_count)::bigint AS total,
       coalesce(sum(r.event_count) FILTER (WHERE r.decision = 'blocked'::text), 0::numeric)::bigint AS blocked
FROM kt_governance_internal.kt_rollup_decisions_hourly r
WHERE NOT (SELECT kt_governance_internal.kt_rls_applies())
  AND NOT EXISTS (SELECT FROM kt_governance_internal.kt_dirty_hours d WHERE d.bucket = r.bucket
                  AND d.bucket >= (SELECT kt_governance_internal.kt_frozen_before()))
GROUP BY r.bucket
UNION ALL
SELECT d.bucket, l.total, l.blocked
FROM (SELECT DISTINCT bucket FROM kt_governance_internal.kt_dirty_hours
      WHERE bucket >= (SELECT kt_governance_internal.kt_frozen_before())
        AND NOT (SELECT kt_governance_internal.kt_rls_applies())) d
CROSS JOIN LATERAL kt_governance_internal.kt_live_blocks(d.bucket, d.bucket + interval '1 hour') l
UNION ALL
SELECT v.* FROM kt_governance_internal.kt_live_blocks('-infinity'::timestamptz, 'infinity'::timestamptz) v
WHERE (SELECT kt_governance_internal.kt_rls_applies());
COMMENT ON VIEW kt_governance_internal.kt_blocks_hourly IS 'Internal: events and blocked events per UTC hour, exact (refreshed hours from kt_rollup_decisions_hourly, dirty hours live, every hour live for a caller limited by row-level security); behind governance_anomalies_hourly.';
COMMENT ON COLUMN kt_governance_internal.kt_blocks_hourly.hour IS 'Start of the UTC hour.';
COMMENT ON COLUMN kt_governance_internal.kt_blocks_hourly.total IS 'Events.';
COMMENT ON COLUMN kt_governance_internal.kt_blocks_hourly.blocked IS 'Blocked events.';

CREATE VIEW governance_anomalies_hourly WITH (security_invoker = true) AS
SELECT h.hour, h.total, h.blocked,
       round((h.blocked::float8 / nullif(h.total, 0::bigint))::numeric, 4) AS block_rate,
       b.hours AS baseline_hours, b.mean AS baseline_mean, b.stddev AS baseline_stddev,
       CASE WHEN b.stddev > 0::float8 THEN (h.blocked::float8 / nullif(h.total, 0::bigint) - b.mean) / b.stddev END AS z_score,
       CASE WHEN h.blocked::float8 / nullif(h.total, 0::bigint) > b.mean + 2::float8 * b.stddev
            THEN 'ANOMALY'::text ELSE 'normal'::text END AS status
FROM kt_governance_internal.kt_blocks_hourly h
CROSS JOIN LATERAL (
    SELECT count(x.total) AS hours, avg(x.blocked::float8 / nullif(x.total, 0::bigint)) AS mean,
           stddev(x.blocked::float8 / nullif(x.total, 0::bigint)) AS stddev
    FROM kt_governance_internal.kt_blocks_hourly x
    WHERE x.hour >= h.hour - interval '48 hours' AND x.hour < h.hour) b;
COMMENT ON VIEW governance_anomalies_hourly IS 'Block-rate anomaly status per UTC hour, always exact: the hour is ANOMALY when its block rate exceeds the mean plus 2 standard deviations of the hourly block rates of the 48 hours before it (the document''s rule, with a trailing baseline so an hour''s status does not depend on when it is read; kt_anomalies() judges a window against itself as the document does, and takes sigma, series and other baselines). Hours with no events have no row and are not in any baseline. Filter on hour: both the hours and their baselines are read by the rollup''s key.';
COMMENT ON COLUMN governance_anomalies_hourly.hour IS 'Start of the UTC hour.';
COMMENT ON COLUMN governance_anomalies_hourly.total IS 'Events in the hour.';
COMMENT ON COLUMN governance_anomalies_hourly.blocked IS 'Blocked events in the hour.';
COMMENT ON COLUMN governance_anomalies_hourly.block_rate IS 'blocked / total, 4 decimals (as the document''s query).';
COMMENT ON COLUMN governance_anomalies_hourly.baseline_hours IS 'Hours with events among the 48 before this one: the baseline''s sample.';
COMMENT ON COLUMN governance_anomalies_hourly.baseline_mean IS 'Mean hourly block rate of the baseline hours (NULL without any).';
COMMENT ON COLUMN governance_anomalies_hourly.baseline_stddev IS 'Sample standard deviation of the baseline hours'' block rates (NULL with fewer than 2).';
COMMENT ON COLUMN governance_anomalies_hourly.z_score IS '(block_rate - baseline_mean) / baseline_stddev, unrounded; NULL when the deviation is 0 or unknown.';
COMMENT ON COLUMN governance_anomalies_hourly.status IS 'ANOMALY when block_rate > baseline_mean + 2 * baseline_stddev, else normal (also when the baseline is unknown).';

REVOKE ALL ON FUNCTION kt_refresh_metrics(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kt_refresh_metrics(timestamptz) TO kt_governance_admin;
GRANT SELECT ON governance_metrics_hourly, governance_spend_daily, governance_policy_hourly, governance_anomalies_hourly,
                governance_summary_daily, kt_rollup_summary_hourly, kt_rollup_summary_daily,
                kt_governance_internal.kt_blocks_hourly, kt_rollup_metrics_hourly,
                kt_rollup_state, kt_rollup_decisions_hourly, kt_rollup_spend_hourly, kt_rollup_spend_daily,
                kt_rollup_policy_hourly, kt_dirty_hours, kt_rollup_deltas, kt_latency_deltas,
                kt_policy_deltas TO kt_governance_reader;
-- No role writes these: writers' transactions record their dirty hours and deltas at commit as
-- the extension owner (src/owner.rs), so a writer cannot forge report numbers.
