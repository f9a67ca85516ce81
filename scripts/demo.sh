#!/usr/bin/env bash
# From a fresh Debian machine to a running demo: installs the prerequisites, builds and
# installs the extension, starts a throwaway cluster in build/demo, loads sample events and
# shows the reports. Re-run at will; `scripts/demo.sh stop` removes the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh
source scripts/lib/cluster.sh
dir="$KT_ROOT/build/demo"; port=55430
if [ "${1:-}" = stop ]; then cluster_destroy "$dir"; exit 0; fi

echo "== build and install kt_governance (release)"
install_extension release
echo "== start a throwaway cluster in $dir (port $port, unix socket only)"
cluster_create "$dir" "$port" "shared_preload_libraries = 'kt_governance'" "kt_governance.database = 'demo'"
kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE demo"
kt_psql "$dir" "$port" -d demo <<'SQL'
\echo == CREATE EXTENSION and partition maintenance
CREATE EXTENSION kt_governance;
SELECT * FROM kt_run_maintenance();
\echo == load 100000 sample events (30 days) with their policy evaluations, and some JSON
SELECT * FROM kt_generate_sample_events(100000, 30, 42);
SELECT * FROM kt_ingest('[{"id": "demo-1", "timestamp": "2026-04-01T12:30:00+02:00", "verdict": "Block",
  "model": "claude-3-haiku", "provider": "anthropic", "gateway_id": "gw-demo", "usage": {"input_tokens": 64},
  "policies_evaluated": [{"name": "prompt-injection", "result": "block", "score": 0.97}]}]');
SELECT * FROM kt_run_maintenance();
\echo == refresh the hourly rollups (the worker does this every hour)
SELECT * FROM kt_refresh_metrics();
\echo == partitions
SELECT parent_table, partition_name, range_start, range_end, total_size FROM kt_partitions ORDER BY 1, range_start NULLS FIRST;
\echo == kt_governance_summary(): last 3 days
SELECT * FROM kt_governance_summary(lookback => '3 days');
\echo == kt_spend_by_team_model(): top 5
SELECT * FROM kt_spend_by_team_model() LIMIT 5;
\echo == kt_policy_effectiveness()
SELECT * FROM kt_policy_effectiveness();
\echo == kt_anomalies(): flagged hours in the last 48 hours
SELECT * FROM kt_anomalies() WHERE status = 'ANOMALY';
\echo == governance_metrics_hourly: latest hour
SELECT * FROM governance_metrics_hourly WHERE hour = (SELECT max(hour) FROM governance_metrics_hourly) ORDER BY total_requests DESC LIMIT 5;
\echo == health (the worker runs the jobs in database demo)
SELECT job_name, default_rows, dirty_hours, last_success, last_error FROM kt_health;
SQL
echo
echo "Cluster left running. Connect with:"
echo "  runuser -u postgres -- $PG_BIN/psql -h $dir -p $port -d demo"
echo "Remove it with: scripts/demo.sh stop"
