"""Benchmark harness: every operation timed against the document's plain-SQL way in one run.

Two databases in one tuned cluster (started by run.sh): `ext` with kt_governance, `plain` with
the document's schema (unpartitioned tables, its indexes, its materialized view with the
unique index REFRESH ... CONCURRENTLY needs). The same generated events go into both. Each
timed extension result is compared with the plain-SQL result of the same operation (rows and
sums), so a fast wrong answer fails the run.
"""

import json
import os
import platform
import statistics
import sys
import threading
import time

import psycopg

N = int(os.environ.get("KT_BENCH_EVENTS", "1000000"))
DAYS = 60  # so that retention of the oldest month is a real month
REPEATS = int(os.environ.get("KT_BENCH_REPEATS", "3"))
# daily partitions: at this volume (~170k events a day at 10M) a partition's indexes stay small
# enough to be cached while COPY fills them; kt_governance.partition_interval sets it for good
PARTITIONS = os.environ.get("KT_BENCH_PARTITIONS", "daily")
SOCKET, PORT = os.environ["KT_SOCKET_DIR"], os.environ["KT_PORT"]
CSV_DIR = os.environ["KT_BENCH_DIR"]
OUT = os.environ.get("KT_BENCH_OUT", os.path.join(CSV_DIR, "results.md"))

