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
\echo == load 100000 sample events (30 days) with their policy evaluations
SELECT * FROM kt_generate_sample_events(100000, 30, 42);
SELECT * FROM kt_run_maintenance();
\echo == partitions
SELECT parent_table, partition_name, range_start, range_end, total_size FROM kt_partitions ORDER BY 1, range_start NULLS FIRST;
\echo == daily governance summary (last 3 days)
SELECT date_trunc('day', timestamp) AS day, decision, count(*) AS event_count,
       sum(cost_usd) AS total_cost, round(avg(latency_ms), 1) AS avg_latency_ms,
       sum(input_tokens + output_tokens) AS total_tokens
FROM ai_decision_events WHERE timestamp >= date_trunc('day', now()) - interval '2 days'
GROUP BY 1, 2 ORDER BY 1 DESC, 2;
\echo == partition health
SELECT * FROM kt_partition_health;
SQL
echo
echo "Cluster left running. Connect with:"
echo "  runuser -u postgres -- psql -h $dir -p $port -d demo"
echo "Remove it with: scripts/demo.sh stop"
