#!/usr/bin/env bash
# Retention's disk space when the reclaim worker cannot run: with no background worker slot
# (max_worker_processes = 0) a retention still removes its rows at commit and warns; the
# detached partitions survive an immediate shutdown (crash) parked in kt_governance_reclaim,
# the health view shows them, and the maintenance job drops them. With slots again, the worker
# started by the next retention commit drops its pairs by itself.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
source "$(dirname "$0")/lib.sh"
dir="$KT_ROOT/build/e2e_reclaim"; port=55442
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension debug
cluster_create "$dir" "$port" "timezone = 'UTC'" "max_worker_processes = 0"
trap 'cluster_destroy "$dir"' EXIT
kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE kt"
sql() { q "$dir" "$port" kt "$1"; }
parked="SELECT count(*) FROM pg_class WHERE relnamespace = 'kt_governance_reclaim'::regnamespace AND relkind = 'r'"

sql "CREATE EXTENSION kt_governance" >/dev/null
sql "SELECT count(*) FROM kt_create_partitions('2021-01-01', '2021-04-01')" >/dev/null
sql "SELECT events FROM kt_generate_sample_events(3000, 80, 3, '2021-03-25')" >/dev/null
sql "SELECT events FROM kt_generate_sample_events(500, 2, 4, now())" >/dev/null
old_before="$(sql "SELECT count(*) FROM ai_decision_events WHERE \"timestamp\" < '2021-04-01'")"

# no worker slot: the rows go at commit, the pairs stay parked, the caller is told
out="$(kt_psql "$dir" "$port" -d kt -At -c "SELECT events_removed FROM kt_apply_retention(24 * 365)" 2>&1)"
check "retention without a worker slot warns" "$(grep -c 'no background worker slot free' <<<"$out")" 1
check "and removes every old event at commit" "$(tail -1 <<<"$out")" "$old_before"
check "old rows gone" "$(sql "SELECT count(*) FROM ai_decision_events WHERE \"timestamp\" < '2021-04-01'")" 0
check "removed pairs parked" "$(sql "$parked")" 6
check "health view shows the space waiting" "$(sql "SELECT DISTINCT bytes_awaiting_reclaim > 0 FROM kt_health")" t
check "removal log: space not returned yet" "$(sql "SELECT space_returned_at IS NULL FROM kt_removal_log ORDER BY removal_id DESC LIMIT 1")" t

# a crash: the parked pairs are durable, nothing comes back into the tables
cluster_stop "$dir" immediate
cluster_start "$dir"
check "after an immediate shutdown: still parked" "$(sql "$parked")" 6
check "after an immediate shutdown: old rows still gone" "$(sql "SELECT count(*) FROM ai_decision_events WHERE \"timestamp\" < '2021-04-01'")" 0

# the maintenance job drops them
check "maintenance job reclaims" "$(sql "SELECT status || ' ' || (message LIKE '%, 6 removed partitions reclaimed, % ingest claims pruned') FROM kt_run_job('maintenance')")" "ok true"
check "nothing parked" "$(sql "$parked")" 0
check "health view: nothing waiting" "$(sql "SELECT DISTINCT bytes_awaiting_reclaim FROM kt_health")" 0
check "removal log: space returned" "$(sql "SELECT space_returned_at IS NOT NULL FROM kt_removal_log ORDER BY removal_id DESC LIMIT 1")" t
check "row counts exact" "$(sql "SELECT count(*) FROM kt_verify_row_counts()")" 0

# slots again: the worker started by the retention commit drops the pair by itself
echo "max_worker_processes = 8" >> "$dir/data/postgresql.conf"
cluster_stop "$dir"
cluster_start "$dir"
sql "SELECT count(*) FROM kt_create_partitions('2021-01-01', '2021-02-01')" >/dev/null
sql "SELECT events FROM kt_generate_sample_events(300, 20, 5, '2021-01-25')" >/dev/null
check "retention removes the pair" "$(sql "SELECT cardinality(partitions_removed) FROM kt_apply_retention(24 * 365)")" 1
gone=no
for _ in $(seq 60); do
    [ "$(sql "$parked")" = 0 ] && { gone=yes; break; }
    sleep 0.5
done
check "the reclaim worker dropped it within 30 s" "$gone" yes
check "removal log: space returned" "$(sql "SELECT space_returned_at IS NOT NULL FROM kt_removal_log ORDER BY removal_id DESC LIMIT 1")" t
check "no error in the server log" "$(grep -c 'ERROR\|PANIC' "$dir/server.log" || true)" 0
e2e_finish reclaim