PLAIN_SCHEMA = """
CREATE TABLE ai_decision_events (
    id TEXT PRIMARY KEY, timestamp TIMESTAMPTZ NOT NULL, decision TEXT NOT NULL, model TEXT NOT NULL,
    provider TEXT NOT NULL, gateway_id TEXT NOT NULL, user_id TEXT, team_id TEXT,
    input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd NUMERIC(12, 6), latency_ms INTEGER, request_source TEXT, batch_id TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW());
CREATE TABLE policy_evaluations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES ai_decision_events(id),
    policy_name TEXT NOT NULL, result TEXT NOT NULL, latency_ms INTEGER, details JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW());
CREATE INDEX idx_events_timestamp ON ai_decision_events (timestamp DESC);
CREATE INDEX idx_events_decision ON ai_decision_events (decision, timestamp DESC);
CREATE INDEX idx_events_gateway ON ai_decision_events (gateway_id, timestamp DESC);
CREATE INDEX idx_events_user ON ai_decision_events (user_id, timestamp DESC);
CREATE INDEX idx_events_team ON ai_decision_events (team_id, timestamp DESC);
CREATE INDEX idx_evaluations_event ON policy_evaluations (event_id);
CREATE INDEX idx_evaluations_policy ON policy_evaluations (policy_name, result);
"""
PLAIN_MV = """
CREATE MATERIALIZED VIEW governance_metrics_hourly AS
SELECT date_trunc('hour', timestamp) AS hour, gateway_id, model, COUNT(*) AS total_requests,
       COUNT(*) FILTER (WHERE decision = 'allowed') AS allowed,
       COUNT(*) FILTER (WHERE decision = 'blocked') AS blocked,
       COUNT(*) FILTER (WHERE decision = 'escalated') AS escalated,
       SUM(cost_usd) AS total_cost,
       PERCENTILE_CONT(0.50) WITHIN GROUP (ORDER BY latency_ms) AS p50_latency,
       PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99_latency,
       SUM(input_tokens) AS total_input_tokens, SUM(output_tokens) AS total_output_tokens
FROM ai_decision_events GROUP BY hour, gateway_id, model;
CREATE UNIQUE INDEX governance_metrics_hourly_key ON governance_metrics_hourly (hour, gateway_id, model);
"""
# The document's queries use NOW(); both sides are run against one fixed instant T instead, so
# that their results can be compared row for row (a moving now() shifts the window's edge).
DOC = {
    "summary": """SELECT date_trunc('day', timestamp) AS day, decision, COUNT(*), SUM(cost_usd), AVG(latency_ms),
                  SUM(input_tokens + output_tokens) FROM ai_decision_events
                  WHERE timestamp >= {T} - INTERVAL '30 days' GROUP BY day, decision ORDER BY day DESC, decision""",
    "spend": """SELECT COALESCE(team_id, 'unassigned') AS team, model, COUNT(*), SUM(input_tokens), SUM(output_tokens),
                SUM(cost_usd) AS total_cost_usd FROM ai_decision_events
                WHERE timestamp >= {T} - INTERVAL '30 days' AND decision = 'allowed'
                GROUP BY team_id, model ORDER BY total_cost_usd DESC""",
    "policy": """SELECT pe.policy_name, pe.result, COUNT(*), COUNT(*) FILTER (WHERE pe.result = 'block') AS block_count,
                 ROUND(100.0 * COUNT(*) FILTER (WHERE pe.result = 'block') / COUNT(*), 2)
                 FROM policy_evaluations pe JOIN ai_decision_events e ON pe.event_id = e.id
                 WHERE e.timestamp >= {T} - INTERVAL '7 days' GROUP BY pe.policy_name, pe.result ORDER BY block_count DESC""",
    "summary_team": """SELECT date_trunc('day', timestamp) AS day, decision, COUNT(*), SUM(cost_usd), AVG(latency_ms),
                  SUM(input_tokens + output_tokens) FROM ai_decision_events
                  WHERE timestamp >= {T} - INTERVAL '30 days' AND team_id = 'search' GROUP BY day, decision ORDER BY day DESC, decision""",
    "summary_kolkata": """SELECT date_trunc('day', timestamp, 'Asia/Kolkata') AS day, decision, COUNT(*), SUM(cost_usd), AVG(latency_ms),
                  SUM(input_tokens + output_tokens) FROM ai_decision_events
                  WHERE timestamp >= {T} - INTERVAL '30 days' GROUP BY day, decision ORDER BY day DESC, decision""",
    # the views' equivalents over raw rows (no documented query): a BI tool's 7-day / 24-hour reads
    "summary_view": """SELECT date_trunc('day', timestamp, 'UTC'), decision, gateway_id, team_id, model, COUNT(*), SUM(cost_usd)
                       FROM ai_decision_events WHERE timestamp >= date_trunc('day', {T}, 'UTC') - INTERVAL '7 days'
                       GROUP BY 1, 2, 3, 4, 5""",
    "policy_view": """SELECT date_trunc('hour', e.timestamp, 'UTC'), pe.policy_name, pe.result, COUNT(*)
                      FROM policy_evaluations pe JOIN ai_decision_events e ON pe.event_id = e.id
                      WHERE e.timestamp >= date_trunc('hour', {T}, 'UTC') - INTERVAL '24 hours' GROUP BY 1, 2, 3""",
    "anomalies_view": """WITH hourly AS (
                           SELECT date_trunc('hour', timestamp, 'UTC') AS hour, COUNT(*) AS total,
                                  COUNT(*) FILTER (WHERE decision = 'blocked') AS blocked
                           FROM ai_decision_events WHERE timestamp >= date_trunc('hour', {T}, 'UTC') - INTERVAL '72 hours' GROUP BY 1),
                         judged AS (
                           SELECT h.*, h.blocked::float8 / h.total AS rate, avg(h.blocked::float8 / h.total) OVER w AS mean,
                                  stddev(h.blocked::float8 / h.total) OVER w AS sd
                           FROM hourly h
                           WINDOW w AS (ORDER BY h.hour RANGE BETWEEN interval '48 hours' PRECEDING AND CURRENT ROW EXCLUDE CURRENT ROW))
                         SELECT hour, total, blocked, round(rate::numeric, 4), CASE WHEN rate > mean + 2 * sd THEN 'ANOMALY' ELSE 'normal' END
                         FROM judged WHERE hour >= date_trunc('hour', {T}, 'UTC') - INTERVAL '24 hours'""",
    "anomalies": """WITH hourly_stats AS (
                      SELECT date_trunc('hour', timestamp) AS hour, COUNT(*) AS total,
                             COUNT(*) FILTER (WHERE decision = 'blocked') AS blocked
                      FROM ai_decision_events WHERE timestamp >= {T} - INTERVAL '48 hours' GROUP BY hour),
                    baseline AS (SELECT AVG(blocked::FLOAT / NULLIF(total, 0)) AS a, STDDEV(blocked::FLOAT / NULLIF(total, 0)) AS s FROM hourly_stats)
                    SELECT h.hour, h.total, h.blocked, ROUND((h.blocked::FLOAT / NULLIF(h.total, 0))::NUMERIC, 4),
                           CASE WHEN (h.blocked::FLOAT / NULLIF(h.total, 0)) > b.a + 2 * b.s THEN 'ANOMALY' ELSE 'normal' END
                    FROM hourly_stats h, baseline b ORDER BY h.hour DESC""",
}
EXT = {
    "summary": "SELECT * FROM kt_governance_summary(start_time => {T} - interval '30 days')",
    "spend": "SELECT * FROM kt_spend_by_team_model(start_time => {T} - interval '30 days')",
    "policy": "SELECT * FROM kt_policy_effectiveness_by_result(start_time => {T} - interval '7 days')",
    "anomalies": "SELECT hour, total, blocked, block_rate, status FROM kt_anomalies(start_time => {T} - interval '48 hours')",
    "summary_team": "SELECT * FROM kt_governance_summary(start_time => {T} - interval '30 days', team_id => 'search')",
    "summary_kolkata": "SELECT * FROM kt_governance_summary(start_time => {T} - interval '30 days', tz => 'Asia/Kolkata')",
    "summary_view": """SELECT day, decision, gateway_id, team_id, model, event_count, total_cost FROM governance_summary_daily
                       WHERE day >= date_trunc('day', {T}, 'UTC') - interval '7 days'""",
    "policy_view": """SELECT hour, policy_name, result, evaluation_count FROM governance_policy_hourly
                      WHERE hour >= date_trunc('hour', {T}, 'UTC') - interval '24 hours'""",
    "anomalies_view": """SELECT hour, total, blocked, block_rate, status FROM governance_anomalies_hourly
                         WHERE hour >= date_trunc('hour', {T}, 'UTC') - interval '24 hours'""",
}
LABELS = {"summary": "daily summary, 30 days", "spend": "spend by team and model, 30 days",
          "policy": "policy effectiveness, 7 days", "anomalies": "anomalies, 48 hours",
          "summary_team": "daily summary, 30 days, team filter",
          "summary_kolkata": "daily summary, 30 days, Asia/Kolkata",
          "summary_view": "governance_summary_daily, 7 days (vs GROUP BY over raw rows)",
          "policy_view": "governance_policy_hourly, 24 hours (vs the document's join per hour)",
          "anomalies_view": "governance_anomalies_hourly, 24 hours (vs window functions over raw rows)"}
