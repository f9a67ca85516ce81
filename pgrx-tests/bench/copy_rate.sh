#!/usr/bin/env bash
# COPY rate of N generated, time-ordered events: the extension's partitioned tables vs the
# document's plain table with its indexes, plus the ceiling (unlogged, no indexes), in one run
# on one tuned cluster. Prints a Markdown table of medians.
#   pgrx-tests/bench/copy_rate.sh [N=1000000] [REPEATS=3]
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
n="${1:-1000000}"; repeats="${2:-3}"
dir="$KT_ROOT/build/bench_copy"; port=55440
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension release
cluster_create "$dir" "$port" "shared_buffers = '1GB'" "max_wal_size = '8GB'" "checkpoint_timeout = '30min'" "timezone = 'UTC'"
trap 'cluster_destroy "$dir"' EXIT
psql_db() { kt_psql "$dir" "$port" -d "$@"; }
kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE ext" -c "CREATE DATABASE plain"
csv="$dir/events.csv"
psql_db ext -c "CREATE EXTENSION kt_governance" \
    -c "SELECT count(*) FROM kt_create_partitions('2026-09-01', '2026-12-01')" \
    -c "COPY (SELECT * FROM kt_sample_events($n, 30, 42, '2026-11-01')) TO '$csv' WITH (FORMAT csv)" >/dev/null
psql_db plain >/dev/null <<'SQL'
CREATE TABLE ai_decision_events (
    id TEXT PRIMARY KEY, timestamp TIMESTAMPTZ NOT NULL, decision TEXT NOT NULL, model TEXT NOT NULL,
    provider TEXT NOT NULL, gateway_id TEXT NOT NULL, user_id TEXT, team_id TEXT,
    input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd NUMERIC(12, 6), latency_ms INTEGER, request_source TEXT, batch_id TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW());
CREATE INDEX idx_events_timestamp ON ai_decision_events (timestamp DESC);
CREATE INDEX idx_events_decision ON ai_decision_events (decision, timestamp DESC);
CREATE INDEX idx_events_gateway ON ai_decision_events (gateway_id, timestamp DESC);
CREATE INDEX idx_events_user ON ai_decision_events (user_id, timestamp DESC);
CREATE INDEX idx_events_team ON ai_decision_events (team_id, timestamp DESC);
CREATE UNLOGGED TABLE ceiling (LIKE ai_decision_events);
SQL

# time_copy DB TABLE: seconds for one COPY of the file, table emptied first
time_copy() {
    local empty="$2"
    [ "$1" = ext ] && empty="ai_decision_events, policy_evaluations"
    psql_db "$1" -c "TRUNCATE $empty" -c "CHECKPOINT" >/dev/null
    local t0 t1; t0=$(date +%s.%N)
    psql_db "$1" -c "COPY $2 FROM '$csv' WITH (FORMAT csv)" >/dev/null
    t1=$(date +%s.%N)
    calc "$t1 - $t0"
}
calc() { awk "BEGIN { printf \"%.2f\\n\", $1 }"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# median_copy DB TABLE: median seconds over the repeats
median_copy() {
    local i
    for i in $(seq "$repeats"); do time_copy "$1" "$2"; done | median
}
plain="$(median_copy plain ai_decision_events)"
ext="$(median_copy ext ai_decision_events)"
ceil="$(median_copy plain ceiling)"
check="$(psql_db ext -At -c "SELECT count(*) FROM ai_decision_events")"
[ "$check" = "$n" ] || { echo "row count mismatch: $check != $n"; exit 1; }
rate() { awk "BEGIN { printf \"%d\", $n / $1 }"; }
cat <<TABLE
COPY of $n time-ordered events (30 days), median of $repeats, $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB RAM, $(kt_psql "$dir" "$port" -d postgres -At -c "SHOW server_version")
| target | seconds | rows/s | vs plain |
|---|---|---|---|
| document's plain table + its 6 indexes | $plain | $(rate "$plain") | 1.00x |
| kt_governance ai_decision_events (monthly partitions) | $ext | $(rate "$ext") | $(calc "$plain / $ext")x |
| ceiling: unlogged, no indexes | $ceil | $(rate "$ceil") | $(calc "$plain / $ceil")x |
TABLE