METRICS = "SELECT hour, gateway_id, model, total_requests, allowed, blocked, escalated, total_cost, p50_latency, p99_latency, total_input_tokens, total_output_tokens FROM governance_metrics_hourly"

rows = []  # (operation, plain seconds, extension seconds, note)
failures = []


def connect(db):
    return psycopg.connect(host=SOCKET, port=PORT, user="postgres", dbname=db, autocommit=True)


def timed(conn, sql, params=None):
    start = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(sql, params)
        result = cur.fetchall() if cur.description else None
    return time.perf_counter() - start, result


def median_of(conn, sql, prepare=None):
    times, result = [], None
    for _ in range(REPEATS):
        if prepare:
            prepare()
        seconds, result = timed(conn, sql)
        times.append(seconds)
    return statistics.median(times), result


def same(name, a, b):
    # (sorted by repr: rows may hold NULLs, which Python does not order against strings)
    if sorted(map(tuple, a or []), key=repr) != sorted(map(tuple, b or []), key=repr):
        failures.append(f"{name}: extension and plain SQL disagree ({len(a or [])} vs {len(b or [])} rows)")
        return False
    return True


def record(op, plain_s, ext_s, note=""):
    rows.append((op, plain_s, ext_s, note))
    print(f"  {op}: plain {plain_s:.3f}s, extension {ext_s:.3f}s ({plain_s / ext_s:.1f}x) {note}", flush=True)


def recent_events_sql(count, seed, end):
    """The SELECT of count new events squeezed into the hour before end (the columns in table order)."""
    return f"""SELECT id || '-r{seed}' AS id, '{end}'::timestamptz - ('{end}'::timestamptz - "timestamp") / 24 AS "timestamp",
                      decision, model, provider, gateway_id, user_id, team_id, input_tokens, output_tokens, cost_usd,
                      latency_ms, request_source, batch_id, created_at
               FROM kt_sample_events({count}, 1, {seed}, '{end}')"""


def recent_batch(conn, count, seed):
    """count new events (with evaluations) squeezed into the last hour, as CSV files, and the
    instant they end at."""
    end = timed(conn, "SELECT now()::text")[1][0][0]  # one instant for both files
    sel = recent_events_sql(count, seed, end)
    ev = os.path.join(CSV_DIR, f"recent_{seed}.csv")
    pe = os.path.join(CSV_DIR, f"recent_{seed}_eval.csv")
    with conn.cursor() as cur:
        cur.execute(f"COPY ({sel}) TO '{ev}' WITH (FORMAT csv)")
        cur.execute(f"""COPY (SELECT event_id || '-r{seed}', '{end}'::timestamptz - ('{end}'::timestamptz - event_timestamp) / 24,
                               policy_name, result, latency_ms, details
                        FROM kt_sample_evaluations({count}, 1, {seed}, '{end}')) TO '{pe}' WITH (FORMAT csv)""")
    return ev, pe, end


def json_batch(conn, count, seed, end):
    """count new events (seed makes their ids) before end, as one kt_ingest JSON array."""
    with conn.cursor() as cur:
        cur.execute(f"""SELECT jsonb_agg(jsonb_build_object('id', id, 'timestamp', "timestamp", 'decision', decision,
                            'model', model, 'provider', provider, 'gateway_id', gateway_id, 'user_id', user_id, 'team_id', team_id,
                            'input_tokens', input_tokens, 'output_tokens', output_tokens, 'cost_usd', cost_usd,
                            'latency_ms', latency_ms))::text FROM ({recent_events_sql(count, seed, end)}) r""")
        return cur.fetchone()[0]


def ingest_sessions(docs, sessions):
    """Seconds for `sessions` connections to kt_ingest the documents between them at once."""
    conns = [connect("ext") for _ in range(sessions)]
    stored = [0] * sessions

    def send(k):
        with conns[k].cursor() as cur:
            for doc in docs[k::sessions]:
                cur.execute("SELECT inserted FROM kt_ingest(%s::jsonb)", (doc,))
                stored[k] += cur.fetchone()[0]

    threads = [threading.Thread(target=send, args=(k,)) for k in range(sessions)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    for c in conns:
        c.close()
    expected = sum(len(json.loads(d)) for d in docs)
    if sum(stored) != expected:
        failures.append(f"kt_ingest from {sessions} sessions stored {sum(stored)} of {expected}")
    return seconds


def load(conn, events_csv, evals_csv, ext):
    evcols = "(event_id, event_timestamp, policy_name, result, latency_ms, details)" if ext else "(event_id, policy_name, result, latency_ms, details)"
    with conn.cursor() as cur:
        t0 = time.perf_counter()
        cur.execute(f"COPY ai_decision_events FROM '{events_csv}' WITH (FORMAT csv)")
        t1 = time.perf_counter()
        if ext:
            cur.execute(f"COPY policy_evaluations {evcols} FROM '{evals_csv}' WITH (FORMAT csv)")
        else:
            # the plain schema has no event_timestamp column: drop it on the way in
            cur.execute("CREATE TEMP TABLE ev_in (event_id text, event_timestamp timestamptz, policy_name text, result text, latency_ms int, details jsonb)")
            cur.execute(f"COPY ev_in FROM '{evals_csv}' WITH (FORMAT csv)")
            cur.execute("INSERT INTO policy_evaluations (event_id, policy_name, result, latency_ms, details) SELECT event_id, policy_name, result, latency_ms, details FROM ev_in")
            cur.execute("DROP TABLE ev_in")
    return t1 - t0


def first_load(plain, events_csv, evals_csv, plain_load, premake_past=None):
    """A new user's first load, in a database of its own: CREATE EXTENSION, COPY of the 60 days
    of history (events and evaluations) and nothing else, then the move of whatever waits in the
    default partition, which the worker's maintenance makes. With the default settings the
    install's past partitions (kt_governance.premake_past) hold the history; premake_past = 0
    sends everything older than this month to the default partition, to measure the move.
    Against the COPY of the same files into the document's plain tables."""
    plain.execute("DROP DATABASE IF EXISTS fresh")
    plain.execute("CREATE DATABASE fresh")
    fresh = connect("fresh")
    setting = "default settings" if premake_past is None else f"premake_past = {premake_past}"
    if premake_past is not None:
        fresh.execute(f"SET kt_governance.premake_past = {premake_past}")
    t0 = time.perf_counter()
    fresh.execute("CREATE EXTENSION kt_governance")
    load(fresh, events_csv, evals_csv, ext=True)
    loaded = time.perf_counter() - t0
    this_month_in_default = timed(fresh, """SELECT count(*) FROM ONLY kt_governance_partitions.events_default
                                          WHERE "timestamp" >= date_trunc('month', now(), 'UTC')""")[1][0][0]
    if this_month_in_default:
        failures.append(f"first load: {this_month_in_default} events of this month in the default partition")
    # the report right after the COPY, before any refresh (every hour is still dirty)
    instant = "'" + timed(fresh, "SELECT now()::text")[1][0][0] + "'::timestamptz"
    p_s, p_rows = median_of(plain, DOC["summary"].replace("{T}", instant))
    e_s, e_rows = median_of(fresh, EXT["summary"].replace("{T}", instant))
    ok = same("summary after the first COPY", e_rows, p_rows)
    record(f"daily summary right after the first COPY, no refresh yet ({setting})", p_s, e_s, "" if ok else "MISMATCH")
    dirty_before = timed(fresh, "SELECT count(*) FROM kt_governance_internal.kt_dirty_hours")[1][0][0]
    moved_s, moved = timed(fresh, "SELECT rows_moved, rows_left_in_default FROM kt_run_maintenance()")
    dirty_after = timed(fresh, "SELECT count(*) FROM kt_governance_internal.kt_dirty_hours")[1][0][0]
    if dirty_after != dirty_before or moved[0][1] != 0:
        failures.append(f"first load: the move dirtied {dirty_after - dirty_before} hours, left {moved[0][1]} rows")
    record(f"first load ({setting}): CREATE EXTENSION + COPY {N} events over {DAYS} days + move of {moved[0][0]:,} out of the default",
           plain_load, loaded + moved_s, f"COPY {loaded:.1f}s + move {moved_s:.1f}s; vs COPY into the plain tables")
    fresh.close()
    plain.execute("DROP DATABASE fresh")


def main():
    ext, plain = connect("ext"), connect("plain")
    with ext.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS kt_governance")
        cur.execute(f"ALTER DATABASE ext SET kt_governance.partition_interval = '{PARTITIONS}'")
        cur.execute(f"SET kt_governance.partition_interval = '{PARTITIONS}'")
        cur.execute(f"SELECT count(*) FROM kt_create_partitions(now() - interval '{DAYS + 1} days', now() + interval '2 days')")
        cur.execute("SELECT version(), current_setting('shared_buffers'), current_setting('max_wal_size')")
        version, shared_buffers, wal = cur.fetchone()
    with plain.cursor() as cur:
        cur.execute(PLAIN_SCHEMA)
    events_csv = os.path.join(CSV_DIR, "events.csv")
    evals_csv = os.path.join(CSV_DIR, "evaluations.csv")
    end = timed(ext, "SELECT now()::text")[1][0][0]  # one instant for both files
    with ext.cursor() as cur:
        cur.execute(f"COPY (SELECT * FROM kt_sample_events({N}, {DAYS}, 42, '{end}')) TO '{events_csv}' WITH (FORMAT csv)")
        cur.execute(f"COPY (SELECT * FROM kt_sample_evaluations({N}, {DAYS}, 42, '{end}')) TO '{evals_csv}' WITH (FORMAT csv)")

    print(f"loading {N} events over {DAYS} days into both databases", flush=True)
    t0 = time.perf_counter()
    plain_copy = load(plain, events_csv, evals_csv, ext=False)
    plain_load = time.perf_counter() - t0
    first_load(plain, events_csv, evals_csv, plain_load)
    first_load(plain, events_csv, evals_csv, plain_load, premake_past=0)
    ext_copy = load(ext, events_csv, evals_csv, ext=True)
    record(f"COPY {N} events (1 run)", plain_copy, ext_copy, "extension: dirty-hour tracking on")
    with plain.cursor() as cur:
        cur.execute("CREATE UNLOGGED TABLE ceiling (LIKE ai_decision_events)")
        t0 = time.perf_counter()
        cur.execute(f"COPY ceiling FROM '{events_csv}' WITH (FORMAT csv)")
        ceiling = time.perf_counter() - t0
        cur.execute("DROP TABLE ceiling")
    rows.append((f"ceiling: COPY into unlogged table, no indexes", plain_copy, ceiling, "for scale"))

    t0 = time.perf_counter()
    plain.execute(PLAIN_MV)
    plain.execute("ANALYZE")
    mv_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    ext.execute("SELECT * FROM kt_refresh_metrics()")
    ext.execute("ANALYZE")
    record("first build of hourly metrics", mv_build, time.perf_counter() - t0)

    instant = "'" + timed(ext, "SELECT now()::text")[1][0][0] + "'::timestamptz"
    for name in LABELS:
        p_s, p_rows = median_of(plain, DOC[name].replace("{T}", instant))
        e_s, e_rows = median_of(ext, EXT[name].replace("{T}", instant))
        ok = same(name, e_rows, p_rows)
        note = ""
        if name.endswith("_view"):
            plan = timed(ext, "EXPLAIN (SUMMARY) " + EXT[name].replace("{T}", instant))[1]
            note = "extension " + next(r[0] for r in plan if r[0].startswith("Planning")).lower()
        record(LABELS[name], p_s, e_s, note if ok else note + " MISMATCH")

    # refresh after 1% new data in the last hour
    batch = max(N // 100, 10)
    p_times, e_times = [], []
    for rep in range(REPEATS):
        ev, pe, _ = recent_batch(ext, batch, 1000 + rep)
        load(plain, ev, pe, ext=False)
        load(ext, ev, pe, ext=True)
        p_times.append(timed(plain, "REFRESH MATERIALIZED VIEW CONCURRENTLY governance_metrics_hourly")[0])
        e_times.append(timed(ext, "SELECT * FROM kt_refresh_metrics()")[0])
    ok = same("hourly metrics", timed(ext, METRICS)[1], timed(plain, "SELECT * FROM governance_metrics_hourly")[1])
    record(f"hourly metrics refresh after 1% new data ({batch} events)", statistics.median(p_times),
           statistics.median(e_times), "REFRESH MATERIALIZED VIEW CONCURRENTLY vs kt_refresh_metrics()" + ("" if ok else " MISMATCH"))

    # a dashboard's 24-hour panel, default JIT settings: the materialized view (current only
    # after its refresh above) vs the live view, whose plan holds no events partition
    panel = f" WHERE hour >= {instant} - interval '24 hours'"
    p_s, p_rows = median_of(plain, "SELECT * FROM governance_metrics_hourly" + panel)
    e_s, e_rows = median_of(ext, METRICS + panel)
    plan_ms = next(r[0] for r in timed(ext, "EXPLAIN (SUMMARY) " + METRICS + panel)[1] if r[0].startswith("Planning"))
    ok = same("24-hour panel", e_rows, p_rows)
    record("24-hour panel on governance_metrics_hourly (materialized view vs live view)", p_s, e_s,
           "extension " + plan_ms.lower() + ("" if ok else " MISMATCH"))

    # kt_ingest of a JSON array vs COPY of the same events as CSV
    # a rate comparison: 200k events are enough, and one JSON document of N/10 events at 10M
    # would be ~250 MB
    count = min(max(N // 10, 10), 200000)
    ev, pe, end = recent_batch(ext, count, 5000)
    # the same events as the CSV file: the two databases must stay alike for the retention row
    # below (a JSON batch spread over the previous day made retention on the 1st of a month
    # remove more events from the extension's database than from the plain one)
    doc = json_batch(ext, count, 5000, end)
    t0 = time.perf_counter()
    with plain.cursor() as cur:
        cur.execute(f"COPY ai_decision_events FROM '{ev}' WITH (FORMAT csv)")
    plain_copy = time.perf_counter() - t0
    t0 = time.perf_counter()
    with ext.cursor() as cur:
        cur.execute("SELECT inserted FROM kt_ingest(%s::jsonb)", (doc,))
        inserted = cur.fetchone()[0]
    ingest = time.perf_counter() - t0
    if inserted != count:
        failures.append(f"kt_ingest stored {inserted} of {count}")
    record(f"kt_ingest {count} events (JSON) vs COPY (CSV)", plain_copy, ingest,
           f"{count / ingest:,.0f} vs {count / plain_copy:,.0f} events/s")

    # concurrent gateways: the same number of 10k-event batches sent by one session, then split
    # between two sessions at once (ids differ, so the two never wait on each other)
    batch = min(max(N // 100, 10), 10000)
    docs = [json_batch(ext, batch, 6000 + i, end) for i in range(8)]
    one = ingest_sessions(docs[:4], 1)
    two = ingest_sessions(docs[4:], 2)
    record(f"kt_ingest of 4 x {batch} events: one session vs two at once", one, two,
           f"{4 * batch / two:,.0f} vs {4 * batch / one:,.0f} events/s")
    # the plain database gets the same events, so the two stay alike for the rows below
    for i in range(8):
        csv_path = os.path.join(CSV_DIR, f"sessions_{i}.csv")
        with ext.cursor() as cur:
            cur.execute(f"COPY ({recent_events_sql(batch, 6000 + i, end)}) TO '{csv_path}' WITH (FORMAT csv)")
        with plain.cursor() as cur:
            cur.execute(f"COPY ai_decision_events FROM '{csv_path}' WITH (FORMAT csv)")

    # Parquet export of every event to a local directory vs COPY (SELECT ...) TO a CSV file
    export_dir = os.path.join(CSV_DIR, "export")
    csv_out = os.path.join(CSV_DIR, "events_export.csv")
    t0 = time.perf_counter()
    with plain.cursor() as cur:
        cur.execute(f"COPY (SELECT * FROM ai_decision_events ORDER BY timestamp) TO '{csv_out}' WITH (FORMAT csv)")
    plain_export = time.perf_counter() - t0
    t0 = time.perf_counter()
    with ext.cursor() as cur:
        cur.execute(f"""SELECT events_exported, bytes_written FROM kt_export_events('file://{export_dir}',
                        now() - interval '{DAYS + 2} days', now() + interval '1 day', include_evaluations => false)""")
        exported, parquet_bytes = cur.fetchone()
    ext_export = time.perf_counter() - t0
    stored = timed(ext, "SELECT count(*) FROM ai_decision_events")[1][0][0]
    if exported != stored:
        failures.append(f"export wrote {exported} of {stored} events")
    csv_bytes = os.path.getsize(csv_out)
    record(f"export {exported:,} events: Parquet (zstd, Hive by day) vs COPY TO CSV", plain_export, ext_export,
           f"{exported / ext_export:,.0f} vs {exported / plain_export:,.0f} rows/s; "
           f"{parquet_bytes / exported:.0f} vs {csv_bytes / exported:.0f} bytes/event")

    # retention of the oldest month: drop/trim vs DELETE, with the same cutoff. The cutoff sits
    # just after the start of the current month, as an hourly job reaches it: the older month's
    # partition pair is dropped whole.
    hours = timed(ext, "SELECT greatest(1, floor(extract(epoch FROM now() - date_trunc('month', now(), 'UTC')) / 3600))::int")[1][0][0]
    size_sql = "SELECT pg_total_relation_size('ai_decision_events') + pg_total_relation_size('policy_evaluations')"
    ext_size_sql = "SELECT sum(total_bytes) FROM kt_partitions"
    plain_before, ext_before = timed(plain, size_sql)[1][0][0], timed(ext, ext_size_sql)[1][0][0]
    disk = os.statvfs(CSV_DIR)
    free_before = disk.f_bavail * disk.f_frsize
    t0 = time.perf_counter()
    with ext.cursor() as cur:
        cur.execute(f"SELECT cutoff::text, events_removed FROM kt_apply_retention({hours})")
        cutoff, ext_removed = cur.fetchone()
    ext_ret = time.perf_counter() - t0
    # the removed partitions' files are deleted by a worker started at that commit: wait for it,
    # so the sizes below are what is on disk, and report when the space came back
    parked = "SELECT count(*) FROM pg_class WHERE relnamespace = to_regnamespace('kt_governance_reclaim')"
    while timed(ext, parked)[1][0][0] > 0 and time.perf_counter() - t0 < 600:
        time.sleep(0.01)
    ext_space_back = time.perf_counter() - t0
    disk = os.statvfs(CSV_DIR)
    freed = disk.f_bavail * disk.f_frsize - free_before
    t0 = time.perf_counter()
    with plain.cursor() as cur:
        cur.execute(f"""DELETE FROM policy_evaluations pe USING ai_decision_events e
                        WHERE pe.event_id = e.id AND e.timestamp < '{cutoff}'""")
        cur.execute(f"DELETE FROM ai_decision_events WHERE timestamp < '{cutoff}'")
        plain_removed = cur.rowcount
    plain_ret = time.perf_counter() - t0
    plain_after, ext_after = timed(plain, size_sql)[1][0][0], timed(ext, ext_size_sql)[1][0][0]
    if plain_removed != ext_removed:
        failures.append(f"retention removed {plain_removed} plain vs {ext_removed} extension events")
    mb = lambda b: f"{b / 1048576:,.0f} MB"
    record(f"retention: remove {ext_removed:,} events older than the current month", plain_ret, ext_ret,
           f"relation sizes before/after: plain {mb(plain_before)} -> {mb(plain_after)}, extension {mb(ext_before)} -> {mb(ext_after)}; "
           f"extension's partitions dropped {ext_space_back:.3f} s after the call began ({plain_ret / ext_space_back:.1f}x), "
           f"filesystem free space {freed / 1048576:+,.0f} MB by then")

    cores = os.cpu_count()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        f"Benchmark: {N:,} events over {DAYS} days (seed 42), {REPEATS} repeats (median), "
        f"{cores} cores, {mem:.0f} GB RAM, {platform.machine()}; {version.split(',')[0]}; "
        f"shared_buffers {shared_buffers}, max_wal_size {wal}; extension with {PARTITIONS} partitions",
        "",
        "| operation | plain SQL (s) | kt_governance (s) | ratio | note |",
        "|---|---|---|---|---|",
    ]
    for op, p_s, e_s, note in rows:
        lines.append(f"| {op} | {p_s:.3f} | {e_s:.3f} | {p_s / e_s:.1f}x | {note} |")
    report = "\n".join(lines)
    with open(OUT, "w") as f:
        f.write(report + "\n")
    print()
    print(report)
    if failures:
        print("\nCORRECTNESS FAILURES:\n  " + "\n  ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
